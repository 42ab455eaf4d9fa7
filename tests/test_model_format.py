"""The model folder format (docs/model_format.md), resolving models, devices, the seed rule across commands
and the top-level Python API."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import kinema
from kinema.cli import app
from kinema.hub import BUILTIN_DIR, INDEX_NAME, ModelFormatError, builtin_models, open_model
from kinema.io import read_video
from kinema.models.base import UnknownKeyError
from kinema.pipelines import contract_of, describe_model, load_pipeline, registration_for
from kinema.pipelines.generate import generate_clips

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a small red circle moving left slowly"
runner = CliRunner()


@pytest.fixture
def model_dir(tiny_model_dir, tmp_path):
    """A copy of the tiny diffusion model folder that a test may edit."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "m"))


def frames(model, text_encoder, **kwargs):
    return load_pipeline(model, device="cpu", text_encoder=text_encoder)(PROMPT, **kwargs).frames


def test_every_builtin_is_format_1_and_says_what_it_is():
    found = {m.name: m for m in builtin_models()}
    assert {"shapes-t2v", "shapes-gan", "shape-motion-gan", "shapes-classifier", "shapes-vae", "shapes-ldm"} <= set(found)
    for name, model in found.items():
        index = json.loads((BUILTIN_DIR / name / INDEX_NAME).read_text())
        assert index["format"] == 1 and index["_kinema_version"] and not model.legacy
        assert model.size_bytes <= 15e6, f"{name}: {model.size_bytes / 1e6:.1f} MB, over the 15 MB a built-in may take"
        assert (BUILTIN_DIR / name / "MODEL_CARD.md").is_file(), name
        for component in index["components"]:
            assert {p.name for p in (BUILTIN_DIR / name / component).iterdir()} == {"config.json", "model.safetensors"}
    assert describe_model(found["shapes-t2v"])[0] == "text-to-video + image-to-video"
    assert describe_model(found["shapes-ldm"])[0] == "text-to-video + image-to-video"
    assert describe_model(found["shape-motion-gan"])[:2] == ("unconditional + image-to-video", "no prompt, optionally an image (first frame)")
    assert describe_model(found["shapes-classifier"])[0] == "evaluation-only"
    with pytest.raises(ValueError, match="shapes-classifier is an evaluation-only model.*does not generate video"):
        load_pipeline("shapes-classifier")


def test_models_command_lists_kind_takes_and_size():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    for text in ("shapes-t2v", "text-to-video", "evaluation-only", "unconditional", " MB"):
        assert text in result.output, text
    result = runner.invoke(app, ["models", "shape-motion-gan"])
    assert result.exit_code == 0 and "num_inference_steps (--steps)" in result.output and "with --image only" in result.output


@pytest.mark.parametrize("where", ["index", "component", "settings"])
def test_a_misspelt_key_is_named_with_its_file_and_the_likely_key(model_dir, where, text_encoder):
    if where == "index":
        path, edit = model_dir / INDEX_NAME, lambda d: d.update(componets=d["components"])
        expected = f"{model_dir / INDEX_NAME}: unknown key 'componets'; did you mean 'components'?"
    elif where == "component":
        path, edit = model_dir / "denoiser" / "config.json", lambda d: d.update(atention_levels=[1])
        expected = "unknown key 'atention_levels'; did you mean 'attention_levels'?"
    else:
        path, edit = model_dir / INDEX_NAME, lambda d: d["settings"].update(default_step=3)
        expected = f"{model_dir / INDEX_NAME} settings: unknown key 'default_step'; did you mean 'default_steps'?"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(UnknownKeyError) as error:
        load_pipeline(model_dir, device="cpu", text_encoder=text_encoder)
    assert expected in str(error.value) and str(path.parent.name) in str(error.value)


def test_metadata_keys_pass_and_a_newer_format_is_refused(model_dir, text_encoder):
    index = json.loads((model_dir / INDEX_NAME).read_text())
    (model_dir / INDEX_NAME).write_text(json.dumps({**index, "_written_by": "a newer tool"}))
    assert frames(model_dir, text_encoder, seed=0).shape[0] == 1
    (model_dir / INDEX_NAME).write_text(json.dumps({**index, "format": 2}))
    with pytest.raises(ModelFormatError, match="is model format 2; this Kinema reads format 1"):
        load_pipeline(model_dir, text_encoder=text_encoder)


def test_format_0_folders_still_load(model_dir, tmp_path, text_encoder):
    """One network beside pipeline.json (Kinema 0.1): the registry finds the pipeline from its model class."""
    old = tmp_path / "old"
    shutil.copytree(model_dir / "denoiser", old)
    index = json.loads((model_dir / INDEX_NAME).read_text())
    (old / "pipeline.json").write_text(json.dumps(index["settings"]))
    config = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**config, "_kinema_training": {"step": 7}}))
    assert open_model(old).legacy and registration_for(open_model(old)).name == "diffusion"
    assert np.array_equal(frames(old, text_encoder, seed=4), frames(model_dir, text_encoder, seed=4))



def test_a_format_0_gan_folder_loads_as_the_gan_pipeline(tmp_path):
    """A Kinema 0.1 GAN (one VideoGenerator beside pipeline.json) must still be recognised and give the same clips."""
    from kinema.pipelines.gan import tiny_pipeline

    folder = tiny_pipeline().save_pretrained(tmp_path / "gan")
    old = Path(shutil.copytree(folder / "generator", tmp_path / "old"))
    (old / "pipeline.json").write_text(json.dumps(json.loads((folder / INDEX_NAME).read_text())["settings"]))
    assert open_model(old).legacy and registration_for(open_model(old)).name == "gan"
    assert open_model(old).component_class("model") == "VideoGenerator"
    new, legacy = (load_pipeline(f, device="cpu")(seed=3).frames for f in (folder, old))
    assert new.shape == (1, 4, 32, 32, 3) and np.array_equal(new, legacy)

def test_a_frozen_component_can_be_referenced_instead_of_copied(model_dir, tmp_path, text_encoder):
    slim = tmp_path / "slim"
    slim.mkdir()
    index = json.loads((model_dir / INDEX_NAME).read_text())
    index["components"]["denoiser"] = {"model": str(model_dir), "component": "denoiser"}
    index["settings"]["default_steps"] = 3
    (slim / INDEX_NAME).write_text(json.dumps(index))
    out = load_pipeline(slim, device="cpu", text_encoder=text_encoder)(PROMPT, seed=1)
    assert out.options["num_inference_steps"] == 3  # its own settings, the other folder's weights
    assert np.array_equal(out.frames, load_pipeline(model_dir, device="cpu", text_encoder=text_encoder)(PROMPT, seed=1, steps=3).frames)
    index["components"]["denoiser"] = {"model": str(tmp_path / "gone"), "component": "denoiser"}
    (slim / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(FileNotFoundError, match="gone"):
        load_pipeline(slim, text_encoder=text_encoder)



def test_a_reference_to_a_reference_is_followed_and_a_circle_is_named(model_dir, tmp_path, text_encoder):
    """A folder may reference a component that is itself a reference (a fine-tune of a slim copy); a loop is an error."""
    from kinema.hub import ModelFormatError

    index = json.loads((model_dir / INDEX_NAME).read_text())
    for name, target in (("a", str(model_dir)), ("b", str(tmp_path / "a"))):
        (tmp_path / name).mkdir()
        linked = {**index, "components": {**index["components"], "denoiser": {"model": target, "component": "denoiser"}}}
        (tmp_path / name / INDEX_NAME).write_text(json.dumps(linked))
    assert open_model(tmp_path / "b").component("denoiser") == (model_dir / "denoiser").resolve()
    assert np.array_equal(frames(tmp_path / "b", text_encoder, seed=2), frames(model_dir, text_encoder, seed=2))
    circle = {**index, "components": {**index["components"], "denoiser": {"model": str(tmp_path / "c"), "component": "denoiser"}}}
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / INDEX_NAME).write_text(json.dumps(circle))
    with pytest.raises(ModelFormatError, match="components.denoiser references go round in a circle"):
        open_model(tmp_path / "c").component("denoiser")


def test_a_loaded_pipeline_names_its_model_as_the_user_did(tiny_model_dir, text_encoder):
    """Errors from a pipeline name the model as it was given (a path, a built-in name), not "this model"."""
    import re

    pipe = load_pipeline(tiny_model_dir, device="cpu", text_encoder=text_encoder)
    assert pipe.source == str(tiny_model_dir)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(tiny_model_dir))} does not take top_k; it takes: "):
        pipe(PROMPT, top_k=3)

def test_model_names_that_are_not_models(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model 'shapes-t2x'.*built-ins: shape-motion-gan"):
        open_model("shapes-t2x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither a model folder"):
        open_model(tmp_path / "empty")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / INDEX_NAME).write_text(json.dumps({"_class_name": "CogVideoXPipeline", "_diffusers_version": "0.42.1"}))
    assert open_model(tmp_path / "d").diffusers  # a folder diffusers saved: kinema.pipelines.diffusers_backend drives it
    (tmp_path / "d" / INDEX_NAME).write_text(json.dumps({"_class_name": "NoSuchPipeline", "_diffusers_version": "0.42.1"}))
    with pytest.raises(ModelFormatError, match="names NoSuchPipeline, which diffusers .* does not have"):
        contract_of(open_model(tmp_path / "d"))


def test_a_run_folder_gives_its_newest_checkpoint_before_it_finishes(tmp_path, text_encoder):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(ROOT / "configs" / "diffusion" / "tiny.yaml"), "--out", str(run), "--until-step", "3"])
    assert result.exit_code == 0, result.output
    assert not (run / "model").exists()
    opened = open_model(run)
    assert opened.run == run and opened.index.training["step"] == 3 and opened.index.training["weights"] == "ema"
    runner.invoke(app, ["export", str(run), "--out", str(tmp_path / "exported")])
    assert np.array_equal(frames(run, text_encoder, seed=2), frames(tmp_path / "exported", text_encoder, seed=2))


def test_devices_and_dtypes(tiny_model_dir, text_encoder):
    from kinema.device import resolve_device, resolve_dtype

    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ValueError, match="device cuda:1 asked for, but this machine has no CUDA GPU"):
            resolve_device("cuda:1")
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda, cuda:N or mps, got 'gpu0'"):
        resolve_device("gpu0")
    with pytest.raises(ValueError, match="dtype must be auto or one of float32, bfloat16, float16, got 'fp8'"):
        resolve_dtype("fp8", torch.device("cpu"))
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    full = load_pipeline(tiny_model_dir, device="cpu", text_encoder=text_encoder)
    half = load_pipeline(tiny_model_dir, device="cpu", dtype="bfloat16", text_encoder=text_encoder)
    assert half.dtype == torch.bfloat16 and full.dtype == torch.float32
    a, b = full(PROMPT, seed=0).frames.astype(int), half(PROMPT, seed=0).frames.astype(int)
    assert a.shape == b.shape and np.abs(a - b).mean() < 12  # the same clip, drawn in bfloat16
    fp16 = load_pipeline(tiny_model_dir, device="cpu", dtype="float16", text_encoder=text_encoder)
    assert fp16.dtype == torch.float16 and next(fp16.modules()["denoiser"].parameters()).dtype == torch.float16
    c = fp16(PROMPT, seed=0).frames.astype(int)
    assert c.shape == a.shape and np.abs(a - c).mean() < 12  # and in float16 (autocast runs the float32 inputs in it)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_gives_the_cpu_frames(tiny_model_dir, text_encoder):
    cpu = load_pipeline(tiny_model_dir, device="cpu", text_encoder=text_encoder)(PROMPT, seed=0).frames.astype(int)
    gpu = load_pipeline(tiny_model_dir, device="cuda", dtype="float32", text_encoder=text_encoder.to("cuda"))(PROMPT, seed=0).frames.astype(int)
    assert np.abs(cpu - gpu).max() <= 2


def test_seed_rule_holds_across_the_commands(tiny_model_dir, tmp_path):
    """Line i of `generate --prompts F --seed S` == `generate "<line i>" --seed S+i` == `evaluate --model`'s clip i."""
    lines = [PROMPT, "", "a large blue square moving up quickly", "a big yellow triangle drifting right"]
    (tmp_path / "p.txt").write_text("\n".join(lines) + "\n")
    model = ["--model", str(tiny_model_dir)]
    result = runner.invoke(app, ["generate", "--prompts", str(tmp_path / "p.txt"), "--out-dir", str(tmp_path / "batch"), "--seed", "5",
                                 "--format", "png", *model])
    assert result.exit_code == 0, result.output
    clips, texts = generate_clips(tmp_path / "p.txt", tiny_model_dir, seed=5, device="cpu")
    assert texts == [line for line in lines if line]
    for clip, (i, line) in zip(clips, [(i, line) for i, line in enumerate(lines) if line]):
        result = runner.invoke(app, ["generate", line, "--seed", str(5 + i), "-o", str(tmp_path / f"one{i}"), "--format", "png", *model])
        assert result.exit_code == 0, result.output
        single = read_video(tmp_path / f"one{i}").frames
        assert np.array_equal(read_video(tmp_path / "batch" / f"{i:04d}").frames, single), i
        assert np.array_equal(clip, single), i


def test_python_api_at_the_top_level(tiny_model_dir, tmp_path, text_encoder):
    pipe = kinema.load_pipeline(tiny_model_dir, device="cpu", text_encoder=text_encoder)
    steps = []
    video = kinema.generate(PROMPT, pipeline=pipe, seed=3, steps=3, progress=lambda s, n, _: steps.append((s, n)))
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert repr(video).startswith(f"GenerateResult(4 frames at 32x32, prompt={PROMPT!r}, seed=3") and "array" not in repr(video)
    assert video.path is None and video.options["num_inference_steps"] == 3
    path = video.save(tmp_path / "clip.mp4")
    from kinema.io import probe

    provenance = probe(path).provenance
    assert provenance.seed == 3 and provenance.extra["num_inference_steps"] == 3 and provenance.extra["guidance_scale"] == 4.0
    with pytest.raises(FileExistsError, match="clip.mp4 already exists"):
        video.save(path)
    with pytest.raises(ValueError, match="does not take temperature; it takes: num_frames"):
        kinema.generate(PROMPT, pipeline=pipe, temperature=0.7)


def test_load_pipeline_resolves_the_device_auto_by_default(tiny_model_dir, text_encoder, monkeypatch):
    import kinema.pipelines as pipelines

    asked = []
    real = pipelines.resolve_device
    monkeypatch.setattr(pipelines, "resolve_device", lambda device: asked.append(device) or real(device))
    load_pipeline(tiny_model_dir, text_encoder=text_encoder)
    assert asked == ["auto"]  # a GPU when there is one; a CPU-only machine gets the CPU


def test_a_result_saved_later_keeps_the_frame_rate_and_provenance_it_was_made_with(tiny_model_dir, text_encoder, tmp_path):
    from kinema import generate
    from kinema.io import probe

    pipe = load_pipeline(tiny_model_dir, text_encoder=text_encoder)
    result = generate(PROMPT, pipeline=pipe, seed=4, fps=12.5)
    assert result.path is None  # nothing written until asked
    path = result.save(tmp_path / "later.mp4")
    info = probe(path)
    assert (info.fps, info.num_frames, info.provenance.seed, info.provenance.extra["fps"]) == (12.5, result.frames.shape[0], 4, 12.5)
    assert result.save(tmp_path / "later.gif") == tmp_path / "later.gif"


def test_the_shipped_latent_model_draws_its_prompts_at_native_64x64(text_encoder):
    from kinema.evaluation.shapes_checker import check_videos

    pipe = load_pipeline("shapes-ldm", text_encoder=text_encoder)
    prompts = ["a small yellow triangle moving up quickly", "a large blue circle moving left slowly"]
    out = pipe(prompts, seed=0)
    assert out.frames.shape == (2, 16, 64, 64, 3) and pipe.settings.sample_size * 4 == 64  # 16x16 latents, no upscaling
    report = check_videos(list(out.frames), prompts)
    assert all(acc == 1.0 for acc in report.accuracy.values()), report.accuracy


def test_a_model_folder_with_two_components_of_one_class_asks_which(model_dir):
    """A network loaded from a whole model folder takes the one component of its class; with two of them
    (say a base and a refiner denoiser) picking the first would load the wrong weights without a word."""
    from kinema.models.unet3d import VideoUNet

    assert VideoUNet.component_folder(model_dir) == model_dir / "denoiser"
    shutil.copytree(model_dir / "denoiser", model_dir / "refiner")
    index = json.loads((model_dir / INDEX_NAME).read_text())
    index["components"]["refiner"] = "refiner"
    (model_dir / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"holds 2 VideoUNet components \(.*denoiser.*refiner.*\); give the component's folder"):
        VideoUNet.from_pretrained(model_dir)
    assert VideoUNet.component_folder(model_dir / "refiner") == model_dir / "refiner"


def test_saving_in_half_precision_keeps_integer_buffers_exact(tmp_path):
    """dtype=float16 stores the floating-point tensors in half; an integer buffer (a step count, an index table)
    stays integer: float16 would round 4097 to 4096."""
    import dataclasses

    from torch import nn

    from kinema.models.base import PretrainedMixin

    @dataclasses.dataclass
    class Config:
        width: int = 3

    class WithCounts(PretrainedMixin, nn.Module):
        config_class = Config

        def __init__(self, config):
            super().__init__()
            self.config = config
            self.proj = nn.Linear(config.width, config.width)
            self.register_buffer("counts", torch.tensor([4097, 70000, -3], dtype=torch.int64))

    model = WithCounts(Config())
    model.save_pretrained(tmp_path / "m", dtype=torch.float16)
    from safetensors.torch import load_file

    stored = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert stored["proj.weight"].dtype == torch.float16 and stored["counts"].dtype == torch.int64
    loaded = WithCounts.from_pretrained(tmp_path / "m")
    assert loaded.counts.tolist() == [4097, 70000, -3]
    assert torch.equal(loaded.proj.weight, model.proj.weight.half().float())


def test_a_model_index_that_is_not_a_json_object_is_a_model_format_error(model_dir, text_encoder):
    """A hand-edited model_index.json must fail as a model-format problem naming the file, not a generic error."""
    (model_dir / INDEX_NAME).write_text(json.dumps(["diffusion"]))
    with pytest.raises(ModelFormatError, match=r"model_index\.json must hold a JSON object, got list"):
        load_pipeline(model_dir, text_encoder=text_encoder)
    (model_dir / INDEX_NAME).write_text('{"pipeline": "diffusion",')
    with pytest.raises(ModelFormatError, match=r"model_index\.json cannot be read as JSON"):
        load_pipeline(model_dir, text_encoder=text_encoder)


def test_a_component_reference_relative_to_the_folder_loads_from_any_working_directory(model_dir, tmp_path, monkeypatch):
    """A slim folder naming its base as "../m" must find it beside itself, not beside wherever the user runs kinema."""
    slim = tmp_path / "slim"
    slim.mkdir()
    index = json.loads((model_dir / INDEX_NAME).read_text())
    index["components"]["denoiser"] = {"model": f"../{model_dir.name}", "component": "denoiser"}
    (slim / INDEX_NAME).write_text(json.dumps(index))
    elsewhere = tmp_path / "a" / "b"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert open_model(slim).component("denoiser") == (model_dir / "denoiser").resolve()


def test_a_written_model_index_records_the_kinema_that_wrote_it(tmp_path):
    """The writer's version is how a user (or a later Kinema) tells which release made a folder."""
    from kinema.hub import ModelIndex

    ModelIndex(pipeline="diffusion", components={"denoiser": "denoiser"}).write(tmp_path)
    assert json.loads((tmp_path / INDEX_NAME).read_text())["_kinema_version"] == kinema.__version__
    assert ModelIndex.read(tmp_path / INDEX_NAME).kinema_version == kinema.__version__


def test_a_run_folder_opens_its_export_when_no_checkpoint_is_newer(tiny_model_dir, tmp_path):
    """A finished run's export is what a user asked for; a run whose export is as new as its newest checkpoint
    must not be re-exported from the checkpoint, and one with neither says so."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=rf"^{re.escape(str(run))} is a training run folder without checkpoints or an exported model yet$"):
        open_model(run)
    exported = Path(shutil.copytree(tiny_model_dir, run / "model"))
    index = json.loads((exported / INDEX_NAME).read_text())
    index["training"] = {"step": 3}
    (exported / INDEX_NAME).write_text(json.dumps(index))
    (run / "checkpoints" / "step_3.pt").write_bytes(b"")  # as new as the export: the export is used, not this file
    (run / "checkpoints" / "step_2.pt").write_bytes(b"")
    for given in (run, str(run)):
        opened = open_model(given)
        assert (opened.path, opened.run, opened.name, opened._tmp, opened.legacy) == (exported, run, str(run), None, False)
    shutil.rmtree(run / "checkpoints")  # a run folder holding only its export
    opened = open_model(run)
    assert (opened.path, opened.run, opened.index.training) == (exported, run, {"step": 3})


def test_open_model_names_a_file_or_an_unreadable_kinema_json_with_the_right_error(tmp_path):
    """`--model some.bin` and a hand-broken kinema.json beside a diffusers pipeline each get one clear error of a
    type a caller can catch (missing model vs. broken model folder)."""
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01")
    with pytest.raises(FileNotFoundError, match=rf"^{re.escape(str(tmp_path / 'weights.bin'))} is a file; --model takes a built-in "
                                                r"name, a model folder or a training run folder$"):
        open_model(tmp_path / "weights.bin")
    folder = tmp_path / "pipe"
    folder.mkdir()
    (folder / INDEX_NAME).write_text(json.dumps({"_class_name": "TextToVideoSDPipeline", "_diffusers_version": "0.30.0"}))
    (folder / "kinema.json").write_text('{"num_inference_steps": ')
    with pytest.raises(ModelFormatError, match=rf"^{re.escape(str(folder / 'kinema.json'))} cannot be read as JSON \(Expecting value"):
        open_model(folder)
    (folder / "kinema.json").write_text('{"_kinema_version": "9.9", "guidance_scale": 2.5}')
    opened = open_model(folder)
    assert (opened.index.pipeline, opened.index.settings["guidance_scale"], opened.index.kinema_version, opened.diffusers) == ("diffusers", 2.5, "9.9", True)
