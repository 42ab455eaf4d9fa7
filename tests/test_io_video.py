"""Video I/O: round trips, quality, clip sampling, atomic writes, errors and provenance."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageSequence

import kinema.io.video as video_module
from kinema.io import Provenance, VideoReadError, probe, read_provenance, read_video, write_video

CONTAINERS = ["mp4", "mov", "webm", "avi"]


def index_level(index: int) -> int:
    return 10 + 7 * index  # distinct by 7 grey levels: survives lossy codecs, fits 32 frames in uint8


def frame_index(frame: np.ndarray) -> int:
    return round((float(frame[:8, :8].mean()) - 10) / 7)


def moving_square(num_frames: int = 16, height: int = 64, width: int = 64) -> np.ndarray:
    """Shapes-like clip: a red square moving right on black; a corner patch's grey level says the frame index."""
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    for i in range(num_frames):
        x = 8 + (2 * i) % (width - 24)
        frames[i, 20:36, x : x + 16] = (220, 40, 40)
        frames[i, :8, :8] = index_level(i)
    return frames


def soft_shapes(num_frames: int = 16, size: int = 64, colours=((230, 60, 50), (40, 110, 235))) -> np.ndarray:
    """A disc and a square moving across black, anti-aliased by 4x supersampling, as rendered video looks."""
    ss = 4
    yy, xx = (np.mgrid[0 : size * ss, 0 : size * ss] + 0.5) / ss
    frames = np.zeros((num_frames, size, size, 3))
    for i in range(num_frames):
        canvas = np.zeros((size * ss, size * ss, 3))
        canvas[(xx - (12 + 2.2 * i)) ** 2 + (yy - 34) ** 2 < 10**2] = colours[0]
        canvas[(abs(xx - (50 - 1.5 * i)) < 7) & (abs(yy - (14 + i)) < 7)] = colours[1]
        frames[i] = canvas.reshape(size, ss, size, ss, 3).mean(axis=(1, 3))
    return np.round(frames).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def yuv420_round_trip(frames: np.ndarray) -> np.ndarray:
    """The frames after RGB -> yuv420p -> RGB alone: the best any yuv420p codec can do."""
    frames = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p") for f in frames]
    return np.stack([f.to_ndarray(format="rgb24") for f in frames])


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".webm", ".avi", ".gif", ".png", ""])
def test_round_trip_keeps_frame_count_size_and_fps(tmp_path, suffix):
    frames = moving_square()
    path = tmp_path / f"clip{suffix}"
    assert write_video(path, frames, fps=12) == path
    video = read_video(path)
    assert video.frames.shape == frames.shape
    assert video.frames.dtype == np.uint8
    assert video.fps == pytest.approx(12)
    assert [frame_index(f) for f in video.frames] == list(range(16))
    info = probe(path)
    assert (info.num_frames, info.width, info.height) == (16, 64, 64)
    assert info.fps == pytest.approx(12)
    assert info.duration == pytest.approx(16 / 12)


@pytest.mark.parametrize("name", ["CLIP.MP4", "clip.Gif", "clip.WebM"])
def test_an_upper_case_suffix_names_the_same_format(tmp_path, name):
    frames = moving_square()
    path = write_video(tmp_path / name, frames, fps=12)
    assert listing(tmp_path) == [name]  # written where asked, not beside it
    video = read_video(path)
    assert video.frames.shape == frames.shape and [frame_index(f) for f in video.frames] == list(range(16))
    lower = probe(write_video(tmp_path / "lower" / name.lower(), frames, fps=12))
    assert (probe(path).container, probe(path).codec) == (lower.container, lower.codec) == (name.split(".")[1].lower(), lower.codec)


def test_png_folder_round_trip_is_exact(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (5, 17, 23, 3), dtype=np.uint8)
    write_video(tmp_path / "frames", frames, fps=5)
    assert listing(tmp_path / "frames") == [f"000{i}.png" for i in range(5)] + ["provenance.json"]
    video = read_video(tmp_path / "frames")
    np.testing.assert_array_equal(video.frames, frames)
    assert video.fps == 5


def test_png_folder_without_sidecar_uses_default_fps_and_natural_order(tmp_path):
    frames = moving_square(12)
    folder = tmp_path / "loose"
    folder.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame_{i}.png")  # frame_10 must come after frame_9
    video = read_video(folder)
    assert [frame_index(f) for f in video.frames] == list(range(12))
    assert video.fps == 8
    assert read_video(folder, default_fps=24).fps == 24


def test_png_frames_with_alpha_or_a_palette_read_as_rgb(tmp_path):
    """A user's frames exported with transparency (RGBA) or as palette PNGs: RGB frames, the colour channels as drawn."""
    frames = moving_square(3)
    folder = tmp_path / "exported"
    folder.mkdir()
    Image.fromarray(np.dstack([frames[0], np.full(frames.shape[1:3], 128, np.uint8)]), "RGBA").save(folder / "0000.png")
    Image.fromarray(frames[1]).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(folder / "0001.png")
    Image.fromarray(frames[2]).save(folder / "0002.png")
    video = read_video(folder)
    assert video.frames.shape == (3, *frames.shape[1:3], 3) and video.frames.dtype == np.uint8
    np.testing.assert_array_equal(video.frames[0], frames[0])
    np.testing.assert_array_equal(video.frames[2], frames[2])
    assert np.abs(video.frames[1].astype(int) - frames[1]).max() <= 8  # an 8-colour palette of a two-colour frame


def test_torch_tensor_frames_are_accepted(tmp_path):
    torch = pytest.importorskip("torch")
    frames = moving_square(4)
    write_video(tmp_path / "t.png", torch.from_numpy(frames))
    np.testing.assert_array_equal(read_video(tmp_path / "t.png").frames, frames)


def test_fractional_fps_survives(tmp_path):
    write_video(tmp_path / "ntsc.mp4", moving_square(8), fps=30000 / 1001)
    assert probe(tmp_path / "ntsc.mp4").fps == pytest.approx(29.97, abs=0.01)


# --- quality ---------------------------------------------------------------------------------


def test_mp4_crf18_psnr_above_40db_on_antialiased_luma_shapes(tmp_path):
    # Grey shapes keep chroma out of it: this measures the codec at CRF 18 (about 48 dB here).
    frames = soft_shapes(colours=((230, 230, 230), (120, 120, 120)))
    write_video(tmp_path / "grey.mp4", frames, crf=18)
    assert psnr(read_video(tmp_path / "grey.mp4").frames, frames) >= 40


def test_mp4_crf18_on_saturated_shapes_reaches_the_yuv420_ceiling(tmp_path):
    # Halved chroma caps saturated colour edges near 32 dB at 64x64 whatever the codec does;
    # CRF 18 must come within 1 dB of that cap (CRF 35 falls 3 dB short).
    frames = soft_shapes()
    ceiling = psnr(yuv420_round_trip(frames), frames)
    write_video(tmp_path / "colour.mp4", frames, crf=18)
    assert psnr(read_video(tmp_path / "colour.mp4").frames, frames) >= ceiling - 1.0


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_crf18_yuv444_psnr_above_40db_on_shapes_videos(tmp_path, suffix):
    # Real Captioned Shapes renders: full-resolution colour keeps saturated edges above 40 dB.
    from kinema.data.shapes import CaptionedShapes

    ds = CaptionedShapes("test", num_samples=4)
    for i in range(len(ds)):
        frames = ds.render(i)
        write_video(tmp_path / f"{i}{suffix}", frames, crf=18, pix_fmt="yuv444p")
        decoded = read_video(tmp_path / f"{i}{suffix}")
        assert decoded.frames.shape == frames.shape and decoded.fps == 8
        assert psnr(decoded.frames, frames) >= 40


def test_pix_fmt_is_checked(tmp_path):
    with pytest.raises(ValueError, match="pix_fmt"):
        write_video(tmp_path / "x.mp4", moving_square(2), pix_fmt="rgb24")


def test_crf_changes_quality(tmp_path):
    frames = soft_shapes(colours=((230, 230, 230), (120, 120, 120)))
    write_video(tmp_path / "hi.mp4", frames, crf=18)
    write_video(tmp_path / "lo.mp4", frames, crf=40)
    high, low = (psnr(read_video(tmp_path / name).frames, frames) for name in ("hi.mp4", "lo.mp4"))
    assert high > low + 5


def test_gif_uses_an_adaptive_palette(tmp_path):
    y, x = np.mgrid[0:64, 0:64]
    background = np.stack([x * 2, y * 2, 180 - x - y], axis=-1).clip(0, 255).astype(np.uint8)
    frames = np.maximum(soft_shapes(), background)  # gradients: far more than a fixed palette's colours
    write_video(tmp_path / "rich.gif", frames)
    assert psnr(read_video(tmp_path / "rich.gif").frames, frames) >= 35  # ~38.8 dB measured


def test_gif_keeps_frame_count_when_frames_repeat(tmp_path):
    # Pillow merges identical consecutive frames into one longer frame; reading must undo it.
    frames = moving_square(16)
    frames[5:11] = frames[5]
    frames[5:11, :8, :8] = index_level(5)
    write_video(tmp_path / "pause.gif", frames, fps=8)
    video = read_video(tmp_path / "pause.gif")
    assert video.fps == 8
    assert [frame_index(f) for f in video.frames] == [0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 11, 12, 13, 14, 15]


def test_gif_rejects_rates_it_cannot_play(tmp_path):
    with pytest.raises(ValueError, match="50 fps"):
        write_video(tmp_path / "fast.gif", moving_square(4), fps=60)


# --- odd sizes -------------------------------------------------------------------------------


def test_odd_size_is_padded_to_even_for_mp4(tmp_path):
    frames = moving_square(8, height=63, width=65)
    frames[:, -1, :] = (90, 160, 200)  # coloured edges, so padding with black would show
    frames[:, :, -1] = (200, 160, 90)
    write_video(tmp_path / "odd.mp4", frames)
    decoded = read_video(tmp_path / "odd.mp4").frames
    assert decoded.shape == (8, 64, 66, 3)
    assert psnr(decoded[:, :63, :65], frames) > 30
    # the added row and column repeat the edge: they decode like the edge, and not as black
    added_row, edge_row = decoded[:, 63, :65].astype(int), decoded[:, 62, :65].astype(int)
    added_col, edge_col = decoded[:, :63, 65].astype(int), decoded[:, :63, 64].astype(int)
    assert np.abs(added_row - edge_row).mean() < 3 and np.abs(added_col - edge_col).mean() < 3
    assert added_row.mean() == pytest.approx(frames[:, -1].mean(), abs=10)
    assert added_col.mean() == pytest.approx(frames[:, :, -1].mean(), abs=10)


@pytest.mark.parametrize("suffix", [".png", ".webm", ".gif"])
def test_odd_size_is_kept_where_the_format_allows(tmp_path, suffix):
    frames = moving_square(4, height=63, width=65)
    write_video(tmp_path / f"odd{suffix}", frames)
    decoded = read_video(tmp_path / f"odd{suffix}").frames
    assert decoded.shape == frames.shape
    if suffix == ".png":
        np.testing.assert_array_equal(decoded, frames)


# --- clip sampling, resize, crop -------------------------------------------------------------


@pytest.fixture(params=["png", "mp4"])
def clip32(request, tmp_path) -> Path:
    """32 frames at 16 fps, each carrying its index; PNG is exact, mp4 exercises the decoder path."""
    path = tmp_path / ("clip32" if request.param == "png" else "clip32.mp4")
    write_video(path, moving_square(32), fps=16)
    return path


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"start": 5, "num_frames": 4}, [5, 6, 7, 8]),
        ({"start": 3, "num_frames": 5, "stride": 4}, [3, 7, 11, 15, 19]),
        ({"start": 28}, [28, 29, 30, 31]),
        ({"start": 20, "stride": 5}, [20, 25, 30]),
        ({"fps": 8, "num_frames": 4}, [0, 2, 4, 6]),
        ({"fps": 6, "num_frames": 4}, [0, 3, 5, 8]),  # nearest source frame to t = 0, 1/6, 2/6, 3/6 s
        ({"fps": 24, "start": 10, "num_frames": 6}, [10, 11, 11, 12, 13, 13]),
    ],
)
def test_clip_sampling_picks_the_right_frames(clip32, kwargs, expected):
    video = read_video(clip32, **kwargs)
    assert [frame_index(f) for f in video.frames] == expected


def test_clip_fps_reports_the_sampled_rate(clip32):
    assert read_video(clip32, stride=2).fps == 8
    assert read_video(clip32, fps=6).fps == 6
    assert read_video(clip32, fps=8).num_frames == 16


@pytest.mark.parametrize(
    "kwargs",
    [{"start": 30, "num_frames": 4}, {"num_frames": 9, "stride": 4}, {"start": 40}, {"fps": 8, "num_frames": 17}],
)
def test_asking_for_more_frames_than_exist_raises(clip32, kwargs):
    with pytest.raises(VideoReadError, match=clip32.name):
        read_video(clip32, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"start": -1}, {"num_frames": 0}, {"stride": 0}, {"fps": 0}, {"fps": 8, "stride": 2}, {"size": 0}, {"crop": (1, 2, 3)}],
)
def test_bad_clip_arguments_raise_value_error(clip32, kwargs):
    with pytest.raises(ValueError):
        read_video(clip32, **kwargs)


@pytest.mark.parametrize(
    ("size", "crop", "shape"),
    [
        (32, None, (32, 43)),  # short side 48 -> 32, long side 64 -> 42.7
        ((20, 30), None, (20, 30)),
        (96, None, (96, 128)),  # enlarging
        (None, 24, (24, 24)),
        (32, 24, (24, 24)),
        (None, (16, 40), (16, 40)),
    ],
)
def test_resize_and_crop_shapes(tmp_path, size, crop, shape):
    write_video(tmp_path / "wide", moving_square(4, height=48, width=64))
    assert read_video(tmp_path / "wide", size=size, crop=crop).frames.shape == (4, *shape, 3)


def test_resize_keeps_content_and_crop_takes_the_centre(tmp_path):
    frames = np.zeros((2, 40, 40, 3), np.uint8)
    frames[:, 10:30, 10:30] = (0, 200, 0)  # a green square filling the centre
    write_video(tmp_path / "green", frames)
    half = read_video(tmp_path / "green", size=20).frames
    np.testing.assert_array_equal(half[:, 5:15, 5:15], np.broadcast_to([0, 200, 0], (2, 10, 10, 3)))
    centre = read_video(tmp_path / "green", crop=20).frames
    assert (centre == [0, 200, 0]).all()


def test_crop_larger_than_frame_raises(tmp_path):
    write_video(tmp_path / "small", moving_square(2))
    with pytest.raises(ValueError, match="larger than"):
        read_video(tmp_path / "small", crop=80)


# --- atomic writes ---------------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError("encoder exploded"), KeyboardInterrupt()])
def test_failed_encode_leaves_nothing_behind(tmp_path, monkeypatch, error):
    real = video_module._to_av_frame
    calls = []

    def failing(frame):
        calls.append(1)
        if len(calls) > 4:
            raise error
        return real(frame)

    monkeypatch.setattr(video_module, "_to_av_frame", failing)
    with pytest.raises(type(error)):
        write_video(tmp_path / "clip.mp4", moving_square())
    assert len(calls) == 5  # it really failed midway
    assert listing(tmp_path) == []


def test_failed_gif_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def half_written(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"GIF89a partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        write_video(tmp_path / "clip.gif", moving_square())
    assert listing(tmp_path) == []


def test_failed_png_folder_write_leaves_nothing_behind(tmp_path, monkeypatch):
    real = Image.Image.save
    calls = []

    def failing(self, fp, *args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise OSError("disk full")
        return real(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing)
    with pytest.raises(OSError, match="disk full"):
        write_video(tmp_path / "frames", moving_square())
    assert listing(tmp_path) == []


@pytest.mark.parametrize("name", ["clip.mp4", "clip.gif", "frames"])
def test_existing_target_needs_overwrite(tmp_path, name):
    path = tmp_path / name
    write_video(path, moving_square(4))
    with pytest.raises(FileExistsError):
        write_video(path, moving_square(6))
    assert read_video(path).num_frames == 4
    write_video(path, moving_square(6), overwrite=True)
    assert read_video(path).num_frames == 6
    assert listing(tmp_path) == [name]


# --- input checks ----------------------------------------------------------------------------


def test_wrong_frames_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match=r"frames must be uint8 \(F, H, W, 3\), got float32 \(16, 64, 64\)"):
        write_video(tmp_path / "a.mp4", np.zeros((16, 64, 64), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "a.mp4", np.zeros((4, 3, 64, 64), np.uint8))  # channels first
    with pytest.raises(ValueError, match="empty"):
        write_video(tmp_path / "a.mp4", np.zeros((0, 64, 64, 3), np.uint8))
    assert listing(tmp_path) == []


def test_unknown_suffix_lists_supported_formats(tmp_path):
    with pytest.raises(ValueError, match=r"\.mkv.*\.mp4.*\.webm.*\.gif"):
        write_video(tmp_path / "a.mkv", moving_square(2))
    write_video(tmp_path / "a.mkv", moving_square(2), format="webm")  # an explicit format wins
    assert probe(tmp_path / "a.mkv").codec == "vp9"


def test_bad_encoder_options(tmp_path):
    with pytest.raises(ValueError, match="crf"):
        write_video(tmp_path / "a.mp4", moving_square(2), crf=60)
    with pytest.raises(ValueError, match="preset"):
        write_video(tmp_path / "a.mp4", moving_square(2), preset="warp")


# --- unreadable inputs -----------------------------------------------------------------------


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    write_video(tmp_path / "real.mp4", soft_shapes())
    data = (tmp_path / "real.mp4").read_bytes()
    paths = {
        "corrupt": tmp_path / "noise.mp4",
        "truncated": tmp_path / "half.mp4",
        "empty": tmp_path / "empty.mp4",
        "text": tmp_path / "notes.mp4",
        "image": tmp_path / "still.png",
        "missing": tmp_path / "missing.mp4",
        "empty folder": tmp_path / "no_frames",
        "audio only": tmp_path / "sound.m4a",
        "zero frames": tmp_path / "zero.webm",
    }
    paths["corrupt"].write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["empty"].write_bytes(b"")
    paths["text"].write_text("shopping list: eggs, milk\n" * 20)
    Image.fromarray(soft_shapes(1)[0]).save(paths["image"])
    paths["empty folder"].mkdir()
    with av.open(str(paths["audio only"]), "w", format="ipod") as container:
        stream = container.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with av.open(str(paths["zero frames"]), "w", format="webm") as container:
        # a valid file whose video stream never gets a frame; only the sound does
        video = container.add_stream("libvpx-vp9", rate=8)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        sound = container.add_stream("libopus", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    return paths


@pytest.mark.parametrize(
    "kind", ["corrupt", "truncated", "empty", "text", "image", "missing", "empty folder", "audio only", "zero frames"]
)
def test_unreadable_inputs_raise_video_read_error_naming_the_file(tmp_path, kind):
    path = _bad_inputs(tmp_path)[kind]
    for read in (read_video, probe):
        with pytest.raises(VideoReadError, match=path.name) as caught:
            read(path)
        assert isinstance(caught.value, ValueError)


def test_png_folder_with_mixed_sizes_is_unreadable(tmp_path):
    write_video(tmp_path / "frames", moving_square(3))
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "frames" / "0003.png")
    with pytest.raises(VideoReadError, match="0003.png"):
        read_video(tmp_path / "frames")


# --- probe and metadata ----------------------------------------------------------------------


def test_probe_counts_webm_frames_by_decoding(tmp_path):
    write_video(tmp_path / "clip.webm", moving_square(16))
    with av.open(str(tmp_path / "clip.webm")) as container:
        assert container.streams.video[0].frames == 0  # the container does not say
    info = probe(tmp_path / "clip.webm")
    assert (info.container, info.codec, info.num_frames, info.audio) == ("webm", "vp9", 16, None)


def test_probe_describes_an_mp4(tmp_path):
    write_video(tmp_path / "clip.mp4", moving_square(16), fps=8)
    info = probe(tmp_path / "clip.mp4")
    assert (info.container, info.codec, info.width, info.height) == ("mp4", "h264", 64, 64)
    assert (info.fps, info.num_frames) == (8, 16)
    assert info.duration == 2
    json.dumps(info.to_dict())  # the CLI prints it


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".webm"])
def test_free_form_metadata_round_trips(tmp_path, suffix):
    path = tmp_path / f"tagged{suffix}"
    write_video(path, moving_square(2), metadata={"title": "Circles", "shot": "12b"})
    assert {"title": "Circles", "shot": "12b"}.items() <= read_video(path).metadata.items()


def test_tags_a_container_cannot_hold_are_refused(tmp_path):
    with pytest.raises(ValueError, match="shot"):
        write_video(tmp_path / "a.avi", moving_square(2), metadata={"shot": "12b"})
    with pytest.raises(ValueError, match="title"):
        write_video(tmp_path / "a.gif", moving_square(2), metadata={"title": "x"})
    with pytest.raises(ValueError, match="comment"):
        write_video(tmp_path / "a.mp4", moving_square(2), metadata={"comment": "x"}, provenance=Provenance())


# --- provenance ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".webm", ".avi", ".gif", ""])
def test_provenance_round_trip(tmp_path, suffix):
    record = Provenance(model="shapes-unet", seed=1234, prompt="a red circle moving left ☺", extra={"steps": 25})
    path = tmp_path / f"made{suffix}"
    write_video(path, moving_square(4), provenance=record)
    assert read_provenance(path) == record
    assert probe(path).provenance == record
    assert read_video(path).provenance == record


def test_provenance_lives_where_other_tools_look(tmp_path):
    record = Provenance(seed=7)
    write_video(tmp_path / "a.mp4", moving_square(2), provenance=record)
    with av.open(str(tmp_path / "a.mp4")) as container:
        assert container.metadata["comment"].startswith("kinema-provenance:{")
    write_video(tmp_path / "a.gif", moving_square(2), provenance=record)
    with Image.open(tmp_path / "a.gif") as image:
        assert image.info["comment"].startswith(b"kinema-provenance:")
    write_video(tmp_path / "frames", moving_square(2), provenance=record)
    sidecar = json.loads((tmp_path / "frames" / "provenance.json").read_text())
    assert sidecar["provenance"]["seed"] == 7 and sidecar["fps"] == 8


def test_no_provenance_reads_as_none(tmp_path):
    write_video(tmp_path / "plain.mp4", moving_square(2), metadata={"title": "x"})
    assert read_provenance(tmp_path / "plain.mp4") is None


def test_provenance_record():
    record = Provenance(model="m", seed=1, prompt="p")
    assert record.generator.startswith("kinema ")
    assert record.created.endswith("+00:00")  # UTC
    assert Provenance.from_json(record.to_json()) == record
    newer = {**record.to_dict(), "sampler": "ddim"}  # a key from a later version is kept, not dropped
    assert Provenance.from_dict(newer).extra == {"sampler": "ddim"}
    assert Provenance.from_tag("a comment someone else wrote") is None
    with pytest.warns(UserWarning, match="damaged"):
        assert Provenance.from_tag("kinema-provenance:{not json") is None


def test_a_provenance_tag_is_readable_sorted_json_and_damaged_ones_only_warn():
    """Other tools (ffprobe, exiftool) show the tag as stored: the prompt must read as the user wrote it."""
    record = Provenance(
        generator="kinema 9.9", model="m", seed=3, prompt="un cercle rouge ☺", created="2026-01-01T00:00:00+00:00",
        extra={"steps": 25},
    )
    assert record.to_tag() == (
        'kinema-provenance:{"created": "2026-01-01T00:00:00+00:00", "extra": {"steps": 25}, '
        '"generator": "kinema 9.9", "model": "m", "prompt": "un cercle rouge ☺", "seed": 3}'
    )
    planned = Provenance(prompt="a crimson disc", caption="a large red circle moving right slowly")
    assert planned.to_dict()["caption"] == "a large red circle moving right slowly"
    assert "caption" not in record.to_dict()  # records of unplanned prompts keep the old layout
    merged = Provenance.from_dict({"seed": 1, "extra": {"steps": 25}, "sampler": "ddim"})
    assert (merged.seed, merged.extra) == (1, {"steps": 25, "sampler": "ddim"})
    with pytest.raises(ValueError, match=r"^provenance must be a JSON object, got list$"):
        Provenance.from_dict([1])
    assert Provenance.from_tag(None) is None and Provenance.from_tag("") is None
    with pytest.warns(UserWarning, match=r"^ignoring a damaged kinema provenance tag: provenance must be a JSON object, got list$"):
        assert Provenance.from_tag("kinema-provenance:[1]") is None
    with pytest.warns(UserWarning, match=r"^ignoring a damaged kinema provenance tag: "):
        assert Provenance.from_tag('kinema-provenance:{"colour": 1, "seed": 2, "model": "m", "generator": 4, "nope": 5, "extra": 6}') is None


def test_gif_keeps_a_fractional_rate_it_can_store_exactly(tmp_path):
    """12.5 fps is exactly 8 cs per frame, so it must not be 'snapped' to a whole rate on reading."""
    write_video(tmp_path / "clip.gif", moving_square(8), fps=12.5)
    assert read_video(tmp_path / "clip.gif").fps == 12.5
    assert probe(tmp_path / "clip.gif").duration == pytest.approx(8 / 12.5)


def test_a_sidecar_that_is_not_a_json_object_is_a_read_error(tmp_path):
    """A provenance.json holding a list is a damaged folder: say so, not crash with AttributeError."""
    write_video(tmp_path / "frames", moving_square(2))
    (tmp_path / "frames" / "provenance.json").write_text("[8, 2]")
    with pytest.raises(VideoReadError, match="provenance.json must hold a JSON object"):
        read_video(tmp_path / "frames")


def test_an_audio_only_file_is_named_as_such(tmp_path):
    """Someone who passes a sound file should be told it is audio only, not that it is broken."""
    path = _bad_inputs(tmp_path)["audio only"]
    with pytest.raises(VideoReadError, match=r"no video stream \(audio only\)"):
        read_video(path)


def test_crf_range_ends_are_accepted_and_beyond_them_refused(tmp_path):
    """crf 0 (lossless) and the codec's top value are valid choices; one past either end is a clear error."""
    write_video(tmp_path / "lossless.mp4", moving_square(2), crf=0, preset="ultrafast")
    write_video(tmp_path / "worst.mp4", moving_square(2), crf=51, preset="ultrafast")
    write_video(tmp_path / "worst.webm", moving_square(2), crf=63)
    assert probe(tmp_path / "lossless.mp4").num_frames == 2
    with pytest.raises(ValueError, match="crf must be an int from 0 to 51 for mp4, got -1"):
        write_video(tmp_path / "a.mp4", moving_square(2), crf=-1)
    with pytest.raises(ValueError, match="crf must be an int from 0 to 63 for webm, got 64"):
        write_video(tmp_path / "a.webm", moving_square(2), crf=64)


def test_frames_of_the_wrong_type_name_the_type(tmp_path):
    """A list of frames is a common slip; the message says a list was given."""
    with pytest.raises(ValueError, match=r"array or tensor, got list$"):
        write_video(tmp_path / "a.mp4", [np.zeros((64, 64, 3), np.uint8)])


def test_gif_frames_start_within_half_a_centisecond_of_their_time(tmp_path):
    """GIF delays are whole centiseconds; rounding each start to the nearest one keeps the clip in time with audio."""
    write_video(tmp_path / "third.gif", moving_square(7), fps=3)
    with Image.open(tmp_path / "third.gif") as image:
        delays = [frame.info["duration"] for frame in ImageSequence.Iterator(image)]
    starts = np.cumsum([0, *delays])
    assert len(delays) == 7 and all(d % 10 == 0 for d in delays)
    np.testing.assert_allclose(starts, np.arange(8) * 1000 / 3, atol=5)


def test_frames_with_no_pixels_are_refused_as_empty(tmp_path):
    """A zero-height or zero-width clip is a bug upstream; it gets a clear error, not an encoder failure."""
    for shape in [(2, 0, 64, 3), (2, 64, 0, 3)]:
        with pytest.raises(ValueError, match=r"frames must not be empty, got shape \(2, "):
            write_video(tmp_path / "a.mp4", np.zeros(shape, np.uint8))
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    ("suffix", "container", "codec"),
    [(".mp4", "mp4", "h264"), (".mov", "mov", "h264"), (".webm", "webm", "vp9"), (".avi", "avi", "h264"),
     (".gif", "gif", "gif"), ("", "png_folder", "png")],
)
def test_probe_reports_a_wide_clip_as_width_by_height(tmp_path, suffix, container, codec):
    """`kinema info` must not swap width and height: a 40x24 clip reads as 40 wide, 24 high, in every format."""
    write_video(tmp_path / f"wide{suffix}", moving_square(4, height=24, width=40), fps=10)
    info = probe(tmp_path / f"wide{suffix}")
    assert (info.container, info.codec, info.width, info.height) == (container, codec, 40, 24)
    assert (info.num_frames, info.fps, info.duration) == (4, 10, pytest.approx(0.4))
    assert read_video(tmp_path / f"wide{suffix}").frames.shape == (4, 24, 40, 3)


def test_probe_reports_the_path_as_given(tmp_path, monkeypatch):
    """The path in `kinema info` output is the one the user typed, not a resolved absolute one."""
    monkeypatch.chdir(tmp_path)
    write_video("clip.mp4", moving_square(2))
    assert probe("clip.mp4").path == "clip.mp4"
    assert probe(Path("clip.mp4")).to_dict()["path"] == "clip.mp4"


def test_avi_keeps_each_tag_it_can_store_and_names_the_ones_it_cannot(tmp_path):
    """AVI's seven native tags round trip; any other is refused up front with the list of those it keeps."""
    native = ["artist", "comment", "copyright", "date", "genre", "language", "title"]
    tags = {name: f"{name} value" for name in native}
    write_video(tmp_path / "tagged.avi", moving_square(2), metadata=tags)
    assert tags.items() <= read_video(tmp_path / "tagged.avi").metadata.items()
    message = f"AVI cannot store the tags ['location', 'make']; it keeps only {native} (use .mp4, .mov or .webm for free-form metadata)"
    with pytest.raises(ValueError) as err:
        write_video(tmp_path / "mov-tags.avi", moving_square(2), metadata={"make": "x", "location": "y", "title": "t"})
    assert str(err.value) == message
    assert not (tmp_path / "mov-tags.avi").exists()


@pytest.mark.parametrize(("height", "width", "padded"), [(63, 64, (64, 64)), (64, 65, (64, 66))])
def test_only_the_odd_side_is_padded_for_mp4(tmp_path, height, width, padded):
    """An odd height gains one row and an odd width one column, never the other way round."""
    frames = moving_square(4, height=height, width=width)
    write_video(tmp_path / "odd.mp4", frames)
    decoded = read_video(tmp_path / "odd.mp4").frames
    assert decoded.shape == (4, *padded, 3)
    assert psnr(decoded[:, :height, :width], frames) > 30


def test_gif_plays_up_to_fifty_fps_and_refuses_faster_or_tagged_clips(tmp_path):
    """50 fps is one frame per 2 cs, the fastest a browser plays; above it, or with a tag GIF has no room for, the
    write is refused with the reason, and nothing is written."""
    write_video(tmp_path / "fastest.gif", moving_square(6), fps=50)
    with Image.open(tmp_path / "fastest.gif") as image:
        assert [frame.info["duration"] for frame in ImageSequence.Iterator(image)] == [20] * 6
    video = read_video(tmp_path / "fastest.gif")
    assert video.fps == 50 and [frame_index(f) for f in video.frames] == list(range(6))
    with pytest.raises(ValueError) as err:
        write_video(tmp_path / "faster.gif", moving_square(6), fps=50.5)
    assert str(err.value) == "GIF cannot play faster than 50 fps (delays are in 1/100 s), got 50.5"
    with pytest.raises(ValueError) as err:
        write_video(tmp_path / "tagged.gif", moving_square(2), metadata={"title": "x", "artist": "y"})
    assert str(err.value) == "GIF has no metadata tags except a comment, got ['artist', 'title']"
    assert listing(tmp_path) == ["fastest.gif"]


def test_a_png_frame_of_another_size_is_named_with_both_sizes(tmp_path):
    """The message gives the odd frame's size and the first frame's, each as width x height, so the user can fix it."""
    write_video(tmp_path / "frames", moving_square(2, height=24, width=40))
    Image.fromarray(np.zeros((40, 24, 3), np.uint8)).save(tmp_path / "frames" / "0002.png")
    with pytest.raises(VideoReadError) as err:
        read_video(tmp_path / "frames")
    assert str(err.value) == f"cannot read video '{tmp_path / 'frames'}': 0002.png is 24x40, the first frame is 40x24"
    assert err.value.path == tmp_path / "frames"


def test_still_images_round_trip_and_unreadable_ones_are_value_errors_naming_the_file(tmp_path):
    """First frames for image-to-video: a PNG comes back exactly, the suffix picks the format, and every failure is a
    ValueError naming the file, the one error the CLI turns into a message."""
    from kinema.io.image import read_image, write_image

    image = np.random.default_rng(1).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    assert write_image(tmp_path / "a.png", image) == tmp_path / "a.png"
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), image)
    write_image(tmp_path / "b.JPG", image)
    assert (tmp_path / "b.JPG").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, whatever the case of the suffix
    assert read_image(tmp_path / "b.JPG").shape == (12, 20, 3)
    with pytest.raises(ValueError) as err:
        write_image(tmp_path / "c.png", image[..., :2])
    assert str(err.value) == "image must be uint8 (H, W, 3), got uint8 (12, 20, 2)"
    with pytest.raises(ValueError) as err:
        read_image(tmp_path / "gone.png")
    assert type(err.value) is ValueError and str(err.value) == f"cannot read image {tmp_path / 'gone.png'}: no such file"
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError) as err:
        read_image(tmp_path / "junk.png")
    assert str(err.value).startswith(f"cannot read image {tmp_path / 'junk.png'}: ")
    assert sorted(listing(tmp_path)) == ["a.png", "b.JPG", "junk.png"]


def test_a_single_frame_clip_reads_just_that_frame(clip32):
    """Grabbing one frame (a thumbnail, a first frame for image-to-video) is a complete clip, wherever it starts."""
    for start in (0, 5, 31):
        video = read_video(clip32, start=start, num_frames=1)
        assert video.frames.shape == (1, 64, 64, 3) and frame_index(video.frames[0]) == start


def test_a_file_the_user_may_not_read_says_permission_denied(tmp_path, monkeypatch):
    """A permissions problem must not be reported as a corrupt video: the user would delete a good file."""
    write_video(tmp_path / "locked.mp4", moving_square(2))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(video_module.av, "open", refuse)
    with pytest.raises(VideoReadError) as err:
        read_video(tmp_path / "locked.mp4")
    assert str(err.value) == f"cannot read video '{tmp_path / 'locked.mp4'}': permission denied"
    assert (err.value.path, err.value.reason) == (tmp_path / "locked.mp4", "permission denied")


def _handmade_gif(path: Path, durations_ms: list[int]) -> None:
    """A GIF written by Pillow directly (as another tool would), one pure colour per stored frame."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
    images = [Image.new("RGB", (16, 12), colours[i]) for i in range(len(durations_ms))]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations_ms, loop=0)


@pytest.mark.parametrize(
    "durations, fps, shown",
    [
        ([10, 10, 10], 10.0, [0, 1, 2]),  # delays under 20 ms play as 100 ms in browsers
        ([100, 300, 100], 10.0, [0, 1, 1, 1, 2]),  # a held frame comes back as repeats
        ([100, 100, 100, 1000], 10.0, [0, 1, 2] + [3] * 10),  # a long final pause does not set the period
        ([40, 40, 40, 40], 25.0, [0, 1, 2, 3]),
    ],
)
def test_a_gif_from_another_tool_reads_on_a_constant_frame_rate(tmp_path, durations, fps, shown):
    """GIFs made elsewhere have uneven or tiny delays; the clip must play as long as a browser shows it."""
    _handmade_gif(tmp_path / "other.gif", durations)
    video = read_video(tmp_path / "other.gif")
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    assert video.fps == fps
    assert [tuple(int(c) for c in f[6, 8]) for f in video.frames] == [colours[i] for i in shown]
    assert video.frames.shape == (len(shown), 12, 16, 3)
    info = probe(tmp_path / "other.gif")
    assert (info.num_frames, info.fps, info.width, info.height) == (len(shown), fps, 16, 12)
    expected_ms = sum(d if d >= 20 else 100 for d in durations)
    assert info.duration == pytest.approx(expected_ms / 1000)


def test_the_output_format_comes_from_the_suffix_or_the_format_argument(tmp_path):
    """The user sees the exact bad suffix and the formats to choose from; '.WEBM' as format works like 'webm'."""
    target = tmp_path / "clip.MKV"
    with pytest.raises(ValueError) as info:
        write_video(target, moving_square(2))
    assert str(info.value) == (
        f"cannot write '{target}': unknown video format '.MKV'; supported: "
        ".mp4, .mov, .webm, .avi, .gif, and .png or a directory (a folder of PNG frames)"
    )
    with pytest.raises(ValueError) as info:
        write_video(tmp_path / "clip.mp4", moving_square(2), format="mkv")
    assert str(info.value) == "unknown video format 'mkv'; supported: mp4, mov, webm, avi, gif, png"
    assert listing(tmp_path) == []
    write_video(tmp_path / "clip.MKV", moving_square(2), format=".WEBM")
    assert probe(tmp_path / "clip.MKV").codec == "vp9"
    (tmp_path / "frames.mp4").mkdir()  # an existing directory is a PNG folder whatever its name
    write_video(tmp_path / "frames.mp4", moving_square(2), overwrite=True)
    assert sorted(p.name for p in (tmp_path / "frames.mp4").iterdir()) == ["0000.png", "0001.png", "provenance.json"]


def test_a_gif_comment_that_is_not_utf8_reads_with_replacement_marks(tmp_path):
    """A comment another tool wrote in Latin-1 must not make the GIF unreadable, and must not silently lose letters."""
    images = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    images[0].save(tmp_path / "latin.gif", save_all=True, append_images=images[1:], duration=100, comment=b"caf\xe9 ok")
    video = read_video(tmp_path / "latin.gif")
    assert video.metadata == {"comment": "caf\ufffd ok"} and video.provenance is None
    assert probe(tmp_path / "latin.gif").metadata == {"comment": "caf\ufffd ok"}
    assert (video.num_frames, video.fps) == (2, 10.0)


def test_still_images_are_written_exactly_as_given_or_refused_with_the_shape_named(tmp_path):
    """First frames and previews: a PNG keeps every pixel, the suffix picks the format in any case, and an array
    that is not uint8 RGB (float, RGBA, greyscale) is refused before a file appears, not silently converted."""
    from kinema.io.image import read_image, write_image

    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 3
    assert write_image(str(tmp_path / "a.png"), image) == tmp_path / "a.png"
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), image)
    write_image(tmp_path / "b.JPG", np.full((8, 8, 3), 120, np.uint8))
    with Image.open(tmp_path / "b.JPG") as saved:
        assert saved.format == "JPEG"
    for bad in [image.astype(np.float32), np.zeros((4, 5, 4), np.uint8), np.zeros((4, 5), np.uint8)]:
        with pytest.raises(ValueError) as err:
            write_image(tmp_path / "bad.png", bad)
        assert str(err.value) == f"image must be uint8 (H, W, 3), got {bad.dtype} {bad.shape}"
    with pytest.raises(FileExistsError):
        write_image(tmp_path / "a.png", image)
    assert listing(tmp_path) == ["a.png", "b.JPG"]
    with pytest.raises(ValueError, match=rf"^cannot read image {tmp_path / 'c.png'}: no such file$"):
        read_image(tmp_path / "c.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=rf"^cannot read image {tmp_path / 'junk.png'}: cannot identify image file"):
        read_image(tmp_path / "junk.png")


def _x264_options(path: Path) -> dict[str, str]:
    """The encoder settings x264 writes into every stream it makes (its SEI 'options:' string)."""
    text = path.read_bytes().split(b"options: ", 1)[1].split(b"\x00", 1)[0].decode("ascii")
    return dict(item.split("=", 1) for item in text.split() if "=" in item)


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".avi"])
def test_the_preset_and_crf_asked_for_reach_the_h264_encoder(tmp_path, suffix):
    """A user trading speed for size with preset/crf must get what they asked for, in every H.264 container."""
    fast = _x264_options(write_video(tmp_path / f"fast{suffix}", moving_square(4, 32, 32), crf=30, preset="ultrafast"))
    slow = _x264_options(write_video(tmp_path / f"slow{suffix}", moving_square(4, 32, 32)))  # defaults: crf 18, medium
    assert (fast["crf"], fast["cabac"], fast["subme"], fast["bframes"]) == ("30.0", "0", "0", "0")  # x264's ultrafast
    assert (slow["crf"], slow["cabac"], slow["subme"], slow["bframes"]) == ("18.0", "1", "7", "3")  # x264's medium


def test_a_numpy_fps_is_stored_as_a_plain_number(tmp_path):
    """Rates often come out of numpy arithmetic; a float32 one must still write a PNG folder and read back as given."""
    write_video(tmp_path / "frames", moving_square(3), fps=np.float32(12.5))
    sidecar = json.loads((tmp_path / "frames" / "provenance.json").read_text())
    assert sidecar == {"fps": 12.5, "num_frames": 3, "metadata": {}, "provenance": None}
    video = read_video(tmp_path / "frames")
    assert type(video.fps) is float and video.fps == 12.5


def test_each_bad_clip_argument_is_named_with_its_value(clip32):
    """A typo in a loader config must say which argument is wrong and what it got, before any decoding."""
    cases = [
        ({"start": -1}, "start must be >= 0, got -1"),
        ({"num_frames": 0}, "num_frames must be >= 1 or None, got 0"),
        ({"stride": 0}, "stride must be >= 1, got 0"),
        ({"fps": 0}, "fps must be a positive number, got 0"),
        ({"fps": float("inf")}, "fps must be a positive number, got inf"),
        ({"fps": 8, "stride": 2}, "give either stride or a target fps, not both"),
        ({"size": 0}, "size must be a positive int or (height, width), got 0"),
        ({"size": (32.0, 32)}, "size must be a positive int or (height, width), got (32.0, 32)"),
        ({"crop": (1, 2, 3)}, "crop must be a positive int or (height, width), got (1, 2, 3)"),
        ({"crop": -4}, "crop must be a positive int or (height, width), got -4"),
        ({"crop": (80, 16)}, f"crop 80x16 is larger than the frames of '{clip32}' (64x64 after resizing)"),
        ({"size": 32, "crop": (16, 40)}, f"crop 16x40 is larger than the frames of '{clip32}' (32x32 after resizing)"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError) as err:
            read_video(clip32, **kwargs)
        assert type(err.value) is ValueError and str(err.value) == message, kwargs
    assert read_video(clip32, num_frames=2, size=[16, 24], crop=np.int64(8)).frames.shape == (2, 8, 8, 3)


def test_each_unreadable_input_gets_its_own_plain_reason(tmp_path):
    """The user reads why a file failed: FFmpeg's own words without its errno noise, or what is missing."""
    garbled = "not a video, or corrupt or truncated (FFmpeg: Invalid data found when processing input)"
    reasons = {
        "corrupt": garbled,
        "empty": garbled,
        "text": garbled,
        "image": "it is a still image, not a video",
        "missing": "no such file or directory",
        "empty folder": "the folder holds no .png frames",
        "audio only": "it has no video stream (audio only)",
        "zero frames": "it contains no video frames",
    }
    paths = _bad_inputs(tmp_path)
    for kind, reason in reasons.items():
        for read in (read_video, probe):
            with pytest.raises(VideoReadError) as err:
                read(paths[kind])
            assert (err.value.path, err.value.reason) == (paths[kind], reason), (kind, read.__name__)
            assert str(err.value) == f"cannot read video '{paths[kind]}': {reason}"
    with pytest.raises(VideoReadError) as err:
        probe(paths["truncated"])
    assert err.value.reason == "truncated: it states 16 frames but holds 1"


def test_a_clip_past_the_end_says_how_many_frames_it_found(clip32):
    """A loader misconfigured for short videos reports what was asked and what exists, counted by hand here."""
    cases = [
        ({"start": 30, "num_frames": 4}, "the clip asks for 4 frames from frame 30, but only 2 exist (32 frames in all)"),
        ({"num_frames": 9, "stride": 4}, "the clip asks for 9 frames from frame 0, but only 8 exist (32 frames in all)"),
        ({"fps": 8, "num_frames": 17}, "the clip asks for 17 frames from frame 0, but only 16 exist (32 frames in all)"),
        ({"start": 32}, "start frame 32 is past the end (32 frames)"),
        ({"start": 40, "stride": 3}, "start frame 40 is past the end (32 frames)"),
    ]
    for kwargs, reason in cases:
        with pytest.raises(VideoReadError) as err:
            read_video(clip32, **kwargs)
        assert (err.value.path, err.value.reason) == (clip32, reason), kwargs
    assert [frame_index(f) for f in read_video(clip32, start=31).frames] == [31]


def test_mp4_keeps_provenance_in_the_itunes_comment_atom(tmp_path):
    """QuickTime, iTunes and exiftool read the ©cmt atom; only tags outside the iTunes set need the mdta keys."""
    write_video(tmp_path / "plain.mp4", moving_square(2), provenance=Provenance(seed=7), metadata={"title": "t"})
    data = (tmp_path / "plain.mp4").read_bytes()
    assert b"\xa9cmt" in data and b"\xa9nam" in data and b"mdta" not in data
    write_video(tmp_path / "free.mp4", moving_square(2), metadata={"rating": "5"})
    assert b"mdta" in (tmp_path / "free.mp4").read_bytes()
    assert read_video(tmp_path / "free.mp4").metadata["rating"] == "5"


@pytest.mark.parametrize("runs", [[16], [2, 2], [1, 3, 1]], ids=["still", "two-halves", "held-middle"])
def test_a_gif_of_repeated_frames_reads_back_every_frame_at_its_rate(tmp_path, runs):
    """Pillow stores identical frames in a row as one longer frame; a clip that is mostly still (or all) must still read
    back with its own frame count and rate, not as fewer, slower frames."""
    frames = np.concatenate([np.full((n, 8, 8, 3), 40 * (k + 1), np.uint8) for k, n in enumerate(runs)])
    write_video(tmp_path / "clip.gif", frames, fps=8)
    video = read_video(tmp_path / "clip.gif")
    assert (len(video.frames), video.fps) == (len(frames), 8.0)
    assert np.array_equal(video.frames, frames)
    assert probe(tmp_path / "clip.gif").num_frames == len(frames)


def test_the_gif_timing_note_stays_out_of_the_comment_a_user_reads(tmp_path):
    from kinema.io.provenance import Provenance

    write_video(tmp_path / "p.gif", np.zeros((3, 8, 8, 3), np.uint8), fps=8, provenance=Provenance(model="m", seed=1))
    video = read_video(tmp_path / "p.gif")
    assert video.provenance.model == "m" and "kinema-gif" not in video.metadata.get("comment", "")
