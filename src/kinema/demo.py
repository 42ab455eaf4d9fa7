"""`make demo`: the main job end to end on a fresh install.

Until the default text-to-video model ships (the diffusion issue), the demo renders a few
Captioned Shapes videos (the data that model is trained on), tiles them into an animated grid
and reads them back with the Shapes checker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kinema.data.render import RenderResult, render_dataset
from kinema.evaluation.shapes_checker import ShapesReport, check_folder
from kinema.io import Provenance, read_video, write_video
from kinema.io.grid import video_grid


@dataclass
class DemoResult:
    render: RenderResult
    grid: Path
    report: ShapesReport


def run_demo(out: str | os.PathLike = "demo_output", count: int = 8, seed: int = 0) -> DemoResult:
    out = Path(out)
    render = render_dataset("shapes", out, split="test", count=count, seed=seed, overwrite=True)
    videos = [read_video(path).frames for path in render.files]
    grid = write_video(
        out / "grid.gif", video_grid(videos), fps=8, provenance=Provenance(model="dataset:shapes", seed=seed), overwrite=True
    )
    return DemoResult(render=render, grid=Path(grid), report=check_folder(out))
