"""The command line as a user drives it."""

import json

import av
import pytest
from typer.testing import CliRunner

import kinema
from kinema.cli import app
from kinema.io import probe

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_version():
    assert kinema.__version__ in invoke("--version")


@pytest.mark.parametrize("command", [["info"], ["check"], ["demo"], ["train"], ["evaluate"], ["export"], ["generate"], ["models"], ["dataset", "render"], ["reconstruct"], ["interpolate"]])
def test_every_command_help_shows_an_example(command):
    assert "Example" in invoke(*command, "--help")


def test_render_writes_playable_videos_manifest_and_preview(tmp_path):
    out = tmp_path / "x"
    invoke("dataset", "render", "shapes", "--split", "test", "--count", 8, "--out", out)
    videos = sorted(out.glob("*.mp4"))
    assert [v.name for v in videos] == [f"{i:04d}.mp4" for i in range(8)]
    for video in videos:
        with av.open(str(video)) as container:  # playable: a real H.264 stream that decodes
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert sum(1 for _ in container.decode(stream)) == 16
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and rows[0]["file"] == "0000.mp4"
    assert rows[0]["caption"].startswith("a ") and set(rows[0]["labels"]) == {"shape", "color", "size", "direction", "speed"}
    assert (out / "preview.png").stat().st_size > 0

    # the checker reads the encoded videos back correctly
    table = invoke("check", out)
    assert table.count("100.0%") >= 7, table
    report = json.loads(invoke("check", out, "--json"))
    assert all(acc >= 0.99 for acc in report["accuracy"].values())
    # --json gives each clip's reading beside what its caption asked (the report's own dict leaves them out)
    assert len(report["videos"]) == len(report["clips"]) == 8
    assert report["videos"][3]["expected"] == rows[3]["labels"]
    assert {k: report["videos"][3]["read"][k] for k in rows[3]["labels"]} == rows[3]["labels"]

    # info shows the provenance record written with each video
    shown = invoke("info", videos[3])
    assert "h264" in shown and "64x64" in shown and "16" in shown and rows[3]["caption"] in shown

    # a second render into the same folder does not replace the first without --overwrite
    result = runner.invoke(app, ["dataset", "render", "shapes", "--count", "2", "--out", str(out)])
    assert result.exit_code != 0 and len(list(out.glob("*.mp4"))) == 8


def test_shape_motion_render(tmp_path):
    invoke("dataset", "render", "shape-motion", "--count", 3, "--resolution", 32, "--out", tmp_path / "m")
    rows = [json.loads(line) for line in (tmp_path / "m" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["labels"]["direction"] in ("left-to-right", "top-to-bottom")


def test_check_one_file_uses_its_provenance_prompt(tmp_path):
    invoke("dataset", "render", "shapes", "--count", 1, "--out", tmp_path)
    assert "100.0%" in invoke("check", tmp_path / "0000.mp4")


def test_info_on_a_broken_file_names_it(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    result = runner.invoke(app, ["info", str(bad)])
    assert result.exit_code == 2 and "broken.mp4" in result.output


def test_generate_without_model_uses_the_shipped_default(tmp_path):
    output = invoke("generate", "a large blue square moving up quickly", "-o", tmp_path / "clip.mp4", "--seed", 1)
    info = probe(tmp_path / "clip.mp4")
    assert (info.num_frames, info.width, info.height) == (16, 64, 64)
    assert info.provenance.model == "shapes-t2v" and info.provenance.seed == 1
    assert str(tmp_path / "clip.mp4") in output
    assert "shapes-t2v" in invoke("models")


def test_demo_generates_with_the_shipped_model_and_the_clips_follow_their_prompts(tmp_path):
    from kinema.demo import run_demo

    result = run_demo(tmp_path / "demo")
    assert (tmp_path / "demo" / "grid.gif").exists() and len(list((tmp_path / "demo").glob("*.mp4"))) == 8
    # the shipped weights, not a random network: colour and motion follow the prompt
    assert all(acc >= 7 / 8 for acc in result.report.accuracy.values()), result.report.accuracy
    assert result.report.single_blob_rate >= 0.9, result.report.single_blob_rate


def test_evaluate_writes_a_report_and_names_missing_weights(tmp_path):
    invoke("dataset", "render", "shapes", "--split", "test", "--count", 3, "--out", tmp_path / "real")
    output = invoke("evaluate", "--real", tmp_path / "real", "--fake", tmp_path / "real", "--metrics", "psnr,ssim,acd,shapes", "--out", tmp_path / "report")
    assert (tmp_path / "report" / "report.html").exists() and "psnr" in output.lower()
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["metrics"]["shapes"]
    result = runner.invoke(app, ["evaluate", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "real"), "--metrics", "fvd"])
    assert result.exit_code == 2 and "i3d" in result.output.lower()


def test_check_table_shows_every_measure_of_the_report(tmp_path):
    invoke("dataset", "render", "shapes", "--count", 2, "--out", tmp_path)
    report = json.loads(invoke("check", tmp_path, "--json"))
    table = invoke("check", tmp_path)
    rows = [(f"{name} accuracy", f"{value:.1%}") for name, value in report["accuracy"].items()]
    rows += [("object present (frames)", f"{report['present_rate']:.1%}"), ("single blob (frames)", f"{report['single_blob_rate']:.1%}"),
             ("colour drift (RGB 0-255)", f"{report['mean_color_drift']:.2f}"), ("size drift", f"{report['mean_size_drift']:.3f}")]
    lines = table.splitlines()
    for label, value in rows:
        assert any(label in line and line.rstrip(" │|").endswith(value) for line in lines), (label, value, table)


@pytest.mark.parametrize(
    "error, code",
    [
        (ValueError("frames must be >= 2"), 2),
        (OverflowError("Python int too large to convert to C long"), 2),  # a number past what the code below can hold
        (FileNotFoundError("clip.mp4 does not exist"), 2),
        (IsADirectoryError("clip.mp4 is a folder"), 2),
        (RuntimeError("out of memory"), 1),
        (MemoryError(), 1),
        (KeyboardInterrupt(), 130),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_an_error_deep_inside_a_command_becomes_its_exit_code_and_one_line(monkeypatch, tmp_path, error, code):
    import kinema.io

    def probe_fails(path):
        raise error

    monkeypatch.setattr(kinema.io, "probe", probe_fails)
    result = runner.invoke(app, ["info", str(tmp_path / "clip.mp4")])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    first = lines[0]
    if code == 130:
        assert first == "interrupted: stopped by the user"
    else:
        assert first == f"error: {' '.join(str(error).split()) or type(error).__name__}"
        # a failure (not a wrong input) says how to see the traceback; a wrong input does not
        assert lines[1:] == (["(--debug or KINEMA_DEBUG=1 shows the traceback)"] if code == 1 else [])
