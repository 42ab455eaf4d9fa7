"""Generation and training speed of Kinema's video diffusion model against diffusers' UNet3DConditionModel.

One run, 2 CPU threads. Kinema: the built-in model (or --model) at its default steps with
guidance. Peer: a UNet3DConditionModel (the network TextToVideoSDPipeline drives) of about the
same parameter count, at that pipeline's default 50 steps with guidance, on the same frames and
size. Targets (issue 4): >= 20x faster per clip than the peer, <= 1 s per warm clip, cold
`kinema generate` under 10 s; training >= 5x the peer's samples/s at equal parameters; model
FLOP utilisation reported against the measured bf16 matmul peak.

    python benchmarks/generate_speed.py [--model shapes-t2v] [--threads 2] [--against HEAD~1]

--against REF also times warm generation with the Kinema of git commit REF (checked out into a
temporary worktree, run in its own process), alternating with this tree's, in the same run: the
check that a change costs no speed.

Prints a table and writes benchmarks/results/generate_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

RESULTS = Path(__file__).parent / "results"
PROMPT = "a small red circle moving left slowly"


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(threads: int) -> float:
    """bf16 GFLOP/s of a 2048^3 matmul: the ceiling model FLOP utilisation is measured against."""
    a = torch.randn(2048, 2048, dtype=torch.bfloat16)
    b = torch.randn(2048, 2048, dtype=torch.bfloat16)
    a @ b
    seconds = best_of(lambda: a @ b, 5)
    return 2 * 2048**3 / seconds / 1e9


def cold_generate(model: str, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.mp4"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kinema.cli", "generate", PROMPT, "-o", str(out), "--model", model],
                       check=True, env=env, capture_output=True)
        seconds = time.perf_counter() - start
        assert out.exists()
    return seconds


WARM_SCRIPT = """
import sys, time, warnings, torch
warnings.simplefilter("ignore")
torch.set_num_threads(int(sys.argv[2]))
from kinema.pipelines.generate import load_pipeline
pipe = load_pipeline(sys.argv[1])
run = lambda: pipe("a small red circle moving left slowly", generator=torch.Generator().manual_seed(0))
run()
times = []
for _ in range(int(sys.argv[3])):
    start = time.perf_counter(); run(); times.append(time.perf_counter() - start)
print(min(times))
"""


def warm_seconds_in(tree: Path, model: str, threads: int, repeats: int) -> float:
    """Best warm seconds per clip with the kinema package of ``tree`` (its src/ first on the path), in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", WARM_SCRIPT, model, str(threads), str(repeats)], check=True, env=env,
                         capture_output=True, text=True, cwd=tree)
    return float(out.stdout.strip().splitlines()[-1])


def against_commit(ref: str, model: str, threads: int, rounds: int = 3, repeats: int = 5) -> dict:
    """Warm seconds per clip here and at git commit ``ref``, alternating in one run; best of each."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "ref"
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), ref], cwd=root, check=True, capture_output=True)
        try:
            here, there = [], []
            for _ in range(rounds):
                here.append(warm_seconds_in(root, model, threads, repeats))
                there.append(warm_seconds_in(worktree, model, threads, repeats))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=root, check=True, capture_output=True)
    commit = subprocess.run(["git", "rev-parse", "--short", ref], cwd=root, check=True, capture_output=True, text=True).stdout.strip()
    return {"ref": ref, "commit": commit, "here_s_per_clip": min(here), "ref_s_per_clip": min(there),
            "ratio": min(here) / min(there), "rounds": [here, there]}


def peer_unet(params_target: int):
    """UNet3DConditionModel sized to about ``params_target`` parameters (RGB in and out, MiniLM-width text)."""
    from diffusers import UNet3DConditionModel

    best = None
    for width in (16, 24, 32, 40, 48, 64):
        unet = UNet3DConditionModel(
            sample_size=32, in_channels=3, out_channels=3, block_out_channels=(width, 2 * width, 4 * width),
            down_block_types=("CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"),
            up_block_types=("UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"),
            layers_per_block=1, cross_attention_dim=384, attention_head_dim=8, norm_num_groups=8,
        )
        n = sum(p.numel() for p in unet.parameters())
        if best is None or abs(n - params_target) < abs(best[1] - params_target):
            best = (unet, n)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shapes-t2v")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "generate_speed.json")
    parser.add_argument("--against", default=None, help="a git commit to compare warm generation with (e.g. HEAD~1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from kinema.pipelines import load_pipeline

    pipe = load_pipeline(args.model, device="cpu")
    unet, cfg = pipe.unet, pipe.settings
    ours_params = sum(p.numel() for p in unet.parameters())
    frames, size, steps = cfg.num_frames, cfg.sample_size, cfg.default_steps
    r = {"threads": args.threads, "frames": frames, "size": size, "kinema_params": ours_params, "kinema_steps": steps}

    # generation: warm seconds per clip (batch of one prompt, with guidance)
    g = torch.Generator()
    pipe(PROMPT, generator=g.manual_seed(0))
    r["kinema_warm_s_per_clip"] = best_of(lambda: pipe(PROMPT, generator=g.manual_seed(0)), 3)
    r["kinema_cold_s"] = cold_generate(args.model, args.threads)

    peer, peer_params = peer_unet(ours_params)
    peer.eval()
    r["peer_params"] = peer_params
    x = torch.randn(2, 3, frames, size, size)
    t = torch.tensor([500, 500])
    text = torch.randn(2, 12, 384)
    with torch.no_grad():
        peer(x, t, text)
        per_call = best_of(lambda: peer(x, t, text), 3)
    r["peer_steps"] = 50
    r["peer_s_per_clip"] = per_call * 50  # one batched (cond, uncond) call per step, as the pipeline does
    r["speedup_per_clip"] = r["peer_s_per_clip"] / r["kinema_warm_s_per_clip"]

    # training: samples/s at batch 32 under bf16 autocast, both networks at about equal size
    batch = 32
    xb = torch.randn(batch, 3, frames, size, size)
    tb = torch.randint(0, 1000, (batch,))
    tokens, mask = torch.randn(batch, 12, 384), torch.ones(batch, 12, dtype=torch.bool)

    def train_step(net, call):
        net.train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = call().float().square().mean()
            loss.backward()
            opt.step()
            opt.zero_grad()

        step()
        return batch / best_of(step, 3)

    ours_call = lambda: unet(xb, tb, tokens, mask, xb[:, :, 0], torch.zeros(batch))  # noqa: E731
    r["kinema_train_samples_per_s"] = train_step(unet, ours_call)
    r["peer_train_samples_per_s"] = train_step(peer, lambda: peer(xb, tb, tokens).sample)
    r["train_speedup"] = r["kinema_train_samples_per_s"] / r["peer_train_samples_per_s"]

    with FlopCounterMode(display=False) as counter:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ours_call().float().square().mean().backward()
    r["kinema_train_gflop_per_sample"] = counter.get_total_flops() / batch / 1e9
    r["matmul_peak_gflops_bf16"] = matmul_peak(args.threads)
    r["mfu"] = r["kinema_train_gflop_per_sample"] * r["kinema_train_samples_per_s"] / r["matmul_peak_gflops_bf16"]

    print(f"{'':28}{'kinema':>12}{'peer':>12}{'ratio':>10}")
    print(f"{'parameters (M)':28}{ours_params / 1e6:12.2f}{peer_params / 1e6:12.2f}")
    print(f"{'steps x guidance':28}{steps:>10} x2{50:>10} x2")
    print(f"{'seconds per clip (warm)':28}{r['kinema_warm_s_per_clip']:12.2f}{r['peer_s_per_clip']:12.2f}{r['speedup_per_clip']:9.1f}x   (target >= 20x, <= 1 s)")
    print(f"{'cold kinema generate (s)':28}{r['kinema_cold_s']:12.2f}{'':>12}{'':>10}   (target < 10 s)")
    print(f"{'training samples/s (bf16)':28}{r['kinema_train_samples_per_s']:12.1f}{r['peer_train_samples_per_s']:12.1f}{r['train_speedup']:9.1f}x   (target >= 5x)")
    print(f"model FLOP utilisation: {r['mfu']:.1%} of {r['matmul_peak_gflops_bf16']:.0f} GFLOP/s bf16 matmul peak "
          f"({r['kinema_train_gflop_per_sample']:.2f} GFLOP per training sample)")
    if args.against:
        r["against"] = against = against_commit(args.against, args.model, args.threads)
        print(f"warm seconds per clip, this tree {against['here_s_per_clip']:.3f} vs {args.against} ({against['commit']}) "
              f"{against['ref_s_per_clip']:.3f}: ratio {against['ratio']:.3f} (target <= 1.03)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
