"""kinema reconstruct / interpolate on a tiny random video VAE saved as an autoencoder model folder."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kinema.cli import app
from kinema.io import probe, read_video, write_video
from kinema.io.image import write_image
from kinema.pipelines.autoencoder import AutoencoderPipeline, save_autoencoder, tiny_autoencoder

runner = CliRunner()


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory):
    torch.set_num_threads(1)
    return save_autoencoder(tiny_autoencoder(resolution=16), tmp_path_factory.mktemp("vae") / "tiny-vae")


@pytest.fixture
def clip(tmp_path):
    frames = np.zeros((5, 16, 16, 3), np.uint8)
    for t in range(5):
        frames[t, 4:10, 2 + t : 8 + t] = (255, 0, 0)
    write_video(tmp_path / "clip.mp4", frames, fps=8, pix_fmt="yuv444p")
    return tmp_path / "clip.mp4"


def test_reconstruct_matches_the_autoencoder_and_says_what_it_resized(vae_dir, clip, tmp_path):
    pipe = AutoencoderPipeline.from_pretrained(vae_dir, device="cpu")
    frames = read_video(clip).frames
    result = runner.invoke(app, ["reconstruct", str(clip), "--model", str(vae_dir), "-o", str(tmp_path / "r"), "--format", "png"])
    assert result.exit_code == 0, result.output
    out = read_video(tmp_path / "r").frames
    x = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = pipe.vae.decode(pipe.vae.encode(x).mode()).clamp(-1, 1)
    assert np.array_equal(out, ((expected[0].permute(1, 2, 3, 0) + 1) * 127.5).round().to(torch.uint8).numpy())
    assert "PSNR" in result.output and "note" not in result.output
    provenance = probe(tmp_path / "r").provenance
    assert provenance.model == str(vae_dir) and provenance.extra["operation"] == "reconstruct"
    # another size: resized to the training size first, with a note
    write_video(tmp_path / "big.mp4", np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2), fps=8)
    result = runner.invoke(app, ["reconstruct", str(tmp_path / "big.mp4"), "--model", str(vae_dir), "-o", str(tmp_path / "b.mp4")])
    assert result.exit_code == 0 and "resized from 32x32 to 16x16" in " ".join(result.output.split())
    assert read_video(tmp_path / "b.mp4").frames.shape == (5, 16, 16, 3)


def test_interpolate_runs_from_the_last_frame_of_a_to_the_first_of_b(vae_dir, clip, tmp_path):
    pipe = AutoencoderPipeline.from_pretrained(vae_dir, device="cpu")
    green = np.zeros((16, 16, 3), np.uint8)
    green[8:14, 8:14] = (0, 255, 0)
    write_image(tmp_path / "b.png", green)
    result = runner.invoke(app, ["interpolate", str(clip), str(tmp_path / "b.png"), "--frames", "6", "--model", str(vae_dir),
                                 "-o", str(tmp_path / "t"), "--format", "png"])
    assert result.exit_code == 0, result.output
    out = read_video(tmp_path / "t").frames
    assert out.shape == (6, 16, 16, 3)
    last = read_video(clip).frames[-1]
    direct = pipe.interpolate(last, green, 6).frames
    assert np.array_equal(out, direct)
    ends = pipe.interpolate(last, green, 2).frames  # the two ends, decoded as images
    assert np.array_equal(out[0], ends[0]) and np.array_equal(out[-1], ends[1])
    middle = pipe.interpolate(last, green, 3).frames[1]  # halfway: the mean of the two latents
    lat = [pipe.vae.encode(torch.from_numpy(f).permute(2, 0, 1)[None, :, None].float() / 127.5 - 1).mode() for f in (last, green)]
    with torch.no_grad():
        halfway = pipe.vae.decode((lat[0] + lat[1]) / 2).clamp(-1, 1)
    assert np.array_equal(middle, ((halfway[0, :, 0].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy())


def test_autoencoder_folders_are_listed_and_not_offered_for_generation(vae_dir, tmp_path):
    from kinema.pipelines import describe_model, load_pipeline
    from kinema.hub import open_model

    assert describe_model(open_model(vae_dir))[0] == "autoencoder"
    with pytest.raises(ValueError, match="autoencoder-only model"):
        load_pipeline(vae_dir)
    with pytest.raises(ValueError, match="is a generation model, not an autoencoder"):
        AutoencoderPipeline.from_pretrained("shapes-t2v")
    index = json.loads((vae_dir / "model_index.json").read_text())
    assert index["purpose"] == "autoencoder" and index["settings"] == {"resolution": 16, "fps": 8.0}


def test_a_trained_vae_run_exports_an_autoencoder_folder(tmp_path):
    from pathlib import Path

    from kinema.training import train

    run = train(Path(__file__).resolve().parents[1] / "configs" / "vae" / "tiny.yaml", out=tmp_path / "run")
    pipe = AutoencoderPipeline.from_pretrained(run, device="cpu")
    frames = np.zeros((pipe.vae.config.temporal_compression + 1, pipe.resolution, pipe.resolution, 3), np.uint8)
    assert pipe.reconstruct(frames).frames.shape == frames.shape


def test_bad_autoencoder_inputs(vae_dir, clip, tmp_path):
    pipe = AutoencoderPipeline.from_pretrained(vae_dir, device="cpu")
    with pytest.raises(ValueError, match=r"frames \(--frames\) must be a whole number from 2"):
        pipe.interpolate(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8), 1)
    with pytest.raises(ValueError, match="frames must be uint8"):
        pipe.reconstruct(np.zeros((2, 16, 16), np.uint8))


def test_a_saved_autoencoder_keeps_its_resolution_and_frame_rate(tmp_path):
    pipe = tiny_autoencoder(resolution=16)
    pipe.fps = 12.5
    loaded = AutoencoderPipeline.from_pretrained(save_autoencoder(pipe, tmp_path / "vae"))
    assert (loaded.resolution, loaded.fps) == (16, 12.5)
    for name, module in pipe.vae.state_dict().items():
        assert torch.equal(loaded.vae.state_dict()[name], module)


def test_reconstruct_and_interpolate_default_to_the_built_in_video_vae(clip, tmp_path):
    result = runner.invoke(app, ["reconstruct", str(clip), "-o", str(tmp_path / "r.mp4")])
    assert result.exit_code == 0, result.output
    assert probe(tmp_path / "r.mp4").provenance.model == "shapes-vae"
    assert "resized from 16x16 to 64x64" in " ".join(result.output.split())  # the built-in codes 64x64 frames
    result = runner.invoke(app, ["interpolate", str(clip), str(clip), "--frames", "3", "-o", str(tmp_path / "t.mp4")])
    assert result.exit_code == 0, result.output
    assert probe(tmp_path / "t.mp4").provenance.model == "shapes-vae"


def test_reconstruct_reports_the_psnr_of_its_frames_against_the_input(vae_dir, clip):
    """The PSNR printed by kinema reconstruct is the standard one: 10 log10(255^2 / MSE) over the uint8 frames."""
    pipe = AutoencoderPipeline.from_pretrained(vae_dir, device="cpu")
    frames = read_video(clip).frames
    result = pipe.reconstruct(frames)
    mse = np.mean((result.frames.astype(np.float64) - frames.astype(np.float64)) ** 2)
    assert result.frames.shape == frames.shape and mse > 0
    assert result.psnr == pytest.approx(10 * np.log10(255.0**2 / mse), rel=1e-9)


def test_interpolate_replaces_an_existing_output_only_with_overwrite(vae_dir, clip, tmp_path):
    """A transition written over an older file must be asked for: refused by default, done with overwrite=True."""
    from kinema.pipelines.autoencoder import interpolate

    out = tmp_path / "t.mp4"
    out.write_bytes(b"an older file")
    with pytest.raises(FileExistsError):
        interpolate(clip, clip, out, frames=3, model=vae_dir, device="cpu")
    assert out.read_bytes() == b"an older file"
    interpolate(clip, clip, out, frames=3, model=vae_dir, device="cpu", overwrite=True)
    assert read_video(out).frames.shape == (3, 16, 16, 3)


def test_a_result_prints_its_size_as_width_by_height_like_the_cli():
    """repr is what a notebook shows: frames, width x height (the order --width/--height and video players use), model, PSNR, path."""
    from kinema.pipelines.autoencoder import AutoencodeResult

    result = AutoencodeResult(np.zeros((9, 32, 48, 3), np.uint8), "shapes-vae", Path("out.mp4"), psnr=31.234)
    assert repr(result) == "AutoencodeResult(9 frames at 48x32, model='shapes-vae', PSNR 31.23 dB, path='out.mp4')"
    assert repr(AutoencodeResult(np.zeros((1, 16, 16, 3), np.uint8), "m")) == "AutoencodeResult(1 frames at 16x16, model='m', path=None)"


def test_a_larger_input_is_shrunk_to_the_training_size_without_aliasing(vae_dir):
    """A video bigger than the VAE's size must be filtered as it shrinks: fine stripes become their mean grey,
    not (as a plain bilinear pick of every 4th pair of pixels would give) solid white; the note says from what size."""
    pipe = AutoencoderPipeline.from_pretrained(vae_dir, device="cpu")
    frames = np.zeros((1, 32, 64, 3), np.uint8)
    frames[:, :, np.arange(64) % 4 >= 1] = 255
    frames[:, :, np.arange(64) % 4 == 3] = 0  # columns 1 and 2 of every 4 white: a triangle filter 4 wide averages to 127.5
    x, notes = pipe._to_tensor(frames)
    assert x.shape == (1, 3, 1, 16, 16) and x.dtype == torch.float32
    assert notes == [f"resized from 64x32 to 16x16, the size {vae_dir} was trained at"]
    assert torch.allclose(x[..., 1:-1], torch.zeros(()), atol=1e-4)  # away from the edges, where the filter is cut
    same, none = pipe._to_tensor(np.full((2, 16, 16, 3), 255, np.uint8))
    assert none == [] and torch.equal(same, torch.ones(1, 3, 2, 16, 16))  # at the training size: only scaled to [-1, 1]
