"""The Shapes checker reads the attributes back off rendered videos."""

import re
from pathlib import Path

import numpy as np
import pytest

from kinema.data.shapes import CaptionedShapes, ShapesLabels, ShapesScene, render_scene
from kinema.evaluation.shapes_checker import ATTRIBUTES, check_videos, read_shapes


@pytest.mark.parametrize("resolution", [64, 32])
@pytest.mark.parametrize("split", ["test", "heldout"])
def test_checker_scores_99_percent_on_renders(resolution, split):
    ds = CaptionedShapes(split, num_samples=240, resolution=resolution, seed=11)
    report = check_videos((ds.render(i) for i in range(len(ds))), (ds.caption(i) for i in range(len(ds))))
    assert set(report.accuracy) == set(ATTRIBUTES)
    for name, acc in report.accuracy.items():
        assert acc >= 0.99, (name, acc)
    assert report.present_rate == 1.0 and report.single_blob_rate == 1.0
    assert report.mean_color_drift < 2 and report.mean_size_drift < 0.02


def test_checker_reads_varied_captions_and_label_dicts():
    ds = CaptionedShapes("test", num_samples=30, resolution=32, captions="varied")
    by_caption = check_videos([ds.render(i) for i in range(30)], [ds.caption(i) for i in range(30)])
    by_labels = check_videos([ds.render(i) for i in range(30)], [ds.labels(i).to_dict() for i in range(30)])
    assert by_caption.accuracy == by_labels.accuracy == {name: 1.0 for name in ATTRIBUTES}


def test_a_report_lists_each_clips_reading_only_when_asked():
    ds = CaptionedShapes("test", num_samples=3, resolution=32)
    report = check_videos([ds.render(i) for i in range(3)], [ds.caption(i) for i in range(3)])
    assert "videos" not in report.to_dict() and "readings" not in report.to_dict()
    videos = report.to_dict(with_readings=True)["videos"]
    assert [v["expected"] for v in videos] == [ds.labels(i).to_dict() for i in range(3)]
    assert [v["read"]["shape"] for v in videos] == [ds.labels(i).shape for i in range(3)]


def test_checker_notices_wrong_videos():
    ds = CaptionedShapes("test", num_samples=20)
    wrong = [ds.render(i)[::-1] for i in range(20)]  # played backwards: every direction flips
    report = check_videos(wrong, [ds.caption(i) for i in range(20)])
    assert report.accuracy["direction"] == 0.0 and report.accuracy["color"] == 1.0


def test_empty_split_and_drifting_videos_are_flagged():
    black = np.zeros((16, 64, 64, 3), np.uint8)
    reading = read_shapes(black)
    assert reading.present_rate == 0 and reading.shape is None

    red = render_scene(ShapesScene(ShapesLabels("square", "red", "small", "right", "slowly"), 10, 15))
    blue = render_scene(ShapesScene(ShapesLabels("circle", "blue", "small", "left", "slowly"), 50, 45))
    two = np.maximum(red, blue)
    assert read_shapes(two).single_blob_rate == 0.0 and read_shapes(two).present_rate == 1.0

    flicker = red.copy()
    flicker[8:] = flicker[8:] // 2  # the object dims half way through
    assert read_shapes(flicker).color_drift > 50 and read_shapes(red).color_drift < 1

    gaps = red.copy()
    gaps[::2] = 0  # the object vanishes in every other frame
    assert read_shapes(gaps).present_rate == 0.5


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"\(F, H, W, 3\)"):
        read_shapes(np.zeros((16, 64, 64), np.uint8))
    with pytest.raises(ValueError, match="at least one video"):
        check_videos([], [])


def test_check_folder_takes_a_string_or_a_path_and_needs_a_manifest(tmp_path):
    from kinema.data.render import render_dataset
    from kinema.evaluation.shapes_checker import check_folder

    render_dataset("shapes", tmp_path / "set", count=2, resolution=32)
    for folder in (str(tmp_path / "set"), tmp_path / "set"):
        report = check_folder(folder)
        assert report.num_videos == 2 and min(report.accuracy.values()) == 1.0
    (tmp_path / "bare").mkdir()
    with pytest.raises(FileNotFoundError, match="has no manifest.jsonl"):
        check_folder(str(tmp_path / "bare"))


def test_a_folder_of_clips_takes_captions_from_prompts_txt_by_clip_number(tmp_path):
    """`kinema demo` folders: line i of prompts.txt captions clip i; clips without a caption or unreadable are skipped, saying why."""
    from kinema.evaluation.shapes_checker import check_path
    from kinema.io import write_video

    ds = CaptionedShapes("test", num_samples=3, resolution=32)
    write_video(tmp_path / "0000.mp4", ds.render(1))  # clip 0 shows item 1: captioned by line 0
    write_video(tmp_path / "0001.mp4", ds.render(0))
    write_video(tmp_path / "0003.mp4", ds.render(2))  # no line 3 in prompts.txt
    (tmp_path / "0002.mp4").write_bytes(b"\x00" * 500)  # line 2 exists, the file is broken
    write_video(tmp_path / ".0004.mp4", ds.render(2))  # hidden: a partial write, not a clip
    (tmp_path / "prompts.txt").write_text(f"{ds.caption(1)}\n{ds.caption(0)}\n{ds.caption(2)}\n")
    result = check_path(tmp_path)
    assert [Path(c.file).name for c in result.clips] == ["0000.mp4", "0001.mp4", "0002.mp4", "0003.mp4"]
    assert [c.source for c in result.clips] == ["prompts.txt", "prompts.txt", "", ""]  # 0002 fails before its line is used
    assert [c.caption for c in result.clips[:2]] == [ds.caption(1), ds.caption(0)]
    assert result.clips[2].skipped.startswith("unreadable: cannot read video") and "0002.mp4" in result.clips[2].skipped
    assert result.clips[3].skipped.startswith("no caption")
    assert [Path(c.file).name for c in result.checked] == ["0000.mp4", "0001.mp4"]
    assert result.report.num_videos == 2 and min(result.report.accuracy.values()) == 1.0
    assert [c.reading.color for c in result.checked] == [ds.labels(1).color, ds.labels(0).color]


def test_the_provenance_caption_wins_over_the_users_prompt(tmp_path):
    """A planner rewrites the prompt into the model's words; the checker must judge the video against that caption."""
    from kinema.evaluation.shapes_checker import check_path
    from kinema.io import Provenance, write_video

    ds = CaptionedShapes("test", num_samples=1, resolution=32)
    record = Provenance(prompt="something shiny drifting", caption=ds.caption(0))
    write_video(tmp_path / "clip.mp4", ds.render(0), provenance=record)
    (clip,) = check_path(tmp_path / "clip.mp4").clips
    assert (clip.caption, clip.source) == (ds.caption(0), "provenance")


def test_a_caption_given_by_the_user_overrides_the_manifest(tmp_path):
    """--caption states what every clip should show; manifest captions must not silently win."""
    from kinema.data.render import render_dataset
    from kinema.evaluation.shapes_checker import check_path

    render_dataset("shapes", tmp_path / "set", count=2, resolution=32)
    result = check_path(tmp_path / "set", caption="a small green square moving up slowly")
    assert [(c.caption, c.source) for c in result.clips] == [("a small green square moving up slowly", "--caption")] * 2
    assert check_path(tmp_path / "set").clips[0].source == "manifest"
    with pytest.raises(FileNotFoundError, match=r"nowhere does not exist$"):
        check_path(tmp_path / "nowhere")


def test_label_dicts_are_checked_only_on_the_attributes_they_name():
    """Manifest labels carry extra keys (split, index); only Shapes attributes count, as strings."""
    from kinema.evaluation.shapes_checker import expected_attributes

    assert expected_attributes({"shape": "circle", "split": "train", "index": 3}) == {"shape": "circle"}
    assert expected_attributes("a big blue box") == {"size": "large", "color": "blue", "shape": "square"}


def test_drift_is_averaged_over_videos_with_an_object_and_is_nan_without_any():
    """Empty videos say nothing about drift; a video with the object in only some frames still does."""
    red = render_scene(ShapesScene(ShapesLabels("square", "red", "small", "right", "slowly"), 10, 15))
    dimming = red.copy()
    dimming[8:] //= 2
    dimming[::2] = 0  # present in half the frames only, and fading
    black = np.zeros_like(red)
    report = check_videos([dimming, black], [{"shape": "square"}, {"shape": "square"}])
    drift = read_shapes(dimming).color_drift
    assert drift > 50
    assert report.mean_color_drift == pytest.approx(drift) and report.present_rate == pytest.approx(0.25)
    assert report.mean_size_drift == pytest.approx(read_shapes(dimming).size_drift)
    empty = check_videos([black], ["a red square"])
    assert np.isnan(empty.mean_color_drift) and np.isnan(empty.mean_size_drift) and empty.accuracy == {"shape": 0.0, "color": 0.0}


def test_an_object_seen_in_one_frame_has_no_direction_or_speed():
    """Motion needs two positions; one frame must give no direction rather than a made-up one."""
    red = render_scene(ShapesScene(ShapesLabels("square", "red", "small", "right", "slowly"), 10, 15))
    once = np.zeros_like(red)
    once[5] = red[5]
    reading = read_shapes(once)
    assert reading.shape == "square" and reading.color == "red"
    assert reading.direction is None and reading.speed is None and reading.velocity == (0.0, 0.0)


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_a_speck_is_judged_against_the_smallest_shape_at_the_videos_own_resolution(factor):
    """A 3x3 speck beside a shape is noise, a 4x4 one a second object, at 64 px and at 2x or 4x that."""
    video = np.zeros((2, 64, 64, 3), np.uint8)
    video[:, 10:30, 10:30] = (255, 0, 0)  # a 20-px red square
    speck, blob = video.copy(), video.copy()
    speck[:, 50:53, 50:53] = 255  # 9 px: under 0.15 x the 72-px small triangle
    blob[:, 50:54, 50:54] = 255  # 16 px: over it
    up = np.ones((factor, factor, 1), np.uint8)
    for frames, single in ((speck, 1.0), (blob, 0.0)):
        reading = read_shapes(np.stack([np.kron(f, up) for f in frames]))
        assert reading.present_rate == 1.0 and reading.single_blob_rate == single
        assert reading.shape == "square" and reading.color == "red" and reading.size == "large"


def test_a_report_counts_every_video_and_scores_each_attribute_over_the_videos_that_name_it():
    """A set with an empty clip must still count it, and an attribute only some labels give is scored on those alone."""
    red = render_scene(ShapesScene(ShapesLabels("square", "red", "small", "right", "slowly"), 10, 15))
    half = red.copy()
    half[::2] = 0  # the object in every other frame only
    black = np.zeros_like(red)
    readings = [read_shapes(v) for v in (red, half, black)]
    labels = ["a small red square moving right slowly", {"shape": "square", "color": "blue"}, {"shape": "square"}]
    report = check_videos([red, half, black], labels)
    assert report.to_dict() == {
        "num_videos": 3,
        "accuracy": {"shape": 2 / 3, "color": 1 / 2, "size": 1.0, "direction": 1.0, "speed": 1.0},
        "present_rate": pytest.approx((1 + 0.5 + 0) / 3),
        "single_blob_rate": pytest.approx((1 + 0.5 + 0) / 3),
        "mean_color_drift": pytest.approx((readings[0].color_drift + readings[1].color_drift) / 2),
        "mean_size_drift": pytest.approx((readings[0].size_drift + readings[1].size_drift) / 2),
    }
    assert report.readings == readings and report.expected[2] == {"shape": "square"}
    assert [r.attributes()["color"] for r in readings] == ["red", "red", None]


def test_a_minority_of_glitched_frames_does_not_change_the_shape_read():
    """Generated clips glitch now and then; the shape is the one most frames show, not an average of all."""
    tri = render_scene(ShapesScene(ShapesLabels("triangle", "green", "large", "right", "slowly"), 20, 32))
    flipped = tri.copy()
    flipped[:5] = flipped[:5, ::-1]  # 5 of 16 frames upside down: skewness +0.57 instead of -0.57
    assert read_shapes(flipped[:5]).skewness == pytest.approx(-read_shapes(tri).skewness) == pytest.approx(0.57, abs=0.01)
    reading = read_shapes(flipped)
    assert (reading.shape, reading.color, reading.size, reading.direction, reading.speed) == ("triangle", "green", "large", "right", "slowly")
    assert reading.skewness == pytest.approx(np.median([read_shapes(f[None]).skewness for f in flipped]))
    square = render_scene(ShapesScene(ShapesLabels("square", "green", "large", "right", "slowly"), 20, 32))
    square[:7] = tri[:7]  # 7 of 16 frames a triangle
    assert read_shapes(square).shape == "square"


def test_videos_and_labels_must_match_in_number():
    """A caption list one short would shift every caption onto the wrong video, or silently drop a video."""
    ds = CaptionedShapes("test", num_samples=3, resolution=32)
    videos, captions = [ds.render(i) for i in range(3)], [ds.caption(i) for i in range(3)]
    with pytest.raises(ValueError, match="shorter"):
        check_videos(videos, captions[:2])
    with pytest.raises(ValueError, match="longer"):
        check_videos(videos[:2], captions)
    assert check_videos(iter(videos), iter(captions)).num_videos == 3


def test_a_reading_reports_every_measure_of_a_hand_drawn_clip_exactly():
    """Each field of a reading must mean what it says: on a crisp square whose values are known, every one is exact."""
    video = np.zeros((4, 64, 64, 3), np.uint8)
    colors = [(240, 0, 0), (240, 0, 0), (240, 0, 0), (120, 0, 0)]  # the last frame dims: drift, not another colour
    for t, color in enumerate(colors):
        video[t, 20:30, 10 + 2 * t : 20 + 2 * t] = color  # 10x10 px moving right 2 px a frame
    reading = read_shapes(video)
    mean = np.mean(colors, axis=0)
    assert reading.attributes() == {"shape": "square", "color": "red", "size": "small", "direction": "right", "speed": "quickly"}
    assert (reading.present_rate, reading.single_blob_rate, reading.size_drift) == (1.0, 1.0, 0.0)
    assert reading.mean_color == pytest.approx(tuple(mean))  # (210, 0, 0): the mean over frames, not the median
    assert reading.color_drift == pytest.approx(max(np.linalg.norm(np.subtract(c, mean)) for c in colors))  # 90
    assert reading.velocity == pytest.approx((2.0, 0.0)) and reading.extent == pytest.approx(10.0)
    assert reading.fill_ratio == pytest.approx(1.0) and reading.skewness == pytest.approx(0.0, abs=1e-9)
    # the same clip at twice the resolution reads in 64-px units: same velocity and extent
    double = read_shapes(np.kron(video, np.ones((1, 2, 2, 1), np.uint8)))
    assert double.velocity == pytest.approx((2.0, 0.0)) and double.extent == pytest.approx(10.0)


def test_in_a_folder_of_clips_the_provenance_caption_wins_over_prompts_txt(tmp_path):
    """prompts.txt is only a fallback: a clip that records its own caption must be judged against that one."""
    from kinema.evaluation.shapes_checker import check_path
    from kinema.io import Provenance, write_video

    ds = CaptionedShapes("test", num_samples=2, resolution=32)
    write_video(tmp_path / "0000.mp4", ds.render(0), provenance=Provenance(prompt=ds.caption(0)))
    write_video(tmp_path / "0001.mp4", ds.render(1), provenance=Provenance(model="m"))  # records no prompt
    wrong = "a large magenta triangle moving up quickly"
    (tmp_path / "prompts.txt").write_text(f"{wrong}\n{ds.caption(1)}\n")
    clips = check_path(tmp_path).clips
    assert [(c.caption, c.source, c.fallback) for c in clips] == [
        (ds.caption(0), "provenance", wrong),
        (ds.caption(1), "prompts.txt", ds.caption(1)),
    ]


def test_a_clip_that_fails_with_an_os_error_is_skipped_and_the_rest_are_checked(tmp_path, monkeypatch):
    """A disk or network error on one clip of a manifest must skip that clip, saying why, not abort the whole check."""
    import kinema.evaluation.shapes_checker as checker
    from kinema.data.render import render_dataset
    from kinema.evaluation.shapes_checker import check_path

    render_dataset("shapes", tmp_path / "set", count=2, resolution=32)
    real_read = checker.read_video

    def flaky(path):
        if Path(path).name.startswith("0000"):
            raise OSError(5, "Input/output error", str(path))
        return real_read(path)

    monkeypatch.setattr(checker, "read_video", flaky)
    result = check_path(tmp_path / "set")
    first, second = result.clips
    assert first.skipped == f"unreadable: [Errno 5] Input/output error: '{first.file}'" and first.reading is None
    assert second.skipped is None and result.checked == [second] and result.report.num_videos == 1


def test_a_folder_without_clips_names_the_formats_it_looked_for(tmp_path):
    """'no videos' must list what counts as a clip, so a user with .mpg files or stray images sees why."""
    from kinema.evaluation.shapes_checker import check_path

    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError) as info:
        check_path(tmp_path)
    assert str(info.value) == f"{tmp_path} holds no videos (.mp4, .webm, .gif, .mov, .avi, .mkv files or PNG-frame folders)"


@pytest.mark.parametrize("shape", [(16, 64, 64, 4), (16, 64, 64, 1), (16, 64, 64), (64, 64, 3)])
def test_frames_that_are_not_rgb_video_are_refused_naming_their_shape(shape):
    """RGBA or grey frames would be read with alpha or nothing as colour; the user must hear the shape is wrong."""
    with pytest.raises(ValueError, match=f"^frames must be \\(F, H, W, 3\\), got shape {re.escape(str(shape))}$"):
        read_shapes(np.zeros(shape, np.uint8))
