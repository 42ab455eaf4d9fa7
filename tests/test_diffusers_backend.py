"""Pretrained diffusers video pipelines through Kinema's commands, on tiny random pipelines built here and
saved as diffusers saves them: a UNet text-to-video one (ModelScope's TextToVideoSDPipeline), a transformer one
(CogVideoXPipeline) and an image-to-video one (CogVideoXImageToVideoPipeline)."""

import json
import re
import string
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kinema.cli import app
from kinema.io import read_video
from kinema.pipelines import load_pipeline
from kinema.pipelines.diffusers_backend import DiffusersPipeline, MemorySettings, estimate, tiny_clip_vocabulary

runner = CliRunner()
PROMPT = "a red circle moving left"


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny tensors: a second thread only adds synchronisation on a shared CPU."""


def clip_tokenizer(folder):
    """A CLIP tokenizer whose vocab.json and merges.txt are written here: every byte a token, no merges."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(tiny_clip_vocabulary()))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def t5_tokenizer(max_length: int):
    """A T5 (unigram) tokenizer over lowercase letters, built from its pieces: no sentencepiece file needed."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in string.ascii_lowercase] + [("▁" + c, -2.5) for c in string.ascii_lowercase]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=max_length)


def save(pipe, folder):
    pipe.save_pretrained(folder)
    assert json.loads((folder / "model_index.json").read_text())["_diffusers_version"]
    return folder


@pytest.fixture(scope="module")
def unet_t2v(tmp_path_factory):
    """TextToVideoSDPipeline: a random UNet3DConditionModel, AutoencoderKL and CLIP text model; 16x16 frames."""
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    root = tmp_path_factory.mktemp("unet")
    tokenizer = clip_tokenizer(root / "tokenizer_files")
    torch.manual_seed(0)
    unet = UNet3DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4, norm_num_groups=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=8, attention_head_dim=4,
    )
    vae = AutoencoderKL(block_out_channels=(8, 8), latent_channels=4, norm_num_groups=4, sample_size=16,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=8, intermediate_size=16, num_attention_heads=2,
                                                num_hidden_layers=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False)
    pipe = TextToVideoSDPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)
    return save(pipe, root / "text-to-video-tiny")


def cogvideox_parts(image_to_video: bool, layers: int = 1):
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    tokenizer = t5_tokenizer(226)
    torch.manual_seed(0)
    # RoPE (image-to-video) needs a head dimension divisible by 16; the width stays 32 either way
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2 if image_to_video else 4, attention_head_dim=16 if image_to_video else 8, in_channels=8 if image_to_video else 4,
        out_channels=4, time_embed_dim=2, text_embed_dim=32, num_layers=layers, sample_width=2, sample_height=2, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=226,
        **(dict(use_rotary_positional_embeddings=True, use_learned_positional_embeddings=True) if image_to_video else {}),
    )
    vae = AutoencoderKLCogVideoX(down_block_types=("CogVideoXDownBlock3D",) * 4, up_block_types=("CogVideoXUpBlock3D",) * 4,
                                 block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    text_encoder = T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, num_heads=4, num_layers=1, d_ff=37,
                                           relative_attention_num_buckets=8))
    return dict(tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer, vae=vae)


@pytest.fixture(scope="module")
def dit_t2v(tmp_path_factory):
    """CogVideoXPipeline: a random one-layer CogVideoXTransformer3DModel, its 3D VAE and a T5 encoder; 9 frames of 16x16."""
    from diffusers import CogVideoXDDIMScheduler, CogVideoXPipeline

    pipe = CogVideoXPipeline(scheduler=CogVideoXDDIMScheduler(), **cogvideox_parts(image_to_video=False))
    return save(pipe, tmp_path_factory.mktemp("dit") / "cogvideox-tiny")


@pytest.fixture(scope="module")
def i2v(tmp_path_factory):
    """CogVideoXImageToVideoPipeline: the image's VAE latents ride along the noise (8 input channels)."""
    from diffusers import CogVideoXDDIMScheduler, CogVideoXImageToVideoPipeline

    pipe = CogVideoXImageToVideoPipeline(scheduler=CogVideoXDDIMScheduler(), **cogvideox_parts(image_to_video=True))
    return save(pipe, tmp_path_factory.mktemp("i2v") / "cogvideox-i2v-tiny")


def direct(folder, seed: int, **kwargs) -> np.ndarray:
    """What diffusers itself gives for a call, as uint8 (its PIL output's rounding)."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(folder))
    pipe.set_progress_bar_config(disable=True)
    frames = pipe(generator=torch.Generator().manual_seed(seed), output_type="np", **kwargs).frames
    return np.round(np.asarray(frames) * 255).astype(np.uint8)


def invoke(*args, code: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def one_line(output: str) -> str:
    assert output.startswith("error:") and len(output.strip().splitlines()) == 1, output
    return output


def last_line(output: str) -> str:
    """An error found while loading: what came before (the estimate, loading bars) and then one error line."""
    lines = [line for line in output.replace("\r", "\n").splitlines() if line.strip()]
    assert "Traceback" not in output and sum("error:" in line for line in lines) == 1 and "error:" in lines[-1], output
    return lines[-1]


# ---------------------------------------------------------------------------------------------- the three kinds of pipeline


def test_unet_text_to_video_through_kinema_generate_is_what_diffusers_gives(unet_t2v, tmp_path):
    output = invoke("generate", PROMPT, "--model", unet_t2v, "--steps", 2, "--frames", 4, "--seed", 7, "--format", "png", "-o", tmp_path / "clip")
    assert "estimate: TextToVideoSDPipeline, 4 frames at 16x16, 2 steps" in output  # printed before the run
    video = read_video(tmp_path / "clip")
    assert video.frames.shape == (4, 16, 16, 3) and video.frames.std() > 0
    assert np.array_equal(video.frames, direct(unet_t2v, 7, prompt=PROMPT, num_inference_steps=2, num_frames=4)[0])
    assert video.provenance.seed == 7 and video.provenance.model == str(unet_t2v) and video.provenance.prompt == PROMPT
    assert video.provenance.extra["num_inference_steps"] == 2 and video.fps == 8  # ModelScope's card writes 8 fps
    # and Kinema's export writes it as for its own models: a playable H.264 file with the same record
    invoke("generate", PROMPT, "--model", unet_t2v, "--steps", 2, "--frames", 4, "-o", tmp_path / "clip.mp4")
    assert read_video(tmp_path / "clip.mp4").frames.shape == (4, 16, 16, 3)


def test_transformer_pipeline_keeps_its_own_defaults_and_kinemas_seed_rule(dit_t2v):
    pipe = load_pipeline(dit_t2v, device="cpu")
    assert isinstance(pipe, DiffusersPipeline) and pipe.contract().tasks == ("text-to-video",)
    out = pipe([PROMPT, "a blue square"], seed=3, num_inference_steps=2)
    # left out: CogVideoX's own defaults (frames and size from the transformer's config, guidance 6)
    assert out.frames.shape == (2, 9, 16, 16, 3) and out.options["guidance_scale"] == 6 and out.options["num_frames"] == 9
    # clip i of seed S is a direct diffusers call with a generator seeded S + i
    assert np.array_equal(out.frames[0], direct(dit_t2v, 3, prompt=PROMPT, num_inference_steps=2)[0])
    assert np.array_equal(out.frames[1], direct(dit_t2v, 4, prompt="a blue square", num_inference_steps=2)[0])
    assert not np.array_equal(out.frames[0], out.frames[1])


def test_image_to_video_takes_the_image_and_needs_it(i2v, tmp_path):
    from PIL import Image

    yy, xx = np.mgrid[0:16, 0:16]
    picture = np.stack([xx * 16, yy * 16, (xx + yy) * 8], axis=-1).astype(np.uint8)
    Image.fromarray(picture).save(tmp_path / "first.png")
    invoke("generate", PROMPT, "--model", i2v, "--image", tmp_path / "first.png", "--steps", 2, "--frames", 9, "--seed", 1,
           "--format", "png", "-o", tmp_path / "clip")
    expected = direct(i2v, 1, image=Image.open(tmp_path / "first.png"), prompt=PROMPT, num_inference_steps=2, num_frames=9)[0]
    assert np.array_equal(read_video(tmp_path / "clip").frames, expected)
    # the image alone will do; no image is refused before loading
    pipe = load_pipeline(i2v, device="cpu")
    assert pipe.contract().describe() == "an image (first frame), optionally a prompt"
    assert pipe(image=picture, seed=1, num_inference_steps=1, num_frames=1).frames.shape == (1, 1, 16, 16, 3)
    assert "image-to-video model: give a first frame (--image)" in one_line(invoke("generate", PROMPT, "--model", i2v, "-o", tmp_path / "x.mp4", code=2))


def test_kinema_models_describes_a_diffusers_folder(unet_t2v):
    output = invoke("models", unet_t2v)
    assert "text-to-video; takes a prompt" in output and "num_frames (--frames): >= 1 and <= 10000, default 16" in output
    assert "eta: >= 0 and <= 1, default 0.0" in output  # the pipeline's own keywords: the Python API takes them


# ---------------------------------------------------------------------------------------------- what is refused, and how


def test_an_option_the_pipeline_does_not_take_names_those_it_does(unet_t2v, dit_t2v, tmp_path):
    output = one_line(invoke("generate", PROMPT, "--model", unet_t2v, "--scheduler", "ddim", "-o", tmp_path / "x.mp4", code=2))
    assert "does not take scheduler; it takes: num_frames (--frames)" in output and "guidance_scale (--guidance)" in output
    with pytest.raises(ValueError, match="does not take top_k; it takes: num_frames"):
        load_pipeline(unet_t2v, device="cpu")(PROMPT, top_k=3)
    # a value the pipeline would silently change is refused in the user's words: CogVideoX's decoder gives 8k + 1 frames
    output = one_line(invoke("generate", PROMPT, "--model", dit_t2v, "--frames", 10, "-o", tmp_path / "x.mp4", code=2))
    assert "num_frames (--frames) must be 1 more than a multiple of 8" in output
    assert "height (--height) must be a multiple of 16" in one_line(invoke("generate", PROMPT, "--model", dit_t2v, "--height", 24, "-o", tmp_path / "x.mp4", code=2))


def test_a_hub_id_offline_is_one_clear_error(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))  # nothing cached
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    output = one_line(invoke("generate", PROMPT, "--model", "kinema-tests/text-to-video-ms-1.7b", code=2))
    assert "'kinema-tests/text-to-video-ms-1.7b'" in output and "e.g. --model ./text-to-video-ms-1.7b" in output
    # no HF_HUB_OFFLINE, but no hub either (a port nothing listens on): the same error, at once
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(FileNotFoundError, match="cannot be reached.*--model ./text-to-video-ms-1.7b"):
        load_pipeline("kinema-tests/text-to-video-ms-1.7b")


def test_only_a_hub_model_opened_offline_turns_a_load_error_into_the_offline_message():
    """Online, or for a folder on disk, diffusers' own error (a corrupt file, a gated repo) is what the user must see:
    saying "not cached, the hub cannot be reached" there would send them after the wrong cause."""
    from types import SimpleNamespace

    from kinema.pipelines.diffusers_backend import _hub_errors

    for folder in (SimpleNamespace(hub_id="org/model", hub_offline=False), SimpleNamespace(hub_id=None, hub_offline=True),
                   SimpleNamespace(hub_id=None, hub_offline=False)):
        with pytest.raises(OSError, match="^401 Client Error$") as error, _hub_errors(folder):
            raise OSError("401 Client Error")
        assert type(error.value) is OSError, folder
    with pytest.raises(FileNotFoundError, match="^org/model: its weights are not in the local cache.*--model ./model$"), \
            _hub_errors(SimpleNamespace(hub_id="org/model", hub_offline=True)):
        raise OSError("401 Client Error")


# ---------------------------------------------------------------------------------------------- memory and fit


def test_memory_flags_are_for_diffusers_pipelines_only(tiny_model_dir, unet_t2v, tmp_path):
    output = one_line(invoke("generate", PROMPT, "--model", tiny_model_dir, "--vae-tiling", "-o", tmp_path / "x.mp4", code=2))
    assert "only for diffusers pipelines" in output and not (tmp_path / "x.mp4").exists()
    assert "only for diffusers pipelines" in one_line(invoke("generate", PROMPT, "--model", tiny_model_dir, "--dry-run", code=2))
    # offloading moves weights between CPU memory and a GPU: on a CPU there is nothing to move
    assert "CUDA GPU" in one_line(invoke("generate", PROMPT, "--model", unet_t2v, "--device", "cpu", "--offload", "model", "-o", tmp_path / "x.mp4", code=2))
    assert "takes no decode_chunk_size" in one_line(invoke("generate", PROMPT, "--model", unet_t2v, "--decode-chunk", 2, "-o", tmp_path / "x.mp4", code=2))
    with pytest.raises(ValueError, match="offload .* must be one of none, model, sequential, group"):
        MemorySettings(offload="disk")


def test_dry_run_prints_the_estimate_and_writes_nothing(unet_t2v, tmp_path):
    output = invoke("generate", PROMPT, "--model", unet_t2v, "--frames", 8, "--height", 64, "--width", 64, "--dry-run", "-o", tmp_path / "x.mp4")
    assert "estimate: TextToVideoSDPipeline, 8 frames at 64x64, 50 steps, on cpu in float32" in output
    assert "weights" in output and "peak" in output and "fits" in output and "time ~" in output
    assert not (tmp_path / "x.mp4").exists()


def test_vae_tiling_turns_on_the_vaes_tiles(unet_t2v):
    pipe = load_pipeline(unet_t2v, device="cpu", memory=MemorySettings(vae_tiling=True))
    assert pipe.pipe.vae.use_tiling
    assert pipe(PROMPT, seed=0, num_inference_steps=1, num_frames=2, height=48, width=48).frames.shape == (1, 2, 48, 48, 3)


@pytest.mark.parametrize("mode", ["model", "sequential", "group"])
def test_offloading_gives_the_same_frames(unet_t2v, mode):
    """diffusers' offloading hooks, onto the GPU where there is one, else onto the CPU itself: same frames."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if mode == "sequential" and device.type == "cpu":
        # with the CPU as its execution device, accelerate 1.16's sequential offload fails moving the CLIP text model's
        # embedding back (TypeError in set_module_tensor_to_device: a plain tensor where a Parameter was); not seen on a GPU
        # here because none was at hand: the GPU path is unverified
        pytest.skip("sequential offloading onto the CPU fails inside accelerate; it needs a GPU to move layers onto")
    pipe = load_pipeline(unet_t2v, device=device)
    expected = pipe(PROMPT, seed=2, num_inference_steps=2, num_frames=2).frames
    pipe.place(device, mode)
    assert pipe.offload == mode and np.array_equal(pipe(PROMPT, seed=2, num_inference_steps=2, num_frames=2).frames, expected)


def test_the_estimate_counts_every_weight_and_scales_with_the_latent_volume(unet_t2v, dit_t2v):
    for folder in (unet_t2v, dit_t2v):
        pipe = load_pipeline(folder, device="cpu")
        params = sum(p.numel() for m in pipe.modules().values() for p in m.parameters())
        # and the buffers as built (the random CogVideoX's float64 positional embedding is 47% of its transformer's bytes)
        buffers = sum(b.numel() * b.element_size() for m in pipe.modules().values() for b in m.buffers())
        from_folder = estimate(folder, device="cpu", num_frames=9, height=32, width=32)  # configs only, networks on the meta device
        assert sum(from_folder.weights.values()) == 4 * params + buffers == sum(pipe.estimate(num_frames=9, height=32, width=32).weights.values())
        assert sum(estimate(folder, device="cpu", dtype="bfloat16").weights.values()) == 2 * params + buffers
    small, large = (estimate(unet_t2v, device="cpu", num_frames=n, height=32, width=32) for n in (4, 8))
    assert large.activations == 2 * small.activations and large.peak > small.peak


def test_auto_offloading_picks_the_lightest_placement_that_fits(unet_t2v, monkeypatch):
    from kinema.pipelines import diffusers_backend as backend

    pipe = load_pipeline(unet_t2v, device="cpu")
    values = pipe.contract().resolve({"num_frames": 16, "height": 64, "width": 64}, True, "test")
    gpu = torch.device("cuda")  # the decision only: no GPU is touched
    monkeypatch.setattr(backend, "available_memory", lambda device: 2**40)
    plain = backend.estimate_from(pipe.anatomy, values, pipe.native, gpu, torch.float32, "none", False, timing=False)
    model = backend.estimate_from(pipe.anatomy, values, pipe.native, gpu, torch.float32, "model", False, timing=False)
    assert model.peak < plain.peak
    for free, mode in ((2 * plain.peak, "none"), (int((plain.peak + model.peak) / 2 / 0.9), "model"), (model.peak // 2, "sequential")):
        monkeypatch.setattr(backend, "available_memory", lambda device, free=free: free)
        chosen = backend.estimate_from(pipe.anatomy, values, pipe.native, gpu, torch.float32, None, False, timing=False)
        assert chosen.offload == mode, (free, chosen.lines())
        assert (mode == "none") != any("offloading turned on" in n for n in chosen.notes)


def test_available_memory_on_a_cpu_is_what_is_free_not_what_is_installed(monkeypatch):
    import types

    from kinema.pipelines.diffusers_backend import available_memory

    psutil = pytest.importorskip("psutil")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(total=64 * 2**30, available=3 * 2**30))
    assert available_memory(torch.device("cpu")) == 3 * 2**30
    # without psutil: MemAvailable of /proc/meminfo, in bytes
    monkeypatch.setitem(__import__("sys").modules, "psutil", None)
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        expected = next(int(line.split()[1]) * 1024 for line in meminfo.read_text().splitlines() if line.startswith("MemAvailable:"))
        assert abs(available_memory(torch.device("cpu")) - expected) < 256 * 2**20  # it moves a little between the reads
    assert available_memory(torch.device("meta")) is None


# ---------------------------------------------------------------------------------------------- LoRAs and step caches


def tiny_lora(folder, out, rank: int = 4):
    """A LoRA on the tiny CogVideoX transformer's attention projections with random non-zero weights (peft's
    init_lora_weights=False: B is not zero), written as diffusers writes LoRAs (save_lora_weights)."""
    from diffusers import CogVideoXPipeline, CogVideoXTransformer3DModel
    from peft import LoraConfig, get_peft_model_state_dict

    transformer = CogVideoXTransformer3DModel.from_pretrained(str(folder), subfolder="transformer")
    torch.manual_seed(1)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False))
    CogVideoXPipeline.save_lora_weights(str(out), transformer_lora_layers=get_peft_model_state_dict(transformer))
    return out / "pytorch_lora_weights.safetensors"


def test_a_lora_changes_the_frames_as_diffusers_does_and_is_recorded(dit_t2v, tmp_path):
    import hashlib

    from diffusers import DiffusionPipeline

    lora = tiny_lora(dit_t2v, tmp_path / "lora")
    call = dict(seed=3, num_inference_steps=2)
    plain = load_pipeline(dit_t2v, device="cpu")(PROMPT, **call).frames
    assert not np.array_equal(load_pipeline(dit_t2v, device="cpu", lora=[(lora, 1.0)])(PROMPT, **call).frames, plain)
    assert np.array_equal(load_pipeline(dit_t2v, device="cpu", lora=[(lora, 0.0)])(PROMPT, **call).frames, plain)  # scale 0: no LoRA
    # the CLI, PATH:scale, against diffusers' own load_lora_weights + set_adapters with the same seed
    invoke("generate", PROMPT, "--model", dit_t2v, "--lora", f"{lora}:0.7", "--steps", 2, "--seed", 3, "--format", "png", "-o", tmp_path / "clip")
    pipe = DiffusionPipeline.from_pretrained(str(dit_t2v))
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(lora), adapter_name="style")
    pipe.set_adapters(["style"], [0.7])
    expected = np.round(np.asarray(pipe(prompt=PROMPT, num_inference_steps=2, generator=torch.Generator().manual_seed(3), output_type="np").frames) * 255)
    video = read_video(tmp_path / "clip")
    assert np.array_equal(video.frames, expected.astype(np.uint8)[0]) and not np.array_equal(video.frames, plain[0])
    sha = hashlib.sha256(lora.read_bytes()).hexdigest()
    assert video.provenance.extra["lora"] == [{"file": "pytorch_lora_weights.safetensors", "sha256": sha, "scale": 0.7}]


def test_a_lora_that_cannot_load_is_one_clear_error(dit_t2v, unet_t2v, tmp_path):
    from safetensors.torch import load_file, save_file

    lora = tiny_lora(dit_t2v, tmp_path / "lora")
    run = lambda model, spec: one_line(invoke("generate", PROMPT, "--model", model, "--lora", spec, "--steps", 1, "-o", tmp_path / "x.mp4", code=2))  # noqa: E731
    assert "no such file or folder" in run(dit_t2v, tmp_path / "nowhere.safetensors")
    assert "the scale after ':' must be a finite number, got 'strong'" in run(dit_t2v, f"{lora}:strong")
    assert "the scale must be a finite number, got nan" in run(dit_t2v, f"{lora}:nan")
    assert "cannot take LoRAs" in run(unet_t2v, lora) and "UNet3DConditionModel has no LoRA support" in run(unet_t2v, lora)
    # keys for layers the model does not have, and keys for a component it does not have
    weights = load_file(str(lora))
    save_file({k.replace("attn1", "attn9"): v for k, v in weights.items()}, str(tmp_path / "other_layers.safetensors"))
    save_file({k.replace("transformer.", "unet."): v for k, v in weights.items()}, str(tmp_path / "other_model.safetensors"))
    for name in ("other_layers", "other_model"):
        output = last_line(invoke("generate", PROMPT, "--model", dit_t2v, "--lora", tmp_path / f"{name}.safetensors", "-o", tmp_path / "x.mp4", code=2))
        assert f"{name}.safetensors: none of its keys match a layer of" in output and "a LoRA made for another model?" in output
    (tmp_path / "lora.bin").write_bytes(b"pickle")
    assert "only .safetensors LoRA files are read" in run(dit_t2v, tmp_path / "lora.bin")
    assert not (tmp_path / "x.mp4").exists()


def test_a_lora_without_peft_installed_says_how_to_install_it(dit_t2v, tmp_path, monkeypatch):
    """diffusers loads LoRAs through peft: without it, one line naming the package and the pip command, no traceback."""
    import importlib.util

    lora = tiny_lora(dit_t2v, tmp_path / "lora")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None if name == "peft" else find_spec(name, *a, **k))
    output = invoke("generate", PROMPT, "--model", dit_t2v, "--lora", lora, "--steps", 1, "-o", tmp_path / "x.mp4", code=1)
    errors = re.findall(r"error: .*", output)  # after the loading bars, on their line
    assert errors == ["error: --lora needs the peft package, which diffusers loads LoRAs with: pip install peft"], output
    assert "Traceback" not in output and not (tmp_path / "x.mp4").exists()


@pytest.fixture(scope="module")
def dit_two_blocks(tmp_path_factory):
    """The tiny CogVideoX with two transformer blocks: first-block caching needs a block to skip."""
    from diffusers import CogVideoXDDIMScheduler, CogVideoXPipeline

    pipe = CogVideoXPipeline(scheduler=CogVideoXDDIMScheduler(), **cogvideox_parts(image_to_video=False, layers=2))
    return save(pipe, tmp_path_factory.mktemp("dit2") / "cogvideox-two-blocks")


@pytest.mark.parametrize("mode", ["first-block", "pab", "faster", "taylorseer"])
def test_a_step_cache_runs_through_diffusers_hooks_and_is_recorded(dit_two_blocks, mode, tmp_path):
    from diffusers.hooks import HookRegistry

    call = dict(seed=5, num_inference_steps=8)
    plain = load_pipeline(dit_two_blocks, device="cpu")(PROMPT, **call).frames
    pipe = load_pipeline(dit_two_blocks, device="cpu", cache=mode)
    assert pipe.pipe.transformer.is_cache_enabled and pipe.cache == mode
    hooks = [name for m in pipe.pipe.transformer.modules() if (r := getattr(m, "_diffusers_hook", None)) for name in r.hooks]
    assert hooks, "no cache hook registered"
    first = pipe(PROMPT, **call).frames
    assert np.array_equal(pipe(PROMPT, **call).frames, first)  # each call starts from a fresh cache
    # the cache skipped work (the frames moved) without losing the clip (random weights: a loose bound)
    assert first.shape == plain.shape and not np.array_equal(first, plain) and np.abs(first.astype(int) - plain.astype(int)).mean() < 8
    invoke("generate", PROMPT, "--model", dit_two_blocks, "--cache", mode, "--steps", 2, "--format", "png", "-o", tmp_path / "clip")
    assert read_video(tmp_path / "clip").provenance.extra["cache"] == mode


def test_a_step_cache_where_there_is_none_is_one_clear_error(unet_t2v, dit_t2v, tmp_path):
    run = lambda model, *more: one_line(invoke("generate", PROMPT, "--model", model, *more, "-o", tmp_path / "x.mp4", code=2))  # noqa: E731
    assert "is a UNet pipeline (TextToVideoSDPipeline); diffusers' step caches are for transformer (DiT) pipelines: CogVideoX" in run(unet_t2v, "--cache", "pab")
    assert "has 1 block(s), it needs 2 or more" in run(dit_t2v, "--cache", "first-block")
    assert "cache (--cache) must be one of first-block, pab, faster, taylorseer, got 'fast'" in run(dit_t2v, "--cache", "fast")
    assert "--cache faster reuses the unconditional half of classifier-free guidance" in run(dit_t2v, "--cache", "faster", "--guidance", 1, "--steps", 1)
    assert not (tmp_path / "x.mp4").exists()


# ---------------------------------------------------------------------------------------------- int8 weights (--quantize)

# int8 frames against float32 frames, seed 3, 2 steps: measured 55.7 dB (UNet), 54.9 dB (CogVideoX), 54.2 dB (CogVideoX
# with a LoRA); less a margin
INT8_PSNR_FLOOR = 45.0


def test_int8_quantizes_the_denoisers_linear_layers_only_and_keeps_the_frames_close(unet_t2v, dit_t2v, tmp_path):
    pytest.importorskip("torchao")
    from torchao.quantization import Int8Tensor

    from kinema.pipelines.quantize import weight_bytes

    def psnr(a, b):
        mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
        return np.inf if mse == 0 else 10 * np.log10(255**2 / mse)

    call = dict(seed=3, num_inference_steps=2)
    for folder, denoiser in ((unet_t2v, "unet"), (dit_t2v, "transformer")):
        plain = load_pipeline(folder, device="cpu")
        pipe = load_pipeline(folder, device="cpu", quantize="int8")
        net = getattr(pipe.pipe, denoiser)
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        assert linears and all(isinstance(m.weight, Int8Tensor) and m.weight.qdata.dtype == torch.int8 for m in linears)
        assert weight_bytes(net) < weight_bytes(getattr(plain.pipe, denoiser))
        for other in ("text_encoder", "vae"):  # as loaded
            assert not any(isinstance(p, Int8Tensor) for p in getattr(pipe.pipe, other).parameters()), other
        expected, got = plain(PROMPT, **call).frames, pipe(PROMPT, **call).frames
        assert psnr(expected, got) >= INT8_PSNR_FLOOR, denoiser
        assert np.array_equal(pipe(PROMPT, **call).frames, got)
        assert pipe.load_record() == {"quantize": "int8"}
    # with a LoRA: it loads into the float weights, then the base layers are quantized and the LoRA's own stay float
    lora = tiny_lora(dit_t2v, tmp_path / "lora")
    with_lora = load_pipeline(dit_t2v, device="cpu", lora=[(lora, 1.0)])
    both = load_pipeline(dit_t2v, device="cpu", lora=[(lora, 1.0)], quantize="int8")
    q = both.pipe.transformer.transformer_blocks[0].attn1.to_q
    assert isinstance(q.base_layer.weight, Int8Tensor) and not isinstance(q.lora_A["kinema_lora_0"].weight, Int8Tensor)
    assert psnr(with_lora(PROMPT, **call).frames, both(PROMPT, **call).frames) >= INT8_PSNR_FLOOR
    invoke("generate", PROMPT, "--model", dit_t2v, "--quantize", "int8", "--lora", lora, "--steps", 2, "--format", "png", "-o", tmp_path / "clip")
    extra = read_video(tmp_path / "clip").provenance.extra
    assert extra["quantize"] == "int8" and extra["lora"][0]["file"] == lora.name
    with pytest.raises(ValueError, match="quantized at load"):
        both.save_pretrained(tmp_path / "copy")


def test_the_estimate_counts_int8_weights_as_torchao_stores_them(unet_t2v, dit_t2v, tmp_path):
    """--dry-run --quantize int8: the denoiser's weights as measured on the loaded quantized pipeline, the rest as before."""
    pytest.importorskip("torchao")
    from kinema.pipelines.quantize import weight_bytes

    for folder, denoiser in ((unet_t2v, "unet"), (dit_t2v, "transformer")):
        plain = estimate(folder, device="cpu", num_frames=9, height=32, width=32)
        int8 = estimate(folder, device="cpu", num_frames=9, height=32, width=32, quantize="int8")
        net = getattr(load_pipeline(folder, device="cpu", quantize="int8").pipe, denoiser)
        measured = weight_bytes(net)
        assert int8.weights[denoiser] < plain.weights[denoiser]
        assert int8.weights[denoiser] == measured
        assert {n: b for n, b in int8.weights.items() if n != denoiser} == {n: b for n, b in plain.weights.items() if n != denoiser}
        assert int8.peak == plain.peak - (plain.weights[denoiser] - int8.weights[denoiser])
        assert any(n.startswith(f"int8: {denoiser}") for n in int8.notes)
    output = invoke("generate", PROMPT, "--model", dit_t2v, "--quantize", "int8", "--dry-run", "-o", tmp_path / "x.mp4")
    assert "int8: transformer" in output and not (tmp_path / "x.mp4").exists()
    with pytest.raises(ValueError, match="quantize .* must be one of int8"):
        estimate(dit_t2v, device="cpu", quantize="int4")


def test_the_estimate_suggests_tiles_only_for_a_large_decode_and_only_where_the_vae_has_them(unet_t2v):
    """The tiling hint is for a decode that dominates and passes a GiB; a pipeline without a VAE has no tiles to
    offer and says so by its own name, not a VAE's it does not have."""
    from kinema.pipelines import diffusers_backend as backend

    pipe = load_pipeline(unet_t2v, device="cpu")
    hint = "the VAE decode is the largest part: --vae-tiling decodes in tiles"

    def notes(anatomy, frames, side, tiling):
        values = pipe.contract().resolve({"num_frames": frames, "height": side, "width": side}, True, "test")
        found = backend.estimate_from(anatomy, values, pipe.native, torch.device("cpu"), torch.float32, "none", tiling, timing=False)
        return found, found.notes

    import dataclasses

    wide_decoder = dataclasses.replace(pipe.anatomy, vae_channels=256)  # as a real VAE's: the decode outweighs the tiny UNet
    small, small_notes = notes(wide_decoder, 4, 64, False)
    assert small.decode > small.activations and small.decode < 2**30 and hint not in small_notes
    large, large_notes = notes(wide_decoder, 16, 512, False)
    assert large.decode > max(large.activations, 2**30) and hint in large_notes
    assert hint not in notes(wide_decoder, 16, 512, True)[1]

    without_vae = backend.anatomy_of("TextToVideoSDPipeline", {k: m for k, m in pipe.modules().items() if k != "vae"})
    assert without_vae.vae_class == "" and without_vae.vae_tile is None
    assert "this pipeline has no tiled decoding; --vae-tiling changes nothing" in notes(without_vae, 4, 64, True)[1]
    assert f"{pipe.anatomy.vae_class} has" not in " ".join(notes(pipe.anatomy, 4, 64, True)[1])


def test_step_cache_settings_are_diffusers_own(dit_t2v):
    """PAB's timestep range is the one diffusers documents (its config's default)."""
    import dataclasses

    from diffusers import PyramidAttentionBroadcastConfig

    from kinema.pipelines.diffusers_backend import cache_config

    pipe = load_pipeline(dit_t2v, device="cpu").pipe
    pab = cache_config("pab", pipe, frames_first=True)
    defaults = {f.name: f.default for f in dataclasses.fields(PyramidAttentionBroadcastConfig)}
    assert pab.spatial_attention_timestep_skip_range == defaults["spatial_attention_timestep_skip_range"]
    assert pab.spatial_attention_block_skip_range == 2


def test_the_tiny_clip_vocabulary_is_written_in_gpt2s_byte_alphabet():
    """The tokenizer the tests write must read as CLIP's does: the same byte -> character table."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's table, as transformers converts CLIP

    from kinema.pipelines.diffusers_backend import _bytes_to_unicode

    assert _bytes_to_unicode() == bytes_to_unicode()


def test_the_time_estimate_of_a_transformer_counts_its_weights_and_quadratic_attention(monkeypatch):
    """--dry-run's time for a DiT: 2 FLOPs a weight a token plus attention's 4 x tokens^2 x width a layer, per step."""
    from kinema.pipelines import diffusers_backend as backend

    anatomy = backend.Anatomy(class_name="CogVideoXPipeline", parameters={"transformer": 1000}, largest_leaf=10, largest_block=100,
                              denoiser="transformer", width=8, layers=2, patch=(1, 2), spatial=8, temporal=1, vae_class="",
                              vae_channels=4, vae_tile=None, configs={})
    monkeypatch.setattr(backend, "matmul_throughput", lambda device, dtype: 1e9)
    monkeypatch.setitem(backend.EFFICIENCY, "cpu", 0.5)
    values = {"num_frames": 4, "height": 64, "width": 64, "num_inference_steps": 10}
    found = backend.estimate_from(anatomy, values, {}, torch.device("cpu"), torch.float32, "none", False)
    tokens = 4 * (64 // 8 // 2) ** 2  # 4 latent frames of 4x4 patches
    flops = 2 * 1000 * tokens + 4 * tokens**2 * 8 * 2
    assert found.seconds == pytest.approx(10 * flops / (1e9 * 0.5))
    guided = backend.estimate_from(anatomy, {**values, "guidance_scale": 6.0}, {}, torch.device("cpu"), torch.float32, "none", False)
    assert guided.seconds == pytest.approx(2 * found.seconds)  # classifier-free guidance: two passes a step


def test_a_loras_recorded_sha256_covers_the_whole_file(tmp_path):
    """Provenance names each LoRA by its hash: two files differing past the first MiB must not hash alike."""
    import hashlib

    from kinema.pipelines.diffusers_backend import LoRA

    data = np.random.default_rng(0).integers(0, 256, 3 * 2**20 + 5, dtype=np.uint8).tobytes()
    (tmp_path / "a.safetensors").write_bytes(data)
    (tmp_path / "b.safetensors").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert LoRA(tmp_path / "a.safetensors").sha256 == hashlib.sha256(data).hexdigest()
    assert LoRA(tmp_path / "a.safetensors").sha256 != LoRA(tmp_path / "b.safetensors").sha256


def test_a_keywords_scalar_type_comes_from_its_annotation_else_its_default():
    """Options offered for a diffusers __call__ keyword take the type it declares; a string annotation (postponed
    evaluation) falls back to the default's type, and nothing to go by offers no option."""
    import inspect
    import typing

    from kinema.pipelines.diffusers_backend import _scalar_type

    def param(annotation=inspect.Parameter.empty, default=None):
        return inspect.Parameter("x", inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)

    assert _scalar_type(param(int)) is int
    assert _scalar_type(param(typing.Optional[float])) is float
    assert _scalar_type(param(typing.Union[int, float], 1)) is float  # a number either way: read as float
    assert _scalar_type(param(typing.Optional[torch.Tensor], 2)) is None  # a tensor: not an option, whatever the default
    assert _scalar_type(param("int", 7)) is int and _scalar_type(param("float", 0.5)) is float
    assert _scalar_type(param("int")) is None and _scalar_type(param(default=True)) is None


def test_a_vaes_tile_is_read_as_height_then_width(unet_t2v):
    """The estimate's tiled decode uses the VAE's tile: a non-square tile (CogVideoX's is 480x720) must not come out turned."""
    from kinema.pipelines import diffusers_backend as backend

    modules = load_pipeline(unet_t2v, device="cpu").modules()
    vae = modules["vae"]
    vae.tile_sample_min_height, vae.tile_sample_min_width = 24, 40
    try:
        assert backend.anatomy_of("TextToVideoSDPipeline", modules).vae_tile == (24, 40)
    finally:
        del vae.tile_sample_min_height, vae.tile_sample_min_width


def test_weights_already_loaded_count_once_in_the_fit():
    """Free memory no longer holds the loaded weights, so the fit sets them against the peak once: 10 GiB peak with
    4 GiB already loaded needs 6 GiB of the 7 GiB free (with 10% kept back), and 8 GiB peak would not fit in 3 GiB."""
    from kinema.pipelines.diffusers_backend import MemoryEstimate

    gib = 2**30
    base = dict(pipeline="P", device="cuda", dtype="float16", num_frames=16, height=64, width=64, steps=2, weights={"unet": 4 * gib},
                activations=gib, decode=gib, offload="none", seconds=None)
    loaded = MemoryEstimate(**base, peak=10 * gib, resident=4 * gib, available=7 * gib)
    assert loaded.fits is True and "peak 10.00 GiB with offload none of 11.00 GiB available: fits" in loaded.lines()[3]
    assert MemoryEstimate(**base, peak=8 * gib, resident=4 * gib, available=3 * gib).fits is False
    assert MemoryEstimate(**base, peak=8 * gib, resident=0, available=None).fits is None


def test_stable_video_diffusions_decode_is_counted_by_its_decode_chunk(unet_t2v):
    """SVD's temporal decoder decodes decode_chunk_size frames at a time: the decode's working set (less the output
    video, which holds every frame) grows with the chunk, not with the clip; other VAEs decode the whole clip."""
    import dataclasses

    from kinema.pipelines import diffusers_backend as backend

    pipe = load_pipeline(unet_t2v, device="cpu")
    svd = dataclasses.replace(pipe.anatomy, vae_class="AutoencoderKLTemporalDecoder", temporal=1)
    frames, side = 8, 64
    output = frames * side * side * 3 * (4 + 4 + 1)

    def working_set(anatomy, chunk):
        values = {"num_frames": frames, "height": side, "width": side, "decode_chunk_size": chunk}
        return backend.estimate_from(anatomy, values, pipe.native, torch.device("cpu"), torch.float32, "none", False, timing=False).decode - output

    assert working_set(svd, 8) == 4 * working_set(svd, 2) and working_set(svd, 1) * 8 == working_set(svd, 8)
    assert working_set(pipe.anatomy, 2) == working_set(pipe.anatomy, 8) == working_set(svd, 8)


def test_on_a_gpu_a_call_that_would_not_fit_offloads_first_and_says_why(unet_t2v, monkeypatch):
    """Automatic placement decides per call: when this call's estimate does not fit the GPU whole, the pipeline is
    offloaded before sampling and the result carries the estimate's reason; placed by the user, it is left alone."""
    import dataclasses

    pipe = load_pipeline(unet_t2v, device="cpu")
    fit = pipe.estimate(num_frames=4, height=32, width=32)
    placed = []
    monkeypatch.setattr(pipe, "_device", torch.device("cuda"), raising=False)  # the decision only: nothing is moved
    monkeypatch.setattr(pipe, "place", lambda device, mode: placed.append((device.type, mode)))
    reason = "all on the GPU would need 30.00 GiB: model offloading turned on"
    monkeypatch.setattr(pipe, "estimate", lambda **options: dataclasses.replace(fit, offload="model", notes=[reason, "another"]))
    assert pipe._fit({"num_frames": 4, "height": None}) == reason and placed == [("cuda", "model")]
    monkeypatch.setattr(pipe, "estimate", lambda **options: dataclasses.replace(fit, offload="sequential", notes=[]))
    assert pipe._fit({}) == "sequential offloading turned on"
    monkeypatch.setattr(pipe, "estimate", lambda **options: dataclasses.replace(fit, offload="none", notes=[]))
    assert pipe._fit({}) is None and len(placed) == 2
    pipe.memory = dataclasses.replace(pipe.memory, offload="none")  # --offload none: the user's placement
    monkeypatch.setattr(pipe, "estimate", lambda **options: dataclasses.replace(fit, offload="model", notes=[reason]))
    assert pipe._fit({}) is None and len(placed) == 2


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_hf_hub_offline_means_the_hub_is_never_contacted(monkeypatch, value):
    """HF_HUB_OFFLINE, in any of its spellings, must keep Kinema off the network even when the hub would answer."""
    import socket

    from kinema.hub import hub_reachable

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        assert hub_reachable(timeout=2.0)  # a hub that answers: reachable
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        assert not hub_reachable(timeout=2.0)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        assert hub_reachable(timeout=2.0)


def test_anatomy_counts_leaves_blocks_and_linear_layers_by_hand():
    """Offloading estimates rest on the largest leaf (sequential) and block (group): a wrong count misjudges the fit."""
    import kinema.pipelines.diffusers_backend as backend

    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ModuleList([torch.nn.Linear(8, 8), torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 8))]))
    anatomy = backend.anatomy_of("Test", {"transformer": net})
    # leaves: 4*8+8 = 40, 8*8+8 = 72, 8*16+16 = 144, 16*8+8 = 136; blocks of the list: 72 and 144 + 136 = 280
    assert anatomy.largest_leaf == 144 and anatomy.largest_block == 280
    assert anatomy.linear == {"transformer": (32 + 64 + 128 + 128, 8 + 8 + 16 + 8)}  # (weight values, output rows)
    assert anatomy.parameters == {"transformer": 40 + 72 + 144 + 136}
    # no ModuleList: a block is the largest leaf; a count given (from weight headers) wins over the meta network's
    flat = backend.anatomy_of("Test", {"transformer": torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))}, {"transformer": 7})
    assert flat.largest_leaf == flat.largest_block == 40 and flat.parameters == {"transformer": 7}


def test_a_network_in_shards_counts_the_parameters_of_every_shard(tmp_path):
    """A component read from its weight headers must count all its safetensors files, not only the first."""
    from safetensors.torch import save_file

    import kinema.pipelines.diffusers_backend as backend

    save_file({"a": torch.zeros(3, 4)}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"b": torch.zeros(5), "c": torch.zeros(2, 2, 2)}, str(tmp_path / "model-00002-of-00002.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text("{}")
    assert backend._header_count(tmp_path) == 12 + 5 + 8


@pytest.mark.parametrize("text, kind", [('"fast"', "str"), ("[1, 2]", "list"), ("7", "int")])
def test_a_kinema_json_that_is_not_an_object_is_named(tmp_path, text, kind):
    """Kinema's call defaults beside a diffusers pipeline must be a JSON object: anything else is one clear error."""
    from kinema.hub import ModelFormatError, open_model

    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "TextToVideoSDPipeline", "_diffusers_version": "0.30.0"}))
    (tmp_path / "kinema.json").write_text(text)
    with pytest.raises(ModelFormatError, match=rf"kinema\.json must hold a JSON object, got {kind}$"):
        open_model(tmp_path)
    (tmp_path / "kinema.json").write_text('{"num_inference_steps": 3}')
    assert open_model(tmp_path).index.settings == {"num_inference_steps": 3}


def test_on_a_cpu_automatic_placement_never_offloads(unet_t2v, monkeypatch):
    """Offloading moves weights onto a GPU: on a CPU the pipeline stays whole whatever a memory estimate says."""
    from types import SimpleNamespace

    monkeypatch.setattr(DiffusersPipeline, "estimate", lambda self, **options: SimpleNamespace(offload="model", notes=[]))
    assert load_pipeline(unet_t2v, device="cpu").offload == "none"


def test_vae_tiling_on_a_vae_without_tiles_is_one_clear_error(unet_t2v, monkeypatch):
    """--vae-tiling with a VAE that cannot tile must say so in words, not fail later with an AttributeError."""

    class NoTiles(torch.nn.Module):
        pass

    pipe = load_pipeline(unet_t2v, device="cpu").pipe
    monkeypatch.setattr(pipe, "vae", NoTiles())
    with pytest.raises(ValueError, match=r"^--vae-tiling: tiny's VAE \(NoTiles\) cannot decode in tiles$"):
        DiffusersPipeline(pipe, memory=MemorySettings(vae_tiling=True), who="tiny")
    assert DiffusersPipeline(pipe, who="tiny").memory.vae_tiling is False  # without the flag the VAE is not asked


def test_a_folder_that_loads_as_another_pipeline_class_is_refused(unet_t2v, dit_t2v, monkeypatch):
    """What diffusers hands back must be the pipeline the folder names (a hub repo may have changed since its
    configs were read): else the options Kinema declared would not be the ones the call takes."""
    from diffusers import DiffusionPipeline

    from kinema.hub import ModelFormatError

    other = DiffusionPipeline.from_pretrained(str(dit_t2v))
    monkeypatch.setattr(DiffusionPipeline, "from_pretrained", classmethod(lambda cls, *args, **kwargs: other))
    with pytest.raises(ModelFormatError, match=r"loaded as CogVideoXPipeline, not the TextToVideoSDPipeline it names$"):
        load_pipeline(unet_t2v, device="cpu")


@pytest.mark.parametrize("mode, refused", [("pab", True), ("faster", True), ("first-block", False), ("taylorseer", False)])
def test_timestep_following_caches_need_the_pipelines_current_timestep(mode, refused):
    """PAB and FasterCache read pipe.current_timestep: a pipeline without it is refused before loading, the others pass."""
    from kinema.pipelines.diffusers_backend import check_support

    class OldPipeline:  # no current_timestep
        pass

    class Transformer:
        def enable_cache(self, config):
            pass

    if refused:
        with pytest.raises(ValueError, match=rf"^--cache {mode} follows the pipeline's current_timestep, which OldPipeline does not expose; "
                                             r"try first-block or taylorseer$"):
            check_support("old", OldPipeline, Transformer, "transformer", 2, False, mode)
    else:
        check_support("old", OldPipeline, Transformer, "transformer", 2, False, mode)
    OldPipeline.current_timestep = None  # a pipeline that exposes it takes every cache
    check_support("old", OldPipeline, Transformer, "transformer", 2, False, mode)


def test_height_and_width_each_take_the_latent_grids_multiple(dit_t2v):
    """CogVideoX's latent grid is 8 pixels times a 2-patch: a width off the grid is refused as a height is, both up to 8192."""
    from kinema.hub import open_model
    from kinema.pipelines import contract_of

    contract = contract_of(open_model(dit_t2v))
    for name in ("height", "width"):
        option = contract.option(name)
        assert (option.low, option.high, option.multiple) == (16, 8192, 16)
        assert option.allowed() == "a multiple of 16, >= 16 and <= 8192"
        with pytest.raises(ValueError, match=rf"^{name} \(--{name}\) must be a multiple of 16"):
            contract.resolve({name: 24}, False, "tiny")
        assert contract.resolve({name: 32}, False, "tiny")[name] == 32


def test_the_estimate_counts_latent_frames_as_a_causal_vae_makes_them(unet_t2v):
    """A causal VAE of temporal factor 4 makes 1 + (frames - 1) // 4 latent frames: 1, 4 -> 1; 5, 8 -> 2; the
    denoiser's activations grow with that count, so 8 frames cost twice 4 and no more than 5."""
    import dataclasses

    from kinema.pipelines import diffusers_backend as backend

    pipe = load_pipeline(unet_t2v, device="cpu")
    anatomy = dataclasses.replace(pipe.anatomy, temporal=4)

    def activations(frames):
        values = {"num_frames": frames, "height": 32, "width": 32}
        return backend.estimate_from(anatomy, values, pipe.native, torch.device("cpu"), torch.float32, "none", False, timing=False).activations

    assert activations(1) == activations(4) and activations(5) == activations(8) == 2 * activations(4)
    assert activations(9) == 3 * activations(4)


def test_fps_goes_to_the_pipelines_own_keyword_or_only_to_the_file(unet_t2v, monkeypatch):
    """--fps is the written video's rate; a pipeline with no fps conditioning (ModelScope) must not be handed one."""
    pipe = load_pipeline(unet_t2v, device="cpu")
    assert pipe.fps_keyword is None and pipe.native["fps"] == 8  # ModelScope's card: 8 fps, no fps keyword
    assert pipe._call_keywords({"fps": 12.0, "num_inference_steps": 2, "preview_every": 1, "guidance_scale": None}) == {"num_inference_steps": 2}
    assert pipe._call_keywords({"fps": 8}) == {}
    monkeypatch.setattr(pipe, "fps_keyword", "frame_rate")  # a pipeline conditioned on the rate (LTX-Video's frame_rate) gets it under its own name
    assert pipe._call_keywords({"fps": 12.0}) == {"frame_rate": 12.0}


def test_the_time_estimate_counts_attention_on_each_levels_own_grid(unet_t2v, monkeypatch):
    """Self-attention at UNet level L runs on (h w / 4^L) positions, quadratic in them: 4 (h w / 4^L)^2 c FLOPs per
    attention and frame; the time estimate adds that per step on top of the weights' FLOPs."""
    import dataclasses

    from kinema.pipelines import diffusers_backend as backend

    pipe = load_pipeline(unet_t2v, device="cpu")
    monkeypatch.setattr(backend, "matmul_throughput", lambda device, dtype: 1e9)
    values = {"num_frames": 2, "height": 64, "width": 64, "num_inference_steps": 3, "guidance_scale": 1.0}

    def seconds(levels):
        anatomy = dataclasses.replace(pipe.anatomy, attention_levels=levels, temporal=1)
        return backend.estimate_from(anatomy, values, pipe.native, torch.device("cpu"), torch.float32, "none", False).seconds

    positions = (64 // pipe.anatomy.spatial) ** 2  # the latent grid at level 0
    attention = 4 * (positions / 4) ** 2 * 64 * 2 * 2  # level 1: a quarter of the positions; 64 channels, 2 attentions, 2 frames
    speed = 1e9 * backend.EFFICIENCY["cpu"]
    assert seconds(((1, 64, 2),)) - seconds(()) == pytest.approx(3 * attention / speed, rel=1e-6)  # 3 steps, no guidance


@pytest.mark.parametrize("keyword, value, what", [("cache", "pab", "--cache is only for diffusers pipelines; {} is a Kinema model, whose pipelines take no step cache"),
                                                  ("lora", ["x.safetensors"], "--lora is only for diffusers pipelines; {} is a Kinema model, whose pipelines take no LoRAs")],
                         ids=["cache", "lora"])
def test_a_step_cache_or_lora_for_a_kinema_model_is_refused_by_name(tiny_model_dir, keyword, value, what):
    """Kinema's own pipelines have no step cache and no LoRA loading: asking for one is an error, never ignored."""
    import re

    with pytest.raises(ValueError, match="^" + re.escape(what.format(tiny_model_dir)) + "$"):
        load_pipeline(tiny_model_dir, device="cpu", **{keyword: value})


def test_keywords_kinema_passes_itself_are_not_options(dit_t2v):
    """CogVideoX's num_videos_per_prompt, timesteps or latents would multiply or bypass what Kinema draws per seed:
    never options; its plain scalars (eta, max_sequence_length) are."""
    from kinema.hub import open_model
    from kinema.pipelines import contract_of

    contract = contract_of(open_model(dit_t2v))
    for name in ("num_videos_per_prompt", "timesteps", "latents", "output_type", "return_dict", "attention_kwargs"):
        assert contract.option(name) is None, name
    assert contract.option("eta") is not None and contract.option("max_sequence_length") is not None
    with pytest.raises(ValueError, match="does not take num_videos_per_prompt; it takes: num_frames"):
        contract.resolve({"num_videos_per_prompt": 2}, False, "tiny")


def test_image_to_video_gives_each_clip_its_own_image_or_shares_one():
    """With one picture per clip, clip i starts from picture i; a single picture is shared; another count is refused."""
    from kinema.pipelines.diffusers_backend import _images

    pictures = np.stack([np.full((4, 6, 3), v, np.uint8) for v in (10, 20, 30)])
    assert [np.asarray(im)[0, 0, 0] for im in _images(pictures, 3)] == [10, 20, 30]
    assert [np.asarray(im)[0, 0, 0] for im in _images(torch.from_numpy(pictures[1]), 2)] == [20, 20]
    assert np.asarray(_images(pictures[:1], 2)[1]).shape == (4, 6, 3)
    with pytest.raises(ValueError, match=r"^give one image or one per clip \(3\), got 2$"):
        _images(pictures[:2], 3)


def test_a_transformers_activations_double_under_classifier_free_guidance(dit_t2v):
    """Guidance runs the conditional and unconditional branches in one batch: twice the denoiser's working set."""
    from kinema.pipelines import diffusers_backend as backend

    pipe = load_pipeline(dit_t2v, device="cpu")

    def activations(guidance):
        values = {"num_frames": 9, "height": 32, "width": 32, "guidance_scale": guidance}
        return backend.estimate_from(pipe.anatomy, values, pipe.native, torch.device("cpu"), torch.float32, "none", False, timing=False).activations

    assert pipe.anatomy.denoiser == "transformer" and activations(6.0) == 2 * activations(1.0)


def test_lora_specs_parse_to_a_file_and_a_float_scale_or_one_clear_error(tmp_path):
    """`--lora PATH[:scale]`, (path, scale) pairs and LoRA folders are how users name LoRAs: each must resolve to the
    one .safetensors file and the scale meant, a colon inside a folder name included."""
    from kinema.pipelines.diffusers_backend import LoRA, lora_list

    odd = tmp_path / "v1:beta"
    odd.mkdir()
    style = odd / "style.safetensors"
    style.write_bytes(b"x")
    assert lora_list(None) == []
    assert lora_list(str(style)) == [LoRA(style, 1.0)]
    assert lora_list(f"{style}:0.25") == [LoRA(style, 0.25)]  # the scale is after the last colon
    assert lora_list((style, 2)) == [LoRA(style, 2.0)] and type(lora_list((style, 2))[0].scale) is float
    assert lora_list([f"{style}:-1", (str(style), 0.5)]) == [LoRA(style, -1.0), LoRA(style, 0.5)]
    named = tmp_path / "style:v2.safetensors"  # a file whose own name holds a colon is that file, at scale 1
    named.write_bytes(b"y")
    assert lora_list(str(named)) == [LoRA(named, 1.0)]
    folder = tmp_path / "trained"
    folder.mkdir()
    (folder / "extra.safetensors").write_bytes(b"z")
    assert lora_list(folder) == [LoRA(folder / "extra.safetensors", 1.0)]  # a folder's one file
    (folder / "pytorch_lora_weights.safetensors").write_bytes(b"w")
    assert lora_list(f"{folder}:0.5") == [LoRA(folder / "pytorch_lora_weights.safetensors", 0.5)]  # diffusers' name first
    (folder / "pytorch_lora_weights.safetensors").unlink()
    (folder / "more.safetensors").write_bytes(b"v")
    with pytest.raises(ValueError, match=rf"^--lora {folder}: a LoRA folder must hold one \.safetensors file, it holds 2$"):
        lora_list(folder)
    with pytest.raises(ValueError, match=r": the scale must be a finite number, got True$"):
        lora_list((style, True))
    with pytest.raises(ValueError, match=r": the scale must be a finite number, got inf$"):
        lora_list(f"{style}:inf")
    with pytest.raises(ValueError, match=r"^lora takes paths, 'PATH:scale' or \(path, scale\) pairs, got 3$"):
        lora_list([3])
    with pytest.raises(ValueError, match=r"^lora takes paths, 'PATH:scale' or \(path, scale\) pairs, got \(\w*Path\("):
        lora_list([(style,)])  # a pair missing its scale
    with pytest.raises(FileNotFoundError, match=rf"^--lora {tmp_path / 'nowhere.safetensors'}: no such file or folder$"):
        lora_list(tmp_path / "nowhere.safetensors")
    (tmp_path / "lora.pt").write_bytes(b"pickle")
    with pytest.raises(ValueError, match=r"only \.safetensors LoRA files are read, got a \.pt$"):
        lora_list(tmp_path / "lora.pt")


@pytest.mark.parametrize("keyword, value, message", [
    ("cache", "warp", "cache (--cache) must be one of first-block, pab, faster, taylorseer, got 'warp'"),
    ("quantize", "int3", "quantize (--quantize) must be one of"),
    ("lora", "style.safetensors:strong", "--lora style.safetensors:strong: the scale after ':' must be a finite number, got 'strong'"),
])
def test_generate_refuses_a_misnamed_cache_quantize_or_lora_before_it_opens_the_model(tmp_path, keyword, value, message):
    """A typo in --cache, --quantize or --lora is reported as itself at once, not hidden behind (or after) opening the model."""
    from kinema.pipelines.generate import generate

    with pytest.raises(ValueError, match=rf"^{re.escape(message)}"):
        generate(PROMPT, model=tmp_path / "no-such-model", device="cpu", **{keyword: value})


def test_a_dry_run_estimate_counts_the_tiled_decode_as_the_loaded_pipeline_does(unet_t2v):
    """`kinema generate --dry-run --vae-tiling` must estimate the decode the real run does: with tiles the decoder's
    working set is one tile's area (the tiny VAE's sample_size, 16x16), the output clip itself is not tiled."""
    options = dict(num_frames=4, height=64, width=64)
    whole = estimate(unet_t2v, device="cpu", **options)
    tiled = estimate(unet_t2v, device="cpu", memory=MemorySettings(vae_tiling=True), **options)
    loaded = load_pipeline(unet_t2v, device="cpu", memory=MemorySettings(vae_tiling=True)).estimate(**options)
    output = 4 * 64 * 64 * 3 * (4 + 4 + 1)  # float32 from the VAE, float32 after postprocessing, uint8
    assert tiled.decode == loaded.decode < whole.decode
    assert tiled.decode - output == pytest.approx((whole.decode - output) * (16 * 16) / (64 * 64), abs=1)
    assert "has no tiled decoding" not in " ".join(tiled.notes)


def test_each_step_cache_gets_diffusers_config_for_its_name_and_the_pipelines_clock():
    """--cache first-block must use FirstBlockCache's own default threshold, each mode its own config class, and the
    timestep-driven caches must read the running pipeline's current step; a misspelt mode is refused by name."""
    import dataclasses
    from types import SimpleNamespace

    from diffusers import FasterCacheConfig, FirstBlockCacheConfig, PyramidAttentionBroadcastConfig, TaylorSeerCacheConfig

    from kinema.pipelines.diffusers_backend import TAYLORSEER_MODULES, cache_config

    clock = SimpleNamespace(current_timestep=417)
    first = cache_config("first-block", clock, frames_first=True)
    defaults = {f.name: f.default for f in dataclasses.fields(FirstBlockCacheConfig)}
    assert type(first) is FirstBlockCacheConfig and first.threshold == defaults["threshold"]
    taylor = cache_config("taylorseer", clock, frames_first=True)
    assert type(taylor) is TaylorSeerCacheConfig and taylor.cache_identifiers == TAYLORSEER_MODULES
    pab = cache_config("pab", clock, frames_first=False)
    assert type(pab) is PyramidAttentionBroadcastConfig and pab.current_timestep_callback() == 417
    for frames_first, layout in ((True, "BFCHW"), (False, "BCFHW")):
        faster = cache_config("faster", clock, frames_first=frames_first)
        assert type(faster) is FasterCacheConfig and faster.tensor_format == layout and faster.current_timestep_callback() == 417
    with pytest.raises(ValueError, match=r"^cache \(--cache\) must be one of first-block, pab, faster, taylorseer, got 'first_block'$"):
        cache_config("first_block", clock, frames_first=True)
