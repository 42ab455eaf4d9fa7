"""`evaluate` end to end: folders in, report.json and report.html out, clear errors."""

import json
from functools import partial

import pytest
import torch
from safetensors.torch import save_file

import kinema.evaluation.evaluate as evaluate_module
from kinema.data.render import render_dataset
from kinema.data.shapes import CaptionedShapes
from kinema.evaluation.classifier import ShapesClassifier, ShapesClassifierConfig
from kinema.evaluation.evaluate import MissingWeightsError, VideoSet, evaluate, load_videos
from kinema.evaluation.fvd import InceptionI3d, i3d_features
from kinema.io import write_video


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
