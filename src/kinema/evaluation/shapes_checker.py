"""The Shapes checker: reads shape, colour, size, direction and speed off the pixels of a video."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import ndimage

from kinema.data.shapes import (
    CANONICAL_SIZE,
    COLORS,
    DIRECTIONS,
    SIZES,
    SPEEDS,
    parse_caption,
)
from kinema.io import read_video

ATTRIBUTES = ("shape", "color", "size", "direction", "speed")

# Thresholds sit halfway between the spec's values, in 64-px units.
_SIZE_SPLIT = (SIZES["small"] + SIZES["large"]) / 2  # 16 px
_SPEED_SPLIT = (SPEEDS["slowly"] + SPEEDS["quickly"]) / 2  # 1.5 px / frame
# Fill ratio = area / (tallest column * widest row): 1 for a square, pi/4 for a circle. Projections
# integrate coverage, so anti-aliasing barely moves them.
_FILL_SQUARE_CIRCLE = (1.0 + np.pi / 4) / 2
# The apex-up triangle is the only shape whose rows are skewed: its width grows linearly
# downwards, a vertical skewness of -2*sqrt(2)/5 = -0.57 (0 for circle and square). At 6 px
# pixelation moves fill ratios around, skewness much less.
_SKEW_TRIANGLE = -0.57 / 2
_OBJECT_COVERAGE = 0.5  # a pixel at least half covered belongs to an object
_MIN_PEAK = 32.0  # a frame whose brightest pixel is darker than this (of 255) holds no object
# A blob smaller than this fraction of the smallest shape (a small triangle) is a speck, not an object.
_MIN_BLOB_FRACTION = 0.15


@dataclass
class ShapesReading:
    """What the checker read off one video. Attribute fields are None when no object was found."""

    shape: str | None
    color: str | None
    size: str | None
    direction: str | None
    speed: str | None
    present_rate: float  # fraction of frames with an object
    single_blob_rate: float  # fraction of frames with exactly one object
    color_drift: float  # max distance of a frame's object colour from the video's mean, RGB 0..255
    size_drift: float  # (max area - min area) / mean area over frames with an object
    velocity: tuple[float, float]  # centroid (dx, dy) per frame, in 64-px units
    extent: float  # object's linear size in 64-px units
    fill_ratio: float
    skewness: float  # vertical skewness of the object's coverage (triangle ~ -0.57)
    mean_color: tuple[float, float, float]

    def attributes(self) -> dict[str, str | None]:
        return {name: getattr(self, name) for name in ATTRIBUTES}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ShapesReport:
    """Per-attribute accuracy of a set of videos against their labels, plus object statistics."""

    num_videos: int
    accuracy: dict[str, float]  # attribute -> fraction of videos read correctly (over videos whose label names it)
    present_rate: float  # fraction of all frames with an object
    single_blob_rate: float  # fraction of all frames with exactly one object
    mean_color_drift: float
    mean_size_drift: float
    readings: list[ShapesReading] = field(default_factory=list, repr=False)
    expected: list[dict[str, str]] = field(default_factory=list, repr=False)

    def to_dict(self, with_readings: bool = False) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("readings", "expected")}
        if with_readings:
            out["videos"] = [{"expected": e, "read": r.to_dict()} for e, r in zip(self.expected, self.readings)]
        return out


def _frame_objects(coverage: np.ndarray, min_area: float) -> tuple[np.ndarray, int]:
    """Label the objects of one coverage frame (H, W); returns the largest object's mask and the count."""
    labels, n = ndimage.label(coverage >= _OBJECT_COVERAGE)
    if n == 0:
        return np.zeros_like(coverage, bool), 0
    areas = ndimage.sum_labels(np.ones_like(coverage), labels, index=np.arange(1, n + 1))
    big = np.flatnonzero(areas >= min_area)
    if big.size == 0:
        return np.zeros_like(coverage, bool), 0
    largest = 1 + big[np.argmax(areas[big])]
    # grow by one pixel so the anti-aliased rim counts towards area and centroid
    return ndimage.binary_dilation(labels == largest), int(big.size)


def read_shapes(frames: np.ndarray) -> ShapesReading:
    """Read the Shapes attributes off a uint8 video (F, H, W, 3) of any square resolution."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (F, H, W, 3), got shape {frames.shape}")
    num_frames, height, width, _ = frames.shape
    scale = width / CANONICAL_SIZE
    small_triangle = SIZES["small"] ** 2 / 2 * scale**2
    rgb = frames.astype(np.float32)
    # On black, a pixel's brightest channel over the object's own brightest channel is its
    # coverage. Normalising by each frame's peak keeps dim objects (Shape Motion colours go down
    # to 64) and objects that fade visible, so drift can be measured rather than lost.
    brightness = rgb.max(axis=-1)
    peak = brightness.reshape(num_frames, -1).max(axis=1)
    coverage = np.where(peak[:, None, None] >= _MIN_PEAK, brightness / np.maximum(peak, 1.0)[:, None, None], 0.0)

    ys, xs = np.mgrid[0:height, 0:width] + 0.5  # pixel centres
    centroids, areas, colors, fills, skews, extents, counts = [], [], [], [], [], [], []
    for t in range(num_frames):
        mask, count = _frame_objects(coverage[t], _MIN_BLOB_FRACTION * small_triangle)
        counts.append(count)
        if count == 0:
            continue
        cov = np.where(mask, coverage[t], 0.0)
        area = cov.sum()
        centroids.append(((cov * xs).sum() / area, (cov * ys).sum() / area))
        areas.append(area)
        tall, wide = cov.sum(axis=0).max(), cov.sum(axis=1).max()
        fills.append(area / (tall * wide))
        dy = ys - centroids[-1][1]
        skews.append((cov * dy**3).sum() / area / ((cov * dy**2).sum() / area) ** 1.5)
        extents.append(max(tall, wide))
        interior = mask & (coverage[t] >= 0.9)
        if not interior.any():  # tiny shapes may have no full pixel: undo the coverage instead
            interior = mask & (coverage[t] >= _OBJECT_COVERAGE)
            colors.append((rgb[t][interior] / coverage[t][interior][:, None]).mean(axis=0))
        else:
            colors.append(rgb[t][interior].mean(axis=0))

    present = len(areas)
    present_rate = present / num_frames
    single_rate = sum(c == 1 for c in counts) / num_frames
    if present == 0:
        return ShapesReading(None, None, None, None, None, 0.0, 0.0, 0.0, 0.0, (0.0, 0.0), 0.0, 0.0, 0.0, (0.0, 0.0, 0.0))

    colors_arr = np.asarray(colors)
    mean_color = colors_arr.mean(axis=0)
    fill = float(np.median(fills))
    extent = float(np.median(extents)) / scale
    velocity = _velocity([t for t, c in enumerate(counts) if c], centroids, scale)

    skew = float(np.median(skews))
    shape = "triangle" if skew <= _SKEW_TRIANGLE else "square" if fill >= _FILL_SQUARE_CIRCLE else "circle"
    color = min(COLORS, key=lambda name: np.sum((np.asarray(COLORS[name]) - mean_color) ** 2))
    size = "large" if extent >= _SIZE_SPLIT else "small"
    direction, speed = None, None
    if velocity is not None:
        vx, vy = velocity
        axis_speed = max(abs(vx), abs(vy))
        step = (int(np.sign(vx)), 0) if abs(vx) >= abs(vy) else (0, int(np.sign(vy)))
        direction = next((name for name, d in DIRECTIONS.items() if d == step), None)
        speed = "quickly" if axis_speed >= _SPEED_SPLIT else "slowly"
    return ShapesReading(
        shape=shape,
        color=color,
        size=size,
        direction=direction,
        speed=speed,
        present_rate=present_rate,
        single_blob_rate=single_rate,
        color_drift=float(np.linalg.norm(colors_arr - mean_color, axis=1).max()),
        size_drift=float((max(areas) - min(areas)) / np.mean(areas)),
        velocity=velocity or (0.0, 0.0),
        extent=extent,
        fill_ratio=fill,
        skewness=skew,
        mean_color=tuple(float(c) for c in mean_color),
    )


def _velocity(times: Sequence[int], centroids: Sequence[tuple[float, float]], scale: float) -> tuple[float, float] | None:
    """Least-squares centroid velocity (dx, dy) per frame in 64-px units; None with fewer than 2 frames."""
    if len(times) < 2:
        return None
    t = np.asarray(times, np.float64)
    xy = np.asarray(centroids, np.float64) / scale
    slope = np.polyfit(t, xy, 1)[0]
    return float(slope[0]), float(slope[1])


def expected_attributes(label: str | Mapping[str, Any]) -> dict[str, str]:
    """Labels to check against: a caption (any phrasing the datasets use) or a dict of attributes."""
    if isinstance(label, str):
        return parse_caption(label)
    return {k: str(v) for k, v in label.items() if k in ATTRIBUTES}


def check_videos(videos: Iterable[np.ndarray], labels: Iterable[str | Mapping[str, Any]]) -> ShapesReport:
    """Read every video and score it against its caption or labels."""
    readings, expected = [], []
    for frames, label in zip(videos, labels, strict=True):
        readings.append(read_shapes(frames))
        expected.append(expected_attributes(label))
    if not readings:
        raise ValueError("check_videos needs at least one video")
    accuracy = {}
    for name in ATTRIBUTES:
        pairs = [(getattr(r, name), e[name]) for r, e in zip(readings, expected) if name in e]
        if pairs:
            accuracy[name] = sum(got == want for got, want in pairs) / len(pairs)
    present = [r for r in readings if r.present_rate > 0]
    return ShapesReport(
        num_videos=len(readings),
        accuracy=accuracy,
        present_rate=float(np.mean([r.present_rate for r in readings])),
        single_blob_rate=float(np.mean([r.single_blob_rate for r in readings])),
        mean_color_drift=float(np.mean([r.color_drift for r in present])) if present else float("nan"),
        mean_size_drift=float(np.mean([r.size_drift for r in present])) if present else float("nan"),
        readings=readings,
        expected=expected,
    )


VIDEO_SUFFIXES = (".mp4", ".webm", ".gif", ".mov", ".avi", ".mkv")
PROMPTS_FILE = "prompts.txt"  # what `kinema demo` writes beside its clips


@dataclass
class CheckedClip:
    """One clip `check_path` found: where its caption came from, and why it was skipped if it was."""

    file: str
    caption: str | Mapping[str, Any] | None
    source: str  # "manifest", "provenance", "prompts.txt", "--caption" or "" (none found)
    skipped: str | None = None  # the reason this clip could not be checked
    fallback: str | None = None  # prompts.txt's line for this clip, used when its provenance names no prompt
    reading: ShapesReading | None = None


@dataclass
class PathCheck:
    """What `check_path` read: every clip it found, and the report over those it could check."""

    clips: list[CheckedClip]
    report: ShapesReport

    @property
    def checked(self) -> list[CheckedClip]:
        return [c for c in self.clips if c.skipped is None]


def _is_frame_folder(path: Path) -> bool:
    """A folder of PNG frames (one clip, as `write_video(..., format="png")` writes it)."""
    return path.is_dir() and any(path.glob("*.png")) and not any(p.suffix.lower() in VIDEO_SUFFIXES for p in path.iterdir())


def _clips_in(folder: Path) -> list[Path]:
    found = [p for p in folder.iterdir() if not p.name.startswith(".")
             and ((p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or _is_frame_folder(p))]
    return sorted(found, key=lambda p: p.name)


def _provenance_prompt(path: Path) -> str | None:
    from kinema.io import probe

    provenance = probe(path).provenance
    if provenance is None:
        return None
    return provenance.caption or provenance.prompt or None  # the caption: what the model was asked to draw


def check_path(path: str | os.PathLike, caption: str | None = None) -> PathCheck:
    """Check one clip, or every clip of a folder Kinema wrote, against its caption.

    ``path``: a video file, a PNG-frame folder, a folder with manifest.jsonl (`kinema dataset render`),
    or a folder of clips (`kinema generate --prompts`, `kinema demo`) whose captions come from each
    clip's provenance record, else from prompts.txt (line i for clip i), unless ``caption`` is given.
    A clip that cannot be read or has no caption is skipped with the reason; none checkable is an error.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    clips: list[CheckedClip] = []
    if path.is_file() or _is_frame_folder(path):
        clips.append(CheckedClip(str(path), caption, "--caption" if caption else ""))
    elif (path / "manifest.jsonl").is_file():
        manifest = path / "manifest.jsonl"
        for number, line in enumerate(manifest.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                file = path / row["file"]
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{manifest} line {number} is not a JSON object with a \"file\"") from None
            label = caption or row.get("caption") or row.get("prompt") or row.get("labels")
            clips.append(CheckedClip(str(file), label, "--caption" if caption else "manifest" if label else ""))
    else:
        files = _clips_in(path)
        if not files:
            raise ValueError(f"{path} holds no videos ({', '.join(VIDEO_SUFFIXES)} files or PNG-frame folders)")
        prompts = (path / PROMPTS_FILE).read_text(errors="replace").splitlines() if (path / PROMPTS_FILE).is_file() else []
        for file in files:
            index = int(file.stem) if file.stem.isdigit() else None
            line = prompts[index].strip() if index is not None and index < len(prompts) else ""
            clips.append(CheckedClip(str(file), caption, "--caption" if caption else "", fallback=line or None))
    videos, labels = [], []
    for clip in clips:
        try:
            if clip.caption is None:
                clip.caption = _provenance_prompt(Path(clip.file))
                clip.source = "provenance" if clip.caption else ""
            if clip.caption is None and clip.fallback:
                clip.caption, clip.source = clip.fallback, PROMPTS_FILE
            if clip.caption is None:
                clip.skipped = "no caption: not in its provenance record, a manifest or prompts.txt (pass --caption)"
                continue
            frames = read_video(clip.file).frames
        except (ValueError, OSError) as error:  # VideoReadError is a ValueError: it names the file and the reason
            clip.skipped = f"unreadable: {error}"
            continue
        videos.append(frames)
        labels.append(clip.caption)
    if not videos:
        reasons = "; ".join(f"{Path(c.file).name}: {c.skipped}" for c in clips[:3])
        raise ValueError(f"nothing in {path} could be checked ({reasons})")
    result = PathCheck(clips=clips, report=check_videos(videos, labels))
    for clip, reading in zip(result.checked, result.report.readings):
        clip.reading = reading
    return result


def check_folder(folder: str | os.PathLike) -> ShapesReport:
    """Check every video listed in FOLDER/manifest.jsonl against its caption (or labels)."""
    folder = Path(folder)
    if not (folder / "manifest.jsonl").exists():
        raise FileNotFoundError(f"{folder} has no manifest.jsonl listing the videos and their captions")
    return check_path(folder).report
