"""`make demo`: the main job end to end on a fresh install.

With a text-to-video model (``model``: the built-in default once it ships, or any model or run
folder), the demo generates one clip for each of a few prompts, tiles them into an animated grid
and reads them back with the Shapes checker against their prompts. Without one it renders
Captioned Shapes videos (the data that model is trained on) and checks those instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from kinema.data.render import render_dataset
from kinema.evaluation.shapes_checker import ShapesReport, check_folder, check_videos
from kinema.io import Provenance, read_video, write_video
from kinema.io.atomic import atomic_path
from kinema.io.grid import video_grid

DEMO_PROMPTS = (
    "a small red circle moving left slowly",
    "a large blue square moving up quickly",
    "a big yellow triangle drifting right",
    "a tiny green circle moving down fast",
    "a large magenta triangle moving left quickly",
    "a small cyan square sliding right slowly",
    "a white circle, large, moving up slowly",
    "a small blue triangle heading down quickly",
)


@dataclass
class DemoResult:
    files: list[Path]  # the clips, in prompt order
    grid: Path  # all clips tiled, animated
    report: ShapesReport  # the Shapes checker's reading of the clips
    model: str | None = None  # None: rendered data, not generated
    prompts: list[str] = field(default_factory=list)
    seconds_per_clip: float = 0.0  # sampling time per clip, model loading excluded


def run_demo(out: str | os.PathLike = "demo_output", model: str | os.PathLike | None = None, seed: int = 0,
             prompts: tuple[str, ...] | list[str] = DEMO_PROMPTS) -> DemoResult:
    """Generate (with ``model``) or render (without) a few Shapes clips into ``out``, tile and check them."""
    out = Path(out)
    if model is None:
        render = render_dataset("shapes", out, split="test", count=len(prompts), seed=seed, overwrite=True)
        videos = [read_video(path).frames for path in render.files]
        grid = write_video(out / "grid.gif", video_grid(videos), fps=8, provenance=Provenance(model="dataset:shapes", seed=seed), overwrite=True)
        return DemoResult(files=list(render.files), grid=Path(grid), report=check_folder(out))

    from kinema.pipelines.generate import generate_batch

    results = generate_batch(list(enumerate(prompts)), out, seed=seed, model=model, overwrite=True)
    videos = [r.frames for r in results]
    grid = write_video(out / "grid.gif", video_grid(videos), fps=8, provenance=Provenance(model=str(model), seed=seed), overwrite=True)
    with atomic_path(out / "prompts.txt", overwrite=True) as tmp:
        tmp.write_text("\n".join(prompts) + "\n")
    return DemoResult(
        files=[r.path for r in results], grid=Path(grid), report=check_videos(videos, list(prompts)), model=str(model),
        prompts=list(prompts), seconds_per_clip=sum(r.seconds for r in results) / len(results),
    )
