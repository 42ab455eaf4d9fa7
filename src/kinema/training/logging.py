"""What a run reports: a rich progress bar, metrics.jsonl, TensorBoard scalars and preview GIFs (main process only)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from kinema.io.atomic import atomic_path


class RunLogger:
    """Writes into the run folder; on processes other than the main one every method does nothing."""

    def __init__(self, run_dir: Path, enabled: bool, max_steps: int, start_step: int, console: Console | None = None):
        self.enabled = enabled
        self.run_dir = run_dir
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.progress: Progress | None = None
        self.writer = None
        self.metrics = None
        if not enabled:
            return
        _truncate_metrics(run_dir / "metrics.jsonl", start_step)
        self.metrics = open(run_dir / "metrics.jsonl", "a", buffering=1)
        # imported here: ~1 s, and only the main process needs it
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events that a killed run wrote after the checkpoint we resume from
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step if start_step else None)
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[speed]} steps/s"),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.task = self.progress.add_task("train", total=max_steps, completed=start_step, loss="-", speed="-")
            self.progress.start()

    def message(self, text: str) -> None:
        if self.enabled:
            self.console.print(text)

    def warning(self, text: str) -> None:
        if self.enabled:
            self.console.print(f"[yellow]warning:[/yellow] {text}")

    def advance(self, step: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step)

    def scalars(self, step: int, values: dict[str, float], steps_per_s: float) -> None:
        if not self.enabled:
            return
        entry = {"step": step, **values, "steps_per_s": steps_per_s, "time": time.time()}
        self.metrics.write(json.dumps(entry) + "\n")
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)
        loss = values.get("loss", next((v for k, v in values.items() if k.startswith("loss")), math.nan))
        if self.progress is not None:
            self.progress.update(self.task, completed=step, loss=f"{loss:.4g}", speed=f"{steps_per_s:.2f}")
        else:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in values.items())
            self.console.print(f"step {step}  {shown}  {steps_per_s:.2f} steps/s")

    def video(self, step: int, clips: torch.Tensor) -> Path:
        """Save uint8 clips (b, f, h, w, c) as an animated GIF grid and a TensorBoard filmstrip."""
        if not self.enabled:
            return None
        clips = _check_clips(clips)
        path = self.run_dir / "samples" / f"step_{step:06d}.gif"
        write_gif_grid(clips, path)
        strip = rearrange(clips, "b f h w c -> (b h) (f w) c")  # one row per clip, frames left to right
        self.writer.add_image("samples", strip.numpy(), step, dataformats="HWC")
        return path

    def stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def close(self) -> None:
        self.stop_progress()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None


def write_gif_grid(clips: torch.Tensor, path: Path, fps: int = 8, min_size: int = 256) -> None:
    """Tile uint8 clips (b, f, h, w, c) into one animated GIF, scaled up by whole pixels when tiny."""
    from PIL import Image

    b, f, h, w, c = clips.shape
    cols = math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    pad = torch.zeros(rows * cols - b, f, h, w, c, dtype=torch.uint8)
    grid = rearrange(torch.cat([clips, pad]), "(r k) f h w c -> f (r h) (k w) c", r=rows, k=cols)
    scale = max(1, min_size // max(grid.shape[1], grid.shape[2]))
    grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    if c == 1:
        grid = grid.expand(-1, -1, -1, 3)
    frames = [Image.fromarray(frame.numpy()) for frame in grid]
    with atomic_path(path, overwrite=True) as tmp:
        frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)


def _check_clips(clips: Any) -> torch.Tensor:
    if not isinstance(clips, torch.Tensor) or clips.dtype != torch.uint8 or clips.ndim != 5 or clips.shape[-1] not in (1, 3):
        got = f"{clips.dtype} {tuple(clips.shape)}" if isinstance(clips, torch.Tensor) else type(clips).__name__
        raise ValueError(f"objective.sample() must return uint8 clips (b, f, h, w, c) with c of 1 or 3, got {got}")
    return clips.cpu()


def _truncate_metrics(path: Path, start_step: int) -> None:
    """On resume, drop entries that a killed run logged after the checkpoint, so the file reads as one run."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= start_step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by kill -9
    if len(kept) != len(lines):
        with atomic_path(path, overwrite=True) as tmp:
            tmp.write_text("".join(line + "\n" for line in kept))


def training_seconds(metrics: str | os.PathLike, upto_step: int | None = None) -> float:
    """Seconds a run spent training (up to ``upto_step``), from its metrics.jsonl.

    The sum over logged intervals of steps / steps_per_s: pauses between sessions do not count.
    """
    seconds, previous = 0.0, 0
    for line in Path(metrics).read_text().splitlines():
        row = json.loads(line) if line.strip() else {}
        if "step" not in row or (upto_step is not None and row["step"] > upto_step):
            continue
        if row.get("steps_per_s") and row["step"] > previous:
            seconds += (row["step"] - previous) / row["steps_per_s"]
        previous = row["step"]
    return seconds


def run_training_seconds(model: str | os.PathLike) -> float | None:
    """Wall time of the training run if MODEL is a run folder (or its model/), else None."""
    path = Path(model)
    for candidate in (path / "metrics.jsonl", path.parent / "metrics.jsonl"):
        if candidate.is_file():
            return training_seconds(candidate)
    return None
