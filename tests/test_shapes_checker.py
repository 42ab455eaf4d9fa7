"""The Shapes checker reads the attributes back off rendered videos."""

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
