"""Render a Shapes dataset to disk: one video per sample, a manifest with captions and labels, a preview."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from kinema.data.shapes import CaptionedShapes, ShapeMotion
from kinema.io import Provenance, write_video
from kinema.io.atomic import atomic_path
from kinema.io.grid import frame_grid
from kinema.io.image import write_image

KINDS = ("shapes", "shape-motion")
MANIFEST = "manifest.jsonl"
PREVIEW = "preview.png"
PREVIEW_ROWS = 8


@dataclass
class RenderResult:
    out: Path
    files: list[Path]
    manifest: Path
    preview: Path


def render_dataset(
    kind: Literal["shapes", "shape-motion"],
    out: str | os.PathLike,
    *,
    split: str = "train",
    count: int = 16,
    resolution: int = 64,
    seed: int = 0,
    captions: Literal["canonical", "varied"] = "canonical",
    fps: float = 8.0,
    crf: int = 18,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RenderResult:
    """Write ``count`` samples of a split as OUT/0000.mp4 ..., OUT/manifest.jsonl and OUT/preview.png.

    The manifest (one JSON object per video: file, caption, labels, split, index, seed) is written
    last, so a folder with a manifest is a complete render. An OUT folder holding a manifest is
    only replaced with ``overwrite=True``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown dataset {kind!r}; choose one of {', '.join(KINDS)}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; a render is a folder")
    if (out / MANIFEST).exists() and not overwrite:
        raise FileExistsError(f"{out} already holds a rendered dataset (pass overwrite to replace it)")
    taken = [name for name in [f"{i:04d}.mp4" for i in range(count)] + [PREVIEW] if os.path.lexists(out / name)]
    if taken and not overwrite:
        raise FileExistsError(f"{out / taken[0]} already exists; pass overwrite to replace it, or render into another folder")
    if kind == "shapes":
        dataset = CaptionedShapes(split, num_samples=count, resolution=resolution, captions=captions, seed=seed)
    else:
        dataset = ShapeMotion(split, num_samples=count, resolution=resolution, seed=seed)
    out.mkdir(parents=True, exist_ok=True)

    rows, files, previews = [], [], []
    for i in range(count):
        frames = dataset.render(i)
        caption = dataset.caption(i) if kind == "shapes" else None
        labels = dataset.labels(i).to_dict() if kind == "shapes" else dataset.labels(i)
        path = out / f"{i:04d}.mp4"
        provenance = Provenance(model=f"dataset:{kind}", seed=seed, prompt=caption, extra={"split": split, "index": i})
        write_video(path, frames, fps=fps, crf=crf, provenance=provenance, overwrite=overwrite)
        rows.append({"file": path.name, "caption": caption, "labels": labels, "split": split, "index": i, "seed": seed})
        files.append(path)
        if i < PREVIEW_ROWS:
            previews.append(frames)
        if progress:
            progress(i + 1, count)

    grid = frame_grid(previews)
    upscale = max(1, 128 // resolution)  # small renders are hard to see at 1:1
    preview = write_image(out / PREVIEW, np.kron(grid, np.ones((upscale, upscale, 1), np.uint8)), overwrite=True)
    with atomic_path(out / MANIFEST, overwrite=True) as tmp:
        tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return RenderResult(out=out, files=files, manifest=out / MANIFEST, preview=preview)
