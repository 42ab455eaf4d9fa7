"""The Shapes datasets (../shared/specs/shapes.md): Captioned Shapes and Shape Motion, rendered from a seed."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

# --- vocabulary ------------------------------------------------------------------------------------

SHAPES = ("circle", "square", "triangle")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
}
SIZES: dict[str, float] = {"small": 12.0, "large": 20.0}  # px at 64x64
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}  # (dx, dy)
# Each direction as a compass bearing on screen (degrees clockwise from up, as on a map with north up): 270 is left.
BEARINGS: dict[str, float] = {name: math.degrees(math.atan2(dx, -dy)) % 360 for name, (dx, dy) in DIRECTIONS.items()}
SPEEDS: dict[str, float] = {"slowly": 1.0, "quickly": 2.0}  # px per frame at 64x64

# (shape, color) pairs never seen in training: they measure composition of attributes seen apart.
HELDOUT_PAIRS = frozenset(
    {("circle", "green"), ("square", "blue"), ("triangle", "red"), ("circle", "magenta"), ("square", "yellow"), ("triangle", "cyan")}
)
ALL_PAIRS = tuple((s, c) for s in SHAPES for c in COLORS)
SEEN_PAIRS = tuple(p for p in ALL_PAIRS if p not in HELDOUT_PAIRS)

SPLITS = ("train", "test", "heldout")
# Each split draws from its own seed stream, so train and test never share a sample.
_SPLIT_STREAM = {"train": 0, "test": 1, "heldout": 2}

CANONICAL_SIZE = 64
SUPERSAMPLE = 4  # draw at 4x and area-average: smooth sub-pixel motion


# --- rendering ---------------------------------------------------------------------------------------


def _coverage(shape: str, cx: np.ndarray, cy: np.ndarray, size: float | np.ndarray, resolution: int) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of one shape per frame: (F, H, W) for centres cx, cy of shape (F,).

    The centre is the centre of the shape's bounding box (for the triangle too), so a
    shape of size s at centre c spans [c - s/2, c + s/2] on both axes.
    """
    n = resolution * SUPERSAMPLE
    sub = (np.arange(n, dtype=np.float32) + 0.5) / SUPERSAMPLE  # sub-pixel centres in pixel units
    x = sub[None, None, :] - np.asarray(cx, np.float32)[:, None, None]  # (F, 1, n)
    y = sub[None, :, None] - np.asarray(cy, np.float32)[:, None, None]  # (F, n, 1)
    half = np.asarray(size, np.float32) / 2
    if shape == "circle":
        inside = x * x + y * y <= half * half
    elif shape == "square":
        inside = (np.abs(x) <= half) & (np.abs(y) <= half)
    elif shape == "triangle":
        # apex at (0, -half), base from (-half, half) to (half, half): the half-width grows
        # linearly from 0 at the apex to `half` at the base.
        inside = (y >= -half) & (y <= half) & (np.abs(x) <= (y + half) / 2)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    inside = np.broadcast_to(inside, (len(cx), n, n)).astype(np.float32)
    # (F, n, n) -> (F, H, 4, W, 4) -> mean over the 4x4 block
    return inside.reshape(len(cx), resolution, SUPERSAMPLE, resolution, SUPERSAMPLE).mean(axis=(2, 4))


def _paint(coverage: np.ndarray, color: Sequence[float]) -> np.ndarray:
    """Coverage (F, H, W) on black -> uint8 video (F, H, W, 3)."""
    rgb = coverage[..., None] * np.asarray(color, np.float32)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# --- Captioned Shapes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapesLabels:
    """The attributes of one Captioned Shapes video; any caption can be rebuilt from them."""

    shape: str
    color: str
    size: str
    direction: str
    speed: str

    def caption(self) -> str:
        """The canonical caption: 'a {size} {color} {shape} moving {direction} {speed}'."""
        return f"a {self.size} {self.color} {self.shape} moving {self.direction} {self.speed}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class ShapesScene:
    """Everything needed to render one Captioned Shapes video: labels plus the start position (64-px units)."""

    labels: ShapesLabels
    x0: float
    y0: float


def sample_scene(rng: np.random.Generator, split: str, num_frames: int = 16) -> ShapesScene:
    """Draw one scene: every attribute uniform and independent, (shape, color) from the split's pairs."""
    pairs = sorted(HELDOUT_PAIRS) if split == "heldout" else SEEN_PAIRS
    shape, color = pairs[rng.integers(len(pairs))]
    size = list(SIZES)[rng.integers(len(SIZES))]
    direction = list(DIRECTIONS)[rng.integers(len(DIRECTIONS))]
    speed = list(SPEEDS)[rng.integers(len(SPEEDS))]
    labels = ShapesLabels(shape, color, size, direction, speed)
    # The start is uniform over the positions that keep the whole object inside for all frames.
    s, travel = SIZES[size], SPEEDS[speed] * (num_frames - 1)
    dx, dy = DIRECTIONS[direction]
    lo, hi = s / 2, CANONICAL_SIZE - s / 2

    def start(d: int) -> float:
        if d > 0:
            return rng.uniform(lo, hi - travel)
        if d < 0:
            return rng.uniform(lo + travel, hi)
        return rng.uniform(lo, hi)

    return ShapesScene(labels, x0=start(dx), y0=start(dy))


def render_scene(scene: ShapesScene, resolution: int = 64, num_frames: int = 16) -> np.ndarray:
    """Render a scene as uint8 (F, H, W, 3); every length scales by resolution / 64."""
    lab = scene.labels
    scale = resolution / CANONICAL_SIZE
    t = np.arange(num_frames, dtype=np.float64)
    dx, dy = DIRECTIONS[lab.direction]
    v = SPEEDS[lab.speed]
    cx = (scene.x0 + dx * v * t) * scale
    cy = (scene.y0 + dy * v * t) * scale
    cov = _coverage(lab.shape, cx, cy, SIZES[lab.size] * scale, resolution)
    return _paint(cov, COLORS[lab.color])


# Phrasings beyond the canonical template, so text models learn the attributes rather than one sentence.
_WORDS = {
    "small": ("small", "little", "tiny"),
    "large": ("large", "big"),
    "circle": ("circle", "disc", "round dot"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "left": ("left", "to the left", "leftward"),
    "right": ("right", "to the right", "rightward"),
    "up": ("up", "upward", "towards the top"),
    "down": ("down", "downward", "towards the bottom"),
    "slowly": ("slowly", "slow", "at a slow pace", "gently"),
    "quickly": ("quickly", "fast", "at a fast pace", "rapidly"),
}
_TEMPLATES = (
    "a {size} {color} {shape} moving {direction} {speed}",
    "a {color} {shape}, {size}, moving {direction} {speed}",
    "{size} {color} {shape} drifting {direction} {speed}",
    "a {size} {color} {shape} travels {direction} {speed}",
    "the {color} {shape} is {size} and moves {direction} {speed}",
    "{speed}, a {size} {color} {shape} slides {direction}",
    "a {size} {shape} in {color} heading {direction} {speed}",
    "one {size} {color} {shape} going {direction} {speed} on black",
)


# What each value means, in plain definitions: what the planner (kinema.text) compares unknown words against.
# Definitions, not synonym lists: no word of the held-out prompt set (benchmarks/prompts/README.md) may appear
# here, or that set would stop measuring how far the planner generalises. A model folder declares them
# (model_index.json "vocabulary"), so a prompt in other words can be mapped onto the values.
_DESCRIPTIONS = {
    "circle": "round, a curved outline with no corners",
    "square": "four equal straight sides and four right-angled corners",
    "triangle": "three straight sides and three corners, pointed at the top",
    "red": "the warm colour of blood, fire engines and strawberries",
    "green": "the colour of leaves and fresh plants",
    "blue": "the cool colour of the deep ocean",
    "yellow": "the bright colour of the sun, bananas and butter",
    "cyan": "light blue-green, like tropical sea water",
    "magenta": "purplish red, like an orchid flower",
    "small": "{px:g} pixels across, a fifth of the frame",
    "large": "{px:g} pixels across, a third of the frame",
    "left": "towards the left side of the frame",
    "right": "towards the right side of the frame",
    "up": "towards the top of the frame, going higher",
    "down": "towards the bottom of the frame, going lower",
    "slowly": "at a low speed, {speed:g} pixel per frame",
    "quickly": "at a high speed, {speed:g} pixels per frame",
}
DEFAULTS = {"shape": "circle", "color": "red", "size": "large", "direction": "right", "speed": "slowly"}  # a visible, easy clip


def shapes_vocabulary():
    """The Captioned Shapes vocabulary as a text model trained on it declares it (kinema.text.Vocabulary):
    the canonical template, every value with its training phrasings and a description, sizes in px and
    speeds in px/frame (at 64x64), directions as compass bearings, the colours' RGB, and the (shape, color) pairs held out of training."""
    from kinema.text.vocabulary import Attribute, Value, Vocabulary

    def values(names, measures=None, colors=None):
        out = []
        for name in names:
            measure = None if measures is None else float(measures[name])
            about = _DESCRIPTIONS[name].format(px=measure or 0, speed=measure or 0)
            words = [w for w in _WORDS.get(name, ()) if w != name]  # the training captions' other phrasings
            out.append(Value(name, ", ".join([*words, about]), measure, None if colors is None else colors[name]))
        return tuple(out)

    attributes = (
        Attribute("shape", values(SHAPES), DEFAULTS["shape"]),
        Attribute("color", values(COLORS, colors=COLORS), DEFAULTS["color"]),
        Attribute("size", values(SIZES, SIZES), DEFAULTS["size"], unit="px"),
        Attribute("direction", values(DIRECTIONS, BEARINGS), DEFAULTS["direction"], unit="deg"),
        Attribute("speed", values(SPEEDS, SPEEDS), DEFAULTS["speed"], unit="px/frame"),
    )
    unseen = tuple({"shape": shape, "color": color} for shape, color in sorted(HELDOUT_PAIRS))
    return Vocabulary(_TEMPLATES[0], attributes, unseen)


def canonical_captions(pairs: Sequence[tuple[str, str]] = SEEN_PAIRS) -> list[str]:
    """The canonical caption of every attribute combination over ``pairs`` (default: the training pairs)."""
    return [
        ShapesLabels(shape, color, size, direction, speed).caption()
        for shape, color in pairs
        for size in SIZES
        for direction in DIRECTIONS
        for speed in SPEEDS
    ]


def varied_caption(labels: ShapesLabels, rng: np.random.Generator) -> str:
    """A caption of the same attributes in one of several phrasings and synonyms."""
    pick = {k: _WORDS.get(v, (v,))[rng.integers(len(_WORDS.get(v, (v,))))] for k, v in labels.to_dict().items()}
    template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
    return template.format(**pick)


def parse_caption(caption: str) -> dict[str, str]:
    """Read the Shapes attributes a caption names (any phrasing above); attributes it does not name are left out."""
    text = " " + " ".join(caption.lower().replace(",", " ").replace(".", " ").split()) + " "
    found: dict[str, str] = {}
    groups = {"shape": SHAPES, "color": tuple(COLORS), "size": tuple(SIZES), "direction": tuple(DIRECTIONS), "speed": tuple(SPEEDS)}
    for attribute, values in groups.items():
        hits = []
        for value in values:
            for word in _WORDS.get(value, (value,)):
                pos = text.find(f" {word} ")
                if pos >= 0:
                    hits.append((pos, -len(word), value))
        if hits:
            found[attribute] = min(hits)[2]  # earliest, longest match
    return found


class CaptionedShapes(Dataset):
    """Captioned Shapes: one coloured shape moving in a straight line, with its caption and labels.

    Item ``i`` of a split is rendered from the seed stream (seed, split, i), so the dataset is
    the same on every machine and needs no files. Items are dicts with ``video`` (float32
    (c, f, h, w) in [-1, 1]), ``caption`` and ``labels`` (a dict of attribute names).

    Args:
        split: "train" and "test" cover the 12 seen (shape, color) pairs, "heldout" the other 6.
        num_samples: length of the dataset (any number: samples are procedural).
        resolution: 64 (canonical) or 32; all lengths scale with it.
        num_frames: frames per video (16 in the spec).
        captions: "canonical" uses the spec's template; "varied" mixes phrasings (for text encoders).
        seed: base seed of the streams.
    """

    def __init__(
        self,
        split: Literal["train", "test", "heldout"] = "train",
        num_samples: int = 10_000,
        resolution: int = 64,
        num_frames: int = 16,
        captions: Literal["canonical", "varied"] = "canonical",
        seed: int = 0,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if captions not in ("canonical", "varied"):
            raise ValueError(f"captions must be 'canonical' or 'varied', got {captions!r}")
        _check_geometry(resolution, num_frames, num_samples)
        # The fastest object must stay inside for all frames.
        if SIZES["large"] + SPEEDS["quickly"] * (num_frames - 1) > CANONICAL_SIZE:
            raise ValueError(f"num_frames={num_frames} is too many: a large quick shape would leave the frame (max 23)")
        self.split, self.num_samples, self.resolution = split, num_samples, resolution
        self.num_frames, self.captions, self.seed = num_frames, captions, seed

    def __len__(self) -> int:
        return self.num_samples

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        return np.random.default_rng([self.seed, _SPLIT_STREAM[self.split], index])

    def scene(self, index: int) -> ShapesScene:
        return sample_scene(self._rng(index), self.split, self.num_frames)

    def labels(self, index: int) -> ShapesLabels:
        return self.scene(index).labels

    def caption(self, index: int) -> str:
        labels = self.labels(index)
        if self.captions == "canonical":
            return labels.caption()
        # a separate stream for the wording, so switching caption style never changes the video
        return varied_caption(labels, np.random.default_rng([self.seed, _SPLIT_STREAM[self.split], index, 1]))

    def render(self, index: int) -> np.ndarray:
        """uint8 (F, H, W, 3) frames of item ``index``."""
        return render_scene(self.scene(index), self.resolution, self.num_frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        scene = self.scene(index)
        frames = render_scene(scene, self.resolution, self.num_frames)
        return {"video": frames_to_tensor(frames), "caption": self.caption(index), "labels": scene.labels.to_dict()}


# --- Shape Motion (MoCoGAN) --------------------------------------------------------------------------


@dataclass(frozen=True)
class MotionScene:
    """One Shape Motion video in 64-px units: a shape moving along a quadratic Bezier curve."""

    shape: Literal["circle", "square"]
    size: float
    color: tuple[int, int, int]
    direction: Literal["left-to-right", "top-to-bottom"]
    start: tuple[float, float]
    control: tuple[float, float]
    end: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def sample_motion_scene(rng: np.random.Generator) -> MotionScene:
    """Draw one Shape Motion scene following the spec's recipe (MoCoGAN, Table 1)."""
    shape = ("circle", "square")[rng.integers(2)]
    size = float(rng.uniform(10, 24))
    while True:  # colour uniform over RGB, kept visible on black
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if max(color) >= 64:
            break
    direction = ("left-to-right", "top-to-bottom")[rng.integers(2)]
    lo, hi = size / 2, CANONICAL_SIZE - size / 2
    # Written for left-to-right (along = x, across = y); top-to-bottom swaps the axes.
    start = (rng.uniform(lo, 20), rng.uniform(lo, hi))
    end = (rng.uniform(44, hi), rng.uniform(lo, hi))
    # A quadratic Bezier stays inside the hull of its points: clamping the control point keeps the shape inside.
    control = tuple(float(np.clip(rng.uniform(0, CANONICAL_SIZE), lo, hi)) for _ in range(2))
    if direction == "top-to-bottom":
        start, end, control = start[::-1], end[::-1], control[::-1]
    return MotionScene(shape, size, color, direction, tuple(map(float, start)), control, tuple(map(float, end)))


def bezier_path(scene: MotionScene, num_frames: int = 16) -> np.ndarray:
    """Centres (F, 2) as (x, y) in 64-px units; frame t sits at Bezier parameter t / (F - 1)."""
    t = np.linspace(0.0, 1.0, num_frames)[:, None]
    p0, p1, p2 = (np.asarray(p, np.float64) for p in (scene.start, scene.control, scene.end))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def render_motion_scene(scene: MotionScene, resolution: int = 64, num_frames: int = 16) -> np.ndarray:
    scale = resolution / CANONICAL_SIZE
    path = bezier_path(scene, num_frames) * scale
    cov = _coverage(scene.shape, path[:, 0], path[:, 1], scene.size * scale, resolution)
    return _paint(cov, scene.color)


class ShapeMotion(Dataset):
    """Shape Motion (after MoCoGAN): unconditional circles and squares on Bezier paths.

    Items are dicts with ``video`` (float32 (c, f, h, w) in [-1, 1]) and ``labels``. The
    training set of the paper has 4,000 videos, the default length of the train split.
    """

    def __init__(
        self,
        split: Literal["train", "test"] = "train",
        num_samples: int = 4_000,
        resolution: int = 64,
        num_frames: int = 16,
        seed: int = 0,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        _check_geometry(resolution, num_frames, num_samples)
        self.split, self.num_samples, self.resolution, self.num_frames, self.seed = split, num_samples, resolution, num_frames, seed

    def __len__(self) -> int:
        return self.num_samples

    def scene(self, index: int) -> MotionScene:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        # streams 10+ keep Shape Motion seeds apart from Captioned Shapes'
        return sample_motion_scene(np.random.default_rng([self.seed, 10 + _SPLIT_STREAM[self.split], index]))

    def labels(self, index: int) -> dict[str, Any]:
        return self.scene(index).to_dict()

    def render(self, index: int) -> np.ndarray:
        return render_motion_scene(self.scene(index), self.resolution, self.num_frames)

    def __getitem__(self, index: int) -> dict[str, Any]:
        scene = self.scene(index)
        return {"video": frames_to_tensor(render_motion_scene(scene, self.resolution, self.num_frames)), "labels": scene.to_dict()}


# --- shared helpers ----------------------------------------------------------------------------------


MAX_RESOLUTION = 1024  # frames of (resolution / 64)x the canonical scene; past this, one clip no longer fits memory


def _check_geometry(resolution: int, num_frames: int, num_samples: int) -> None:
    if not 16 <= resolution <= MAX_RESOLUTION or resolution % 8:
        raise ValueError(f"resolution must be a multiple of 8 from 16 to {MAX_RESOLUTION}, got {resolution}")
    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be positive, got {num_samples}")


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (f, h, w, c) -> float32 (c, f, h, w) in [-1, 1]."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)
    return video.float().div(127.5).sub(1.0)


def tensor_to_frames(video: torch.Tensor) -> np.ndarray:
    """float (c, f, h, w) in [-1, 1] -> uint8 (f, h, w, c); values outside are clipped."""
    video = video.detach().float().clamp(-1, 1).add(1).mul(127.5).round()
    return video.permute(1, 2, 3, 0).to(torch.uint8).cpu().numpy()
