"""Video files in and out: read clips as uint8 arrays, write mp4/mov/webm/avi/gif/PNG folders atomically, probe them."""

from __future__ import annotations

import bisect
import contextlib
import json
import math
import os
import re
import statistics
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageSequence

from kinema.io.atomic import atomic_dir, atomic_path
from kinema.io.audio import AudioTrack, load_soundtrack
from kinema.io.provenance import Provenance

DEFAULT_FPS = 8.0
SIDECAR = "provenance.json"  # fps, tags and provenance of a PNG folder

Size = int | tuple[int, int]
FrameLoader = Callable[[], np.ndarray]


class VideoReadError(ValueError):
    """A file could not be read as a video; the message names the file and the reason.

    Raise it as ``VideoReadError(path, reason)``; a single argument is taken as the whole message.
    """

    def __init__(self, path: str | os.PathLike, reason: str | None = None) -> None:
        self.path = path
        self.reason = reason
        super().__init__(str(path) if reason is None else f"cannot read video '{path}': {reason}")


@dataclass
class Video:
    """Decoded frames with their rate and whatever the file said about itself."""

    frames: np.ndarray  # (F, H, W, 3) uint8
    fps: float
    metadata: dict[str, str] = field(default_factory=dict)
    provenance: Provenance | None = None

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


@dataclass
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int
    duration: float  # seconds


@dataclass
class VideoInfo:
    """What ``probe`` (and ``kinema info``) reports about a video file."""

    path: str
    container: str  # mp4, mov, webm, avi, gif, png_folder, ...
    codec: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float  # num_frames / fps
    audio: AudioInfo | None = None
    provenance: Provenance | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Reading: each container kind opens as a _Source, a lazy stream of frames plus what it knows.


@dataclass
class _Source:
    container: str
    codec: str
    width: int
    height: int
    fps: float
    frames: Iterator[FrameLoader]  # in display order; calling a loader gives (H, W, 3) uint8
    count: int | None  # frame count the file states, None when it does not (webm)
    metadata: dict[str, str] = field(default_factory=dict)
    provenance: Provenance | None = None
    audio: AudioInfo | None = None
    verify: Callable[[], None] | None = None  # cheap check that the stated frames are really there


# How Pillow reports a broken image (FFmpeg's errors are handled on their own).
_PILLOW_ERRORS = (OSError, EOFError, SyntaxError)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn whatever a decoder raises into one VideoReadError naming the file."""
    if not path.exists():
        raise VideoReadError(path, "no such file or directory")
    try:
        yield
    except VideoReadError:
        raise
    except PermissionError as err:
        raise VideoReadError(path, "permission denied") from err
    except av.FFmpegError as err:
        raise VideoReadError(path, f"not a video, or corrupt or truncated (FFmpeg: {err.strerror or err})") from err
    except _PILLOW_ERRORS as err:
        raise VideoReadError(path, f"not a video, or corrupt or truncated ({err})") from err


@contextlib.contextmanager
def _open_source(path: Path, default_fps: float) -> Iterator[_Source]:
    with _reading(path):
        if path.is_dir():
            yield _open_png_folder(path, default_fps)
        elif _is_gif(path):
            yield _open_gif(path)
        else:
            with av.open(str(path)) as container:
                yield _open_av(path, container)


def _is_gif(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(6) in (b"GIF87a", b"GIF89a")


def _natural_key(path: Path) -> list[int | str]:
    # frame_2.png before frame_10.png, as a person would sort them
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _open_png_folder(path: Path, default_fps: float) -> _Source:
    files = sorted((p for p in path.iterdir() if p.suffix.lower() == ".png" and p.is_file()), key=_natural_key)
    if not files:
        raise VideoReadError(path, "the folder holds no .png frames")
    sidecar = _read_sidecar(path)
    with Image.open(files[0]) as first:
        width, height = first.size
    raw = sidecar.get("provenance")
    return _Source(
        container="png_folder",
        codec="png",
        width=width,
        height=height,
        fps=float(sidecar.get("fps") or default_fps),
        frames=(partial(_load_png, p, (width, height)) for p in files),
        count=len(files),
        metadata={str(k).lower(): str(v) for k, v in (sidecar.get("metadata") or {}).items()},
        provenance=Provenance.from_dict(raw) if raw else None,
    )


def _read_sidecar(folder: Path) -> dict[str, Any]:
    sidecar = folder / SIDECAR
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise VideoReadError(folder, f"{SIDECAR} is not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise VideoReadError(folder, f"{SIDECAR} must hold a JSON object")
    return data


def _load_png(path: Path, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as image:
        if image.size != size:
            found, first = "x".join(map(str, image.size)), "x".join(map(str, size))
            raise VideoReadError(path.parent, f"{path.name} is {found}, the first frame is {first}")
        return np.asarray(image.convert("RGB"))


def _open_gif(path: Path) -> _Source:
    with Image.open(path) as image:
        comment = image.info.get("comment", b"")
        durations, frames = [], []
        for frame in ImageSequence.Iterator(image):
            durations.append(frame.info.get("duration", 0))
            frames.append(np.asarray(frame.convert("RGB")))
    text = comment.decode("utf-8", errors="replace") if isinstance(comment, bytes) else str(comment)
    text, stated = _gif_timing(text)
    shown, fps = _gif_timeline(durations, stated)
    return _Source(
        container="gif",
        codec="gif",
        width=frames[0].shape[1],
        height=frames[0].shape[0],
        fps=fps,
        frames=(partial(np.asarray, frames[i]) for i in shown),
        count=len(shown),
        metadata={"comment": text} if text else {},
        provenance=Provenance.from_tag(text),
    )


def _gif_timing(comment: str) -> tuple[str, tuple[int, float] | None]:
    """The comment without the frame count and rate Kinema's GIF writer adds to it, and (frames, fps) when it is there."""
    lines = comment.split("\n")
    kept, stated = [], None
    for line in lines:
        match = _GIF_TIMING.fullmatch(line)
        if match:
            stated = (int(match[1]), float(match[2]))
        else:
            kept.append(line)
    return "\n".join(kept), stated


def _gif_timeline(durations_ms: list[int], stated: tuple[int, float] | None = None) -> tuple[list[int], float]:
    """Map stored GIF frames onto a constant frame rate: (stored frame shown in each slot, fps).

    A GIF is not a frame sequence at a rate: delays are whole centiseconds, and
    encoders (Pillow included) merge identical consecutive frames into one longer
    frame. The typical delay gives the period; each slot shows the stored frame
    visible at its middle, so merged frames come back as repeats. A GIF Kinema wrote
    states its frame count and rate (``stated``), which is what a clip whose frames
    were mostly merged (a still clip) needs: its typical delay is no period.
    """
    delays = [d if d >= 20 else 100 for d in durations_ms]  # browsers show delays under 20 ms as 100 ms
    total = sum(delays)
    if stated is not None and stated[0] >= len(delays) and abs(total - 1000 * stated[0] / stated[1]) <= 10 * len(delays):
        count, fps = stated
    else:
        typical = statistics.median(delays)
        period = statistics.fmean(d for d in delays if d <= 1.5 * typical)
        count = max(1, round(total / period))
        fps = count * 1000 / total
        if abs(fps - round(fps)) <= 0.01 * fps:  # centisecond delays cannot say 8 fps exactly; 7.98 means 8
            fps = float(round(fps))
    starts = np.cumsum([0, *delays[:-1]]).tolist()
    shown = [bisect.bisect_right(starts, (j + 0.5) * total / count) - 1 for j in range(count)]
    return shown, fps


def _open_av(path: Path, container: av.container.InputContainer) -> _Source:
    names = container.format.name.split(",")
    if any(name == "image2" or name.endswith("_pipe") for name in names):
        raise VideoReadError(path, "it is a still image, not a video")
    stream = next((s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic), None)
    if stream is None:
        raise VideoReadError(path, "it has no video stream" + (" (audio only)" if container.streams.audio else ""))
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate:
        raise VideoReadError(path, "its video stream states no frame rate")
    stream.thread_type = "AUTO"
    metadata = {k.lower(): v for k, v in container.metadata.items()}
    suffix = path.suffix.lower().lstrip(".")
    return _Source(
        container=suffix if suffix in names else names[0],
        codec=stream.codec_context.codec.canonical_name,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        fps=float(rate),
        frames=(partial(frame.to_ndarray, format="rgb24") for frame in container.decode(stream)),
        count=stream.frames or None,
        metadata=metadata,
        provenance=Provenance.from_tag(metadata.get("comment")),
        audio=_audio_info(container),
        verify=partial(_verify_packets, path, container, stream) if stream.frames else None,
    )


def _verify_packets(path: Path, container: av.container.InputContainer, stream: av.video.VideoStream) -> None:
    # Demuxing reads no pixels, so this finds a cut-off download at a fraction of a decode.
    packets = sum(1 for packet in container.demux(stream) if packet.size)
    if packets < stream.frames:
        raise VideoReadError(path, f"truncated: it states {stream.frames} frames but holds {packets}")


def _audio_info(container: av.container.InputContainer) -> AudioInfo | None:
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    return AudioInfo(
        codec=stream.codec_context.codec.canonical_name,
        sample_rate=stream.codec_context.sample_rate,
        channels=stream.codec_context.channels,
        duration=_audio_duration(container, stream),
    )


def _audio_duration(container: av.container.InputContainer, stream: av.audio.AudioStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    # Matroska keeps per-stream durations as a tag, "HH:MM:SS.nnnnnnnnn".
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return container.duration / av.time_base if container.duration else 0.0


def _as_size(name: str, value: Any) -> Size | None:
    """Check a size or crop argument: None, a positive int, or (height, width)."""
    def positive(n: Any) -> bool:
        return isinstance(n, (int, np.integer)) and n > 0

    if value is None:
        return None
    if positive(value):
        return int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(positive, value)):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be a positive int or (height, width), got {value!r}")


def _check_clip(start: int, num_frames: int | None, stride: int, fps: float | None) -> None:
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    if num_frames is not None and num_frames < 1:
        raise ValueError(f"num_frames must be >= 1 or None, got {num_frames}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if fps is not None and stride != 1:
        raise ValueError("give either stride or a target fps, not both")


def _clip_indices(start: int, num_frames: int | None, stride: int, step: float | None) -> Iterator[int]:
    """Source frame indices of the clip in order; ``step`` (source frames per output frame) overrides stride."""
    j = 0
    while num_frames is None or j < num_frames:
        yield start + (j * stride if step is None else math.floor(j * step + 0.5))
        j += 1


def _resize(image: np.ndarray, size: Size) -> np.ndarray:
    height, width = image.shape[:2]
    if isinstance(size, int):
        scale = size / min(height, width)  # size is the short side
        target = (max(1, round(height * scale)), max(1, round(width * scale)))
    else:
        target = size
    if target == (height, width):
        return image
    # Box is area averaging when shrinking; bicubic when any side grows.
    shrink = target[0] <= height and target[1] <= width
    resample = Image.Resampling.BOX if shrink else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(image).resize((target[1], target[0]), resample))


def _center_crop(image: np.ndarray, crop: Size, path: Path) -> np.ndarray:
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    height, width = image.shape[:2]
    if ch > height or cw > width:
        raise ValueError(f"crop {ch}x{cw} is larger than the frames of '{path}' ({height}x{width} after resizing)")
    top, left = (height - ch) // 2, (width - cw) // 2
    return image[top : top + ch, left : left + cw]


def read_video(
    path: str | os.PathLike,
    start: int = 0,
    num_frames: int | None = None,
    stride: int = 1,
    fps: float | None = None,
    size: Size | None = None,
    crop: Size | None = None,
    *,
    default_fps: float = DEFAULT_FPS,
) -> Video:
    """Read a clip from an mp4/webm/mov/avi/gif file or a folder of PNG frames.

    The clip starts at frame ``start`` and takes every ``stride``-th frame, or,
    with ``fps``, the source frame nearest each tick of that rate. ``num_frames``
    None reads to the end; asking for more frames than exist raises
    VideoReadError rather than padding. ``size`` resizes (an int sets the short
    side, or (height, width)); ``crop`` then centre-crops (int or (height, width)).
    ``default_fps`` is the rate of a PNG folder without a provenance.json.
    """
    path = Path(path)
    _check_clip(start, num_frames, stride, fps)
    size, crop = _as_size("size", size), _as_size("crop", crop)
    with _open_source(path, default_fps) as source:
        step = None if fps is None else source.fps / fps
        wanted = _clip_indices(start, num_frames, stride, step)
        picked, seen, ended = _take_clip(source.frames, wanted, partial(_prepare, size=size, crop=crop, path=path))
        if ended:
            _check_clip_complete(path, source, seen, len(picked), start, num_frames)
        return Video(
            frames=np.stack(picked),
            fps=fps if fps is not None else source.fps / stride,
            metadata=source.metadata,
            provenance=source.provenance,
        )


def _prepare(image: np.ndarray, size: Size | None, crop: Size | None, path: Path) -> np.ndarray:
    image = _resize(image, size) if size is not None else image
    return _center_crop(image, crop, path) if crop is not None else image


def _take_clip(
    frames: Iterator[FrameLoader], wanted: Iterator[int], prepare: Callable[[np.ndarray], np.ndarray]
) -> tuple[list[np.ndarray], int, bool]:
    """Decode up to the last wanted index; returns (clip frames, frames seen, whether the file ended first)."""
    picked: list[np.ndarray] = []
    target = next(wanted, None)
    seen = 0
    for index, load in enumerate(frames):
        seen = index + 1
        if index != target:
            continue
        image = prepare(load())  # only wanted frames pay for RGB conversion and resizing
        while target == index:  # a target fps above the source's repeats frames
            picked.append(image)
            target = next(wanted, None)
        if target is None:
            return picked, seen, False
    return picked, seen, True


def _check_clip_complete(
    path: Path, source: _Source, seen: int, picked: int, start: int, num_frames: int | None
) -> None:
    if seen == 0:
        raise VideoReadError(path, "it contains no video frames")
    if source.count is not None and seen < source.count:
        raise VideoReadError(path, f"truncated: it states {source.count} frames but only {seen} decode")
    if num_frames is not None:
        raise VideoReadError(
            path, f"the clip asks for {num_frames} frames from frame {start}, but only {picked} exist "
            f"({seen} frames in all)",
        )
    if picked == 0:
        raise VideoReadError(path, f"start frame {start} is past the end ({seen} frames)")


def probe(path: str | os.PathLike, *, default_fps: float = DEFAULT_FPS) -> VideoInfo:
    """Describe a video file or PNG folder; frames are counted by decoding when the file does not say."""
    path = Path(path)
    with _open_source(path, default_fps) as source:
        if source.count is None:
            count = sum(1 for _ in source.frames)
        else:
            if source.verify is not None:
                source.verify()
            count = source.count
        if count == 0:
            raise VideoReadError(path, "it contains no video frames")
        return VideoInfo(
            path=str(path),
            container=source.container,
            codec=source.codec,
            width=source.width,
            height=source.height,
            fps=source.fps,
            num_frames=count,
            duration=count / source.fps,
            audio=source.audio,
            provenance=source.provenance,
            metadata=source.metadata,
        )


def read_provenance(path: str | os.PathLike) -> Provenance | None:
    """The provenance record embedded in a video file or PNG folder, or None."""
    path = Path(path)
    with _open_source(path, DEFAULT_FPS) as source:
        return source.provenance


# ---------------------------------------------------------------------------------------------
# Writing


@dataclass(frozen=True)
class _Codecs:
    muxer: str
    video: str
    audio: str
    tags: frozenset[str]  # tags the muxer stores natively


# Tags each muxer stores natively, measured with this FFmpeg: mp4/mov drop any other
# key unless use_metadata_tags is on, and avi drops it always.
_MP4_TAGS = frozenset(
    "album album_artist artist comment composer copyright date description episode_id genre "
    "grouping keywords lyrics network show synopsis title".split()
)
_MOV_TAGS = frozenset("album comment copyright date genre location make model title".split())
_AVI_TAGS = frozenset("artist comment copyright date genre language title".split())
_CONTAINERS = {
    "mp4": _Codecs("mp4", "libx264", "aac", _MP4_TAGS),
    "mov": _Codecs("mov", "libx264", "aac", _MOV_TAGS),
    "webm": _Codecs("webm", "libvpx-vp9", "libopus", frozenset()),  # Matroska keeps any tag
    # PCM: AVI's MP3 durations are estimates, and lossless costs little at clip lengths
    "avi": _Codecs("avi", "libx264", "pcm_s16le", _AVI_TAGS),
}
FORMATS = (*_CONTAINERS, "gif", "png")
_X264_PRESETS = tuple("ultrafast superfast veryfast faster fast medium slow slower veryslow placebo".split())
_GIF_MAX_FPS = 50  # delays are whole centiseconds and browsers slow anything under 2 cs


def _output_format(path: Path, format: str | None) -> str:
    if format is not None:
        name = format.lower().lstrip(".")
        if name not in FORMATS:
            raise ValueError(f"unknown video format {format!r}; supported: {', '.join(FORMATS)}")
        return name
    if path.is_dir() or not path.suffix:
        return "png"
    name = path.suffix.lower().lstrip(".")
    if name not in FORMATS:
        raise ValueError(
            f"cannot write '{path}': unknown video format '{path.suffix}'; supported: "
            ".mp4, .mov, .webm, .avi, .gif, and .png or a directory (a folder of PNG frames)"
        )
    return name


def _as_frames(frames: Any) -> np.ndarray:
    if type(frames).__module__.startswith("torch"):
        dtype = str(frames.dtype).removeprefix("torch.")
        if dtype != "uint8":  # checked before .numpy(), which fails on bfloat16
            raise ValueError(f"frames must be uint8 (F, H, W, 3), got {dtype} {tuple(frames.shape)}")
        frames = frames.detach().cpu().numpy()
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"frames must be a uint8 (F, H, W, 3) array or tensor, got {type(frames).__name__}")
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (F, H, W, 3), got {frames.dtype} {frames.shape}")
    if 0 in frames.shape:
        raise ValueError(f"frames must not be empty, got shape {frames.shape}")
    return frames


def _tags(metadata: dict[str, Any] | None, provenance: Provenance | None) -> dict[str, str]:
    tags = {str(k).lower(): str(v) for k, v in (metadata or {}).items()}
    if provenance is not None:
        if "comment" in tags:
            raise ValueError("metadata['comment'] clashes with provenance, which is stored in the comment tag")
        tags["comment"] = provenance.to_tag()
    return tags


_PIX_FMTS = ("yuv420p", "yuv444p")


def _check_encoder(kind: str, crf: int, preset: str, tags: dict[str, str]) -> None:
    top = 63 if kind == "webm" else 51
    if not (isinstance(crf, (int, np.integer)) and 0 <= crf <= top):
        raise ValueError(f"crf must be an int from 0 to {top} for {kind}, got {crf!r}")
    if _CONTAINERS[kind].video == "libx264" and preset not in _X264_PRESETS:
        raise ValueError(f"preset must be one of {', '.join(_X264_PRESETS)}, got {preset!r}")
    if kind == "avi" and (unknown := set(tags) - _AVI_TAGS):
        raise ValueError(
            f"AVI cannot store the tags {sorted(unknown)}; it keeps only {sorted(_AVI_TAGS)} "
            "(use .mp4, .mov or .webm for free-form metadata)"
        )


def write_video(
    path: str | os.PathLike,
    frames: Any,
    fps: float = 8,
    *,
    crf: int = 18,
    preset: str = "medium",
    pix_fmt: str = "yuv420p",
    audio: str | os.PathLike | None = None,
    provenance: Provenance | dict | None = None,
    metadata: dict[str, Any] | None = None,
    overwrite: bool = False,
    format: str | None = None,
) -> Path:
    """Write uint8 frames (F, H, W, 3), numpy or torch, as a video; returns the path written.

    The format comes from the suffix or ``format``: .mp4 / .mov (H.264, yuv420p;
    odd sizes are padded to even by repeating the edge), .webm (VP9), .avi
    (H.264), .gif (Pillow, an adaptive palette per frame, looping), or .png / a
    directory (a folder 0000.png, 0001.png, ... plus provenance.json). ``crf``
    sets quality for H.264 (0-51) and VP9 (0-63); ``preset`` is x264's speed.
    ``pix_fmt`` "yuv420p" plays everywhere but halves colour resolution, which
    costs saturated edges on small frames (64x64 Shapes at CRF 18: ~34 dB); "yuv444p"
    keeps full colour (~50 dB there) for analysis and archives, but many browsers will
    not play 4:4:4 H.264.
    ``audio`` is a sound file muxed in, trimmed or silence-padded to the video's
    duration. ``provenance`` goes into the ``comment`` tag (GIF comment, or
    provenance.json); ``metadata`` into container tags. Nothing appears at
    ``path`` unless the whole write succeeds; an existing file is replaced only
    with ``overwrite=True``.
    """
    # 1. check inputs, before anything touches the disk
    path = Path(path)
    kind = _output_format(path, format)
    frames = _as_frames(frames)
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    fps = float(fps)  # a numpy scalar would not survive json.dumps
    record = Provenance.from_dict(provenance) if isinstance(provenance, dict) else provenance
    tags = _tags(metadata, record)
    if audio is not None and kind in ("gif", "png"):
        holder = "GIF" if kind == "gif" else "a PNG folder"
        raise ValueError(f"{holder} cannot hold audio; write .mp4, .mov, .webm or .avi to keep it")
    # 2. write to a temporary path and move it into place
    if kind == "png":
        with atomic_dir(path, overwrite=overwrite) as tmp:
            _write_png_folder(tmp, frames, fps, _tags(metadata, None), record)
    elif kind == "gif":
        _check_gif(fps, tags)
        with atomic_path(path, overwrite=overwrite) as tmp:
            _write_gif(tmp, frames, fps, tags.get("comment"))
    else:
        _check_encoder(kind, crf, preset, tags)
        if pix_fmt not in _PIX_FMTS:
            raise ValueError(f"pix_fmt must be one of {', '.join(_PIX_FMTS)}, got {pix_fmt!r}")
        soundtrack = load_soundtrack(audio, len(frames) / fps) if audio is not None else None
        with atomic_path(path, overwrite=overwrite) as tmp:
            _write_av(tmp, frames, fps, _CONTAINERS[kind], crf, preset, pix_fmt, tags, soundtrack)
    return path


def _write_av(
    tmp: Path,
    frames: np.ndarray,
    fps: float,
    codecs: _Codecs,
    crf: int,
    preset: str,
    pix_fmt: str,
    tags: dict[str, str],
    soundtrack: np.ndarray | None,
) -> None:
    if codecs.video == "libx264" and pix_fmt == "yuv420p":
        frames = _pad_to_even(frames)  # yuv420p H.264 needs even sides; padding keeps every pixel
    options: dict[str, str] = {}
    if codecs.muxer in ("mp4", "mov"):
        # faststart puts the index first so players start before the download ends;
        # use_metadata_tags is only needed for keys outside the iTunes-style set.
        options["movflags"] = "+faststart" + ("+use_metadata_tags" if set(tags) - codecs.tags else "")
    with av.open(str(tmp), "w", format=codecs.muxer, options=options) as container:
        container.metadata.update(tags)
        stream = _add_video_stream(container, codecs.video, fps, frames.shape, crf, preset, pix_fmt)
        track = AudioTrack(container, codecs.audio, soundtrack) if soundtrack is not None else None
        for index, frame in enumerate(frames):
            container.mux(stream.encode(_to_av_frame(frame)))
            if track is not None:
                track.mux_until((index + 1) / fps)
        container.mux(stream.encode(None))
        if track is not None:
            track.finish()


def _pad_to_even(frames: np.ndarray) -> np.ndarray:
    _, height, width, _ = frames.shape
    if height % 2 == 0 and width % 2 == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def _add_video_stream(
    container: av.container.OutputContainer,
    codec: str,
    fps: float,
    shape: tuple[int, ...],
    crf: int,
    preset: str,
    pix_fmt: str,
) -> av.video.VideoStream:
    stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
    stream.height, stream.width = shape[1], shape[2]
    stream.pix_fmt = pix_fmt
    if codec == "libx264":
        stream.options = {"crf": str(crf), "preset": preset}
    else:  # VP9 in constant-quality mode needs the bitrate cap off
        stream.options = {"crf": str(crf), "b": "0", "row-mt": "1"}
    # Say which matrix converted RGB (swscale's BT.601, limited range) so players
    # do not guess BT.709 for HD sizes and shift the colours.
    stream.codec_context.colorspace = 6  # AVCOL_SPC_SMPTE170M
    stream.codec_context.color_range = 1  # AVCOL_RANGE_MPEG
    return stream


def _to_av_frame(frame: np.ndarray) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")


_GIF_TIMING = re.compile(r"kinema-gif: (\d+) frames at ([0-9.e+-]+) fps")


def _check_gif(fps: float, tags: dict[str, str]) -> None:
    if fps > _GIF_MAX_FPS:
        raise ValueError(f"GIF cannot play faster than {_GIF_MAX_FPS} fps (delays are in 1/100 s), got {fps}")
    if unknown := set(tags) - {"comment"}:
        raise ValueError(f"GIF has no metadata tags except a comment, got {sorted(unknown)}")


def _gif_delays(num_frames: int, fps: float) -> list[int]:
    """Frame delays in ms, whole centiseconds, spread so the total duration is right (8 fps: 120, 130, ...)."""
    ticks = [round(i * 100 / fps) for i in range(num_frames + 1)]
    return [10 * (b - a) for a, b in zip(ticks, ticks[1:])]


def _write_gif(tmp: Path, frames: np.ndarray, fps: float, comment: str | None) -> None:
    # RGB frames make Pillow build an adaptive palette per frame (41.6 dB where FFmpeg's fixed one gives 21.5).
    images = [Image.fromarray(frame) for frame in frames]
    # Pillow merges identical consecutive frames into one longer frame: the comment says how many there were
    timing = f"kinema-gif: {len(images)} frames at {float(fps)!r} fps"
    extra = {"comment": (f"{comment}\n{timing}" if comment else timing).encode("utf-8")}
    delays = _gif_delays(len(images), fps)
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=delays, loop=0, **extra)


def _write_png_folder(
    folder: Path, frames: np.ndarray, fps: float, tags: dict[str, str], provenance: Provenance | None
) -> None:
    digits = max(4, len(str(len(frames) - 1)))
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index:0{digits}d}.png")
    sidecar = {
        "fps": fps,
        "num_frames": len(frames),
        "metadata": tags,
        "provenance": provenance.to_dict() if provenance else None,
    }
    (folder / SIDECAR).write_text(json.dumps(sidecar, indent=2, ensure_ascii=False), encoding="utf-8")
