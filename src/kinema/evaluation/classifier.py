"""FD-Shapes: a small 3D-conv classifier of Captioned Shapes attributes, whose features give a Frechet distance.

FD-Shapes is *not* FVD: its features come from this network, trained here on the procedural
Shapes data, not from I3D trained on Kinetics, so its values are on another scale and compare
only with other FD-Shapes values (same weights, same number of videos). It is meant for models
of the Shapes datasets, where I3D sees little it was trained to tell apart.

The weights are a folder with ``config.json`` and ``model.safetensors`` (what
``train_shapes_classifier`` and ``ShapesClassifier.save`` write); none ship yet.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from kinema.data.shapes import (
    COLORS,
    DIRECTIONS,
    SHAPES,
    SIZES,
    SPEEDS,
    CaptionedShapes,
)
from kinema.evaluation.fvd import frechet_distance
from kinema.io.atomic import atomic_path
from kinema.models.base import check_keys

# The attributes the classifier predicts, each with its classes in a fixed order.
HEADS: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "color": tuple(COLORS),
    "size": tuple(SIZES),
    "direction": tuple(DIRECTIONS),
    "speed": tuple(SPEEDS),
}
CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"


@dataclass
class ShapesClassifierConfig:
    """A few strided 3D conv blocks, global average pooling, one linear head per attribute."""

    resolution: int = 32  # videos are resized to this square size (bilinear, antialiased); Shapes read fine at 32
    num_frames: int = 16  # the first this many frames are used
    channels: tuple[int, ...] = (16, 32, 64, 128)  # per block; the last is the feature width of FD-Shapes
    groups: int = 8  # GroupNorm groups: outputs of one video never depend on its batch

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if any(c % self.groups for c in self.channels):
            raise ValueError(f"every entry of channels {self.channels} must be a multiple of groups={self.groups}")
        # training renders Captioned Shapes at this resolution, which takes multiples of 8 from 16
        if self.resolution < 16 or self.resolution % 8 or self.num_frames < 2:
            raise ValueError(f"resolution must be a multiple of 8 >= 16 and num_frames >= 2, got {self.resolution} and {self.num_frames}")


class ShapesClassifier(nn.Module):
    """(b, 3, f, h, w) in [-1, 1] -> per-attribute logits; ``features`` gives the pooled (b, channels[-1])."""

    def __init__(self, config: ShapesClassifierConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ShapesClassifierConfig()
        blocks, width = [], 3
        for i, out in enumerate(config.channels):
            # halve space every block and time from the second on: 16x32x32 -> 2x2x2 with 4 blocks
            stride = (1, 2, 2) if i == 0 else (2, 2, 2)
            blocks += [nn.Conv3d(width, out, 3, stride=stride, padding=1), nn.GroupNorm(config.groups, out), nn.SiLU()]
            width = out
        self.body = nn.Sequential(*blocks)
        self.heads = nn.ModuleDict({name: nn.Linear(width, len(classes)) for name, classes in HEADS.items()})

    def prepare(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (b, f, h, w, 3) -> (b, 3, num_frames, resolution, resolution) in [-1, 1]."""
        frames = np.asarray(frames)
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"videos must be uint8 (b, f, h, w, 3), got shape {frames.shape}")
        b, f, h, w, _ = frames.shape
        r, n = self.config.resolution, self.config.num_frames
        if f < n:
            raise ValueError(f"the Shapes classifier takes the first {n} frames; got videos of {f} frames")
        x = torch.from_numpy(np.ascontiguousarray(frames[:, :n])).float().div(127.5).sub(1.0)
        x = rearrange(x, "b f h w c -> (b f) c h w")
        if (h, w) != (r, r):
            x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
        return rearrange(x, "(b f) c h w -> b c f h w", b=b)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3, 4))  # (b, c, f', h', w') -> (b, c)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.features(x)
        return {name: head(z) for name, head in self.heads.items()}

    def save(self, folder: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write FOLDER/config.json and FOLDER/model.safetensors; loading needs nothing else."""
        from safetensors.torch import save_file

        folder = Path(folder)
        with atomic_path(folder / WEIGHTS_NAME, overwrite=overwrite) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(tmp))
        with atomic_path(folder / CONFIG_NAME, overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> ShapesClassifier:
        """Load from a model folder (its "classifier" component), a folder holding config.json and
        model.safetensors, or that model.safetensors; eval mode."""
        from safetensors.torch import load_file

        from kinema.hub import INDEX_NAME, open_model

        path = Path(path)
        if (path / INDEX_NAME).is_file():
            path = open_model(path).component("classifier")
        folder = path.parent if path.suffix == ".safetensors" else path
        weights = path if path.suffix == ".safetensors" else folder / WEIGHTS_NAME
        for needed in (weights, folder / CONFIG_NAME):
            if not needed.is_file():
                raise FileNotFoundError(f"Shapes classifier: {needed} not found (a folder with {CONFIG_NAME} and {WEIGHTS_NAME} is needed)")
        data = json.loads((folder / CONFIG_NAME).read_text())
        check_keys(data, ShapesClassifierConfig.__dataclass_fields__, str(folder / CONFIG_NAME))
        config = ShapesClassifierConfig(**{k: v for k, v in data.items() if not k.startswith("_")})
        model = cls(config)
        state = load_file(str(weights))
        expected = model.state_dict()
        wrong = sorted(set(expected) ^ set(state)) + [k for k in expected if k in state and state[k].shape != expected[k].shape]
        if wrong:
            raise ValueError(f"{weights} does not fit the Shapes classifier of {folder / CONFIG_NAME}: keys differ at {', '.join(wrong[:5])}")
        model.load_state_dict(state)
        return model.eval().requires_grad_(False).to(device)


@torch.no_grad()
def shapes_features(videos: Iterable[np.ndarray], model: ShapesClassifier, batch_size: int = 32) -> np.ndarray:
    """FD-Shapes features (n, channels[-1]) float64 of uint8 (f, h, w, 3) videos."""
    device = next(model.parameters()).device
    features, batch = [], []
    for video in list(videos) + [None]:
        if video is not None:
            batch.append(model.prepare(np.asarray(video)[None]))
        if batch and (video is None or len(batch) == batch_size):
            features.append(model.features(torch.cat(batch).to(device)).double().cpu().numpy())
            batch.clear()
    if not features:
        raise ValueError("shapes_features needs at least one video")
    return np.concatenate(features)


def fd_shapes(real: Iterable[np.ndarray], fake: Iterable[np.ndarray], model: ShapesClassifier, batch_size: int = 32) -> float:
    """FD-Shapes: the Frechet distance between Shapes-classifier features of two sets of videos (not FVD)."""
    return frechet_distance(shapes_features(real, model, batch_size), shapes_features(fake, model, batch_size))


# --- training ----------------------------------------------------------------------------------------


@dataclass
class ClassifierTraining:
    """How train_shapes_classifier trains (the defaults: about 0.13 s a step on one CPU core, under 10 minutes)."""

    steps: int = 3000
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    num_train: int = 20_000  # train-split videos (plus as many held-out-pair videos, see below)
    num_eval: int = 480  # test-split and held-out-split videos scored at the end
    seed: int = 0
    config: ShapesClassifierConfig = field(default_factory=ShapesClassifierConfig)


def _labels_tensor(labels: list[dict[str, str]]) -> dict[str, torch.Tensor]:
    return {name: torch.tensor([classes.index(lab[name]) for lab in labels]) for name, classes in HEADS.items()}


def _batch(datasets: list[CaptionedShapes], picks: list[tuple[int, int]]) -> tuple[np.ndarray, list[dict[str, str]]]:
    frames = np.stack([datasets[d].render(i) for d, i in picks])
    return frames, [datasets[d].labels(i).to_dict() for d, i in picks]


@torch.no_grad()
def score_shapes_classifier(model: ShapesClassifier, split: str, num_samples: int, seed: int = 0, batch_size: int = 32) -> dict[str, float]:
    """Per-attribute accuracy of the classifier on ``num_samples`` rendered videos of a split."""
    model.eval()
    cfg = model.config
    ds = CaptionedShapes(split, num_samples=num_samples, resolution=cfg.resolution, num_frames=cfg.num_frames, seed=seed)
    device = next(model.parameters()).device
    correct = {name: 0 for name in HEADS}
    for start in range(0, num_samples, batch_size):
        frames, labels = _batch([ds], [(0, i) for i in range(start, min(start + batch_size, num_samples))])
        logits = model(model.prepare(frames).to(device))
        for name, target in _labels_tensor(labels).items():
            correct[name] += int((logits[name].argmax(dim=1).cpu() == target).sum())
    return {name: c / num_samples for name, c in correct.items()}


def train_shapes_classifier(
    out: str | os.PathLike,
    training: ClassifierTraining | None = None,
    device: str | torch.device = "cpu",
    overwrite: bool = False,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Train the FD-Shapes classifier on rendered Captioned Shapes and save it to OUT; returns the scores.

    Batches mix the train split (the 12 seen (shape, colour) pairs) and the held-out pairs rendered
    with another seed than evaluations use (seed + 1), so all 18 pairs are equally frequent and
    have features, without training on the held-out videos generative models are judged on.
    A plain loop: evaluation never imports kinema.training.
    """
    t = training or ClassifierTraining()
    if t.steps < 1 or t.batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {t.steps} and {t.batch_size}")
    out = Path(out)
    for name in (WEIGHTS_NAME, CONFIG_NAME):  # both, before training: save() would refuse either at the end
        if (out / name).exists() and not overwrite:
            raise FileExistsError(f"{out / name} already exists (pass overwrite=True to replace it)")
    torch.manual_seed(t.seed)
    rng = np.random.default_rng(t.seed)
    cfg = t.config
    datasets = [
        CaptionedShapes("train", num_samples=t.num_train, resolution=cfg.resolution, num_frames=cfg.num_frames, seed=t.seed),
        CaptionedShapes("heldout", num_samples=t.num_train, resolution=cfg.resolution, num_frames=cfg.num_frames, seed=t.seed + 1),
    ]
    model = ShapesClassifier(cfg).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    warmup = max(1, t.steps // 20)  # linear warm-up, then cosine decay to zero

    def lr_factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, t.steps) / t.steps))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    losses, start = [], time.perf_counter()
    for step in range(1, t.steps + 1):
        # held-out pairs are 6 of the 18: drawn a third of the time, every (shape, colour) pair is
        # equally likely and colour says nothing about shape
        picks = [(int(d), int(rng.integers(t.num_train))) for d in rng.random(t.batch_size) < 1 / 3]
        frames, labels = _batch(datasets, picks)
        logits = model(model.prepare(frames).to(device))
        loss = sum(F.cross_entropy(logits[name], target.to(device)) for name, target in _labels_tensor(labels).items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if log and (step % 100 == 0 or step == t.steps):
            log(f"step {step}/{t.steps}  loss {np.mean(losses[-100:]):.4f}  {time.perf_counter() - start:.0f} s")
    model.eval()
    scores = {
        "test": score_shapes_classifier(model, "test", t.num_eval, seed=t.seed + 100),
        "heldout": score_shapes_classifier(model, "heldout", t.num_eval, seed=t.seed + 100),
        # mean loss of the first and the last tenth of the steps
        "first_loss": float(np.mean(losses[: max(1, t.steps // 10)])),
        "last_loss": float(np.mean(losses[-max(1, t.steps // 10) :])),
        "seconds": time.perf_counter() - start,
    }
    model.cpu().save(out, overwrite=overwrite)
    return scores
