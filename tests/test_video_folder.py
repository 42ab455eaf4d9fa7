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


def _numbered_gif(path, num_frames):
    """A lossless clip whose frame i is flat grey 8 * i, so a clip's frames say where it started."""
    frames = np.repeat((8 * np.arange(num_frames, dtype=np.uint8))[:, None, None, None], 16, axis=1)
    write_video(path, np.broadcast_to(frames, (num_frames, 16, 16, 3)).copy(), fps=8)


def _frame_numbers(item):
    return [round((v + 1) * 127.5 / 8) for v in item["video"][0, :, 0, 0].tolist()]


def test_start_and_center_clips_sit_where_named(tmp_path):
    """'start' takes the first frames; 'center' leaves as many frames out before the clip as after it."""
    _numbered_gif(tmp_path / "clip.gif", 32)
    assert _frame_numbers(VideoFolder(tmp_path, num_frames=7, clip="start")[0]) == list(range(7))
    left_out = 32 - 7
    assert _frame_numbers(VideoFolder(tmp_path, num_frames=7, clip="center")[0]) == list(range(left_out // 2, left_out // 2 + 7))
    strided = VideoFolder(tmp_path, num_frames=4, stride=3, clip="center")[0]  # spans 10 frames: 22 left out
    assert _frame_numbers(strided) == [11, 14, 17, 20]


def test_random_clips_reach_both_ends_and_never_run_past_the_last_frame(tmp_path):
    """Random starts must use every valid start, including the last one, and never ask for a frame that is not there."""
    _numbered_gif(tmp_path / "clip.gif", 10)
    data = VideoFolder(tmp_path, num_frames=8, clip="random")
    firsts = set()
    for epoch in range(40):
        data.set_epoch(epoch)
        numbers = _frame_numbers(data[0])
        assert numbers == list(range(numbers[0], numbers[0] + 8))
        firsts.add(numbers[0])
    assert firsts == {0, 1, 2} and data.num_skipped == 0
    exact = VideoFolder(tmp_path, num_frames=10, clip="random")  # a clip as long as the video has one place to go
    for epoch in range(5):
        exact.set_epoch(epoch)
        assert _frame_numbers(exact[0]) == list(range(10))
    assert exact.num_skipped == 0


def test_skip_warnings_count_the_files_skipped_so_far(folder, caplog):
    """The log tells a user how many of their files have been dropped, one more with each bad file."""
    root, _ = folder
    (root / "a_broken.mp4").write_bytes(b"\x00" * 1000)
    (root / "b_broken.mp4").write_bytes(b"\x00" * 1000)
    data = VideoFolder(root, num_frames=8)
    with caplog.at_level(logging.WARNING):
        data[0]
        data[1]
    messages = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert len(messages) == 2
    assert "(1 skipped so far)" in messages[0] and "a_broken.mp4" in messages[0]
    assert "(2 skipped so far)" in messages[1] and "b_broken.mp4" in messages[1]


@pytest.mark.parametrize("path_key", ["file", "video", "path"])
@pytest.mark.parametrize("caption_key", ["caption", "text", "prompt"])
def test_a_manifest_may_name_its_columns_any_documented_way(tmp_path, path_key, caption_key):
    """Each documented video column and caption column works, in JSONL and CSV alike, in the manifest's order."""
    _numbered_gif(tmp_path / "a.gif", 4)
    _numbered_gif(tmp_path / "b.gif", 4)
    rows = [{path_key: "b.gif", caption_key: "second file first"}, {path_key: "a.gif", caption_key: 7}]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    data = VideoFolder(tmp_path, num_frames=4)
    assert (data.files, data.captions) == ([tmp_path / "b.gif", tmp_path / "a.gif"], ["second file first", "7"])
    (tmp_path / "list.csv").write_text(f"{path_key},{caption_key}\na.gif,from csv\n")
    data = VideoFolder(tmp_path, num_frames=4, manifest=tmp_path / "list.csv")
    assert (data.files, data.captions) == ([tmp_path / "a.gif"], ["from csv"])
    assert data[0]["caption"] == "from csv" and data[0]["path"] == str(tmp_path / "a.gif")


def test_a_manifest_with_several_caption_columns_takes_caption_then_text_then_prompt(tmp_path):
    """When a manifest carries more than one caption-like column, the documented order decides, not the column order."""
    _numbered_gif(tmp_path / "a.gif", 4)
    rows = [{"prompt": "p", "text": "t", "caption": "c", "file": "a.gif"}, {"prompt": "p", "text": "t", "file": "a.gif", "video": "x"}]
    (tmp_path / "manifest.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert VideoFolder(tmp_path).captions == ["c"]
    (tmp_path / "manifest.jsonl").write_text(json.dumps(rows[1]) + "\n\n")  # blank lines are allowed
    data = VideoFolder(tmp_path)
    assert (data.files, data.captions) == ([tmp_path / "a.gif"], ["t"])


def test_without_a_manifest_each_video_takes_its_own_sidecar_caption(tmp_path):
    """Videos are found in nested folders in path order, each paired with its own NAME.txt (trimmed), or "" without one;
    other files are ignored."""
    (tmp_path / "sub").mkdir()
    for name in ["b.gif", "a.GIF", "sub/c.gif", "d.gif"]:
        _numbered_gif(tmp_path / name, 4)
    (tmp_path / "a.txt").write_text("  caption of a\n")
    (tmp_path / "b.txt").write_text("caption of b")
    (tmp_path / "sub" / "c.txt").write_text("caption of c\n\n")
    (tmp_path / "notes.md").write_text("not a video")
    data = VideoFolder(tmp_path, num_frames=4)
    assert data.files == [tmp_path / "a.GIF", tmp_path / "b.gif", tmp_path / "d.gif", tmp_path / "sub" / "c.gif"]
    assert data.captions == ["caption of a", "caption of b", "", "caption of c"]
    assert [(data[i]["path"], data[i]["caption"]) for i in (1, 3)] == [(str(tmp_path / "b.gif"), "caption of b"), (str(tmp_path / "sub" / "c.gif"), "caption of c")]


def test_caption_sample_takes_the_first_non_empty_captions(tmp_path):
    """Text-embedding statistics come from real captions: a folder's empty ones are left out, and a caption-less
    folder gives [""] rather than nothing; a Shapes set gives its first captions, at least one, at most its length."""
    from kinema.data.captions import caption_sample

    for name in ["a.gif", "b.gif", "c.gif", "d.gif"]:
        _numbered_gif(tmp_path / name, 4)
    (tmp_path / "b.txt").write_text("bee")
    (tmp_path / "d.txt").write_text("dee")
    data = VideoFolder(tmp_path, num_frames=4)
    assert caption_sample(data, 8) == ["bee", "dee"] and caption_sample(data, 1) == ["bee"]
    (tmp_path / "silent").mkdir()
    _numbered_gif(tmp_path / "silent" / "e.gif", 4)
    assert caption_sample(VideoFolder(tmp_path / "silent", num_frames=4), 8) == [""]
    shapes = CaptionedShapes("test", num_samples=3)
    assert caption_sample(shapes, 2) == [shapes.caption(0), shapes.caption(1)]
    assert caption_sample(shapes, 0) == [shapes.caption(0)] and len(caption_sample(shapes, 10)) == 3


def test_bad_folder_arguments_fail_at_construction_with_exact_messages(tmp_path):
    """A typo in a training config fails when the dataset is built, naming the argument, not deep in the first batch."""
    _numbered_gif(tmp_path / "a.gif", 4)
    cases = [
        (lambda: VideoFolder(tmp_path, stride=0), ValueError, "num_frames and stride must be positive, got 16 and 0"),
        (lambda: VideoFolder(tmp_path, num_frames=0), ValueError, "num_frames and stride must be positive, got 0 and 1"),
        (lambda: VideoFolder(tmp_path, clip="middle"), ValueError, "clip must be 'random', 'start' or 'center', got 'middle'"),
        (lambda: VideoFolder(tmp_path / "a.gif"), FileNotFoundError, f"video folder {tmp_path / 'a.gif'} does not exist or is not a folder"),
        (lambda: VideoFolder(tmp_path, manifest=tmp_path / "list.txt"), ValueError, f"manifest {tmp_path / 'list.txt'} must be .csv or .jsonl"),
    ]
    for make, error, message in cases:
        with pytest.raises(error) as err:
            make()
        assert str(err.value) == message


def test_a_manifest_row_without_a_video_column_is_named_by_its_row_number(tmp_path):
    """In a long manifest the user must find the bad row: rows count from 1, blank JSONL lines not counted,
    and an empty manifest is 'no videos found'."""
    _numbered_gif(tmp_path / "a.gif", 4)
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('{"file": "a.gif"}\n\n{"name": "b.gif", "caption": "bee"}\n')
    with pytest.raises(ValueError) as err:
        VideoFolder(tmp_path)
    assert str(err.value) == f"{manifest}, row 2: no video column; expected one of ('file', 'video', 'path')"
    (tmp_path / "list.csv").write_text("name,caption\nb.gif,bee\n")
    with pytest.raises(ValueError) as err:
        VideoFolder(tmp_path, manifest=tmp_path / "list.csv")
    assert str(err.value) == f"{tmp_path / 'list.csv'}, row 1: no video column; expected one of ('file', 'video', 'path')"
    manifest.write_text("\n")
    with pytest.raises(ValueError) as err:
        VideoFolder(tmp_path)
    assert str(err.value) == f"no videos found in {tmp_path} (looked for .mp4, .webm, .mov, .avi, .mkv, .gif)"


def test_a_folder_of_only_unreadable_videos_says_none_could_be_read(tmp_path):
    """Rather than loop forever, the last resort names the folder and how many files were tried."""
    (tmp_path / "a.mp4").write_bytes(b"\x00" * 100)
    (tmp_path / "b.gif").write_bytes(b"GIF89a broken")
    data = VideoFolder(tmp_path, num_frames=4)
    with pytest.raises(VideoReadError) as err:
        data[1]
    assert str(err.value) == f"{tmp_path}: none of the 2 videos could be read"
    assert (err.value.path, err.value.reason) == (str(err.value), None)
    assert data.num_skipped == 2


def test_size_resizes_and_crop_cuts_the_centre_of_folder_clips(tmp_path):
    """size and crop are different operations: on a 1-px checkerboard, halving averages it to grey,
    while a centre crop keeps the checks."""
    checks = np.indices((16, 16)).sum(axis=0) % 2 * 200  # single pixels of 0 and 200
    checks = np.stack([checks, 200 - checks, checks, 200 - checks])  # inverted every other frame
    frames = np.repeat(checks[..., None], 3, axis=-1).astype(np.uint8)
    write_video(tmp_path / "checks.gif", frames, fps=8)
    resized = VideoFolder(tmp_path, num_frames=4, size=(8, 8))[0]["video"]
    assert resized.shape == (3, 4, 8, 8)
    np.testing.assert_allclose(resized.numpy(), 100 / 127.5 - 1, atol=1e-6)
    cropped = VideoFolder(tmp_path, num_frames=4, crop=8)[0]["video"]
    np.testing.assert_allclose(cropped.numpy(), np.broadcast_to(checks[:, 4:12, 4:12] / 127.5 - 1, (3, 4, 8, 8)), atol=1e-6)
    both = VideoFolder(tmp_path, num_frames=4, size=32, crop=(4, 6))[0]["video"]
    assert both.shape == (3, 4, 4, 6)
