"""Sample grids: many videos as one picture (frames across, videos down) or one animated grid."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _check(videos: Sequence[np.ndarray]) -> None:
    if len(videos) == 0:
        raise ValueError("a grid needs at least one video")
    shapes = {np.asarray(v).shape for v in videos}
    if len(shapes) != 1 or len(next(iter(shapes))) != 4:
        raise ValueError(f"grid videos must all be uint8 (F, H, W, 3) of one shape, got shapes {sorted(shapes)}")


def frame_grid(videos: Sequence[np.ndarray], num_columns: int = 8, gap: int = 2) -> np.ndarray:
    """One image: a row per video, ``num_columns`` frames evenly spaced over its length across."""
    _check(videos)
    num_frames, height, width, _ = np.asarray(videos[0]).shape
    picks = np.linspace(0, num_frames - 1, min(num_columns, num_frames)).round().astype(int)
    grid = np.full((len(videos) * (height + gap) - gap, len(picks) * (width + gap) - gap, 3), 40, np.uint8)
    for row, video in enumerate(videos):
        for col, t in enumerate(picks):
            y, x = row * (height + gap), col * (width + gap)
            grid[y : y + height, x : x + width] = video[t]
    return grid


def video_grid(videos: Sequence[np.ndarray], num_columns: int | None = None, gap: int = 2) -> np.ndarray:
    """One video (F, H', W', 3) tiling the videos side by side, ``num_columns`` to a row."""
    _check(videos)
    num_frames, height, width, _ = np.asarray(videos[0]).shape
    cols = num_columns or int(np.ceil(np.sqrt(len(videos))))
    rows = int(np.ceil(len(videos) / cols))
    grid = np.full((num_frames, rows * (height + gap) - gap, cols * (width + gap) - gap, 3), 40, np.uint8)
    for i, video in enumerate(videos):
        y, x = (i // cols) * (height + gap), (i % cols) * (width + gap)
        grid[:, y : y + height, x : x + width] = video
    return grid
