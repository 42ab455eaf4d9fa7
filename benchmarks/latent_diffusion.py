"""Latent against pixel diffusion at 64x64: training samples/s of both, measured in one run, and model FLOP
utilisation (training and sampling) against the bf16 matmul peak measured in the same run.

Latent: configs/diffusion/shapes_ldm.yaml as it trains (the frozen shapes-vae encodes every clip, the
denoiser runs on its 16x16 latents). Pixel: the shapes-t2v denoiser (configs/diffusion/shapes.yaml)
trained at 64x64 instead of 32x32, the run the latent model replaces. Both at the same batch, bf16
autocast, the same threads, alternating rounds, best round each. Target (issue 16): latent >= 2x the
pixel model's samples/s. Sampling: warm seconds per clip of --model (a latent model folder or run)
with its FLOPs counted for MFU (target >= 15% for the latent denoiser).

    python benchmarks/latent_diffusion.py [--model shapes-ldm] [--threads 2] [--batch 32]

Prints a table and writes benchmarks/results/latent_diffusion.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from generate_speed import matmul_peak  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
PROMPT = "a small red circle moving left slowly"


def objective_and_batch(config: str, overrides: list[str], batch: int):
    from kinema.training.config import load_config
    from kinema.training.objectives import get_family
    from kinema.training.objectives.diffusion import build_dataset

    cfg = load_config(ROOT / config, overrides)
    objective = get_family("diffusion").objective(cfg)
    dataset = build_dataset(cfg)
    items = [dataset[i] for i in range(batch)]
    return objective, {"video": torch.stack([it["video"] for it in items]), "caption": [it["caption"] for it in items]}


def step_function(objective, batch):
    """One training step as the trainer runs it: bf16 autocast forward (VAE encode included), backward, AdamW."""
    unet = objective.modules["model"].train()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = objective.training_step(batch, 0, "model")["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def flops_of(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shapes-ldm", help="latent model to time sampling with (built-in name, folder or run)")
    parser.add_argument("--compare", default="shapes-t2v", help="a model whose warm seconds per clip are timed beside --model's ('' for none)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "latent_diffusion.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    r: dict = {"threads": args.threads, "batch": args.batch}

    # 1. training: the two steps alternate, best round each
    latent = objective_and_batch("configs/diffusion/shapes_ldm.yaml", [], args.batch)
    pixel = objective_and_batch("configs/diffusion/shapes.yaml", ["data.resolution=64", "model.sample_size=64"], args.batch)
    steps = {"latent": step_function(*latent), "pixel": step_function(*pixel)}
    for step in steps.values():
        step()  # warm-up: allocations, oneDNN kernels
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    for name in steps:
        r[f"{name}_train_samples_per_s"] = args.batch / min(times[name])
        r[f"{name}_train_round_s"] = times[name]
    r["train_ratio"] = r["latent_train_samples_per_s"] / r["pixel_train_samples_per_s"]

    # 2. FLOPs of a training step (the VAE encode counted as work done), and the latent denoiser's alone
    objective, batch = latent
    r["latent_train_gflop_per_sample"] = flops_of(steps["latent"]) / args.batch / 1e9
    encode_flops = flops_of(lambda: objective.encode(batch["video"]))
    r["latent_denoiser_gflop_per_sample"] = r["latent_train_gflop_per_sample"] - encode_flops / args.batch / 1e9
    r["pixel_train_gflop_per_sample"] = flops_of(steps["pixel"]) / args.batch / 1e9
    r["matmul_peak_gflops_bf16"] = peak = matmul_peak(args.threads)
    r["latent_train_mfu"] = r["latent_train_gflop_per_sample"] * r["latent_train_samples_per_s"] / peak
    r["pixel_train_mfu"] = r["pixel_train_gflop_per_sample"] * r["pixel_train_samples_per_s"] / peak

    # 3. sampling: warm seconds per clip (best of 5, every model and dtype alternating) and the FLOP utilisation;
    # bfloat16 runs the convolutions through oneDNN's bf16 kernels on CPUs that have them (AVX512-BF16, AMX)
    from kinema.pipelines import load_pipeline

    models = [args.model] + ([args.compare] if args.compare else [])
    runs = {}
    for name in models:
        for dtype in ("float32", "bfloat16"):
            pipe = load_pipeline(name, dtype=dtype)
            runs[name, dtype] = (lambda pipe: lambda: pipe(PROMPT, generator=torch.Generator().manual_seed(0)))(pipe)
            runs[name, dtype]()
    seconds = {key: [] for key in runs}
    for _ in range(5):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[key].append(time.perf_counter() - start)
    r["model"] = args.model
    r["warm_s_per_clip"] = min(seconds[args.model, "float32"])
    r["warm_s_per_clip_bf16"] = min(seconds[args.model, "bfloat16"])
    if args.compare:
        r["compare"] = args.compare
        r["compare_warm_s_per_clip"] = min(seconds[args.compare, "float32"])
        r["compare_warm_s_per_clip_bf16"] = min(seconds[args.compare, "bfloat16"])
    r["sample_gflop_per_clip"] = flops_of(runs[args.model, "float32"]) / 1e9
    r["sample_mfu"] = r["sample_gflop_per_clip"] / r["warm_s_per_clip"] / peak
    r["sample_mfu_bf16"] = r["sample_gflop_per_clip"] / r["warm_s_per_clip_bf16"] / peak

    print(f"{'':34}{'latent':>10}{'pixel 64':>10}")
    print(f"{'training samples/s (bf16)':34}{r['latent_train_samples_per_s']:10.1f}{r['pixel_train_samples_per_s']:10.1f}"
          f"   ratio {r['train_ratio']:.2f}x (target >= 2x)")
    print(f"{'GFLOP per training sample':34}{r['latent_train_gflop_per_sample']:10.2f}{r['pixel_train_gflop_per_sample']:10.2f}"
          f"   (latent denoiser alone {r['latent_denoiser_gflop_per_sample']:.2f})")
    print(f"{'training MFU':34}{r['latent_train_mfu']:10.1%}{r['pixel_train_mfu']:10.1%}   of {peak:.0f} GFLOP/s bf16 matmul peak")
    print(f"sampling {args.model}: {r['warm_s_per_clip']:.3f} s per warm clip in float32, {r['warm_s_per_clip_bf16']:.3f} s in bfloat16 "
          f"(target <= 0.5 s), {r['sample_gflop_per_clip']:.1f} GFLOP, MFU {r['sample_mfu']:.1%} / {r['sample_mfu_bf16']:.1%}")
    if args.compare:
        print(f"sampling {args.compare} in the same run: {r['compare_warm_s_per_clip']:.3f} s float32, "
              f"{r['compare_warm_s_per_clip_bf16']:.3f} s bfloat16")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
