"""Every command over a table of bad inputs: a non-zero exit (2 for a wrong input), one line naming the
input, no traceback, and every file that was there before byte for byte unchanged.

A new command joins by adding rows to CASES: (id, argv with {placeholders}, text the message must hold).
"""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kinema.cli import app
from kinema.io import write_video

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

# {s}: the sandbox folder; {model}: a tiny diffusion model folder (outside the sandbox)
CASES = [
    # generate: numbers
    ("generate-guidance-nan", "generate x --model {model} -o {s}/new.mp4 --guidance nan", "guidance_scale (--guidance) must be a finite number"),
    ("generate-guidance-inf", "generate x --model {model} -o {s}/new.mp4 --guidance inf", "guidance_scale (--guidance) must be a finite number"),
    ("generate-steps-0", "generate x --model {model} -o {s}/new.mp4 --steps 0", "num_inference_steps (--steps) must be >= 1"),
    ("generate-steps-negative", "generate x --model {model} -o {s}/new.mp4 --steps -3", "num_inference_steps (--steps)"),
    ("generate-frames-0", "generate x --model {model} -o {s}/new.mp4 --frames 0", "num_frames (--frames) must be >= 2"),
    ("generate-frames-huge", "generate x --model {model} -o {s}/new.mp4 --frames 100000", "num_frames (--frames)"),
    ("generate-fps-0", "generate x --model {model} -o {s}/new.mp4 --fps 0", "fps (--fps) must be > 0"),
    ("generate-fps-nan", "generate x --model {model} -o {s}/new.mp4 --fps nan", "fps (--fps) must be a finite number"),
    ("generate-height-negative", "generate x --model {model} -o {s}/new.mp4 --height -8", "height (--height)"),
    ("generate-cutoff-2", "generate x --model {model} -o {s}/new.mp4 --guidance-cutoff 2", "guidance_cutoff (--guidance-cutoff)"),
    ("generate-seed-negative", "generate x --model {model} -o {s}/new.mp4 --seed -1", "--seed"),
    ("generate-seed-past-64-bits", "generate x --model {model} -o {s}/new.mp4 --seed 100000000000000000000000", "--seed"),
    ("generate-scheduler", "generate x --model {model} -o {s}/new.mp4 --scheduler warp", "scheduler (--scheduler) must be one of"),
    ("generate-format", "generate x --model {model} -o {s}/new.avi --format avi", "format must be one of mp4, webm, gif, png, got 'avi'"),
    ("generate-threads-0", "generate x --model {model} -o {s}/new.mp4 --threads 0", "--threads"),
    ("generate-device", "generate x --model {model} -o {s}/new.mp4 --device gpu0", "device must be auto, cpu"),
    ("generate-dtype", "generate x --model {model} -o {s}/new.mp4 --dtype fp8", "dtype must be auto or one of"),
    ("generate-preview-every-negative", "generate x --model {model} -o {s}/new.mp4 --preview-every -2", "preview_every (--preview-every) must be >= 0"),
    ("generate-preview-every-nan", "generate x --model {model} -o {s}/new.mp4 --preview-every nan", "--preview-every"),
    ("generate-keep-preview-alone", "generate x --model {model} -o {s}/new.mp4 --keep-preview", "keep_preview (--keep-preview)"),
    # generate: files
    ("generate-existing-output", "generate x --model {model} -o {s}/existing.mp4", "existing.mp4 already exists"),
    ("generate-symlinked-output", "generate x --model {model} -o {s}/link.mp4", "link.mp4 already exists"),
    ("generate-dangling-symlink", "generate x --model {model} -o {s}/dangling.mp4", "dangling.mp4 already exists"),
    ("generate-output-in-a-file", "generate x --model {model} -o {s}/binary.bin/clip.mp4", "binary.bin"),
    ("generate-model-missing", "generate x --model {s}/nowhere -o {s}/new.mp4", "nowhere"),
    ("generate-model-is-a-file", "generate x --model {s}/binary.bin -o {s}/new.mp4", "binary.bin is a file"),
    ("generate-model-empty-folder", "generate x --model {s}/folder -o {s}/new.mp4", "folder is neither a model folder"),
    ("generate-model-evaluation-only", "generate x --model shapes-classifier -o {s}/new.mp4", "evaluation-only"),
    ("generate-image-truncated", "generate x --model {model} -o {s}/new.mp4 --image {s}/truncated.mp4", "truncated.mp4"),
    ("generate-image-folder", "generate x --model {model} -o {s}/new.mp4 --image {s}/folder", "folder"),
    ("generate-image-binary", "generate x --model {model} -o {s}/new.mp4 --image {s}/binary.bin", "binary.bin"),
    ("generate-prompts-folder", "generate --model {model} --prompts {s}/folder --out-dir {s}/out", "folder is a folder"),
    ("generate-prompts-binary", "generate --model {model} --prompts {s}/binary.bin --out-dir {s}/out", "binary.bin is not UTF-8 text"),
    ("generate-prompts-empty", "generate --model {model} --prompts {s}/empty.txt --out-dir {s}/out", "empty.txt has no prompts"),
    ("generate-prompts-missing", "generate --model {model} --prompts {s}/nowhere.txt --out-dir {s}/out", "nowhere.txt does not exist"),
    ("generate-count-0", "generate --model {model} x --count 0 --out-dir {s}/out", "--count"),
    ("generate-skip-and-overwrite", "generate --model {model} --prompts {s}/prompts.txt --out-dir {s}/out --skip-existing --overwrite", "not both"),
    ("generate-no-prompt", "generate --model {model} -o {s}/new.mp4", "give a prompt"),
    ("generate-unconditional-with-prompt", "generate hello --model shape-motion-gan -o {s}/new.mp4", "takes no prompt"),
    ("generate-undeclared-option", "generate --model shape-motion-gan -o {s}/new.mp4 --guidance 3", "does not take guidance_scale"),
    # generate: LoRAs and step caches (diffusers pipelines only; tests/test_diffusers_backend.py has the diffusers side)
    ("generate-lora-missing", "generate x --model {model} -o {s}/new.mp4 --lora {s}/nowhere.safetensors", "nowhere.safetensors: no such file or folder"),
    ("generate-lora-scale-text", "generate x --model {model} -o {s}/new.mp4 --lora {s}/lora.safetensors:strong",
     "the scale after ':' must be a finite number, got 'strong'"),
    ("generate-lora-scale-nan", "generate x --model {model} -o {s}/new.mp4 --lora {s}/lora.safetensors:nan", "the scale must be a finite number, got nan"),
    ("generate-lora-scale-inf", "generate x --model {model} -o {s}/new.mp4 --lora {s}/lora.safetensors:-inf", "the scale must be a finite number"),
    ("generate-lora-pickle", "generate x --model {model} -o {s}/new.mp4 --lora {s}/binary.bin", "only .safetensors LoRA files are read"),
    ("generate-lora-empty-folder", "generate x --model {model} -o {s}/new.mp4 --lora {s}/folder", "must hold one .safetensors file, it holds 0"),
    ("generate-lora-on-kinema-model", "generate x --model {model} -o {s}/new.mp4 --lora {s}/lora.safetensors", "--lora is only for diffusers pipelines"),
    ("generate-cache-unknown", "generate x --model {model} -o {s}/new.mp4 --cache warp", "cache (--cache) must be one of first-block, pab, faster, taylorseer"),
    ("generate-cache-on-kinema-model", "generate x --model {model} -o {s}/new.mp4 --cache pab", "--cache is only for diffusers pipelines"),
    # generate: int8 weights (tests/test_quantize.py has the rest)
    ("generate-quantize-unknown", "generate x --model {model} -o {s}/new.mp4 --quantize int4", "quantize (--quantize) must be one of int8, got 'int4'"),
    ("generate-quantize-empty", "generate x --model {model} -o {s}/new.mp4 --quantize ''", "quantize (--quantize) must be one of int8, got ''"),
    ("generate-quantize-case", "generate x --model {model} -o {s}/new.mp4 --quantize INT8", "must be one of int8, got 'INT8'"),
    ("generate-quantize-batch", "generate --model {model} --prompts {s}/prompts.txt --out-dir {s}/out --quantize fp8", "must be one of int8, got 'fp8'"),
    # generate: batch mode's own rules
    ("generate-prompts-without-out-dir", "generate --model {model} --prompts {s}/prompts.txt", "--prompts and --count need --out-dir"),
    ("generate-count-without-out-dir", "generate x --model {model} --count 2", "--prompts and --count need --out-dir"),
    ("generate-prompts-and-a-prompt", "generate x --model {model} --prompts {s}/prompts.txt --out-dir {s}/out",
     "--prompts takes its prompts from the file: give no PROMPT or --count with it"),
    ("generate-shots-with-prompts", "generate --model {model} --prompts {s}/prompts.txt --out-dir {s}/out --shots",
     "--shots makes one clip of one prompt; batch mode (--prompts, --count) takes none"),
    ("generate-shots-with-count", "generate x --model {model} --count 2 --out-dir {s}/out --shots",
     "--shots makes one clip of one prompt; batch mode (--prompts, --count) takes none"),
    # check
    ("check-missing", "check {s}/nowhere.mp4", "nowhere.mp4 does not exist"),
    ("check-empty-file", "check {s}/empty.mp4 --caption 'a red circle'", "empty.mp4"),
    ("check-truncated", "check {s}/truncated.mp4 --caption 'a red circle'", "truncated.mp4"),
    ("check-binary", "check {s}/binary.bin --caption 'a red circle'", "binary.bin"),
    ("check-empty-folder", "check {s}/folder", "folder holds no videos"),
    ("check-no-caption", "check {s}/existing.mp4", "no caption"),
    # dataset render
    ("render-unknown-kind", "dataset render cubes --out {s}/new", "unknown dataset 'cubes'"),
    ("render-count-0", "dataset render shapes --count 0 --out {s}/new", "--count"),
    ("render-count-negative", "dataset render shapes --count -5 --out {s}/new", "--count"),
    ("render-existing-render", "dataset render shapes --count 2 --out {s}/render", "already holds a rendered dataset"),
    ("render-over-user-files", "dataset render shapes --count 2 --out {s}/clips", "0000.mp4 already exists"),
    ("render-out-is-a-file", "dataset render shapes --count 2 --out {s}/binary.bin", "binary.bin is a file"),
    ("render-resolution", "dataset render shapes --count 2 --resolution 7 --out {s}/new", "resolution must be a multiple of 8 from 16 to 1024, got 7"),
    ("render-resolution-huge", "dataset render shapes --count 2 --resolution 99999999999999999999992 --out {s}/new",
     "resolution must be a multiple of 8 from 16 to 1024, got 99999999999999999999992"),
    ("render-split", "dataset render shapes --count 2 --split holdout --out {s}/new", "holdout"),
    # train
    ("train-yaml-syntax", "train {s}/bad.yaml --out {s}/run", "bad.yaml"),
    ("train-config-missing", "train {s}/nowhere.yaml --out {s}/run", "nowhere.yaml"),
    ("train-config-folder", "train {s}/folder --out {s}/run", "folder"),
    ("train-config-binary", "train {s}/binary.bin --out {s}/run", "binary.bin"),
    ("train-unknown-key", "train {tiny_config} --out {s}/run --set train.lerning_rate=1", "train.lerning_rate"),
    ("train-time-limit-nan", "train {tiny_config} --out {s}/run --time-limit nan", "--time-limit"),
    ("train-until-step-negative", "train {tiny_config} --out {s}/run --until-step -1", "--until-step"),
    ("train-resume-corrupt", "train {tiny_config} --out {s}/corrupt_run --resume {s}/corrupt_run/checkpoints/step_000005.pt", "step_000005.pt"),
    ("train-resume-auto-all-corrupt", "train {tiny_config} --out {s}/corrupt_run --resume auto", "every checkpoint in"),
    ("train-existing-run", "train {tiny_config} --out {s}/corrupt_run", "corrupt_run"),
    # info
    ("info-missing", "info {s}/nowhere.mp4", "nowhere.mp4"),
    ("info-empty", "info {s}/empty.mp4", "empty.mp4"),
    ("info-truncated", "info {s}/truncated.mp4", "truncated.mp4"),
    ("info-binary", "info {s}/binary.bin", "binary.bin"),
    ("info-empty-folder", "info {s}/folder", "folder"),
    # evaluate
    ("evaluate-real-missing", "evaluate --real {s}/nowhere --fake {s}/clips", "nowhere"),
    ("evaluate-batch-size-0", "evaluate --real {s}/clips --fake {s}/clips --batch-size 0", "--batch-size"),
    ("evaluate-unknown-metric", "evaluate --real {s}/clips --fake {s}/clips --metrics psnr,fvd2", "fvd2"),
    ("evaluate-existing-report", "evaluate --real {s}/clips --fake {s}/clips --metrics psnr --out {s}/report", "report.json already exists"),
    ("evaluate-model-without-prompts", "evaluate --real {s}/clips --model {model}", "--prompts"),
    ("evaluate-prompts-binary", "evaluate --real {s}/clips --model {model} --prompts {s}/binary.bin", "binary.bin"),
    # reconstruct, interpolate (the shipped autoencoder, or a generator that is not one)
    ("reconstruct-missing", "reconstruct {s}/nowhere.mp4 -o {s}/new.mp4", "nowhere.mp4"),
    ("reconstruct-truncated", "reconstruct {s}/truncated.mp4 -o {s}/new.mp4", "truncated.mp4"),
    ("reconstruct-existing-output", "reconstruct {s}/existing.mp4 -o {s}/existing.mp4", "existing.mp4 already exists"),
    ("reconstruct-not-an-autoencoder", "reconstruct {s}/existing.mp4 -o {s}/new.mp4 --model {model}", "not an autoencoder"),
    ("interpolate-frames-1", "interpolate {s}/existing.mp4 {s}/existing.mp4 --frames 1 -o {s}/new.mp4", "--frames"),
    ("interpolate-fps-nan", "interpolate {s}/existing.mp4 {s}/existing.mp4 --fps nan -o {s}/new.mp4", "--fps"),
    ("interpolate-binary", "interpolate {s}/binary.bin {s}/existing.mp4 -o {s}/new.mp4", "binary.bin"),
    # demo, export, models
    ("demo-existing-files", "demo --out {s}/demo --model {model}", "0000.mp4 already exists"),
    ("demo-out-is-a-file", "demo --out {s}/binary.bin --model {model}", "binary.bin is a file"),
    ("export-missing", "export {s}/nowhere --out {s}/new", "nowhere"),
    ("export-corrupt-only", "export {s}/corrupt_run --out {s}/new", "corrupt_run"),
    ("models-unknown", "models shapes-t2x", "shapes-t2x"),
]


def _snapshot(root: Path) -> dict[str, str]:
    """Every entry under root: a file's sha256, a symlink's target, a folder's marker."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                found[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[str(path)] = "dir"
    return found


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    s = tmp_path_factory.mktemp("hostile")
    clip = np.zeros((4, 32, 32, 3), np.uint8)
    clip[:, 8:16, 8:16] = 255
    write_video(s / "existing.mp4", clip, fps=8)
    (s / "truncated.mp4").write_bytes((s / "existing.mp4").read_bytes()[:300])
    (s / "empty.mp4").write_bytes(b"")
    (s / "empty.txt").write_text("\n\n")
    (s / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (s / "lora.safetensors").write_bytes(bytes(range(256)) * 8)  # a LoRA by name only: refused before it is read
    (s / "prompts.txt").write_text("a small red circle moving left slowly\n")
    os.symlink(s / "existing.mp4", s / "link.mp4")
    os.symlink(s / "gone.mp4", s / "dangling.mp4")
    (s / "folder").mkdir()
    (s / "bad.yaml").write_text("family: diffusion\nmodel: [unclosed\n")
    for name in ("clips", "demo"):
        (s / name).mkdir()
        write_video(s / name / "0000.mp4", clip, fps=8)
    (s / "render").mkdir()
    (s / "render" / "manifest.jsonl").write_text('{"file": "0000.mp4", "caption": "a red circle"}\n')
    (s / "report").mkdir()
    (s / "report" / "report.json").write_text("{}")
    (s / "corrupt_run" / "checkpoints").mkdir(parents=True)
    (s / "corrupt_run" / "checkpoints" / "step_000005.pt").write_bytes(b"not a checkpoint" * 10)
    return s


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_line_and_changes_nothing(case, sandbox, tiny_model_dir):
    _, argv, expected = case
    fields = {"s": sandbox, "model": tiny_model_dir, "tiny_config": ROOT / "configs" / "diffusion" / "tiny.yaml"}
    import shlex

    args = [part.format(**fields) for part in shlex.split(argv)]
    before = _snapshot(sandbox)
    result = runner.invoke(app, args)
    output = " ".join(result.output.split())
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit)), result.output
    assert expected in output, output
    after = _snapshot(sandbox)
    assert {k: v for k, v in after.items() if k in before} == before, "a file that was there changed"
    created = sorted(set(after) - set(before))
    assert not created, f"left behind: {created}"


def test_debug_shows_the_traceback(sandbox, monkeypatch):
    result = runner.invoke(app, ["--debug", "info", str(sandbox / "empty.mp4")])
    assert result.exit_code == 2 and "Traceback" in result.output
    monkeypatch.setenv("KINEMA_DEBUG", "1")
    assert "Traceback" in runner.invoke(app, ["info", str(sandbox / "empty.mp4")]).output


def test_unicode_prompts_and_paths_work(tiny_model_dir, tmp_path):
    out = tmp_path / "vidéo 🎬.mp4"
    result = runner.invoke(app, ["generate", "un petit cercle rouge ✨ qui va à gauche", "--model", str(tiny_model_dir), "-o", str(out), "--seed", "1"])
    assert result.exit_code == 0, result.output
    from kinema.io import probe

    assert probe(out).provenance.prompt == "un petit cercle rouge ✨ qui va à gauche"
