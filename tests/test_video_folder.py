"""VideoFolder turns a user's folder of videos into training clips."""

import json
import logging

import numpy as np
import pytest
import torch

from kinema.data import CaptionedShapes, VideoFolder
from kinema.io import VideoReadError, write_video


@pytest.fixture
def folder(tmp_path):
    ds = CaptionedShapes("test", num_samples=3)
    for i in range(3):
        frames = np.concatenate([ds.render(i), ds.render(i)[::-1]])  # 32 frames
        write_video(tmp_path / f"clip{i}.mp4", frames, fps=8)
        (tmp_path / f"clip{i}.txt").write_text(ds.caption(i) + "\n")
    return tmp_path, ds


def test_clips_batch_as_b_c_f_h_w_in_minus_one_one(folder):
    root, ds = folder
    data = VideoFolder(root, num_frames=8, stride=2, size=32)
    assert len(data) == 3
    item = data[1]
    assert item["video"].shape == (3, 8, 32, 32) and item["video"].dtype == torch.float32
    assert -1 <= item["video"].min() and item["video"].max() <= 1
    assert item["caption"] == ds.caption(1)
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=3)))
    assert batch["video"].shape == (3, 3, 8, 32, 32) and len(batch["caption"]) == 3


def test_clip_positions(folder):
    root, _ = folder
    start = VideoFolder(root, num_frames=16, clip="start")[0]["video"]
    center = VideoFolder(root, num_frames=16, clip="center")[0]["video"]
    assert not torch.equal(start, center)
    a = VideoFolder(root, num_frames=4, seed=1)
    b = VideoFolder(root, num_frames=4, seed=1)
    assert torch.equal(a[2]["video"], b[2]["video"])  # random starts are seeded
    starts = set()
    for epoch in range(6):
        a.set_epoch(epoch)
        starts.add(a[2]["video"].sum().item())
    assert len(starts) > 1  # and change with the epoch


def test_manifest_captions(folder):
    root, _ = folder
    (root / "manifest.jsonl").write_text("".join(json.dumps({"file": f"clip{i}.mp4", "caption": f"caption {i}"}) + "\n" for i in (2, 0)))
    data = VideoFolder(root, num_frames=4)
    assert len(data) == 2 and data[0]["caption"] == "caption 2"
    csv = root / "list.csv"
    csv.write_text("video,text\nclip1.mp4,from csv\n")
    assert VideoFolder(root, num_frames=4, manifest=csv)[0]["caption"] == "from csv"
    csv.write_text("name,text\nclip1.mp4,x\n")
    with pytest.raises(ValueError, match="no video column"):
        VideoFolder(root, manifest=csv)
    csv.write_text("video\nclip1.mp4\n")  # no caption column: an unconditional clip, never its file name as the caption
    assert VideoFolder(root, num_frames=4, manifest=csv)[0]["caption"] == ""


def test_broken_files_are_skipped_and_counted(folder, caplog):
    root, _ = folder
    (root / "broken.mp4").write_bytes(b"\x00" * 1000)
    (root / "truncated.mp4").write_bytes((root / "clip0.mp4").read_bytes()[:600])
    data = VideoFolder(root, num_frames=8)
    assert len(data) == 5
    with caplog.at_level(logging.WARNING):
        items = [data[i] for i in range(len(data))]
    assert data.num_skipped == 2
    assert all(item["video"].shape == (3, 8, 64, 64) for item in items)
    assert "broken.mp4" in caplog.text and "truncated.mp4" in caplog.text


def test_too_short_videos_are_skipped(folder):
    root, _ = folder
    data = VideoFolder(root, num_frames=40)  # every clip has 32 frames
    with pytest.raises(VideoReadError, match="none of the 3 videos"):
        data[0]
    assert data.num_skipped == 3


def test_bad_folders_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        VideoFolder(tmp_path / "nothing_here")
    with pytest.raises(ValueError, match="no videos found"):
        VideoFolder(tmp_path)
