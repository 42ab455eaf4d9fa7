"""`evaluate` end to end: folders in, report.json and report.html out, clear errors."""

import json
from functools import partial

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import kinema.evaluation.evaluate as evaluate_module
from kinema.data.render import render_dataset
from kinema.data.shapes import CaptionedShapes
from kinema.evaluation.classifier import ShapesClassifier, ShapesClassifierConfig
from kinema.evaluation.evaluate import MissingWeightsError, VideoSet, evaluate, load_videos
from kinema.evaluation.fvd import InceptionI3d, i3d_features
from kinema.evaluation.metrics import average_content_distance, psnr_frames, temporal_flicker
from kinema.io import read_video, write_video


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    render_dataset("shapes", root / "real", split="test", count=4, seed=0)
    render_dataset("shapes", root / "fake", split="test", count=4, seed=1)
    return root / "real", root / "fake"


def test_report_json_and_html(folders, tmp_path):
    real, fake = folders
    result = evaluate(real, fake, "psnr,ssim,flicker,acd,shapes", out=tmp_path / "report")
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["metrics"].keys() == result["metrics"].keys() == {"psnr", "ssim", "flicker", "acd", "shapes"}
    assert saved["pairing"] == "name" and saved["pairs"][0] == ["0000", "0000"]
    psnr = saved["metrics"]["psnr"]
    assert len(psnr["per_frame"]) == 16 and len(psnr["per_video"]) == 4 and 5 < psnr["mean"] < 30
    assert 0.9 < saved["metrics"]["flicker"]["fake"] <= 1.0
    assert saved["metrics"]["acd"]["fake"]["acd"] < 5  # rendered shapes keep their colour, even through H.264
    assert saved["metrics"]["shapes"]["fake"]["accuracy"] == {k: 1.0 for k in ("shape", "color", "size", "direction", "speed")}
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1 and "<polyline" in page and "Shapes checker" in page
    assert "<link" not in page and "<script" not in page  # self-contained
    assert (tmp_path / "report" / "grid.png").is_file()
    with pytest.raises(FileExistsError, match="overwrite"):
        evaluate(real, fake, "psnr", out=tmp_path / "report")


def test_identical_sets_have_infinite_psnr_written_as_a_string(folders, tmp_path):
    real, _ = folders
    result = evaluate(real, real, ["psnr", "ssim"], out=tmp_path)
    assert result["metrics"]["psnr"]["mean"] == float("inf") and result["metrics"]["psnr"]["identical_frames"] == 64
    assert result["metrics"]["ssim"]["mean"] == pytest.approx(1.0)
    assert json.loads((tmp_path / "report.json").read_text())["metrics"]["psnr"]["mean"] == "inf"
    assert "every frame is identical" in (tmp_path / "report.html").read_text()


def test_missing_weights_name_the_file_and_what_can_run():
    with pytest.raises(MissingWeightsError) as info:
        evaluate("no/such/real", "no/such/fake", "fvd,psnr,acd")  # checked before any video is read
    assert info.value.missing.keys() == {"fvd"} and info.value.runnable == ["psnr", "acd"]
    message = str(info.value)
    assert "i3d_pretrained_400.pt" in message and "--i3d PATH" in message and "run without it: psnr, acd" in message
    with pytest.raises(MissingWeightsError, match="absent.pt does not exist"):
        evaluate("x", "y", "fvd", i3d="absent.pt")
    with pytest.raises(ValueError, match="unknown metrics fid"):
        evaluate("x", "y", "fid")


def test_fvd_and_fd_shapes_with_given_weights(tmp_path, monkeypatch):
    torch.manual_seed(0)
    state = {k: v for k, v in InceptionI3d().state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(state, str(tmp_path / "i3d.safetensors"))
    ShapesClassifier(ShapesClassifierConfig(resolution=16, channels=(8, 8, 16, 16))).save(tmp_path / "clf")
    # 32x32 instead of the protocol's 224 keeps the test fast; everything else is the real path
    monkeypatch.setattr(evaluate_module, "i3d_features", partial(i3d_features, resolution=32))
    ds = CaptionedShapes("test", num_samples=8, resolution=32)
    real, fake = [ds.render(i) for i in range(4)], [ds.render(i) for i in range(4, 8)]
    with pytest.warns(UserWarning, match="below 256"):
        result = evaluate(real, fake, "fvd,fd_shapes", i3d=tmp_path / "i3d.safetensors", classifier=tmp_path / "clf")
    fvd, fd = result["metrics"]["fvd"], result["metrics"]["fd_shapes"]
    assert fvd["value"] > 0 and fvd["feature_dim"] == 400 and fvd["num_real"] == 4
    assert fd["value"] > 0 and fd["feature_dim"] == 16 and "not FVD" in fd["features"]
    assert len(result["warnings"]) == 2
    with pytest.raises(ValueError, match="at least 16 frames"), pytest.warns(UserWarning):
        evaluate([v[:8] for v in real], fake, "fvd", i3d=tmp_path / "i3d.safetensors")


def test_sets_that_do_not_pair_or_lack_captions_are_refused():
    ds = CaptionedShapes("test", num_samples=5, resolution=32)
    videos = [ds.render(i) for i in range(5)]
    with pytest.raises(ValueError, match=r"real \(in memory\) has 5 videos and generated \(in memory\) 4"):
        evaluate(videos, videos[:4], "ssim")
    assert evaluate(videos, videos[:4], "flicker")["metrics"]["flicker"]["fake"] > 0.9  # unpaired metrics are fine
    with pytest.raises(ValueError, match="shapes checks each generated video against its caption"):
        evaluate(videos, videos, "shapes")
    labelled = VideoSet.from_frames(videos, labels=[ds.caption(i) for i in range(5)])
    assert evaluate(videos, labelled, "shapes")["metrics"]["shapes"]["fake"]["accuracy"]["color"] == 1.0
    with pytest.raises(ValueError, match="same frame size"):
        evaluate(videos, [v[:, :16] for v in videos], "psnr")


def test_folders_without_a_manifest_list_videos_in_natural_order(tmp_path):
    frames = CaptionedShapes("test", num_samples=1, resolution=32).render(0)
    write_video(tmp_path / "10.mp4", frames)
    write_video(tmp_path / "2.mp4", frames)
    (tmp_path / "notes.txt").write_text("not a video")
    assert load_videos(tmp_path).names == ["2", "10"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no videos"):
        load_videos(tmp_path / "empty")


def test_fd_shapes_uses_the_built_in_classifier(folders):
    real, fake = folders
    same = evaluate(real, real, "fd_shapes")["metrics"]["fd_shapes"]
    other = evaluate(real, fake, "fd_shapes")["metrics"]["fd_shapes"]
    assert "shapes-classifier" in same["weights"]
    assert abs(same["value"]) < 1e-6 < other["value"]


def _fading(video, low=0.4):
    """The same clip with its colour fading over time: a content-consistency failure ACD must see."""
    return (video.astype(float) * np.linspace(1.0, low, len(video))[:, None, None, None]).astype(np.uint8)


def test_each_set_is_reported_under_its_own_name():
    """Swapping 'real' and 'fake' in a report would credit the model with the data's quality."""
    ds = CaptionedShapes("test", num_samples=3, resolution=32)
    real = [ds.render(i) for i in range(3)]
    fake = [_fading(v) for v in real]
    metrics = evaluate(real, fake, "flicker,acd")["metrics"]
    assert metrics.keys() == {"flicker", "acd"}
    assert metrics["flicker"]["real"] == pytest.approx(np.mean([temporal_flicker(v) for v in real]))
    assert metrics["flicker"]["fake"] == pytest.approx(np.mean([temporal_flicker(v) for v in fake]))
    assert metrics["acd"]["real"] == average_content_distance(real)
    assert metrics["acd"]["fake"] == average_content_distance(fake)
    assert metrics["acd"]["fake"]["acd"] > 20 > 1 > metrics["acd"]["real"]["acd"]


@pytest.mark.parametrize("metric", ["psnr", "ssim", "flicker", "acd"])
def test_only_the_requested_metric_is_computed(metric):
    """Asking for one metric gives exactly that one, with the pairing only where it matters."""
    ds = CaptionedShapes("test", num_samples=2, resolution=32)
    real = [ds.render(i) for i in range(2)]
    report = evaluate(real, [_fading(v, 0.8) for v in real], metric)
    assert report["metrics"].keys() == {metric} and report["metrics_requested"] == [metric]
    assert report["pairing"] == ("name" if metric in ("psnr", "ssim") else None)  # in memory: 0000, 0001 on both sides


def test_psnr_is_averaged_per_frame_over_pairs_and_per_video_over_frames():
    """The curves in the report are plain means of the per-frame PSNRs, leaving identical frames out."""
    ds = CaptionedShapes("test", num_samples=2, resolution=32)
    real = [ds.render(i) for i in range(2)]
    fake = [_fading(real[0], 0.7), _fading(real[1], 0.5)]
    fake[1][0] //= 2  # the first frame of the first pair is identical (inf dB), that of the second is not
    table = np.stack([psnr_frames(r, f) for r, f in zip(real, fake)])  # (pairs, frames)
    assert np.isinf(table[0, 0]) and np.isfinite(table[1]).all() and np.isfinite(table[0, 1:]).all()
    psnr = evaluate(real, fake, "psnr")["metrics"]["psnr"]
    assert psnr["identical_frames"] == 1 and psnr["unit"] == "dB"
    assert psnr["per_frame"][0] == pytest.approx(table[1, 0])
    np.testing.assert_allclose(psnr["per_frame"][1:], table[:, 1:].mean(axis=0))
    np.testing.assert_allclose(psnr["per_video"], [table[0, 1:].mean(), table[1].mean()])
    assert psnr["mean"] == pytest.approx(np.concatenate([table[0, 1:], table[1]]).mean())


def test_in_memory_labels_must_match_the_videos_in_number():
    """A caption list one short would silently shift every caption onto the wrong video."""
    videos = [np.zeros((2, 8, 8, 3), np.uint8)] * 3
    with pytest.raises(ValueError, match=r"^memory: 3 videos, 3 names and 2 labels$"):
        VideoSet.from_frames(videos, labels=["a", "b"])
    with pytest.raises(ValueError, match=r"^memory: 3 videos, 2 names and 3 labels$"):
        VideoSet.from_frames(videos, labels=["a", "b", "c"], names=["x", "y"])
    assert VideoSet.from_frames(videos).names == ["0000", "0001", "0002"]


def test_a_size_mismatch_names_both_videos_of_the_pair():
    """With hundreds of videos, the error must say which pair is wrong."""
    videos = [np.zeros((2, 16, 16, 3), np.uint8)] * 2
    small = VideoSet.from_frames([videos[0], np.zeros((2, 8, 16, 3), np.uint8)], names=["0000", "0001"], source="gen")
    with pytest.raises(ValueError, match=r"^real \(in memory\)\[0001\] and gen\[0001\]: paired videos must have the same frame size"):
        evaluate(videos, small, "psnr")


def test_progress_gets_one_line_per_metric_in_order(tmp_path):
    """`kinema evaluate` shows these lines; each names what is being computed."""
    ds = CaptionedShapes("test", num_samples=2, resolution=32)
    videos = [ds.render(i) for i in range(2)]
    ShapesClassifier(ShapesClassifierConfig(resolution=16, channels=(8, 8, 16, 16))).save(tmp_path / "clf")
    lines = []
    with pytest.warns(UserWarning, match="below 256"):
        evaluate(videos, videos, "acd,flicker,ssim,psnr,fd_shapes", classifier=tmp_path / "clf", progress=lines.append)
    assert lines == ["FD-Shapes: Shapes classifier features", "psnr, ssim: 2 pairs by name", "temporal flicker", "ACD"]


def test_repeated_names_pair_by_order():
    """Names pair videos only when they identify them; with duplicates, the order is the only safe pairing."""
    a, b = np.zeros((2, 8, 8, 3), np.uint8), np.full((2, 8, 8, 3), 60, np.uint8)
    real = VideoSet.from_frames([a, b], names=["x", "x"])
    fake = VideoSet.from_frames([a, b], names=["x", "x"])
    report = evaluate(real, fake, "psnr")
    assert report["pairing"] == "order" and report["metrics"]["psnr"]["identical_frames"] == 4


def test_a_manifest_prefers_the_caption_then_labels_then_prompt(tmp_path):
    """The caption a manifest gives is what the video was generated from; labels and prompt are fallbacks."""
    rows = [
        {"file": "a.mp4", "caption": "a small red circle moving left slowly", "labels": {"shape": "square"}},
        {"video": "b.mp4", "labels": {"shape": "square"}, "prompt": "ignored"},
        {"path": "sub/c.mp4", "prompt": "a big blue box"},
        {"file": "d.mp4"},
    ]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    videos = load_videos(tmp_path)
    assert videos.labels == ["a small red circle moving left slowly", {"shape": "square"}, "a big blue box", None]
    assert videos.names == ["a", "b", "sub/c", "d"]
    assert videos.paths == [tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "sub" / "c.mp4", tmp_path / "d.mp4"]
    (tmp_path / "manifest.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="lists no videos"):
        load_videos(tmp_path / "manifest.jsonl")


def test_a_folder_of_png_frames_is_one_video(tmp_path):
    """Pointing evaluate at a single PNG-frame folder evaluates that one video, not 'no videos'."""
    frames = CaptionedShapes("test", num_samples=1, resolution=32).render(0)
    write_video(tmp_path / "clip", frames)
    videos = load_videos(tmp_path / "clip")
    assert videos.paths == [tmp_path / "clip"] and videos.names == ["clip"]
    np.testing.assert_array_equal(videos.frames(0), frames)
    folders = load_videos(tmp_path)  # a folder holding PNG-frame folders: each is a video
    assert folders.names == ["clip"] and folders.paths == [tmp_path / "clip"]


def test_each_file_is_decoded_once_across_metrics(folders, monkeypatch):
    """Several metrics over the same files must not pay for decoding every file again."""
    real, fake = folders
    reads = []
    monkeypatch.setattr(evaluate_module, "read_video", lambda path: reads.append(path) or read_video(path))
    evaluate(real, fake, "psnr,ssim,flicker,acd")
    assert len(reads) == 8 and len(set(reads)) == 8


def test_report_json_writes_non_finite_values_as_strings():
    """report.json must stay valid JSON for every reader, with NaN and infinities spelled out, numpy values included."""
    from kinema.evaluation.report import to_json

    report = {"a": float("nan"), "b": [float("-inf"), (np.float32("nan"), np.float64("inf"))], "c": {1: np.int64(3)}}
    assert json.loads(to_json(report)) == {"a": "nan", "b": ["-inf", ["nan", "inf"]], "c": {"1": 3}}


def test_the_grid_shows_real_on_the_left_enlarged_by_a_whole_factor(tmp_path):
    """Readers compare left (real) with right (generated); small frames are scaled up pixel for pixel to >= 96 px."""
    from kinema.evaluation.report import comparison_grid

    real, fake = np.full((4, 40, 40, 3), 200, np.uint8), np.full((4, 40, 40, 3), 50, np.uint8)
    grid = comparison_grid([real], [fake])
    half = 4 * 42 - 2  # four 40-px frames with 2-px gaps, then a 12-px gap before the generated ones
    assert grid.shape == (3 * 40, 3 * (2 * half + 12), 3)  # 40 px x 3 = 120 >= 96; x 2 would be too small
    assert (grid[:, : 3 * 40] == 200).all() and (grid[:, -3 * 40 :] == 50).all()
    report = evaluate([real], [fake], "flicker", out=tmp_path)
    assert report["pairing"] is None
    from PIL import Image

    with Image.open(tmp_path / "grid.png") as image:
        np.testing.assert_array_equal(np.asarray(image), grid)


def test_summary_rows_say_what_each_number_is():
    """The terminal and HTML tables must show each value with its set, its precision and its caveats."""
    from kinema.evaluation.report import summary_rows

    report = {"metrics": {
        "fvd": {"value": 123.456, "num_real": 300, "num_fake": 280, "weights": "i3d.pt", "port": "videogpt"},
        "psnr": {"mean": 31.23456, "identical_frames": 3},
        "acd": {"fake": {"acd": 2.5, "num_measured": 3, "num_videos": 4}, "real": {"acd": float("nan")}},
    }}  # fmt: skip
    assert summary_rows(report) == [
        ("FVD (I3D Kinetics-400 logits; lower is better)", "123.46", "", "300 real vs 280 generated; weights i3d.pt (videogpt)"),
        ("PSNR (dB; higher is closer)", "31.23", "", "3 identical frames left out of the mean"),
        ("ACD (RGB 0-255; lower keeps colour)", "2.500", "n/a", "measured on 3/4 generated videos"),
    ]
    report["metrics"] = {"psnr": {"mean": float("inf"), "identical_frames": 0}}
    assert summary_rows(report) == [("PSNR (dB; higher is closer)", "\u221e", "", "mean over all frames")]


def test_every_warning_appears_in_the_html_and_infinite_points_are_marked_not_drawn():
    """A report must not hide a caveat, and identical frames (inf dB) must not break the PSNR line."""
    from kinema.evaluation.report import line_plot_svg, render_html

    report = {"real": {"source": "r", "num_videos": 2}, "fake": {"source": "f", "num_videos": 2}, "pairing": "order",
              "metrics": {}, "warnings": ["first <caveat>", "second caveat"]}  # fmt: skip
    page = render_html(report)
    assert "first &lt;caveat&gt;" in page and "second caveat" in page and "pairs matched by order" in page
    svg = line_plot_svg([float("inf"), 30.0, 31.0, float("inf"), 32.0], "PSNR", "dB")
    assert svg.count("<polyline") == 2 and svg.count("&#8734;") == 2 and svg.count("<circle") == 3
