"""VideoFolder: a folder of the user's own videos, with captions, as a training dataset."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch.utils.data import Dataset

from kinema.data.shapes import frames_to_tensor
from kinema.io import VideoReadError, probe, read_video

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".gif")
_PATH_KEYS = ("file", "video", "path")
_CAPTION_KEYS = ("caption", "text", "prompt")


def _read_manifest(path: Path) -> dict[str, str]:
    """Manifest rows -> {relative video path: caption}; CSV needs a header, JSONL one object per line."""
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    elif path.suffix == ".csv":
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        raise ValueError(f"manifest {path} must be .csv or .jsonl")
    captions = {}
    for number, row in enumerate(rows, start=1):
        key = next((k for k in _PATH_KEYS if k in row), None)
        if key is None:
            raise ValueError(f"{path}, row {number}: no video column; expected one of {_PATH_KEYS}")
        caption_key = next((k for k in _CAPTION_KEYS if k in row), None)
        captions[row[key]] = str(row[caption_key]) if caption_key else ""
    return captions


class VideoFolder(Dataset):
    """Clips from a folder of videos, values in [-1, 1] as (c, f, h, w), ready to batch to (b, c, f, h, w).

    Captions come from a manifest (``manifest.jsonl`` / ``manifest.csv`` in the folder, or the
    ``manifest`` argument) with a file/video/path column and a caption/text/prompt column, or
    else from a sidecar ``NAME.txt`` beside each video; a video with neither gets "".

    A file that cannot be read (corrupt, truncated, too short for the clip) is skipped with a
    warning, counted in ``num_skipped``, and the next readable video is used in its place, so a
    bad file never stops a training run.

    Args:
        root: the folder; searched recursively for .mp4 .webm .mov .avi .mkv .gif files.
        num_frames: frames per clip.
        stride: take every ``stride``-th frame (ignored when ``fps`` is given).
        fps: resample clips to this frame rate.
        size: resize the short side to this (int) or to (height, width); give it (or ``crop``)
            whenever the folder mixes sizes, since a batch needs one size.
        crop: centre-crop to this (int or (height, width)) after resizing.
        clip: where a clip starts: "random" (seeded per item and epoch), "start" or "center".
        seed: seed of the random clip starts.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        num_frames: int = 16,
        stride: int = 1,
        fps: float | None = None,
        size: int | tuple[int, int] | None = None,
        crop: int | tuple[int, int] | None = None,
        manifest: str | os.PathLike | None = None,
        clip: Literal["random", "start", "center"] = "random",
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"video folder {self.root} does not exist or is not a folder")
        if clip not in ("random", "start", "center"):
            raise ValueError(f"clip must be 'random', 'start' or 'center', got {clip!r}")
        if num_frames < 1 or stride < 1:
            raise ValueError(f"num_frames and stride must be positive, got {num_frames} and {stride}")
        self.num_frames, self.stride, self.fps, self.size, self.crop = num_frames, stride, fps, size, crop
        self.clip, self.seed, self.epoch = clip, seed, 0

        if manifest is None:
            manifest = next((self.root / n for n in ("manifest.jsonl", "manifest.csv") if (self.root / n).exists()), None)
        if manifest is not None:
            captions = _read_manifest(Path(manifest))
            self.files = [self.root / rel for rel in captions]
            self.captions = list(captions.values())
        else:
            self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
            self.captions = [self._sidecar_caption(p) for p in self.files]
        if not self.files:
            raise ValueError(f"no videos found in {self.root} (looked for {', '.join(VIDEO_SUFFIXES)})")
        self._bad: set[int] = set()
        self._lengths: dict[int, tuple[int, float]] = {}  # index -> (frames, fps), filled on first read

    @staticmethod
    def _sidecar_caption(video: Path) -> str:
        sidecar = video.with_suffix(".txt")
        return sidecar.read_text().strip() if sidecar.exists() else ""

    @property
    def num_skipped(self) -> int:
        """How many files were found unreadable so far (in this process)."""
        return len(self._bad)

    def set_epoch(self, epoch: int) -> None:
        """Random clip starts change with the epoch; the trainer calls this."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.files)

    def _clip_start(self, index: int, available: int, source_fps: float) -> int:
        step = source_fps / self.fps if self.fps else self.stride  # source frames between clip frames
        slack = max(available - int(np.ceil((self.num_frames - 1) * step)) - 1, 0)
        if self.clip == "start":
            return 0
        if self.clip == "center":
            return slack // 2
        return int(np.random.default_rng([self.seed, self.epoch, index]).integers(slack + 1))

    def _load(self, index: int) -> np.ndarray:
        path = self.files[index]
        if index not in self._lengths:  # probing demuxes the whole file: once per file, not per epoch
            info = probe(path)
            self._lengths[index] = (info.num_frames, info.fps)
        start = self._clip_start(index, *self._lengths[index])
        video = read_video(
            path, start=start, num_frames=self.num_frames, stride=self.stride, fps=self.fps, size=self.size, crop=self.crop
        )
        return video.frames

    def __getitem__(self, index: int) -> dict[str, Any]:
        for offset in range(len(self.files)):
            i = (index + offset) % len(self.files)
            if i in self._bad:
                continue
            try:
                frames = self._load(i)
            except VideoReadError as err:
                self._bad.add(i)
                logger.warning("skipping unreadable video (%d skipped so far): %s", len(self._bad), err)
                continue
            return {"video": frames_to_tensor(frames), "caption": self.captions[i], "path": str(self.files[i])}
        raise VideoReadError(f"{self.root}: none of the {len(self.files)} videos could be read")
