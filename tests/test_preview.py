"""Step previews while sampling: the linear latent -> RGB map of a VAE (fitted once, cached), the previews a
step callback receives from Kinema's latent pipeline and from diffusers pipelines, and `kinema generate
--preview-every` writing them as a GIF beside the output, kept when the run is interrupted."""

import math
import warnings

import numpy as np
import pytest
import torch
from einops import rearrange
from typer.testing import CliRunner

from kinema.cli import app
from kinema.io import read_video
from kinema.pipelines.preview import CACHE_ENV, LatentPreviewer, fit_linear_preview, forget_cached_maps

runner = CliRunner()
PROMPT = "a small red circle moving left slowly"


@pytest.fixture(autouse=True)
def _quiet(one_thread, monkeypatch):
    """One thread; fitted maps in memory only (never the user's ~/.cache), forgotten between tests."""
    monkeypatch.setenv(CACHE_ENV, "")
    forget_cached_maps()
    yield
    forget_cached_maps()


class LinearVAE(torch.nn.Module):
    """A VAE whose decode is linear: RGB = W z + b per latent pixel, repeated over s x s pixels and, causally, over
    t frames per latent frame after the first (as a causal video VAE lays its frames out)."""

    def __init__(self, channels: int = 4, spatial: int = 2, temporal: int = 2) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.weight = torch.nn.Parameter(torch.randn(3, channels, generator=generator) * 0.3)
        self.bias = torch.nn.Parameter(torch.randn(3, generator=generator) * 0.1)
        self.spatial, self.temporal, self.calls = spatial, temporal, 0

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        rgb = torch.einsum("rc,bcfhw->brfhw", self.weight, z) + self.bias.view(1, 3, 1, 1, 1)
        repeats = torch.full((z.shape[2],), self.temporal)
        repeats[0] = 1
        rgb = rgb.repeat_interleave(repeats, dim=2)
        return rgb.repeat_interleave(self.spatial, dim=3).repeat_interleave(self.spatial, dim=4)


# ---------------------------------------------------------------------------------------------- the map


def test_the_fit_recovers_a_linear_decoder_with_the_samplers_scaling():
    vae = LinearVAE()
    scale, shift = torch.tensor([0.5, 2.0, 1.0, 0.25]), torch.tensor([0.1, -0.2, 0.0, 0.3])
    with torch.no_grad():
        preview = fit_linear_preview(vae.decode, 4, scale=scale, shift=shift, samples=2, held_out=1, grid=(3, 4, 4))
        # the sampler's z reaches the VAE as z * scale + shift: the map takes z
        assert torch.allclose(preview.weight, vae.weight * scale, atol=1e-4)
        assert torch.allclose(preview.bias, vae.weight @ shift + vae.bias, atol=1e-4)
        assert (preview.spatial, preview.temporal, preview.causal) == (2, 2, True)
        z = torch.randn(2, 4, 3, 5, 6)
        assert preview.num_frames(3) == 5
        exact = vae.decode(z * scale.view(-1, 1, 1, 1) + shift.view(-1, 1, 1, 1))  # (2, 3, 5, 10, 12)
        in_time = preview.rgb(z).repeat_interleave(torch.tensor([1, 2, 2]), dim=2)  # each latent frame over its frames
        assert torch.allclose(in_time, exact[..., ::2, ::2].clamp(-1, 1), atol=1e-4)
    frames = preview.frames(z)
    assert frames.shape == (2, 5, 10, 12, 3) and frames.dtype == np.uint8
    # measured at full size, where the preview is upsampled bilinearly and this decoder repeats pixels
    assert 0 < preview.psnr < math.inf and preview.fit_seconds >= 0


def test_a_vae_is_fitted_once_then_taken_from_memory_or_the_cache_folder(tmp_path):
    vae = LinearVAE()
    previewer = LatentPreviewer(vae, vae.decode, 4, folder=tmp_path, samples=2, held_out=1, grid=(3, 4, 4))
    first = previewer.map()
    fitted = vae.calls
    assert fitted == 3  # one decode per latent: 2 to fit, 1 to measure
    again = LatentPreviewer(vae, vae.decode, 4, folder=tmp_path, samples=2, held_out=1, grid=(3, 4, 4)).map()
    assert vae.calls == fitted and torch.equal(again.weight, first.weight)
    forget_cached_maps()  # a new process: the folder holds the fit
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    loaded = LatentPreviewer(vae, vae.decode, 4, folder=tmp_path, samples=2, held_out=1, grid=(3, 4, 4)).map()
    assert vae.calls == fitted and torch.equal(loaded.weight, first.weight) and loaded.psnr == first.psnr
    # other weights, or another scaling of the latents, are another map
    LatentPreviewer(vae, vae.decode, 4, folder=tmp_path, scale=2.0, samples=2, held_out=1, grid=(3, 4, 4)).map()
    assert vae.calls == 2 * fitted
    with torch.no_grad():
        vae.weight[0, 0] += 0.5
    changed = LatentPreviewer(vae, vae.decode, 4, folder=tmp_path, samples=2, held_out=1, grid=(3, 4, 4)).map()
    assert vae.calls == 3 * fitted and not torch.allclose(changed.weight, first.weight)
    # a damaged cache file is fitted again, not an error
    forget_cached_maps()
    for file in tmp_path.glob("*.safetensors"):
        file.write_bytes(b"not a map")
    LatentPreviewer(vae, vae.decode, 4, folder=tmp_path, samples=2, held_out=1, grid=(3, 4, 4)).map()
    assert vae.calls == 4 * fitted



def test_without_a_cache_folder_a_vae_is_still_fitted_once_per_process():
    """With caching to disk off (read-only home), every generate call must not refit the preview: memory keeps it."""
    vae = LinearVAE()
    forget_cached_maps()
    first = LatentPreviewer(vae, vae.decode, 4, folder=None, samples=2, held_out=1, grid=(3, 4, 4)).map()
    fitted = vae.calls
    again = LatentPreviewer(vae, vae.decode, 4, folder=None, samples=2, held_out=1, grid=(3, 4, 4)).map()
    assert vae.calls == fitted == 3 and again is first


# ---------------------------------------------------------------------------------------------- pipelines


def collect(previews):
    return lambda step, total, preview: previews.append((step, total, None if preview is None else preview))


def test_the_latent_pipeline_previews_every_n_steps_through_its_vaes_map(text_encoder):
    from kinema.pipelines.text2video import tiny_pipeline

    pipe = tiny_pipeline(text_encoder, variant="latent")
    previews = []
    out = pipe(PROMPT, seed=0, num_inference_steps=4, preview_every=2, callback=collect(previews))
    assert [(s, n, p is not None) for s, n, p in previews] == [(1, 4, False), (2, 4, True), (3, 4, False), (4, 4, True)]
    last = previews[-1][2]
    assert last.shape == out.frames.shape == (1, 4, 32, 32, 3) and last.dtype == np.uint8
    # the last step's x0 is the clip: its linear preview is a blurred, duller copy of the decode, not noise
    mse = np.mean((last.astype(float) - out.frames) ** 2)
    assert 10 * math.log10(255**2 / mse) > 12
    previewer = pipe.latent_previewer()
    assert previewer.map().spatial == 2 and previewer.map().temporal == 1
    # without preview_every the callback gets None, and the frames are the same
    previews.clear()
    assert np.array_equal(pipe(PROMPT, seed=0, num_inference_steps=4, callback=collect(previews)).frames, out.frames)
    assert all(p is None for _, _, p in previews)


def test_the_pixel_pipeline_previews_its_own_estimate(text_encoder):
    from kinema.pipelines.text2video import tiny_pipeline

    previews = []
    tiny_pipeline(text_encoder)(PROMPT, seed=0, num_inference_steps=3, preview_every=3, callback=collect(previews))
    assert [p.shape if p is not None else None for _, _, p in previews] == [None, None, (1, 4, 32, 32, 3)]


def test_the_videogpt_pipeline_previews_the_codes_sampled_so_far(text_encoder):
    from kinema.pipelines.videogpt import tiny_pipeline

    pipe = tiny_pipeline(text_encoder)  # 3 latent frames of 4 x 4 codes: 48 codes, 5 frames
    previews = []
    out = pipe(PROMPT, seed=0, preview_every=16, callback=collect(previews))
    assert [s for s, _, p in previews if p is not None] == [16, 32, 48] and len(previews) == 48
    # all codes sampled: the preview is the clip, exactly
    assert previews[-1][2].shape == out.frames.shape and np.array_equal(previews[-1][2], out.frames)
    # the first latent frame complete: the causal decoder's first frame is already the clip's
    first = previews[15][2]
    assert np.array_equal(first[:, 0], out.frames[:, 0]) and not np.array_equal(first, out.frames)
    previews.clear()
    assert np.array_equal(pipe(PROMPT, seed=0, callback=collect(previews)).frames, out.frames)
    assert len(previews) == 48 and all(p is None for _, _, p in previews)


def test_a_videogpt_image_to_video_preview_starts_on_the_given_image(text_encoder):
    """Previews of image-to-video show the user's own picture as frame 0 from the first one on, as the clip will."""
    from kinema.pipelines.videogpt import tiny_pipeline

    yy, xx = np.mgrid[0:32, 0:32]
    image = np.stack([xx * 8, yy * 8, (xx + yy) * 4], axis=-1).astype(np.uint8)
    previews = []
    out = tiny_pipeline(text_encoder)(PROMPT, image=image, seed=0, preview_every=16, callback=collect(previews))
    shown = [p for _, _, p in previews if p is not None]
    assert len(shown) == 2 and all(np.array_equal(p[0, 0], image) for p in shown)  # codes 32 and 48 (the image's are given)
    assert np.array_equal(shown[-1], out.frames)


def test_a_diffusers_pipeline_hands_the_linear_preview_of_its_latents():
    from kinema.pipelines.diffusers_backend import tiny_pipeline

    pipe = tiny_pipeline()
    previews = []
    out = pipe(PROMPT, seed=0, num_inference_steps=2, preview_every=1, callback=collect(previews))
    assert [(s, n) for s, n, _ in previews] == [(1, 2), (2, 2)]
    assert all(p.shape == out.frames.shape == (1, 4, 16, 16, 3) for _, _, p in previews)
    # previews change nothing in the frames, and preview_every never reaches diffusers' __call__
    assert np.array_equal(pipe(PROMPT, seed=0, num_inference_steps=2).frames, out.frames)


def test_cogvideox_latents_frames_first_are_previewed_at_the_decoded_frame_count():
    from diffusers import CogVideoXDDIMScheduler, CogVideoXPipeline
    from test_diffusers_backend import cogvideox_parts

    from kinema.pipelines.diffusers_backend import DiffusersPipeline

    pipe = DiffusersPipeline(CogVideoXPipeline(scheduler=CogVideoXDDIMScheduler(), **cogvideox_parts(image_to_video=False)))
    previews = []
    out = pipe(PROMPT, seed=0, num_inference_steps=2, num_frames=9, height=16, width=16, preview_every=2, callback=collect(previews))
    assert previews[-1][2].shape == out.frames.shape == (1, 9, 16, 16, 3)  # 3 latent frames (b, f, c, h, w) -> 1 + 4 * 2
    assert pipe.latent_previewer((2, 2)).map().temporal == 4


def test_latents_that_cannot_be_read_give_none_and_one_note():
    from kinema.pipelines.diffusers_backend import tiny_pipeline

    pipe = tiny_pipeline()
    notes, previews = [], []
    hooks = pipe._step_callback(collect(previews), 2, preview_every=1, notes=notes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(2):  # packed latents (batch, tokens, channels), as LTX-Video holds them
            packed = torch.randn(1, 16, 4)
            if "callback_on_step_end" in hooks:
                hooks["callback_on_step_end"](pipe.pipe, i, None, {"latents": packed})
            else:  # the old-style callback(step, timestep, latents) that TextToVideoSDPipeline takes
                hooks["callback"](i, None, packed)
    assert [p for _, _, p in previews] == [None, None]
    assert len(notes) == 1 and "no step previews" in notes[0] and "packed" in notes[0]
    assert len([w for w in caught if "no step previews" in str(w.message)]) == 1


# ---------------------------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def latent_model(tmp_path_factory, text_encoder):
    from kinema.pipelines.text2video import tiny_pipeline

    return tiny_pipeline(text_encoder, variant="latent").save_pretrained(tmp_path_factory.mktemp("models") / "tiny-latent")


def generate(*args):
    return runner.invoke(app, ["generate", PROMPT, *map(str, args), "--steps", "4", "--seed", "0", "--device", "cpu"])


def test_generate_writes_the_preview_gif_beside_the_output(latent_model, tmp_path):
    result = generate("--model", latent_model, "-o", tmp_path / "clip.mp4", "--preview-every", 2, "--keep-preview")
    assert result.exit_code == 0, result.output
    preview = tmp_path / "clip.preview.gif"
    assert f"last step preview kept: {preview}" in " ".join(result.output.split())
    assert read_video(preview).frames.shape == (4, 32, 32, 3)
    # without --keep-preview the preview goes once the clip is written
    result = generate("--model", latent_model, "-o", tmp_path / "other.mp4", "--preview-every", 2)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "other.mp4").exists() and not (tmp_path / "other.preview.gif").exists()
    # a model that makes no step previews refuses the flag by name
    result = runner.invoke(app, ["generate", "--model", "shape-motion-gan", "-o", str(tmp_path / "gan.mp4"), "--preview-every", "2"])
    assert result.exit_code == 2 and "does not take preview_every" in result.output
    result = generate("--model", latent_model, "-o", tmp_path / "x.mp4", "--keep-preview")
    assert result.exit_code == 2 and "--preview-every" in result.output


def test_an_interrupt_keeps_the_last_preview_and_writes_no_output(latent_model, tmp_path, monkeypatch):
    import contextlib

    from kinema.pipelines import generate as gen

    def interrupt_at_step_3(step, total, preview):
        if step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(gen, "terminal_progress", lambda show=None: contextlib.nullcontext(interrupt_at_step_3))
    result = generate("--model", latent_model, "-o", tmp_path / "clip.mp4", "--preview-every", 1)
    assert result.exit_code == 130, result.output
    lines = result.output.strip().splitlines()
    preview = tmp_path / "clip.preview.gif"
    assert len(lines) == 1 and lines[0].startswith("interrupted:") and "step 3 of 4" in lines[0] and str(preview) in " ".join(result.output.split())
    assert read_video(preview).frames.shape == (4, 32, 32, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.preview.gif"]  # no output, no temporary file


def test_a_fit_with_nothing_held_out_has_no_measured_psnr():
    """Without held-out latents there is nothing to measure: the PSNR is unknown (nan), never a made-up 0 dB."""
    vae = LinearVAE()
    preview = fit_linear_preview(vae.decode, 4, samples=2, held_out=0, grid=(3, 4, 4))
    assert math.isnan(preview.psnr) and vae.calls == 2
    # the defaults: 4 latents fitted, 2 more decoded to measure the map
    measured = fit_linear_preview(vae.decode, 4, grid=(3, 4, 4))
    assert vae.calls == 2 + 4 + 2 and math.isfinite(measured.psnr)


def test_the_preview_gif_plays_at_the_clips_frame_rate(tmp_path):
    """The step preview is watched as the clip will play: 2.5 fps is 400 ms a frame (GIF's floor of 20 ms kept), looping."""
    from PIL import Image

    from kinema.pipelines.generate import PreviewWriter

    frames = np.zeros((1, 3, 8, 8, 3), np.uint8)
    frames[0, :, :, :, 0] = np.array([0, 120, 240], np.uint8)[:, None, None]  # three distinct frames
    for fps, duration in ((2.5, 400), (7.5, 130), (100.0, 20)):  # GIF keeps centiseconds: 1000 / 7.5 = 133 ms is 130
        writer = PreviewWriter(tmp_path / f"{fps}.gif", fps)
        writer(1, 4, None)
        assert not writer.path.exists() and writer.step is None  # no preview at this step: nothing written
        writer(2, 4, frames)
        with Image.open(writer.path) as gif:
            assert gif.n_frames == 3 and gif.info["duration"] == duration and gif.info["loop"] == 0
        assert (writer.step, writer.total) == (2, 4)
        writer.remove()
        assert not writer.path.exists()


def test_a_preview_path_of_its_own_needs_no_output_file(tiny_model_dir, tmp_path):
    """generate(out=None, preview=PATH) keeps the clip in memory and the preview at PATH; only preview=True needs out."""
    from kinema.pipelines.generate import generate

    path = tmp_path / "watch.gif"
    result = generate("a small red circle moving left slowly", model=tiny_model_dir, device="cpu", num_inference_steps=2, preview_every=1,
                      preview=path, keep_preview=True)
    assert result.path is None and result.preview == path and path.is_file()
    with pytest.raises(ValueError, match=r"^preview=True writes beside the output: give out, or a path for the preview$"):
        generate("a small red circle moving left slowly", model=tiny_model_dir, device="cpu", preview_every=1, preview=True)


def test_a_vae_fingerprint_moves_with_its_weights_config_and_the_fit_version_and_refuses_meta_weights(monkeypatch):
    """The cache key must change whenever a stored map could be stale (weights, config, fitting code), and a VAE
    loaded without weights must be refused by name rather than fingerprinted as if it had some."""
    from dataclasses import dataclass

    from kinema.pipelines import preview as preview_module
    from kinema.pipelines.preview import fingerprint

    @dataclass
    class Config:
        channels: int = 4

    vae = LinearVAE()
    vae.config = Config()
    key = fingerprint(vae, "extra")
    assert len(key) == 32 and int(key, 16) >= 0 and fingerprint(vae, "extra") == key  # 32 hex digits, stable
    assert fingerprint(vae, "other") != key and fingerprint(vae) != key
    vae.config = Config(channels=8)
    assert fingerprint(vae, "extra") != key
    vae.config = Config()
    monkeypatch.setattr(preview_module, "FIT_VERSION", preview_module.FIT_VERSION + 1)
    assert fingerprint(vae, "extra") != key  # a new way of fitting never reuses an old map
    monkeypatch.undo()
    with torch.no_grad():
        vae.weight[1, 2] += 1e-3  # an element neither first nor last: the statistics still move
    assert fingerprint(vae, "extra") != key
    meta = torch.nn.Linear(2, 3, device="meta")
    with pytest.raises(ValueError, match=r"^weight holds no weights \(meta device\): nothing to fit a preview on$"):
        fingerprint(meta)
