"""`make demo`: the main job end to end on a fresh install.

The default text-to-video model (or ``model``: any built-in name, model or run folder) generates
one clip for each of a few prompts; the demo tiles them into an animated grid and reads each back
with the Shapes checker against its prompt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from kinema.evaluation.shapes_checker import ShapesReport, check_videos
from kinema.hub import DEFAULT_MODEL
from kinema.io import Provenance, write_video
from kinema.io.atomic import atomic_path
from kinema.io.grid import video_grid

DEMO_PROMPTS = (
    "a small red circle moving left slowly",
    "a large blue square moving up quickly",
    "a big yellow triangle drifting right",
    "a tiny green circle moving down fast",
    "a large magenta triangle moving left quickly",
    "a small cyan square sliding right slowly",
    "a yellow circle, large, moving up slowly",
    "a small blue triangle heading down quickly",
)


@dataclass
class DemoResult:
    files: list[Path]  # the clips, in prompt order
    grid: Path  # all clips tiled, animated
    report: ShapesReport  # the Shapes checker's reading of the clips
    model: str
    prompts: list[str] = field(default_factory=list)
    seconds_per_clip: float = 0.0  # sampling time per clip, model loading excluded


def run_demo(out: str | os.PathLike = "demo_output", model: str | os.PathLike = DEFAULT_MODEL, seed: int = 0,
             prompts: tuple[str, ...] | list[str] = DEMO_PROMPTS, overwrite: bool = False) -> DemoResult:
    """Generate one clip per prompt with ``model`` into ``out`` (0000.mp4, ...), tile and check them.

    Files already in ``out`` under those names are only replaced with ``overwrite`` (checked before any work).
    """
    from kinema.pipelines.generate import generate_batch

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; the demo writes a folder")
    names = [f"{i:04d}.mp4" for i in range(len(prompts))] + ["grid.gif", "prompts.txt"]
    taken = [name for name in names if os.path.lexists(out / name)]
    if taken and not overwrite:
        raise FileExistsError(f"{out / taken[0]} already exists ({len(taken)} of the demo's files are in {out}); "
                              "pass --overwrite to replace them, or choose another --out")
    results = generate_batch(list(enumerate(prompts)), out, seed=seed, model=model, overwrite=overwrite)
    videos = [r.frames for r in results]
    grid = write_video(out / "grid.gif", video_grid(videos), fps=8, provenance=Provenance(model=str(model), seed=seed), overwrite=overwrite)
    with atomic_path(out / "prompts.txt", overwrite=overwrite) as tmp:
        tmp.write_text("\n".join(prompts) + "\n")
    return DemoResult(
        files=[r.path for r in results], grid=Path(grid), report=check_videos(videos, list(prompts)), model=str(model),
        prompts=list(prompts), seconds_per_clip=sum(r.seconds for r in results) / len(results),
    )
