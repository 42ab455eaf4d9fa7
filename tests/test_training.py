"""The trainer end to end on the toy family: learning, exact resume after kill -9 / SIGTERM / --until-step,
corrupt checkpoints, two processes against one, export, logs, and a two-optimizer (GAN-shaped) objective."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from kinema.training import ConfigError, Family, Objective, register_family, train
from kinema.training.checkpoint import (
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from kinema.training.config import build_run_config
from kinema.training.logging import training_seconds
from kinema.training.objectives.toy import ToyDenoiser, ToyDenoiserConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "toy" / "tiny.yaml"
BIN = Path(sys.executable).parent

# ~30 ms a step on 2 cores: long enough to kill a run between its first checkpoint (step 10) and its end (step 40).
# Dropout makes the saved RNG state matter: a resume that restored it wrongly would not match bitwise.
EXACT = [
    "train.max_steps=40",
    "train.checkpoint_every=10",
    "train.keep_checkpoints=3",
    "train.log_every=5",
    "train.sample_every=20",
    "model.dropout=0.1",
    "model.hidden=32",
    "data.num_frames=8",
    "data.height=16",
    "data.width=16",
]


def _final_state(run: Path) -> dict:
    return load_checkpoint(checkpoint_path(run / "checkpoints", 40))


def _assert_same_training_state(run: Path, reference: Path) -> None:
    """Weights, EMA, optimizer moments and the exported model all bitwise equal."""
    a, b = _final_state(run), _final_state(reference)
    for section in ("modules", "ema"):
        for name, tensors in b[section].items():
            for key, tensor in tensors.items():
                assert torch.equal(a[section][name][key], tensor), f"{section}.{name}.{key} differs"
    for name, opt in b["optimizers"].items():
        for index, moments in opt["state"].items():
            for key, tensor in moments.items():
                assert torch.equal(a["optimizers"][name]["state"][index][key], tensor), f"optimizer {name} {index}.{key} differs"
    exported, expected = (load_file(r / "model" / "denoiser" / "model.safetensors") for r in (run, reference))
    assert exported.keys() == expected.keys() and all(torch.equal(exported[k], expected[k]) for k in expected)


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _cli(run: Path, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "kinema.cli", "train", str(TINY), "--out", str(run)]
    for item in EXACT:
        args += ["--set", item]
    return subprocess.Popen(args + list(extra), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"training exited (rc {proc.returncode}) before writing {path}:\n{proc.stdout.read()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"no {path} after {timeout} s")
        time.sleep(0.01)


def test_toy_clips_show_one_square_a_third_of_the_shorter_side_on_wide_frames():
    """The toy data is a square of side min(h, w) // 3 on a plain background, wrapping around on any frame shape."""
    from kinema.training.objectives.toy import ToyDataConfig, render_clips

    clips = render_clips(6, ToyDataConfig(num_frames=5, height=12, width=30), torch.Generator().manual_seed(0))
    assert clips.shape == (6, 3, 5, 12, 30)
    for clip in clips:
        for frame in clip.unbind(1):  # (c, h, w)
            colours, counts = frame.flatten(1).unique(dim=1, return_counts=True)
            assert sorted(counts.tolist()) == [16, 12 * 30 - 16]  # a 4 x 4 square (12 // 3 = 4)
            square = colours[:, counts.argmin()]
            ys, xs = (frame == square[:, None, None]).all(0).nonzero().unbind(1)
            # one square, wrapped: 4 distinct rows and 4 distinct columns, each (row, column) pair once
            assert len(set(ys.tolist())) == 4 and len(set(xs.tolist())) == 4


def test_a_toy_preview_shows_the_denoised_noisy_clips_as_uint8_frames():
    """The preview is what the model makes of noisy input (clean + noise_std * noise), not of the clean clip it never sees."""
    from kinema.training import get_family, load_config
    from kinema.training.objectives.toy import render_clips

    config = load_config(TINY)
    objective = get_family("toy").objective(config)
    model = objective.modules["model"].eval()
    clips = objective.sample(3, torch.Generator().manual_seed(4))
    replay = torch.Generator().manual_seed(4)
    clean = render_clips(3, config.data, replay)
    noisy = clean + config.data.noise_std * torch.randn(clean.shape, generator=replay)
    with torch.no_grad():
        expected = ((model(noisy).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1)
    assert clips.dtype == torch.uint8 and clips.shape == (3, config.data.num_frames, config.data.height, config.data.width, 3)
    assert torch.equal(clips, expected)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """One uninterrupted run of EXACT, the reference for every resume test."""
    run = tmp_path_factory.mktemp("baseline") / "run"
    train(TINY, EXACT, out=run)
    return run


# ---------------------------------------------------------------------------- a normal run


def test_loss_falls_and_the_run_folder_is_complete(baseline):
    losses = [entry["loss"] for entry in _metrics(baseline)]
    assert losses[-1] < 0.5 * losses[0], losses
    entry = _metrics(baseline)[-1]
    assert {"step", "loss", "lr", "grad_norm", "samples_per_s", "steps_per_s"} <= entry.keys() and entry["step"] == 40
    assert list((baseline / "tensorboard").glob("events.out.tfevents.*"))
    gif = Image.open(baseline / "samples" / "step_000040.gif")
    assert gif.n_frames == 8  # the clip's frames, animated
    assert (baseline / "config.yaml").read_text().startswith("family: toy")
    # keep_checkpoints=3 of the checkpoints at 10, 20, 30, 40
    assert [step for step, _ in list_checkpoints(baseline / "checkpoints")] == [20, 30, 40]
    # training wall time: the logged intervals add up to (about) the run's own duration, pauses excluded
    rows = _metrics(baseline)
    seconds = training_seconds(baseline / "metrics.jsonl")
    assert 0 < seconds < rows[-1]["time"] - rows[0]["time"] + 60
    assert training_seconds(baseline / "metrics.jsonl", upto_step=20) < seconds


def test_exported_model_loads_and_gives_the_ema_outputs(baseline):
    model = ToyDenoiser.from_pretrained(baseline / "model").eval()
    index = json.loads((baseline / "model" / "model_index.json").read_text())
    config = json.loads((baseline / "model" / "denoiser" / "config.json").read_text())
    assert index["training"]["weights"] == "ema" and index["purpose"] == "test" and config["hidden"] == 32 and config["dropout"] == 0.1
    reference = ToyDenoiser(ToyDenoiserConfig(hidden=32, dropout=0.1)).eval()
    reference.load_state_dict(_final_state(baseline)["ema"]["model"])
    x = torch.randn(2, 3, 8, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model(x), reference(x))
    assert torch.equal(ToyDenoiser.from_pretrained(baseline).eval()(x), model(x))  # a run folder works too


def test_a_half_export_stores_float16_and_loads_the_rounded_weights(baseline, tmp_path):
    from kinema.training.export import export_checkpoint

    folder = export_checkpoint(baseline, tmp_path / "half", half=True)
    stored = load_file(folder / "denoiser" / "model.safetensors")
    full = load_file(baseline / "model" / "denoiser" / "model.safetensors")
    assert stored.keys() == full.keys() and all(v.dtype == torch.float16 for v in stored.values())
    assert (folder / "denoiser" / "model.safetensors").stat().st_size < 0.6 * (baseline / "model" / "denoiser" / "model.safetensors").stat().st_size
    assert json.loads((folder / "model_index.json").read_text())["training"]["stored_as"] == "float16"
    model = ToyDenoiser.from_pretrained(folder).eval()  # float32 parameters holding the float16 values
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.equal(model.state_dict()[k], full[k].half().float()) for k in full)


# ---------------------------------------------------------------------------- stopping and resuming


def test_kill_9_then_resume_auto_gives_identical_weights(baseline, tmp_path, capsys):
    run = tmp_path / "run"
    proc = _cli(run)
    _wait_for(checkpoint_path(run / "checkpoints", 10), proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert not (run / "model").exists(), "the run ended before it could be killed; make EXACT longer"
    train(TINY, EXACT, out=run, resume="auto")
    assert "resuming from" in capsys.readouterr().out
    _assert_same_training_state(run, baseline)
    # metrics.jsonl reads as one run: entries the killed run wrote after its checkpoint were dropped
    assert [(m["step"], m["loss"]) for m in _metrics(run)] == [(m["step"], m["loss"]) for m in _metrics(baseline)]


def test_sigterm_saves_a_checkpoint_and_exits_130(tmp_path):
    run = tmp_path / "run"
    proc = _cli(run)
    _wait_for(checkpoint_path(run / "checkpoints", 10), proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out  # interrupted, after the checkpoint
    assert "SIGTERM received" in out and "(SIGTERM); checkpoint saved" in out, out
    stopped_at = int(out.split("stopped at step ")[1].split()[0])
    assert 10 <= stopped_at < 40 and list_checkpoints(run / "checkpoints")[-1][0] == stopped_at
    assert not (run / "model").exists()


def test_train_gives_back_the_callers_signal_handlers_when_it_returns(tmp_path):
    """A program that calls train() and then goes on must get its own Ctrl-C / SIGTERM handling back, not the trainer's."""
    seen = []

    def mine(signum, frame):
        seen.append(signum)

    before = {sig: signal.signal(sig, mine) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        train(TINY, ["train.max_steps=2", "train.log_every=1", "train.sample_every=0"], out=tmp_path / "run")
        assert signal.getsignal(signal.SIGINT) is mine and signal.getsignal(signal.SIGTERM) is mine
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_until_step_then_resume_equals_uninterrupted(baseline, tmp_path, capsys):
    run = tmp_path / "run"
    train(TINY, EXACT, out=run, until_step=15)
    assert "stopped at step 15 (--until-step 15)" in capsys.readouterr().out
    assert list_checkpoints(run / "checkpoints")[-1][0] == 15 and not (run / "model").exists()
    train(TINY, EXACT, out=run, resume="auto")
    _assert_same_training_state(run, baseline)


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(baseline, tmp_path, capsys):
    run = tmp_path / "run"
    train(TINY, EXACT, out=run, until_step=30)
    newest = checkpoint_path(run / "checkpoints", 30)
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    capsys.readouterr()
    train(TINY, EXACT, out=run, resume="auto")
    out = capsys.readouterr().out
    assert f"warning: checkpoint {newest} does not match its digest" in out and "falling back to the previous one" in out
    assert "step_000020.pt at step 20" in out
    assert (run / "checkpoints" / "step_000030.pt.set-aside").exists()
    _assert_same_training_state(run, baseline)


def test_time_limit_stops_with_a_checkpoint(tmp_path, capsys):
    train(TINY, ["train.max_steps=10"], out=tmp_path / "run", time_limit=0)
    assert "stopped at step 0 (--time-limit 0 min)" in capsys.readouterr().out
    assert list_checkpoints(tmp_path / "run" / "checkpoints")[-1][0] == 0


def test_a_time_limit_is_echoed_as_the_user_wrote_it(tmp_path, capsys):
    """`--time-limit 0` reaches train() as the float 0.0; the stop message must read "--time-limit 0 min", not "0.0"."""
    for minutes, shown in [(0.0, "0"), (1e-9, "1e-09")]:  # 1e-9 min: the deadline has passed by the first step
        run = train(TINY, ["train.max_steps=10"], out=tmp_path / shown, time_limit=minutes)
        out = " ".join(capsys.readouterr().out.split())
        assert f"stopped at step 0 (--time-limit {shown} min); checkpoint saved, continue with --resume auto" in out
        assert [step for step, _ in list_checkpoints(run / "checkpoints")] == [0] and not (run / "model").exists()


def test_new_run_refuses_a_folder_with_checkpoints_and_resume_says_what_changed(tmp_path, capsys):
    run = tmp_path / "run"
    train(TINY, ["train.max_steps=12"], out=run, until_step=6)
    with pytest.raises(FileExistsError, match="--resume auto"):
        train(TINY, ["train.max_steps=12"], out=run)
    train(TINY, ["train.max_steps=12", "train.batch_size=16", "train.lr=1e-3"], out=run, resume="auto")
    out = capsys.readouterr().out
    assert "changed since that checkpoint: train.batch_size 8 -> 16; train.lr 0.003 -> 0.001" in out
    assert load_checkpoint(checkpoint_path(run / "checkpoints", 12))["schedulers"]["model"]["base_lrs"] == [1e-3]


def test_resume_names_settings_added_or_dropped_since_the_checkpoint(tmp_path, capsys):
    """A checkpoint from an older schema lacks some settings and has others: resume must list both, not only changed values."""
    run = tmp_path / "run"
    train(TINY, ["train.max_steps=12"], out=run, until_step=6)
    path = checkpoint_path(run / "checkpoints", 6)
    state = load_checkpoint(path)
    del state["format"]
    warmup = state["config"]["train"].pop("warmup_steps")  # a setting the old version did not have
    state["config"]["train"]["old_knob"] = 7  # and one it had that this version dropped
    path.unlink()
    save_checkpoint(path, state)
    capsys.readouterr()
    train(TINY, ["train.max_steps=12"], out=run, resume="auto")
    out = capsys.readouterr().out
    assert f"changed since that checkpoint: train.old_knob 7 -> (absent); train.warmup_steps (absent) -> {warmup}" in out


def test_resume_clears_half_written_checkpoints_of_a_killed_run(tmp_path):
    """A kill -9 mid-save leaves a temporary file: resuming removes it (it would fill the disk run after run) and keeps the rest."""
    run = tmp_path / "run"
    train(TINY, ["train.max_steps=12", "train.checkpoint_every=3"], out=run, until_step=6)
    leftovers = [run / "checkpoints" / name for name in (".step_000009.tmp.pt", ".step_000009.tmp-1234")]
    for path in leftovers:
        path.write_bytes(b"half a checkpoint")
    keep = run / "checkpoints" / "notes.txt"
    keep.write_text("mine")
    train(TINY, ["train.max_steps=12", "train.checkpoint_every=3"], out=run, resume="auto")
    assert not any(path.exists() for path in leftovers) and keep.read_text() == "mine"
    assert [step for step, _ in list_checkpoints(run / "checkpoints")][-1] == 12


def test_init_from_fine_tunes_a_new_run_from_a_model_folder_a_run_or_a_checkpoint(baseline, tmp_path, capsys):
    trained = _final_state(baseline)["ema"]["model"]
    sources = {"model folder": baseline / "model", "run folder": baseline, "checkpoint": checkpoint_path(baseline / "checkpoints", 30)}
    for kind, source in sources.items():
        run = tmp_path / kind.replace(" ", "_")
        train(TINY, EXACT + [f"train.init_from={source}"], out=run, until_step=0)  # the starting point only
        start = load_checkpoint(checkpoint_path(run / "checkpoints", 0))
        expected = trained if kind != "checkpoint" else load_checkpoint(source)["ema"]["model"]
        assert all(torch.equal(start["modules"]["model"][k], v) for k, v in expected.items()), kind
        assert all(torch.equal(start["ema"]["model"][k], v) for k, v in expected.items()), kind  # EMA starts there too
        assert not start["optimizers"]["model"]["state"]  # a fresh optimizer
        assert f"fine-tuning from {source}" in capsys.readouterr().out
    # and it trains on from there: its first losses are those of a trained model, not of a new one
    run = tmp_path / "fine-tuned"
    train(TINY, EXACT + [f"train.init_from={baseline / 'model'}", "train.max_steps=5"], out=run)
    assert _metrics(run)[0]["loss"] < 0.6 * _metrics(baseline)[0]["loss"]


def test_init_from_errors_name_the_problem(baseline, tmp_path):
    with pytest.raises(ValueError, match=r"do not fit this config's model"):
        train(TINY, EXACT + [f"train.init_from={baseline / 'model'}", "model.hidden=16"], out=tmp_path / "a", until_step=0)
    with pytest.raises(FileNotFoundError, match="train.init_from: no model 'nowhere'"):
        train(TINY, EXACT + ["train.init_from=nowhere"], out=tmp_path / "b", until_step=0)


def test_init_from_a_built_in_name_starts_from_its_weights_and_says_which_folder(tmp_path, capsys):
    """`train.init_from: shapes-vae` fine-tunes the shipped model: its exact weights, the folder it read them from named."""
    from kinema.hub import BUILTIN_DIR

    shapes_vae = ["model.latent_channels=8", "model.channels=[32, 64]", "model.encoder_blocks=1", "model.decoder_blocks=2",
                  "model.mid_blocks=1", "model.temporal_compression=1", "data.num_samples=4"]  # configs/vae/shapes.yaml's model
    run = train(ROOT / "configs" / "vae" / "tiny.yaml", ["train.init_from=shapes-vae", *shapes_vae], out=tmp_path / "run", until_step=0)
    expected = f"fine-tuning from {BUILTIN_DIR / 'shapes-vae'}: loaded model; optimizer and LR schedule start fresh"
    assert expected in capsys.readouterr().out.splitlines()
    shipped = load_file(BUILTIN_DIR / "shapes-vae" / "vae" / "model.safetensors")
    start = load_checkpoint(checkpoint_path(run / "checkpoints", 0))
    assert start["modules"]["model"].keys() == shipped.keys() and not start["optimizers"]["model"]["state"]
    for weights in (start["modules"]["model"], start["ema"]["model"]):
        assert all(torch.equal(weights[k], v.to(weights[k].dtype)) for k, v in shipped.items())


# ---------------------------------------------------------------------------- processes and precision


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_with_the_same_global_batch(tmp_path, capsys):
    """`accelerate launch` with 2 CPU processes x 4 samples against 1 process x 8 samples.

    Tolerance 1e-6 (weights are ~0.1): the two runs sum gradients in a different order (two
    half-batch sums all-reduced vs one sum), which may change the last float32 bits; a sharding
    error (a process seeing the wrong samples) moves weights by ~1e-2. On this machine the
    difference measured 0.0.
    """
    overrides = [o for o in EXACT if not o.startswith("model.dropout")] + ["train.sample_every=0"]
    one, two = tmp_path / "one", tmp_path / "two"
    train(TINY, overrides, out=one)
    # `accelerate launch --cpu --num_processes 2` starts ONE process (its simple launcher);
    # --multi_gpu on a machine without a GPU starts two gloo processes on the CPU
    args = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    args += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port())]
    args += ["-m", "kinema.cli", "train", str(TINY), "--out", str(two)] + [a for o in overrides for a in ("--set", o)]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "on 2 process(es)" in result.stdout
    a, b = _final_state(one), _final_state(two)
    assert b["num_processes"] == 2 and len(b["rng"]) == 2
    for section in ("modules", "ema"):
        for key, tensor in a[section]["model"].items():
            torch.testing.assert_close(b[section]["model"][key], tensor, rtol=0, atol=1e-6)

    # the 2-process run's step-20 checkpoint continues in 1 process, saying so, and lands on the same weights
    capsys.readouterr()
    three = tmp_path / "three"
    train(TINY, overrides, out=three, resume=checkpoint_path(two / "checkpoints", 20))
    assert "processes 2 -> 1" in capsys.readouterr().out
    for key, tensor in a["modules"]["model"].items():
        torch.testing.assert_close(_final_state(three)["modules"]["model"][key], tensor, rtol=0, atol=1e-6)


def test_a_logged_value_is_the_mean_over_the_steps_since_the_last_log(tmp_path):
    """metrics.jsonl's loss at step 5 (log_every 5) must be the mean of steps 1-5, as logging every step shows them."""
    overrides = ["train.max_steps=10", "train.sample_every=0"]
    every = _metrics(train(TINY, overrides + ["train.log_every=1"], out=tmp_path / "every"))
    fifth = _metrics(train(TINY, overrides + ["train.log_every=5"], out=tmp_path / "fifth"))
    assert [m["step"] for m in every] == list(range(1, 11)) and [m["step"] for m in fifth] == [5, 10]
    for row, steps in zip(fifth, (every[:5], every[5:])):
        assert row["loss"] == pytest.approx(sum(m["loss"] for m in steps) / 5, rel=1e-5)


def test_a_value_logged_on_some_steps_only_is_its_mean_over_those_steps(tmp_path, monkeypatch):
    """A phase that runs every k-th step (a GAN's lazy R1 penalty) logs its mean over the steps it ran, not its sum
    spread over every step since the last log: here it is 1, 2, 3, ... on every second step."""
    from kinema.training.trainer import Trainer

    step_of = Trainer._train_step
    calls = []

    def sparse(self, batches):
        logs = step_of(self, batches)
        calls.append(1)
        if len(calls) % 2 == 0:
            logs["every_other"] = torch.tensor(float(len(calls) // 2))
        return logs

    monkeypatch.setattr(Trainer, "_train_step", sparse)
    rows = _metrics(train(TINY, ["train.max_steps=8", "train.sample_every=0", "train.log_every=4"], out=tmp_path / "run"))
    assert [(m["step"], m["every_other"]) for m in rows] == [(4, pytest.approx(1.5)), (8, pytest.approx(3.5))]


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    """2 micro-batches of 4 per step against 1 batch of 8: the same gradient, summed in another order."""
    overrides = ["train.max_steps=10", "train.sample_every=0"]
    one = train(TINY, overrides, out=tmp_path / "one")
    two = train(TINY, overrides + ["train.gradient_accumulation_steps=2"], out=tmp_path / "two")
    a, b = (load_checkpoint(checkpoint_path(run / "checkpoints", 10))["modules"]["model"] for run in (one, two))
    for key, tensor in a.items():
        torch.testing.assert_close(b[key], tensor, rtol=0, atol=1e-6)
    # Adam hides a wrongly scaled gradient from the weights; the logged loss and grad norm do not
    for key in ("loss", "grad_norm"):
        assert _metrics(two)[-1][key] == pytest.approx(_metrics(one)[-1][key], rel=1e-5)


def test_bf16_autocast_trains_on_cpu(tmp_path):
    run = train(TINY, ["train.mixed_precision=bf16", "train.max_steps=20", "train.sample_every=0"], out=tmp_path / "run")
    losses = [m["loss"] for m in _metrics(run)]
    assert losses[-1] < losses[0]


def test_fp16_on_cpu_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("fp16 is allowed on a GPU")
    with pytest.raises(ConfigError, match="'fp16' needs a GPU.*use 'bf16' on a CPU"):
        train(TINY, ["train.mixed_precision=fp16"], out=tmp_path / "run")


def test_the_default_optimizer_takes_every_trainable_parameter_of_every_module_and_no_frozen_one():
    """A family that freezes part of a network (a pretrained encoder) must not have the optimizer hold or decay it."""
    torch.manual_seed(0)
    frozen, head, other = nn.Linear(3, 3), nn.Linear(3, 2), nn.Linear(2, 2)
    frozen.requires_grad_(False)
    objective = Objective()
    objective.modules = {"model": nn.Sequential(frozen, head), "other": other}
    groups = objective.optimizer_groups()
    assert list(groups) == ["model"] and len(groups["model"]) == 1
    assert [id(p) for p in groups["model"][0]["params"]] == [id(p) for p in (head.weight, head.bias, other.weight, other.bias)]


# ---------------------------------------------------------------------------- a family with two optimizers


@dataclass
class PairConfig:
    width: int = 4


@dataclass
class PairData:
    num_samples: int = 32


class PairExport(nn.Linear):
    def save_pretrained(self, directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "config.json").write_text(json.dumps({"width": self.in_features}))
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(Path(directory) / "model.safetensors"))


class PairObjective(Objective):
    """Two networks with their own optimizers, updated in turn within a step: the shape of a GAN."""

    ema_modules = ("first",)

    def __init__(self, config):
        self.modules = {"first": PairExport(config.model.width, config.model.width), "second": nn.Linear(config.model.width, config.model.width)}

    def optimizer_groups(self):
        return {
            "second": [{"params": self.modules["second"].parameters(), "lr": 1e-2}],
            "first": [{"params": self.modules["first"].parameters()}],
        }

    def phases(self, step):
        return ["second", "first"] if step % 2 == 0 else ["first"]  # "second" every other step

    def training_step(self, batch, step, phase):
        if phase == "second":
            with torch.no_grad():
                hidden = self.modules["first"](batch)
            return {"loss": (self.modules["second"](hidden) - batch).pow(2).mean()}
        out = self.modules["second"](self.modules["first"](batch))
        return {"loss": (out - batch).pow(2).mean(), "norm": out.norm()}

    def export_components(self):
        return {"first": self.modules["first"]}


register_family(
    Family(
        name="pair_test",
        model_config=PairConfig,
        data_config=PairData,
        objective=PairObjective,
        dataset=lambda cfg: [torch.randn(4, generator=torch.Generator().manual_seed(i)) for i in range(cfg.data.num_samples)],
    )
)


def test_two_optimizers_step_in_their_phases(tmp_path):
    config = build_run_config({"family": "pair_test", "train": {"max_steps": 10, "batch_size": 8, "log_every": 5, "checkpoint_every": 5}})
    run = train(config, out=tmp_path / "run")
    state = _final_state_at(run, 10)
    assert set(state["optimizers"]) == {"second", "first"} and set(state["ema"]) == {"first"}
    assert state["optimizers"]["first"]["state"][0]["step"] == 10
    assert state["optimizers"]["second"]["state"][0]["step"] == 5
    assert state["optimizers"]["second"]["param_groups"][0]["initial_lr"] == 1e-2
    entry = _metrics(run)[-1]
    assert {"first/loss", "first/norm", "second/loss", "first/lr", "second/lr", "first/grad_norm"} <= entry.keys()
    exported = load_file(run / "model" / "first" / "model.safetensors")
    assert torch.equal(exported["weight"], state["ema"]["first"]["weight"])
    assert sorted(p.name for p in (run / "model").iterdir()) == ["first", "model_index.json"]


def test_init_from_a_checkpoint_without_this_runs_networks_names_the_missing_ones(baseline, tmp_path):
    """Fine-tuning from another family's checkpoint must name the networks it lacks and the ones it has."""
    source = checkpoint_path(baseline / "checkpoints", 40)
    config = build_run_config({"family": "pair_test", "train": {"max_steps": 2, "batch_size": 8, "init_from": str(source)}})
    with pytest.raises(ValueError) as info:
        train(config, out=tmp_path / "run", until_step=0)
    assert str(info.value) == f"train.init_from: {source} has no weights for first, second (it has model)"


def _final_state_at(run: Path, step: int) -> dict:
    return load_checkpoint(checkpoint_path(run / "checkpoints", step))


@pytest.mark.parametrize("error", [RuntimeError, ValueError, IndexError])  # whatever a sampler raises (a shape check, a bad index)
def test_a_failing_preview_neither_ends_the_run_nor_moves_its_randomness(tmp_path, monkeypatch, capsys, error):
    from kinema.training.objectives.toy import ToyObjective

    overrides = ["train.max_steps=12", "train.sample_every=5", "train.checkpoint_every=5"]
    clean = train(TINY, overrides=overrides, out=tmp_path / "clean")

    def broken(self, num, generator):
        torch.rand(100)  # draws from the global stream before failing, as a half-run sampler would
        raise error("decoder exploded")

    monkeypatch.setattr(ToyObjective, "sample", broken)
    failing = train(TINY, overrides=overrides, out=tmp_path / "failing")
    assert f"preview at step 5 failed ({error.__name__}: " in capsys.readouterr().out
    assert (failing / "checkpoints" / "step_000010.pt").exists()
    a = load_file(str(clean / "model" / "denoiser" / "model.safetensors"))
    b = load_file(str(failing / "model" / "denoiser" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------- what the trainer refuses, and says


def _toy_patch(monkeypatch, name, value):
    from kinema.training.objectives.toy import ToyObjective

    monkeypatch.setattr(ToyObjective, name, value)


@pytest.mark.parametrize(
    "name, value, error, message",
    [
        ("phases", lambda self, step: ["generator"], KeyError, "ToyObjective.phases() gave 'generator'; the optimizers are ['model']"),
        ("training_step", lambda self, batch, step, phase: {"mse": torch.zeros((), requires_grad=True)}, KeyError,
         "ToyObjective.training_step must return a 'loss' entry, got ['mse']"),
        ("optimizer_groups", lambda self: {"model": [{"params": []}]}, ValueError,
         "ToyObjective.optimizer_groups() must give every optimizer some parameters"),
        ("optimizer_groups", lambda self: {"model": [{"params": [nn.Parameter(torch.zeros(2))]}]}, ValueError,
         "optimizer_groups() returned parameters that belong to no module in objective.modules"),
    ],
    ids=["unknown-phase", "no-loss", "no-parameters", "foreign-parameters"],
)
def test_an_objective_that_breaks_the_contract_is_named(tmp_path, monkeypatch, name, value, error, message):
    _toy_patch(monkeypatch, name, value)
    with pytest.raises(error) as info:
        train(TINY, ["train.max_steps=2"], out=tmp_path / "run")
    assert message in str(info.value)


def test_train_arguments_are_checked_before_any_work(tmp_path):
    config = build_run_config({"family": "pair_test", "train": {"max_steps": 2, "batch_size": 8}})
    with pytest.raises(ValueError, match="overrides apply to a YAML config"):
        train(config, ["train.lr=1"], out=tmp_path / "a")
    with pytest.raises(ValueError, match="out is required when config is a RunConfig"):
        train(config)
    with pytest.raises(ValueError, match="until_step must be 0 or more, got -1"):
        train(TINY, out=tmp_path / "b", until_step=-1)
    with pytest.raises(ValueError, match="time_limit must be 0 or more minutes, got -0.5"):
        train(TINY, out=tmp_path / "c", time_limit=-0.5)
    assert not any(tmp_path.iterdir())
    run = train(TINY, ["train.max_steps=2"], out=tmp_path / "d", until_step=0)  # 0 is a stop at the start, not an error
    assert [step for step, _ in list_checkpoints(run / "checkpoints")] == [0]


def test_resume_errors_name_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="--resume .*nowhere: no such checkpoint file or run folder"):
        train(TINY, ["train.max_steps=4"], out=tmp_path / "a", resume=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no usable checkpoint in .*empty"):
        train(TINY, ["train.max_steps=4"], out=tmp_path / "b", resume=tmp_path / "empty")
    run = train(TINY, ["train.max_steps=4", "train.checkpoint_every=2"], out=tmp_path / "run")
    for _, path in list_checkpoints(run / "checkpoints"):
        path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="every checkpoint in .* is corrupt; nothing to resume from"):
        train(TINY, ["train.max_steps=4"], out=run, resume="auto")
    with pytest.raises(ValueError, match=r"checkpoint .*step_000004.pt .*"):
        train(TINY, ["train.max_steps=4"], out=tmp_path / "c", resume=checkpoint_path(run / "checkpoints", 4))
    # a run resumed under a model of another size: one line naming the change, not torch's list of every tensor
    run = train(TINY, ["train.max_steps=2"], out=tmp_path / "d")
    with pytest.raises(ValueError) as error:
        train(TINY, ["train.max_steps=4", "model.hidden=24"], out=run, resume="auto")
    message = str(error.value)
    assert "its model weights do not fit this run's model: the model config changed since it was saved (model.hidden 16 -> 24)" in message
    assert str(run / "config.yaml") in message and "\n" not in message and "size mismatch" not in message


def test_a_checkpoint_past_max_steps_is_refused_and_ema_switched_on_starts_from_the_weights(tmp_path, capsys):
    run = train(TINY, ["train.max_steps=6", "train.checkpoint_every=3", "train.ema_decay=null"], out=tmp_path / "run")
    with pytest.raises(ValueError, match="the checkpoint is at step 6, beyond train.max_steps=4"):
        train(TINY, ["train.max_steps=4", "train.ema_decay=null"], out=run, resume="auto")
    train(TINY, ["train.max_steps=8", "train.checkpoint_every=3"], out=run, resume="auto", until_step=7)
    assert "the checkpoint has no EMA weights; EMA starts from the current weights" in capsys.readouterr().out
    before = load_checkpoint(checkpoint_path(run / "checkpoints", 6))["modules"]["model"]
    after = load_checkpoint(checkpoint_path(run / "checkpoints", 7))
    # the EMA restarts at the step-6 weights; step 7's update has the warmed-up decay of the run's step 6: 7 / 16
    decay = (1 + 6) / (10 + 6)
    for key, weight in after["modules"]["model"].items():
        torch.testing.assert_close(after["ema"]["model"][key], decay * before[key] + (1 - decay) * weight, rtol=0, atol=1e-6)


def test_a_checkpoint_of_another_process_count_reseeds_from_seed_and_step_as_a_fresh_run_does(tmp_path, capsys):
    """Resuming a 2-process checkpoint on one process must stay reproducible: at step 0 it is exactly the fresh run's randomness."""
    overrides = ["train.max_steps=4", "train.checkpoint_every=2", "train.log_every=1", "train.sample_every=0", "model.dropout=0.5"]
    fresh = train(TINY, overrides, out=tmp_path / "fresh")
    run = train(TINY, overrides, out=tmp_path / "run", until_step=0)
    path = checkpoint_path(run / "checkpoints", 0)
    state = load_checkpoint(path)
    del state["format"]
    state["rng"], state["num_processes"] = state["rng"] * 2, 2
    path.unlink()
    save_checkpoint(path, state)
    train(TINY, overrides, out=run, resume="auto")
    out = " ".join(capsys.readouterr().out.split())
    assert "RNG states were saved by 2 process(es); reseeding each process from (seed, step)" in out and "processes 2 -> 1" in out
    assert [m["loss"] for m in _metrics(run)] == [m["loss"] for m in _metrics(fresh)]
    final, reference = (load_checkpoint(checkpoint_path(r / "checkpoints", 4))["modules"]["model"] for r in (run, fresh))
    assert all(torch.equal(final[k], v) for k, v in reference.items())


def test_resume_auto_on_a_new_folder_starts_from_step_0(tmp_path, capsys):
    run = train(TINY, ["train.max_steps=3", "train.checkpoint_every=3"], out=tmp_path / "new", resume="auto")
    assert f"no checkpoint in {run / 'checkpoints'} yet; starting from step 0" in capsys.readouterr().out
    assert [step for step, _ in list_checkpoints(run / "checkpoints")] == [3]
    assert [row["step"] for row in _metrics(run)][0] <= 3


def test_a_preview_gives_every_network_back_in_the_mode_it_had(tmp_path):
    """Sampling a preview puts the networks in eval mode; afterwards each is as it was: one kept in eval (a frozen
    encoder, an EMA copy) must not come back training, with its dropout on and its statistics moving."""
    from kinema.training import load_config
    from kinema.training.trainer import Trainer

    trainer = Trainer(load_config(TINY), tmp_path / "run")
    try:
        trainer.raw["trained"] = nn.Linear(2, 2).train()  # as fit() leaves a trained network
        trainer.raw["frozen"] = nn.Linear(2, 2).eval()
        view = {**trainer.raw, **(trainer.ema.copies if trainer.ema is not None else {})}
        before = {name: module.training for name, module in view.items()}
        assert True in before.values() and False in before.values()
        with trainer._inference_view():
            assert not any(module.training for module in view.values())
        assert {name: module.training for name, module in view.items()} == before
    finally:
        trainer.close()


def test_a_run_folder_deep_in_folders_that_do_not_exist_yet_is_made(tmp_path):
    """--out runs/2026/shapes/first: every missing folder on the way is made, as mkdir -p would."""
    run = tmp_path / "runs" / "2026" / "first"
    train(TINY, ["train.max_steps=1", "train.checkpoint_every=1"], out=run)
    assert list_checkpoints(run / "checkpoints")[-1][0] == 1 and (run / "config.yaml").is_file()


def test_a_short_config_trains_on_32_clips_a_step_loaded_in_process_with_torchs_adamw(tmp_path, monkeypatch):
    """The train: defaults a short config relies on: global batch 32, data read in the training process (no workers),
    and AdamW with torch's own betas and eps."""
    import inspect

    from kinema.training.objectives.toy import ToyClips, ToyObjective
    from kinema.training.sampler import permutation

    config = tmp_path / "short.yaml"
    config.write_text("family: toy\nmodel:\n  hidden: 4\ndata:\n  num_samples: 64\n  num_frames: 2\ntrain:\n  max_steps: 2\n")
    readers, batches, read = set(), [], []
    getitem, step = ToyClips.__getitem__, ToyObjective.training_step
    monkeypatch.setattr(ToyClips, "__getitem__", lambda self, i: readers.add(os.getpid()) or read.append(i) or getitem(self, i))
    monkeypatch.setattr(ToyObjective, "training_step", lambda self, batch, *a: batches.append(len(batch["noisy"])) or step(self, batch, *a))
    run = train(config, out=tmp_path / "run")
    assert batches == [32, 32] and readers == {os.getpid()}
    # a new run starts at the beginning of epoch 0 of the seed's order: the first half, then the second half of it
    assert read[:64] == permutation(seed=0, epoch=0, num_samples=64).tolist()
    group = load_checkpoint(list_checkpoints(run / "checkpoints")[-1][1])["optimizers"]["model"]["param_groups"][0]
    adamw = inspect.signature(torch.optim.AdamW).parameters
    assert tuple(group["betas"]) == adamw["betas"].default and group["eps"] == adamw["eps"].default


def test_max_grad_norm_clips_every_step_not_only_the_logged_ones(tmp_path, monkeypatch):
    """Clipping guards every update: a step between log entries must not take a larger gradient than max_grad_norm."""
    norms = []
    step = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    train(TINY, ["train.max_steps=4", "train.log_every=100", "train.sample_every=0", "train.max_grad_norm=0.01"], out=tmp_path / "run")
    assert len(norms) == 4 and all(n <= 0.01 * (1 + 1e-5) for n in norms)
    assert _metrics(tmp_path / "run")[-1]["grad_norm"] > 0.01  # logged before clipping: the clip did bite
