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


def test_info_shows_a_fractional_frame_rate_size_frames_and_duration(tmp_path):
    """An NTSC clip must read 29.97 fps, not a rounded 30, with its true size, frame count and length."""
    import numpy as np

    from kinema.io import write_video

    clip = tmp_path / "ntsc.mp4"
    write_video(clip, np.zeros((6, 16, 32, 3), dtype=np.uint8), fps=30000 / 1001)
    rows = {}
    for line in invoke("info", clip).splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    assert rows["fps"] == "29.97" and rows["size"] == "32x16" and rows["frames"] == "6"
    assert rows["duration"] == f"{6 * 1001 / 30000:.3f} s" and rows["audio"] == "none"


def test_check_scores_a_clip_against_the_caption_given_not_its_own(tmp_path):
    """--caption overrides the manifest's caption: a wrong shape, colour and speed must score 0 on exactly those."""
    invoke("dataset", "render", "shapes", "--count", 1, "--out", tmp_path)
    labels = json.loads((tmp_path / "manifest.jsonl").read_text().splitlines()[0])["labels"]
    shape = "circle" if labels["shape"] != "circle" else "square"
    color = "red" if labels["color"] != "red" else "blue"
    speed = "quickly" if labels["speed"] == "slowly" else "slowly"
    caption = f"a {labels['size']} {color} {shape} moving {labels['direction']} {speed}"
    report = json.loads(invoke("check", tmp_path / "0000.mp4", "--caption", caption, "--json"))
    assert report["clips"][0]["caption"] == caption and report["clips"][0]["caption_from"] == "--caption"
    assert report["accuracy"] == {"shape": 0.0, "color": 0.0, "size": 1.0, "direction": 1.0, "speed": 0.0}


def test_a_multi_shot_prompt_reports_each_shot_by_its_number_from_one(monkeypatch):
    """With --shots the user reads "shot 1 understood as ..." for their first sentence: numbering must start at one."""
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from kinema import cli
    from kinema.data.shapes import shapes_vocabulary
    from kinema.text import split_shots

    scenes = split_shots("A red disc rolls left. Then a big blue box goes up quickly.", shapes_vocabulary())
    assert len(scenes) == 2 and all(s.rewritten for s in scenes)
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=200))
    cli._report_clip(SimpleNamespace(scenes=scenes, warnings=["too short"]), "wrote clip.mp4")
    assert out.getvalue().splitlines() == [f"shot 1 understood as: {scenes[0].caption}", f"shot 2 understood as: {scenes[1].caption}",
                                           "warning: too short", "wrote clip.mp4"]


def test_evaluate_json_prints_the_report_as_json(tmp_path):
    """--json is for scripts: the report comes out as JSON (identical clips: infinite PSNR, every frame identical)."""
    invoke("dataset", "render", "shapes", "--count", 2, "--out", tmp_path / "real")
    output = invoke("evaluate", "--real", tmp_path / "real", "--fake", tmp_path / "real", "--metrics", "psnr", "--json")
    report = json.loads(output[output.index("{"):])
    assert report["pairs"] == [["0000", "0000"], ["0001", "0001"]] and report["metrics_requested"] == ["psnr"]
    assert report["metrics"]["psnr"]["mean"] == "inf" and report["metrics"]["psnr"]["identical_frames"] == 2 * 16


def test_a_batch_reports_each_clip_as_it_is_written(tiny_model_dir, tmp_path):
    """A long batch shows progress clip by clip: each written file is named on its own line, then the total."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a small red circle moving left slowly\na large blue square moving up quickly\n")
    output = invoke("generate", "--model", tiny_model_dir, "--prompts", prompts, "--out-dir", tmp_path / "clips", "--steps", 1, "--frames", 2, "--device", "cpu")
    lines = output.splitlines()
    for name in ("0000.mp4", "0001.mp4"):
        assert sum(1 for line in lines if line.startswith(str(tmp_path / "clips" / name))) == 1, output
    assert f"wrote 2 videos to {tmp_path / 'clips'}" in output


def test_evaluate_overwrite_replaces_an_earlier_report(tmp_path):
    """Re-running an evaluation into the same folder is refused unless --overwrite, which then writes the new report."""
    invoke("dataset", "render", "shapes", "--count", 2, "--out", tmp_path / "real")
    base = ["evaluate", "--real", tmp_path / "real", "--fake", tmp_path / "real", "--out", tmp_path / "report"]
    invoke(*base, "--metrics", "psnr")
    assert json.loads((tmp_path / "report" / "report.json").read_text())["metrics_requested"] == ["psnr"]
    again = runner.invoke(app, [str(a) for a in [*base, "--metrics", "ssim"]])
    assert again.exit_code == 2 and "report.json already exists" in " ".join(again.output.split())
    invoke(*base, "--metrics", "ssim", "--overwrite")
    assert json.loads((tmp_path / "report" / "report.json").read_text())["metrics_requested"] == ["ssim"]


def test_models_table_gives_each_models_weights_in_megabytes(monkeypatch):
    """The size column is what downloading the weights costs: the bytes of its .safetensors files, in MB of 10^6 bytes."""
    import io

    from rich.console import Console

    from kinema import cli
    from kinema.hub import BUILTIN_DIR

    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=400))
    invoke("models")
    rows = {line.split("│")[1].strip(): line for line in out.getvalue().splitlines() if line.count("│") >= 5}
    for name in ("shapes-t2v", "shapes-vae", "shapes-gan"):
        weights = sum(p.stat().st_size for p in (BUILTIN_DIR / name).rglob("*.safetensors"))
        assert f"{weights / 1_000_000:.1f} MB" in rows[name], rows[name]


def test_a_dry_run_checks_the_one_prompt_of_a_clip_and_none_of_a_batch(monkeypatch, tmp_path):
    """A batch takes its prompts from the file, so the estimate must not refuse it for the PROMPT it was not given."""
    from kinema.pipelines import diffusers_backend

    seen = []
    monkeypatch.setattr(diffusers_backend, "fit_report", lambda model, **kw: seen.append(kw["prompt"]) or ["estimate: 1.0 GB"])
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat surfing\n")
    assert "estimate: 1.0 GB" in invoke("generate", "--model", "some-pipeline", "--prompts", prompts, "--out-dir", tmp_path / "out", "--dry-run")
    invoke("generate", "--model", "some-pipeline", "--count", 2, "--out-dir", tmp_path / "out", "--dry-run")
    invoke("generate", "a cat surfing", "--model", "some-pipeline", "-o", tmp_path / "clip.mp4", "--dry-run")
    invoke("generate", "--model", "some-pipeline", "-o", tmp_path / "clip.mp4", "--dry-run")
    assert seen == [None, None, "a cat surfing", ""]
    assert not (tmp_path / "out").exists() and not (tmp_path / "clip.mp4").exists()


def test_evaluate_table_right_aligns_the_numbers_and_left_aligns_the_words(monkeypatch, tmp_path):
    """Numbers read down a column by their decimal point: the generated and real columns are right-aligned."""
    import io

    from rich.console import Console

    from kinema import cli

    invoke("dataset", "render", "shapes", "--count", 2, "--out", tmp_path / "real")
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=200))
    invoke("evaluate", "--real", tmp_path / "real", "--fake", tmp_path / "real", "--metrics", "ssim,flicker")
    header = next(line for line in out.getvalue().splitlines() if "generated" in line).split("┃")[1:-1]
    assert header[1].strip() == "generated" and header[1].endswith("generated ") and header[2].endswith("real ")
    ssim = next(line for line in out.getvalue().splitlines() if line.startswith("│ SSIM")).split("│")[1:-1]
    assert ssim[0].startswith(" SSIM") and ssim[3].startswith(" 7x7 window")  # words: left
    assert ssim[1] == " " * (len(ssim[1]) - len("1.0000 ")) + "1.0000 " and len(ssim[1]) > len(" 1.0000 ")  # numbers: right


def test_evaluate_json_keeps_brackets_in_paths_as_written(tmp_path):
    """--json output feeds scripts: a folder named "[bold] run" must come out as that path, not read as console markup."""
    real = tmp_path / "[bold] run" / "real"
    invoke("dataset", "render", "shapes", "--count", 2, "--out", real)
    output = invoke("evaluate", "--real", real, "--fake", real, "--metrics", "psnr", "--json")
    report = json.loads(output[output.index("{"):])
    assert report["real"] == {"source": str(real), "num_videos": 2} and report["fake"]["source"] == str(real)



def test_demo_command_passes_its_options_and_names_what_it_wrote(monkeypatch, tmp_path):
    """`kinema demo` tells the user where the clips and the grid are, and the checker's table of them."""
    from types import SimpleNamespace

    from kinema import demo

    calls = []
    out = tmp_path / "demo"
    report = SimpleNamespace(accuracy={"shape": 0.875, "color": 1.0}, present_rate=1.0, single_blob_rate=0.95, mean_color_drift=1.234,
                             mean_size_drift=0.0456)

    def fake(out_, model, seed, overwrite):
        calls.append((out_, model, seed, overwrite))
        return demo.DemoResult(files=[out / f"{i:04d}.mp4" for i in range(3)], grid=out / "grid.gif", report=report, model="tiny-model",
                               seconds_per_clip=0.5)

    monkeypatch.setattr(demo, "run_demo", fake)
    output = " ".join(invoke("demo", "--out", out, "--model", "tiny-model", "--seed", 3, "--overwrite").replace("│", " ").split())
    assert calls == [(out, "tiny-model", 3, True)]
    assert f"wrote 3 clips and their prompts to {out}/, animated grid {out / 'grid.gif'}" in output
    assert "Shapes check of the clips generated by tiny-model" in output and "0.50 s per clip, done in" in output
    assert "shape accuracy 87.5%" in output and "colour drift (RGB 0-255) 1.23" in output and "size drift 0.046" in output


def test_dataset_render_seed_picks_the_clips_as_the_library_does(tmp_path):
    """--seed makes a dataset reproducible: the command renders what render_dataset(seed=...) renders, another seed other clips."""
    from kinema.data.render import render_dataset

    def captions(folder):
        return [json.loads(line)["caption"] for line in (folder / "manifest.jsonl").read_text().splitlines()]

    invoke("dataset", "render", "shapes", "--count", 3, "--seed", 7, "--out", tmp_path / "cli")
    render_dataset("shapes", tmp_path / "lib", count=3, seed=7)
    assert captions(tmp_path / "cli") == captions(tmp_path / "lib")
    invoke("dataset", "render", "shapes", "--count", 3, "--seed", 8, "--out", tmp_path / "other")
    assert captions(tmp_path / "other") != captions(tmp_path / "cli")


def test_models_name_lists_every_option_the_model_takes(monkeypatch):
    """`kinema models shapes-t2v` is where a user learns the options: each one the model declares gets its own indented line."""
    import io

    from rich.console import Console

    from kinema import cli
    from kinema.hub import open_model
    from kinema.pipelines import describe_model

    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=400))
    invoke("models", "shapes-t2v")
    _, _, options = describe_model(open_model("shapes-t2v"))
    lines = out.getvalue().splitlines()
    assert len(options) >= 2 and all(f"  {option}" in lines for option in options), (options, lines)


def test_export_command_passes_each_flag_and_names_the_folder_it_wrote(monkeypatch, tmp_path):
    """`kinema export` must hand --raw/--overwrite/--sampling-only/--half to the library as the user meant them and say where the model is."""
    from kinema.training import export

    calls = []

    def fake(run, out, *, overwrite, ema, sampling_only, half):
        calls.append((run, out, overwrite, ema, sampling_only, half))
        return out

    monkeypatch.setattr(export, "export_checkpoint", fake)
    run, out = tmp_path / "run", tmp_path / "models" / "step5"
    output = invoke("export", run, "--out", out)
    assert calls == [(run, out, False, True, False, False)]
    assert f"wrote {out}" in " ".join(output.split())
    invoke("export", run, "-o", out, "--raw", "--overwrite", "--sampling-only", "--half")
    assert calls[1] == (run, out, True, False, True, True)


def test_train_command_passes_config_overrides_and_stop_options(monkeypatch, tmp_path):
    """`kinema train` runs the library's train() with every --set in order and the resume / stop options unchanged."""
    import kinema.training

    calls = []
    monkeypatch.setattr(kinema.training, "train", lambda config, **kwargs: calls.append((config, kwargs)))
    config = tmp_path / "c.yaml"
    invoke("train", config, "--set", "train.lr=0.1", "--set", "train.max_steps=5", "--resume", "auto", "--out", tmp_path / "r",
           "--until-step", 3, "--time-limit", 1.5)
    assert calls == [(config, dict(overrides=["train.lr=0.1", "train.max_steps=5"], resume="auto", out=tmp_path / "r", until_step=3,
                                   time_limit=1.5))]
    invoke("train", config)
    assert calls[1] == (config, dict(overrides=[], resume=None, out=None, until_step=None, time_limit=None))


def test_models_name_heads_its_card_with_kind_what_it_takes_and_size(monkeypatch):
    """`kinema models NAME` first says what the model is for and what to give it: an autoencoder takes a video, not a prompt."""
    import io

    from rich.console import Console

    from kinema import cli
    from kinema.hub import BUILTIN_DIR

    for name, head in [("shapes-vae", "autoencoder; takes a video (kinema reconstruct) or two frames (kinema interpolate)"),
                       ("shapes-t2v", "text-to-video + image-to-video; takes a prompt and/or an image (first frame)")]:
        out = io.StringIO()
        monkeypatch.setattr(cli, "console", Console(file=out, width=400))
        invoke("models", name)
        weights = sum(p.stat().st_size for p in (BUILTIN_DIR / name).rglob("*.safetensors"))
        assert out.getvalue().splitlines()[0] == f"{name}: {head}; {weights / 1_000_000:.1f} MB"


def test_a_dry_run_prints_the_estimate_lines_verbatim_brackets_and_all(monkeypatch, tmp_path):
    """A model path like runs/[exp1] is part of the estimate the user reads; rich must not eat it as markup."""
    from kinema.pipelines import diffusers_backend

    lines = ["model runs/[exp1]/model: weights 1.2 GB [bf16]", "fits: [bold]yes[/bold]"]
    monkeypatch.setattr(diffusers_backend, "fit_report", lambda model, **kw: lines)
    output = invoke("generate", "a cat", "--model", "runs/[exp1]/model", "-o", tmp_path / "clip.mp4", "--dry-run")
    assert [line for line in output.splitlines() if line] == lines
    assert not (tmp_path / "clip.mp4").exists()


def test_evaluate_command_hands_every_option_to_the_library(monkeypatch, tmp_path):
    """--batch-size, --i3d-port, --classifier and the rest must reach evaluate() as given, or a user's memory limit is silently ignored."""
    from kinema.device import resolve_device
    from kinema.evaluation import evaluate as evaluation

    calls = []

    def fake(real, fake, metrics, **kwargs):
        kwargs.pop("progress")
        calls.append((real, fake, metrics, kwargs))
        return {"metrics": {}, "warnings": [], "real": {}, "fake": {}}

    monkeypatch.setattr(evaluation, "evaluate", fake)
    real, generated, out = tmp_path / "real", tmp_path / "fake", tmp_path / "report"
    invoke("evaluate", "--real", real, "--fake", generated, "--metrics", "fvd,psnr", "--i3d", tmp_path / "i3d.pt", "--i3d-port", "piergiaj",
           "--classifier", tmp_path / "clf", "--out", out, "--device", "cpu", "--batch-size", 3, "--overwrite", "--json")
    assert calls == [(real, generated, "fvd,psnr", dict(i3d=tmp_path / "i3d.pt", classifier=tmp_path / "clf", out=out, i3d_port="piergiaj",
                                                         device="cpu", batch_size=3, overwrite=True))]
    invoke("evaluate", "--real", real, "--fake", generated, "--json")
    auto = str(resolve_device("auto"))  # the default device: a GPU where there is one
    assert calls[1] == (real, generated, "psnr,ssim,flicker,acd", dict(i3d=None, classifier=None, out=None, i3d_port="videogpt", device=auto,
                                                                      batch_size=8, overwrite=False))


def test_demo_refuses_to_overwrite_before_any_work_and_names_the_first_file_in_the_way(tmp_path):
    """A second `kinema demo` into the same folder must not silently replace clips (or a link a user left there) without --overwrite."""
    import os

    from kinema.demo import DEMO_PROMPTS, run_demo

    (tmp_path / "file").write_text("mine")
    with pytest.raises(NotADirectoryError, match=r"^--out .*file is a file; the demo writes a folder$"):
        run_demo(tmp_path / "file")
    out = tmp_path / "demo"
    out.mkdir()
    os.symlink(tmp_path / "nowhere.gif", out / "grid.gif")  # dangling: still a name the demo would write over
    (out / f"{len(DEMO_PROMPTS) - 1:04d}.mp4").write_text("mine")
    (out / f"{len(DEMO_PROMPTS):04d}.mp4").write_text("not the demo's")  # one past the last prompt: not in the way
    with pytest.raises(FileExistsError) as info:
        run_demo(out)
    assert str(info.value) == (f"{out / f'{len(DEMO_PROMPTS) - 1:04d}.mp4'} already exists (2 of the demo's files are in {out}); "
                               "pass --overwrite to replace them, or choose another --out")
    with pytest.raises(FileExistsError, match=r"demo/grid\.gif already exists \(2 of the demo's files"):
        (out / "prompts.txt").write_text("")
        run_demo(out, prompts=["a red circle"])  # its files: 0000.mp4, grid.gif, prompts.txt
    assert sorted(p.name for p in out.iterdir()) == ["0007.mp4", "0008.mp4", "grid.gif", "prompts.txt"]


class _ThreadsSet(Exception):
    pass


@pytest.mark.parametrize("args", [
    ["generate", "a red circle", "-o", "{tmp}/clip.mp4"],
    ["reconstruct", "{tmp}/in.mp4", "-o", "{tmp}/out.mp4"],
    ["interpolate", "{tmp}/in.mp4", "{tmp}/in.mp4", "-o", "{tmp}/out.mp4"],
    ["export", "{tmp}/run", "--out", "{tmp}/model"],
    ["train", "{tmp}/config.yaml", "--out", "{tmp}/run"],
    ["dataset", "render", "shapes", "--out", "{tmp}/data"],
    ["check", "{tmp}/in.mp4"],
    ["demo", "--out", "{tmp}/demo"],
    ["evaluate", "--real", "{tmp}/in.mp4", "--fake", "{tmp}/in.mp4"],
], ids=lambda args: " ".join(args[:2]))
def test_every_compute_command_takes_its_threads_before_any_work(tmp_path, monkeypatch, args):
    """`--threads 3` reaches the thread setting of every command that computes (a busy machine stalls otherwise)."""
    import kinema.threads

    seen = []

    def configure(threads=None):
        seen.append(threads)
        raise _ThreadsSet

    monkeypatch.setattr(kinema.threads, "configure_threads", configure)
    (tmp_path / "in.mp4").write_bytes(b"")
    (tmp_path / "config.yaml").write_text("family: toy\n")
    (tmp_path / "run").mkdir()
    result = runner.invoke(app, [a.format(tmp=tmp_path) for a in args] + ["--threads", "3"])
    assert seen == [3], (result.exit_code, result.output)
