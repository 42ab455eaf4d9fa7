"""What a user made stays theirs: interrupted batches continue, symlinks are never written through,
`kinema check` reads every folder Kinema writes, and the thread count follows the user and the machine."""

import hashlib
import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kinema.cli import app
from kinema.io import read_video, write_video

runner = CliRunner()
PROMPTS = ["a small red circle moving left slowly", "a large blue square moving up quickly", "a big yellow triangle drifting right"]


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_skip_existing_continues_an_interrupted_batch(tiny_model_dir, tmp_path):
    (tmp_path / "p.txt").write_text("\n".join(PROMPTS) + "\n")
    base = ["generate", "--prompts", str(tmp_path / "p.txt"), "--model", str(tiny_model_dir), "--seed", "4", "--format", "png"]
    assert runner.invoke(app, [*base, "--out-dir", str(tmp_path / "full")]).exit_code == 0
    # an interrupted batch: clip 0 done, clips 1 and 2 not yet
    result = runner.invoke(app, [*base, "--out-dir", str(tmp_path / "part")])
    assert result.exit_code == 0
    for name in ("0001", "0002"):
        for frame in (tmp_path / "part" / name).iterdir():
            frame.unlink()
        (tmp_path / "part" / name).rmdir()
    kept = {p.name: sha(p) for p in (tmp_path / "part" / "0000").iterdir()}
    result = runner.invoke(app, [*base, "--out-dir", str(tmp_path / "part")])
    assert result.exit_code == 2 and "0000 already exists" in " ".join(result.output.split())
    result = runner.invoke(app, [*base, "--out-dir", str(tmp_path / "part"), "--skip-existing"])
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and "wrote 2 videos" in result.output
    assert {p.name: sha(p) for p in (tmp_path / "part" / "0000").iterdir()} == kept  # untouched
    for name in ("0000", "0001", "0002"):  # the finished batch is the batch that was never interrupted
        assert np.array_equal(read_video(tmp_path / "part" / name).frames, read_video(tmp_path / "full" / name).frames)


def test_overwriting_a_symlink_replaces_the_link_not_its_target(tiny_model_dir, tmp_path):
    target = tmp_path / "precious.mp4"
    write_video(target, np.full((4, 16, 16, 3), 99, np.uint8), fps=8)
    before = sha(target)
    (tmp_path / "link.mp4").symlink_to(target)
    result = runner.invoke(app, ["generate", "x", "--model", str(tiny_model_dir), "-o", str(tmp_path / "link.mp4"), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert sha(target) == before and not (tmp_path / "link.mp4").is_symlink()
    assert read_video(tmp_path / "link.mp4").frames.shape == (4, 32, 32, 3)


def test_demo_refuses_to_replace_files_unless_asked(tiny_model_dir, tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "0003.mp4").write_bytes(b"the user's own video")
    (out / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["demo", "--out", str(out), "--model", str(tiny_model_dir)])
    assert result.exit_code == 2 and "0003.mp4 already exists" in " ".join(result.output.split())
    assert (out / "0003.mp4").read_bytes() == b"the user's own video" and sorted(p.name for p in out.iterdir()) == ["0003.mp4", "notes.txt"]
    result = runner.invoke(app, ["demo", "--out", str(out), "--model", str(tiny_model_dir), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "mine" and read_video(out / "0003.mp4").frames.shape[0] == 4


def test_check_reads_the_folders_kinema_writes(tiny_model_dir, tmp_path):
    # a demo folder: clips, grid.gif (no prompt: skipped with the reason) and prompts.txt
    assert runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--model", str(tiny_model_dir)]).exit_code == 0
    result = runner.invoke(app, ["check", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "0000.mp4" in text and "a small red circle moving left slowly (provenance)" in text and "read:" in text
    assert "grid.gif skipped: no caption" in text and "(8 of 9 clips)" in text
    # a `generate --prompts` folder, with a blank line: 0000 and 0002
    (tmp_path / "p.txt").write_text(f"{PROMPTS[0]}\n\n{PROMPTS[1]}\n")
    runner.invoke(app, ["generate", "--prompts", str(tmp_path / "p.txt"), "--out-dir", str(tmp_path / "clips"), "--model", str(tiny_model_dir)])
    result = runner.invoke(app, ["check", str(tmp_path / "clips"), "--json"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.output)
    assert [c["caption"] for c in report["clips"]] == [PROMPTS[0], PROMPTS[1]] and report["num_videos"] == 2
    # PNG-frame clips, and a folder with an unreadable clip among good ones
    runner.invoke(app, ["generate", PROMPTS[2], "--model", str(tiny_model_dir), "-o", str(tmp_path / "frames"), "--format", "png"])
    assert runner.invoke(app, ["check", str(tmp_path / "frames")]).exit_code == 0
    (tmp_path / "clips" / "0005.mp4").write_bytes(b"garbage")
    result = runner.invoke(app, ["check", str(tmp_path / "clips")])
    assert result.exit_code == 0 and "0005.mp4 skipped: unreadable" in " ".join(result.output.split())


def test_threads_follow_the_flag_then_the_environment_then_the_idle_cores(monkeypatch):
    from kinema import threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("KINEMA_THREADS", "2")
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert threads.configure_threads(1) == 1 and torch.get_num_threads() == 1
        assert threads.configure_threads() == 2
        monkeypatch.delenv("KINEMA_THREADS")
        assert threads.configure_threads() == 1
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(threads, "idle_cores", lambda probe_seconds=0.1: 3)
        assert threads.configure_threads() == 3
        monkeypatch.setenv("KINEMA_THREADS", "zero")
        with pytest.raises(ValueError, match=r"\$KINEMA_THREADS must be a whole number of threads >= 1, got 'zero'"):
            threads.configure_threads()
        for fraction in ("1.5", "2.0"):  # a fraction is not rounded to some number of threads the user did not ask for
            monkeypatch.setenv("KINEMA_THREADS", fraction)
            with pytest.raises(ValueError, match=rf"\$KINEMA_THREADS must be a whole number of threads >= 1, got '{fraction}'"):
                threads.configure_threads()
    finally:
        torch.set_num_threads(before)


def test_idle_cores_leaves_out_a_busy_core(monkeypatch):
    import psutil

    from kinema import threads

    monkeypatch.setattr(psutil, "cpu_percent", lambda interval, percpu: [97.0, 3.0, 60.0, 10.0])
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert threads.idle_cores() == 2
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval, percpu: [99.0, 99.0])
    assert threads.idle_cores() == 1  # never zero


def test_check_of_a_rendered_folder_takes_each_clip_s_caption_from_its_manifest(tmp_path):
    import json
    from pathlib import Path

    from kinema.data.render import render_dataset
    from kinema.evaluation.shapes_checker import check_path

    render_dataset("shapes", tmp_path / "set", count=3, resolution=32)
    rows = [json.loads(line) for line in (tmp_path / "set" / "manifest.jsonl").read_text().splitlines()]
    result = check_path(tmp_path / "set")
    assert [c.source for c in result.clips] == ["manifest"] * 3
    assert [Path(c.file).name for c in result.clips] == [row["file"] for row in rows]
    assert [c.caption for c in result.clips] == [row.get("caption") or row.get("labels") for row in rows]


def test_a_kept_clip_is_reported_with_the_seed_it_was_made_with(tiny_model_dir, tmp_path):
    """--skip-existing hands back the kept clips too (the Python API's results, the batch report): each with the seed
    the seed rule gave it, seed + its line number, so the batch can be reproduced clip by clip."""
    from kinema.pipelines.generate import generate_batch

    options = dict(model=tiny_model_dir, seed=4, format="png", device="cpu", progress=False)
    first = generate_batch([(0, PROMPTS[0]), (1, PROMPTS[1])], tmp_path / "clips", **options)
    again = generate_batch([(0, PROMPTS[0]), (1, PROMPTS[1]), (2, PROMPTS[2])], tmp_path / "clips", skip_existing=True, **options)
    assert [r.seed for r in first] == [4, 5] and [r.seed for r in again] == [4, 5, 6]
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(first, again))


def test_processes_of_a_distributed_launch_share_the_idle_cores(monkeypatch):
    """Two training processes on one machine each take half the idle cores, so they do not fight over them; never zero."""
    from kinema import threads

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("KINEMA_THREADS", raising=False)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(threads, "idle_cores", lambda probe_seconds=0.1: 6)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        assert threads.configure_threads() == 3 and torch.get_num_threads() == 3
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
        assert threads.configure_threads() == 1  # 6 // 4
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
        assert threads.configure_threads() == 1  # fewer cores than processes: one each
    finally:
        torch.set_num_threads(before)


def test_a_rendered_dataset_holds_its_clips_a_full_manifest_and_an_eight_row_preview(tmp_path):
    """A render is what a user trains on and looks at: every clip tagged with where it came from, one manifest row
    each, and a preview of the first eight clips, eight evenly spaced frames across, upscaled to be visible."""
    import json

    from kinema.data import CaptionedShapes
    from kinema.data.render import render_dataset
    from kinema.io import read_provenance

    seen = []
    result = render_dataset("shapes", tmp_path / "set", split="test", count=9, resolution=16, seed=3, progress=lambda i, n: seen.append((i, n)))
    out = tmp_path / "set"
    names = [f"{i:04d}.mp4" for i in range(9)]
    assert (result.out, result.files, result.manifest, result.preview) == (out, [out / n for n in names], out / "manifest.jsonl", out / "preview.png")
    assert seen == [(i, 9) for i in range(1, 10)]
    ds = CaptionedShapes("test", num_samples=9, resolution=16, seed=3)
    rows = [json.loads(line) for line in result.manifest.read_text().splitlines()]
    assert rows == [
        {"file": names[i], "caption": ds.caption(i), "labels": ds.labels(i).to_dict(), "split": "test", "index": i, "seed": 3}
        for i in range(9)
    ]
    record = read_provenance(out / names[4])
    assert (record.model, record.seed, record.prompt, record.extra) == ("dataset:shapes", 3, ds.caption(4), {"split": "test", "index": 4})
    from PIL import Image

    preview = np.asarray(Image.open(result.preview).convert("RGB"))
    cell, upscale = 16 + 2, 128 // 16
    assert preview.shape == (upscale * (8 * cell - 2), upscale * (8 * cell - 2), 3)  # clip 8 (the ninth) is left out
    for row in (0, 7):
        frames = ds.render(row)
        for col, t in enumerate([0, 2, 4, 6, 9, 11, 13, 15]):  # 8 of 16 frames, evenly spaced
            y, x = upscale * row * cell, upscale * col * cell
            np.testing.assert_array_equal(preview[y : y + 16 * upscale : upscale, x : x + 16 * upscale : upscale], frames[t])
    assert (preview[upscale * 16 : upscale * 18, :] == 40).all()  # grey gaps between the rows


def test_render_dataset_refuses_bad_requests_and_never_replaces_a_render_unasked(tmp_path):
    """Each refusal says what was wrong, before a single clip is written over the user's files."""
    from kinema.data.render import render_dataset

    cases = [
        (lambda: render_dataset("shapes_motion", tmp_path / "a"), ValueError, "unknown dataset 'shapes_motion'; choose one of shapes, shape-motion"),
        (lambda: render_dataset("shapes", tmp_path / "a", count=0), ValueError, "count must be at least 1, got 0"),
    ]
    (tmp_path / "file").write_text("mine")
    cases.append((lambda: render_dataset("shapes", tmp_path / "file"), NotADirectoryError, f"--out {tmp_path / 'file'} is a file; a render is a folder"))
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "manifest.jsonl").write_text("mine\n")
    cases.append((lambda: render_dataset("shapes", tmp_path / "done"), FileExistsError, f"{tmp_path / 'done'} already holds a rendered dataset (pass overwrite to replace it)"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "0001.mp4").write_text("mine")
    cases.append((lambda: render_dataset("shapes", tmp_path / "half", count=2), FileExistsError,
                  f"{tmp_path / 'half' / '0001.mp4'} already exists; pass overwrite to replace it, or render into another folder"))
    for call, error, message in cases:
        with pytest.raises(error) as err:
            call()
        assert str(err.value) == message
    assert not (tmp_path / "a").exists() and os.listdir(tmp_path / "half") == ["0001.mp4"]
    assert (tmp_path / "done" / "manifest.jsonl").read_text() == "mine\n"
    render_dataset("shape-motion", tmp_path / "half", count=2, resolution=16, overwrite=True)
    assert sorted(os.listdir(tmp_path / "half")) == ["0000.mp4", "0001.mp4", "manifest.jsonl", "preview.png"]
