"""diffusers' step caches through Kinema (`kinema generate --cache`): seconds per clip and PSNR against the uncached clip.

A random CogVideoX pipeline (8 transformer blocks of width 64, its 3D VAE, a one-layer T5) is saved, loaded once
uncached and once per cache mode (kinema.pipelines.diffusers_backend.cache_config: first-block, pab, faster,
taylorseer), and each makes the same clips (same prompts, same seeds, 17 frames at 64x64, guided, 25 DDIM steps). The PSNR is of the
uint8 frames against the uncached ones. The weights are random, so the frames are structured noise: the PSNR says
how far a cache moves the output here, not what it does to a trained model's picture, and the speed-ups are those
of a small transformer on a CPU, where the text encoder and VAE take a larger share than in a real model.

    python benchmarks/diffusers_cache.py [--steps 25] [--clips 3] [--frames 17] [--size 64] [--threads 1]

Prints a table and writes benchmarks/results/diffusers_cache.json.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
PROMPTS = ["a red circle moving left", "a blue square moving up"]
MODES = [None, "first-block", "pab", "faster", "taylorseer"]


def build(folder: Path, layers: int) -> None:
    """Save a random CogVideoX pipeline with ``layers`` transformer blocks into ``folder``."""
    import torch
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in string.ascii_lowercase] + [("▁" + c, -2.5) for c in string.ascii_lowercase]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=226)
    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=16, text_embed_dim=32, num_layers=layers,
        sample_width=4, sample_height=4, sample_frames=9, patch_size=2, temporal_compression_ratio=4, max_text_seq_length=226,
    )
    vae = AutoencoderKLCogVideoX(down_block_types=("CogVideoXDownBlock3D",) * 4, up_block_types=("CogVideoXUpBlock3D",) * 4,
                                 block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    text = T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, num_heads=4, num_layers=1, d_ff=37, relative_attention_num_buckets=8))
    CogVideoXPipeline(tokenizer=tokenizer, text_encoder=text, vae=vae, transformer=transformer, scheduler=CogVideoXDDIMScheduler()).save_pretrained(folder)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--clips", type=int, default=3, help="clips per mode (prompt i, seed i), timed one by one")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=64, help="height and width")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from kinema.pipelines import load_pipeline

    torch.set_num_threads(args.threads)
    call = dict(num_inference_steps=args.steps, guidance_scale=6.0, num_frames=args.frames, height=args.size, width=args.size)
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cogvideox-random"
        build(folder, args.layers)
        for mode in MODES:
            pipe = load_pipeline(folder, device="cpu", cache=mode)
            pipe(PROMPTS[0], seed=0, **dict(call, num_inference_steps=2))  # warm up (first-call allocations)
            clips, seconds = [], []
            for i in range(args.clips):
                start = time.perf_counter()
                clips.append(pipe(PROMPTS[i % len(PROMPTS)], seed=i, **call).frames[0])
                seconds.append(time.perf_counter() - start)
            frames = np.stack(clips)
            if reference is None:
                reference = frames
            row = {"cache": mode or "none", "seconds_per_clip": float(np.median(seconds)), "psnr_db": psnr(frames, reference)}
            rows.append(row)
            print(f"{row['cache']:>12}: {row['seconds_per_clip']:.2f} s/clip  PSNR {row['psnr_db']:.1f} dB", file=sys.stderr, flush=True)
    base = rows[0]["seconds_per_clip"]
    for row in rows:
        row["speedup"] = base / row["seconds_per_clip"]
    print(f"\nCogVideoX, random weights, {args.layers} blocks of width 64, {args.frames} frames at {args.size}x{args.size}, {args.steps} guided steps, "
          f"{args.threads} thread(s), median of {args.clips} clips")
    print(f"{'cache':>12} {'s/clip':>8} {'speedup':>8} {'PSNR vs none':>13}")
    for row in rows:
        shown = "identical" if row["psnr_db"] == float("inf") else f"{row['psnr_db']:.1f} dB"
        print(f"{row['cache']:>12} {row['seconds_per_clip']:>8.2f} {row['speedup']:>7.2f}x {shown:>13}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "diffusers_cache.json"
    settings = dict(vars(args), guidance_scale=6.0, weights="random")
    out.write_text(json.dumps({"settings": settings, "rows": [{**r, "psnr_db": None if r["psnr_db"] == float("inf") else r["psnr_db"]}
                                                              for r in rows]}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
