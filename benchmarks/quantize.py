"""int8 weight-only quantization (torchao) and magnitude pruning against float32 and bfloat16 on Kinema's Shapes
text-to-video models, on a CPU.

For each model and each precision: warm seconds per clip, the Shapes checker's accuracy per attribute on test-split
prompts (the captions and seeds of benchmarks/shapes_t2v.py: CaptionedShapes("test", seed=1234), clip i seed + i),
the PSNR of each clip against the float32 clip of the same prompt and seed, and the bytes of the model's weights
(its networks; the MiniLM text encoder is the same float32 one in every row and is not counted).

    float32  the weights as trained
    bf16     weights stored in bfloat16, run under autocast (load_pipeline(dtype="bfloat16"))
    int8     the Linear weights in int8 (load_pipeline(quantize="int8"): torchao Int8WeightOnlyConfig, one scale per
             output channel); convolutions stay float32 (torchao 0.18 has no int8 convolution)
    int8+bf16 both: int8 Linear weights, the rest in bfloat16, under autocast
    prune30, prune50  float32 with the 30% / 50% smallest-magnitude weights of every Linear and convolution set to
             zero (torch.nn.utils.prune.l1_unstructured, layer by layer, no fine-tuning): the seeds' other lever.
             Dense kernels multiply the zeros all the same, so it is measured for quality against speed, not shipped

    python benchmarks/quantize.py                                 # shapes-t2v and shapes-ldm, 32 prompts each
    python benchmarks/quantize.py --models shapes-t2v --num-prompts 8

One thread (torch.set_num_threads(1)): the machine's other jobs stay where they are and the numbers compare.
Prints a table and writes benchmarks/results/quantize.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from kinema.data.shapes import CaptionedShapes
from kinema.evaluation.shapes_checker import ATTRIBUTES, check_videos
from kinema.pipelines import load_pipeline
from kinema.pipelines.quantize import is_quantized, weight_bytes

RESULTS = Path(__file__).parent / "results"
MODES = {"float32": dict(dtype="float32"), "bf16": dict(dtype="bfloat16"), "int8": dict(dtype="float32", quantize="int8"),
         "int8+bf16": dict(dtype="bfloat16", quantize="int8"), "prune30": dict(dtype="float32", prune=0.3),
         "prune50": dict(dtype="float32", prune=0.5)}
PRUNED = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown"


def clip_psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def generate(pipe, prompts: list[str], seed: int, batch: int) -> tuple[np.ndarray, float]:
    pipe(prompts[:1], seed=seed)  # warm: the first call pays for allocations and oneDNN's kernel choice
    start = time.perf_counter()
    clips = [pipe(prompts[i : i + batch], seed=seed + i).frames for i in range(0, len(prompts), batch)]  # clip i: seed + i
    return np.concatenate(clips), (time.perf_counter() - start) / len(prompts)


def prune_weights(pipe, amount: float) -> float:
    """Zero the ``amount`` smallest-magnitude weights of each Linear and convolution of the pipeline's networks (the
    shared text encoder excepted, as with int8); returns the share of all their parameters now zero."""
    from torch.nn.utils import prune

    zeros = total = 0
    for net in pipe.modules().values():
        for layer in net.modules():
            if isinstance(layer, PRUNED):
                prune.l1_unstructured(layer, "weight", amount)
                prune.remove(layer, "weight")  # the mask folded into the weight: a plain tensor with zeros
        zeros += sum(int((p == 0).sum()) for p in net.parameters())
        total += sum(p.numel() for p in net.parameters())
    return zeros / total


def linear_share(pipe) -> tuple[int, int]:
    """(weights in quantized Linear layers, all weights) of the pipeline's networks, in parameters."""
    quantized = total = 0
    for net in pipe.modules().values():
        for p in net.parameters():
            n = p.qdata.numel() if is_quantized(p) else p.numel()
            total += n
            quantized += n if is_quantized(p) else 0
    return quantized, total


def run_model(model: str, prompts: list[str], seed: int, batch: int) -> dict:
    rows, reference = {}, None
    for mode, how in MODES.items():
        how = dict(how)
        amount = how.pop("prune", None)
        pipe = load_pipeline(model, device="cpu", **how)
        zero_share = prune_weights(pipe, amount) if amount else None
        videos, seconds = generate(pipe, prompts, seed, batch)
        report = check_videos(list(videos), prompts)
        if reference is None:
            reference = videos
        psnrs = [clip_psnr(a, b) for a, b in zip(reference, videos)]
        finite = [p for p in psnrs if math.isfinite(p)]
        quantized, total = linear_share(pipe)
        rows[mode] = {
            "seconds_per_clip": seconds,
            "accuracy": report.accuracy,
            "single_blob_rate": report.single_blob_rate,
            "psnr_vs_float32_mean_db": float(np.mean(finite)) if finite else math.inf,  # over the clips that differ at all
            "psnr_vs_float32_min_db": min(psnrs),
            "clips_identical_to_float32": sum(not math.isfinite(p) for p in psnrs),
            "weights_mb": sum(weight_bytes(net) for net in pipe.modules().values()) / 2**20,
            "params_in_int8": quantized / total,
            "params_zero": zero_share,
        }
        print(f"  {model} {mode}: {seconds:.2f} s/clip", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["shapes-t2v", "shapes-ldm"])
    parser.add_argument("--num-prompts", type=int, default=32, help="test-split captions (the first N of benchmarks/shapes_t2v.py's draw)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "quantize.json")
    args = parser.parse_args()

    torch.set_num_threads(1)
    ds = CaptionedShapes("test", num_samples=args.num_prompts, seed=1234)
    prompts = [ds.caption(i) for i in range(args.num_prompts)]
    from importlib.metadata import version

    result = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__, "torchao": version("torchao"),
              "num_prompts": args.num_prompts, "batch": args.batch, "seed": args.seed, "models": {}}
    print(f"{result['cpu']}, {result['threads']} thread, torch {result['torch']}, torchao {result['torchao']}, "
          f"{args.num_prompts} test prompts, batch {args.batch}")
    for model in args.models:
        result["models"][model] = run_model(model, prompts, args.seed, args.batch)

    head = f"{'model':11} {'weights':9} {'s/clip':>7} {'speed':>6} " + " ".join(f"{a:>9}" for a in ATTRIBUTES)
    print("\n" + head + f" {'one blob':>9} {'PSNR vs fp32':>13} {'MB':>6} {'in int8':>8} {'zeros':>6}")
    for model, rows in result["models"].items():
        base = rows["float32"]["seconds_per_clip"]
        for mode, r in rows.items():
            accs = " ".join(f"{r['accuracy'][a]:9.1%}" for a in ATTRIBUTES)
            psnr = "(itself)" if mode == "float32" else f"{r['psnr_vs_float32_mean_db']:5.1f} (min {r['psnr_vs_float32_min_db']:4.1f})"
            print(f"{model:11} {mode:9} {r['seconds_per_clip']:7.2f} {base / r['seconds_per_clip']:5.2f}x {accs} {r['single_blob_rate']:9.1%} "
                  f"{psnr:>13} {r['weights_mb']:6.2f} {r['params_in_int8']:8.0%} {r['params_zero'] or 0:6.0%}")
    print("PSNR: mean over the clips that differ from float32 (min: the worst clip); MB: the networks' weights (text encoder not counted),\n"
          "dense: pruned weights are stored and multiplied as zeros")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
