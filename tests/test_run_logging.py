"""What a run reports, read back the way a user reads it: TensorBoard events, metrics.jsonl, the preview GIF."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console

from kinema.training.logging import RunLogger, write_gif_grid


def _events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_scalars_reach_tensorboard_and_metrics_with_their_step(tmp_path):
    logger = RunLogger(tmp_path, enabled=True, max_steps=10, start_step=0, console=Console(file=open(tmp_path / "out.txt", "w")))
    logger.scalars(5, {"loss": 0.25, "lr": 1e-3}, steps_per_s=2.0)
    logger.scalars(10, {"loss": 0.125, "lr": 5e-4}, steps_per_s=4.0)
    logger.close()

    events = _events(tmp_path)
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(5, 0.25), (10, 0.125)]
    assert [e.step for e in events.Scalars("lr")] == [5, 10]
    assert events.Scalars("lr")[1].value == pytest.approx(5e-4)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["loss"], r["lr"], r["steps_per_s"]) for r in rows] == [(5, 0.25, 1e-3, 2.0), (10, 0.125, 5e-4, 4.0)]
    printed = (tmp_path / "out.txt").read_text()
    assert "step 5  loss 0.25  lr 0.001  2.00 steps/s" in printed


def test_resume_drops_what_a_killed_run_logged_after_its_checkpoint(tmp_path):
    rows = [{"step": s, "loss": 1.0 / s, "steps_per_s": 1.0} for s in (10, 20, 30)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 4')  # cut by kill -9
    logger = RunLogger(tmp_path, enabled=True, max_steps=40, start_step=20, console=Console(file=open(tmp_path / "o.txt", "w")))
    logger.scalars(30, {"loss": 0.5}, steps_per_s=1.0)
    logger.close()
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30]  # the old 30 and the torn line are gone; the new 30 follows 20


def test_a_disabled_logger_writes_nothing(tmp_path):
    logger = RunLogger(tmp_path, enabled=False, max_steps=10, start_step=0)
    logger.scalars(1, {"loss": 1.0}, steps_per_s=1.0)
    assert logger.video(1, torch.zeros(1, 2, 4, 4, 3, dtype=torch.uint8)) is None
    logger.message("hello")
    logger.close()
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_on_a_terminal_shows_step_loss_and_speed(tmp_path):
    out = open(tmp_path / "tty.txt", "w")
    console = Console(file=out, force_terminal=True, width=120)
    logger = RunLogger(tmp_path, enabled=True, max_steps=8, start_step=2, console=console)
    assert logger.progress is not None
    logger.scalars(4, {"loss_d": 0.75}, steps_per_s=3.0)  # no "loss": the first loss_* entry is shown
    task = logger.progress.tasks[0]
    assert (task.completed, task.total, task.fields["loss"], task.fields["speed"]) == (4, 8, "0.75", "3.00")
    logger.advance(6)
    assert logger.progress.tasks[0].completed == 6
    logger.close()
    assert logger.progress is None


def test_preview_video_is_a_grid_gif_and_a_tensorboard_filmstrip(tmp_path):
    logger = RunLogger(tmp_path, enabled=True, max_steps=10, start_step=0, console=Console(file=open(tmp_path / "o.txt", "w")))
    clips = torch.zeros(2, 3, 4, 5, 3, dtype=torch.uint8)
    clips[0, :, :, :, 0] = 255  # clip 0 red
    clips[1, 2, :, :, 2] = 200  # clip 1 blue on its last frame only
    path = logger.video(7, clips)
    logger.close()
    assert path == tmp_path / "samples" / "step_000007.gif"
    image = _events(tmp_path).Images("samples")[0]
    assert image.step == 7
    strip = np.asarray(Image.open(__import__("io").BytesIO(image.encoded_image_string)).convert("RGB"))
    assert strip.shape == (2 * 4, 3 * 5, 3)  # one row per clip, frames left to right
    assert (strip[:4, :, 0] == 255).all() and (strip[4:, :10] == 0).all() and (strip[4:, 10:, 2] == 200).all()


def test_gif_grid_tiles_pads_and_scales_by_whole_pixels(tmp_path):
    clips = torch.zeros(3, 2, 8, 10, 1, dtype=torch.uint8)
    for i in range(3):
        clips[i] = 50 * (i + 1)
    clips[:, 1] += 1  # frames differ (a GIF writer merges identical ones)
    write_gif_grid(clips, tmp_path / "g.gif", fps=4, min_size=64)
    gif = Image.open(tmp_path / "g.gif")
    assert gif.n_frames == 2 and gif.info["duration"] == 250
    gif.seek(0)
    grid = np.asarray(gif.convert("RGB"))
    # 3 clips -> 2x2 grid of 8x10 tiles (16x20), scaled by 64 // 20 = 3
    assert grid.shape == (48, 60, 3)
    tile = lambda r, k: grid[r * 24 : (r + 1) * 24, k * 30 : (k + 1) * 30]  # noqa: E731
    assert (tile(0, 0) == 50).all() and (tile(0, 1) == 100).all() and (tile(1, 0) == 150).all() and (tile(1, 1) == 0).all()


@pytest.mark.parametrize("bad", [torch.zeros(1, 2, 4, 4, 3), torch.zeros(2, 4, 4, 3, dtype=torch.uint8), torch.zeros(1, 2, 4, 4, 2, dtype=torch.uint8)])
def test_preview_of_the_wrong_kind_is_refused_by_name(tmp_path, bad):
    logger = RunLogger(tmp_path, enabled=True, max_steps=10, start_step=0, console=Console(file=open(tmp_path / "o.txt", "w")))
    with pytest.raises(ValueError, match=r"objective.sample\(\) must return uint8 clips"):
        logger.video(1, bad)
    logger.close()


def test_training_time_counts_logged_intervals_across_sessions_and_skips_blank_lines(tmp_path):
    """`kinema evaluate` reports a run's training time: the logged steps over their speed, whatever else the file holds."""
    from kinema.training.logging import run_training_seconds, training_seconds

    lines = [
        {"step": 10, "steps_per_s": 2.0},  # 10 steps at 2/s: 5 s
        {"step": 20, "steps_per_s": 5.0},  # 10 more at 5/s: 2 s
        {"step": 20, "loss": 0.5},  # no speed: nothing
        {"message": "resumed"},
        {"step": 30, "steps_per_s": 0},  # speed unknown: not counted, but the interval after starts at 30
        {"step": 40, "steps_per_s": 4.0},  # 10 at 4/s: 2.5 s
    ]
    text = "\n".join(json.dumps(row) for row in lines[:3]) + "\n\n   \n" + "\n".join(json.dumps(row) for row in lines[3:]) + "\n"
    (tmp_path / "metrics.jsonl").write_text(text)
    assert training_seconds(tmp_path / "metrics.jsonl") == pytest.approx(5 + 2 + 2.5)
    assert training_seconds(tmp_path / "metrics.jsonl", upto_step=30) == pytest.approx(7)
    assert training_seconds(tmp_path / "metrics.jsonl", upto_step=9) == 0.0
    (tmp_path / "model").mkdir()
    assert run_training_seconds(tmp_path) == run_training_seconds(tmp_path / "model") == pytest.approx(9.5)
    assert run_training_seconds(tmp_path / "model" / "elsewhere") is None


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="reads the open files from /proc")
def test_a_closed_logger_holds_no_file_of_the_run_open(tmp_path):
    """When a run ends its TensorBoard events and metrics are closed: nothing of the run folder stays open and no
    writer thread keeps running (a finished run can be moved or deleted, and a session training many runs leaks nothing)."""
    import os
    import threading

    before = set(threading.enumerate())
    logger = RunLogger(tmp_path, enabled=True, max_steps=10, start_step=0, console=Console(file=open(os.devnull, "w")))
    logger.scalars(1, {"loss": 0.5}, steps_per_s=1.0)

    def open_in_run():
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(str(tmp_path)):
                found.append(target)
        return found

    assert open_in_run()  # while logging: the event file and metrics.jsonl
    logger.close()
    assert open_in_run() == []
    assert set(threading.enumerate()) <= before
    assert [e.value for e in _events(tmp_path).Scalars("loss")] == [0.5]
