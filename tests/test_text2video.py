"""Text-to-video and image-to-video pipelines and `kinema generate`, on a tiny random model."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kinema.cli import app
from kinema.io import probe, read_video
from kinema.io.image import write_image
from kinema.pipelines.text2video import Text2VideoPipeline


@pytest.fixture(scope="module")
def pipe(tiny_model_dir, text_encoder):
    return Text2VideoPipeline.from_pretrained(tiny_model_dir, text_encoder=text_encoder)


def test_output_shape_dtype_and_seed(pipe):
    out = pipe(["a small red circle moving left slowly", "a large blue square moving up quickly"], generator=torch.Generator().manual_seed(3))
    assert out.frames.shape == (2, 4, 32, 32, 3) and out.frames.dtype == np.uint8
    again = pipe(["a small red circle moving left slowly", "a large blue square moving up quickly"], generator=torch.Generator().manual_seed(3))
    assert np.array_equal(out.frames, again.frames)
    other = pipe(["a small red circle moving left slowly", "a large blue square moving up quickly"], generator=torch.Generator().manual_seed(4))
    assert not np.array_equal(out.frames, other.frames)


def test_schedulers_and_negative_prompts(pipe):
    clips = []
    for name in ("dpm++", "ddim", "unipc", "euler"):
        a = pipe("a small red circle moving left slowly", scheduler=name, num_inference_steps=4, seed=0)
        b = pipe("a small red circle moving left slowly", scheduler=name, num_inference_steps=4, negative_prompt="blue", seed=0)
        assert a.frames.shape == (1, 4, 32, 32, 3) and not np.array_equal(a.frames, b.frames)
        clips.append(a.frames)
    assert not any(np.array_equal(clips[0], other) for other in clips[1:])  # each name is another sampler


def test_guidance_cutoff_stops_guidance_part_way(pipe):
    prompt, seed = "a small red circle moving left slowly", 5

    def run(**kw):
        return pipe(prompt, negative_prompt="blue", num_inference_steps=6, generator=torch.Generator().manual_seed(seed), **kw).frames

    unguided, guided = run(guidance_scale=1.0), run(guidance_scale=7.0, guidance_cutoff=1.0)
    assert np.array_equal(run(guidance_scale=7.0, guidance_cutoff=0.0), unguided)
    half = run(guidance_scale=7.0, guidance_cutoff=0.5)
    assert not np.array_equal(half, unguided) and not np.array_equal(half, guided)
    # the unguided steps run the conditional branch alone: half the batch
    batches = []
    hook = pipe.unet.register_forward_hook(lambda m, args, out: batches.append(args[0].shape[0]))
    try:
        run(guidance_scale=7.0, guidance_cutoff=0.5)
    finally:
        hook.remove()
    assert batches == [2, 2, 2, 1, 1, 1]
    with pytest.raises(ValueError, match=r"guidance_cutoff \(--guidance-cutoff\) must be >= 0 and <= 1, got 1.5"):
        run(guidance_cutoff=1.5)


def test_step_callback_hands_back_decoded_previews(pipe):
    seen = []
    pipe("a small red circle moving left slowly", num_inference_steps=4, callback=lambda s, n, preview: seen.append((s, n, preview)), preview_every=2)
    assert [s for s, _, _ in seen] == [1, 2, 3, 4] and all(n == 4 for _, n, _ in seen)
    previews = [p for _, _, p in seen if p is not None]
    assert len(previews) == 2 and previews[0].shape == (1, 4, 32, 32, 3) and previews[0].dtype == np.uint8


def test_a_preview_shows_the_denoised_estimate_not_the_noisy_sample(pipe, monkeypatch):
    """The picture at step 2 of 4 is the scheduler's estimate of the clean clip (pred_original_sample), decoded
    as the final frames are: what the clip is becoming, not the half-noisy sample it is passing through."""
    from diffusers import DDIMScheduler

    estimates, real_step = [], DDIMScheduler.step

    def spy(self, *args, **kwargs):
        out = real_step(self, *args, **kwargs)
        estimates.append(out.pred_original_sample)
        return out

    monkeypatch.setattr(DDIMScheduler, "step", spy)
    seen = []
    pipe("a small red circle moving left slowly", num_inference_steps=4, callback=lambda s, n, preview: seen.append(preview),
         preview_every=2, scheduler="ddim", seed=5)
    assert seen[0] is None and seen[1] is not None
    np.testing.assert_array_equal(seen[1], pipe._decode(estimates[1], (32, 32), None))


def test_image_to_video_uses_the_first_frame(pipe):
    red = np.zeros((32, 32, 3), np.uint8)
    red[10:20, 10:20] = (255, 0, 0)
    a = pipe(image=red, seed=0)  # no prompt: the image alone
    b = pipe(image=255 - red, seed=0)
    assert a.frames.shape == (1, 4, 32, 32, 3) and np.array_equal(a.frames[0, 0], red) and np.array_equal(b.frames[0, 0], 255 - red)
    assert not np.array_equal(a.frames[0, 1:], b.frames[0, 1:])  # the later frames see the image too


def test_bad_input_is_named(pipe):
    with pytest.raises(ValueError, match=r"num_frames \(--frames\) must be >= 2 and <= 4, got 9"):
        pipe("a red circle", num_frames=9)
    with pytest.raises(ValueError, match="prompt, a first-frame image"):
        pipe("")
    with pytest.raises(ValueError, match="image must be uint8"):
        pipe("x", image=np.zeros((8, 8), np.float32))


def test_far_prompts_still_generate_with_a_warning(pipe):
    with pytest.warns(UserWarning, match="closest it understands: 'a"):
        out = pipe("quantum chromodynamics lecture notes")
    assert out.frames.shape[0] == 1 and out.warnings
    assert not pipe("a small red circle moving left slowly").warnings
    assert not pipe("a red ball rolling to the left").warnings  # a wording no caption template uses


runner = CliRunner()


def test_cli_generate_writes_the_clip_with_provenance(tiny_model_dir, tmp_path):
    out = tmp_path / "clip.mp4"
    result = runner.invoke(app, ["generate", "a small red circle moving left slowly", "-o", str(out), "--model", str(tiny_model_dir), "--seed", "7",
                                 "--guidance", "3", "--guidance-cutoff", "0.5"])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and "sampling" in result.output
    info = probe(out)
    assert info.num_frames == 4 and (info.width, info.height) == (32, 32)
    assert info.provenance.prompt == "a small red circle moving left slowly" and info.provenance.seed == 7
    assert info.provenance.extra["guidance_scale"] == 3 and info.provenance.extra["guidance_cutoff"] == 0.5
    assert info.provenance.extra["num_inference_steps"] == 2  # the model's default, recorded as used

    frames_dir = tmp_path / "frames"
    result = runner.invoke(app, ["generate", "a red circle", "-o", str(frames_dir), "--format", "png", "--model", str(tiny_model_dir), "--frames", "3"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in frames_dir.glob("*.png")) == ["0000.png", "0001.png", "0002.png"]

    image = tmp_path / "first.png"
    write_image(image, np.full((32, 32, 3), 200, np.uint8))
    result = runner.invoke(app, ["generate", "--image", str(image), "-o", str(tmp_path / "i2v.gif"), "--model", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    assert read_video(tmp_path / "i2v.gif").frames.shape == (4, 32, 32, 3)


def test_cli_generate_errors(tiny_model_dir, tmp_path):
    result = runner.invoke(app, ["generate", "--model", str(tiny_model_dir)])
    assert result.exit_code == 2 and "give a prompt, a first-frame image, or both" in result.output
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    result = runner.invoke(app, ["generate", "x", "--image", str(bad), "--model", str(tiny_model_dir), "-o", str(tmp_path / "a.mp4")])
    assert result.exit_code == 2 and "bad.png" in result.output
    result = runner.invoke(app, ["generate", "x", "--model", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "nowhere" in result.output


def test_cli_batch_mode(tiny_model_dir, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a small red circle moving left slowly\n\na large blue square moving up quickly\n")
    result = runner.invoke(app, ["generate", "--prompts", str(prompts), "--out-dir", str(tmp_path / "clips"), "--seed", "10", "--model", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "clips").glob("*.mp4")) == ["0000.mp4", "0002.mp4"]
    assert probe(tmp_path / "clips" / "0002.mp4").provenance.seed == 12


def test_cli_evaluate_generates_on_the_fly(tiny_model_dir, tmp_path):
    runner.invoke(app, ["dataset", "render", "shapes", "--count", "2", "--resolution", "32", "--out", str(tmp_path / "real")])
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a small red circle moving left slowly\na large blue square moving up quickly\n")
    result = runner.invoke(app, ["evaluate", "--real", str(tmp_path / "real"), "--model", str(tiny_model_dir), "--prompts", str(prompts),
                                 "--metrics", "flicker,shapes", "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["metrics"]["shapes"]
    result = runner.invoke(app, ["evaluate", "--real", str(tmp_path / "real"), "--model", str(tiny_model_dir)])
    assert result.exit_code == 2 and "--prompts" in result.output


def test_cli_demo_generates_with_a_model_and_checks_each_clip_against_its_prompt(tiny_model_dir, tmp_path):
    from kinema.demo import DEMO_PROMPTS

    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out), "--model", str(tiny_model_dir), "--seed", "3"])
    assert result.exit_code == 0, result.output
    clips = sorted(out.glob("*.mp4"))
    assert [p.name for p in clips] == [f"{i:04d}.mp4" for i in range(len(DEMO_PROMPTS))]
    assert [probe(p).provenance.prompt for p in clips] == list(DEMO_PROMPTS)
    assert probe(clips[1]).provenance.seed == 4
    assert (out / "prompts.txt").read_text().splitlines() == list(DEMO_PROMPTS)
    assert read_video(out / "grid.gif").frames.shape[0] == 4  # the tiny model's frame count
    assert "shape accuracy" in result.output and "s per clip" in result.output


def test_ddim_ends_on_the_clean_prediction_unclipped():
    """DDIM's last step must return the model's x0 itself (alpha 1 beyond t=0, no [-1, 1] clipping of latents)."""
    from diffusers import DDPMScheduler

    from kinema.pipelines.text2video import make_scheduler

    train = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon").config
    scheduler = make_scheduler("ddim", dict(train))
    scheduler.set_timesteps(10)
    t = scheduler.timesteps[-1]
    sample, eps = torch.full((1, 4, 2, 2), 3.0), torch.full((1, 4, 2, 2), 0.5)
    alpha = DDPMScheduler.from_config(train).alphas_cumprod[t].double()
    x0 = (sample.double() - (1 - alpha).sqrt() * eps.double()) / alpha.sqrt()  # past 1: clipping would show
    assert x0.min() > 1
    assert torch.allclose(scheduler.step(eps, t, sample).prev_sample.double(), x0, atol=1e-5)


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_a_preview_recovers_the_clean_clip_from_each_kind_of_prediction(kind):
    """A scheduler that returns no x0 (DPM-Solver++, UniPC) must still preview the clean clip the network means."""
    from types import SimpleNamespace

    from diffusers import DDPMScheduler

    from kinema.pipelines.text2video import predicted_original

    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type=kind)
    t = torch.tensor(600)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(1, 3, 2, 4, 4, generator=g), torch.randn(1, 3, 2, 4, 4, generator=g)
    a, s = scheduler.alphas_cumprod[600].sqrt(), (1 - scheduler.alphas_cumprod[600]).sqrt()
    sample = a * x0 + s * eps  # the forward process: x_t from x0 and its noise
    prediction = {"epsilon": eps, "v_prediction": a * eps - s * x0, "sample": x0}[kind]
    assert torch.allclose(predicted_original(scheduler, SimpleNamespace(), sample, prediction, t), x0, atol=1e-5)
    # a scheduler that hands back its own estimate is believed as it is
    own = torch.zeros_like(x0)
    assert predicted_original(scheduler, SimpleNamespace(pred_original_sample=own), sample, prediction, t) is own


def test_every_far_prompt_of_a_batch_is_warned_about_once(pipe):
    """A batch is checked prompt by prompt: a far prompt after a good one still gets its warning, a repeat only one."""
    near, far, farther = "a small red circle moving left slowly", "quantum chromodynamics lecture notes", "tax law of medieval guilds"
    with pytest.warns(UserWarning):
        notes = pipe.far_prompt_warnings([near, far, far, farther])
    assert len(notes) == 2
    assert notes[0].startswith(f"prompt {far!r} is far from") and notes[1].startswith(f"prompt {farther!r} is far from")
    assert pipe.far_prompt_warnings([near, near]) == []


def test_a_batch_of_no_clips_is_refused_before_the_model_loads(tmp_path):
    """generate_batch(count=0) from Python is a ValueError naming the count, as the CLI's --count 1 minimum is."""
    from kinema.pipelines.generate import generate_batch

    for count in (0, -3):
        with pytest.raises(ValueError, match=rf"^count must be at least 1, got {count}$"):
            generate_batch(None, tmp_path / "clips", count=count, model=tmp_path / "not-loaded")
    with pytest.raises(ValueError, match="^give a prompts file or a count, not both$"):
        generate_batch(tmp_path / "prompts.txt", tmp_path / "clips", count=2, model=tmp_path / "not-loaded")
    assert not (tmp_path / "clips").exists()


def test_a_diffusion_folder_without_an_fps_plays_at_the_rate_its_training_clips_were_rendered(tiny_model_dir, tmp_path, text_encoder):
    """A trained diffusion model's settings name no fps: its clips must play at the rate Shapes clips are rendered at."""
    import inspect
    import shutil

    from kinema.data.render import render_dataset
    from kinema.pipelines.generate import generate

    rendered = inspect.signature(render_dataset).parameters["fps"].default
    folder = shutil.copytree(tiny_model_dir, tmp_path / "m")
    index = json.loads((folder / "model_index.json").read_text())
    index["settings"].pop("fps", None)
    (folder / "model_index.json").write_text(json.dumps(index))
    result = generate("a small red circle moving left slowly", tmp_path / "clip.mp4", model=folder, device="cpu", num_inference_steps=2)
    assert result.options["fps"] == rendered and probe(tmp_path / "clip.mp4").fps == rendered


def test_a_bad_option_is_refused_before_the_model_loads(tiny_model_dir, tmp_path, monkeypatch):
    """A typo in an option must fail at once, from the folder's contract, not after seconds of loading weights."""
    import kinema.pipelines.generate as generate_module

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before its options were checked")

    monkeypatch.setattr(generate_module, "load_pipeline", no_loading)
    with pytest.raises(ValueError, match=r"num_frames \(--frames\) must be >= 2 and <= 4, got 9"):
        generate_module.generate("a small red circle moving left slowly", tmp_path / "x.mp4", model=tiny_model_dir, num_frames=9)
    with pytest.raises(ValueError, match="does not take top_k"):
        generate_module.generate_clips(["a red circle"], model=tiny_model_dir, top_k=3)
    assert not (tmp_path / "x.mp4").exists()


def test_each_far_prompt_warns_with_its_own_note_naming_the_nearest_training_prompt(pipe, text_encoder):
    """The warning a user sees must be the note for that prompt: its cosine to, and the name of, the nearest training prompt."""
    import warnings

    references = pipe.settings.reference_prompts
    far, farther = "quantum chromodynamics lecture notes", "tax law of medieval guilds"
    pooled = text_encoder.encode([far, farther, *references]).pooled.double()
    cosines = torch.nn.functional.cosine_similarity(pooled[:2, None], pooled[None, 2:], dim=-1)  # (2, references)
    expected = [f"prompt {p!r} is far from what this model was trained on (cosine {cosines[i].max().item():.2f}); "
                f"closest it understands: {references[int(cosines[i].argmax())]!r}" for i, p in enumerate((far, farther))]
    assert all(cosines[i].max() < pipe.settings.ood_threshold for i in range(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        notes = pipe.far_prompt_warnings(["", far, "a small red circle moving left slowly", farther])
    assert notes == expected  # an empty prompt (unconditional) and a near one are not warned about
    assert [str(w.message) for w in caught] == expected and {w.category for w in caught} == {UserWarning}
