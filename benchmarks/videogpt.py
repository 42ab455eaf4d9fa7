"""The VQ-VAE + transformer prior (issue 16, part 3 and 4): training samples/s and model FLOP utilisation of the
prior, warm seconds per clip, and what the key/value cache saves, against the bf16 matmul peak measured in
the same run.

Training: one step of the prior as the trainer runs it (bf16 autocast forward on a batch of code sequences
and their prompts, backward, AdamW), timed without the frozen VQ-VAE's encode and, separately, with it.
Sampling: warm seconds per clip of --model through the pipeline (prompt -> codes -> VQ-VAE decode), and the
prior's code sampling alone with the cache (one position per step) against without it (the whole sequence
again at every step, as a model without a cache must), the same codes drawn by both. Targets: <= 2 s a
clip warm, the prior's training MFU >= 25%. On a CPU the prior trains with two-matmul attention
(kinema.models.gpt.matmul_attention), which the FLOP counter counts; it has no formula for CPU flash attention,
so the sampling MFU (flash attention, one query a step) leaves attention out.

    python benchmarks/videogpt.py [--model shapes-videogpt] [--threads 2] [--batch 32]

Without --model (no trained prior yet), the prior and VQ-VAE of configs/videogpt/shapes.yaml and
configs/vqvae/shapes.yaml with random weights: the same shapes, so the same FLOPs and times.
Prints a table and writes benchmarks/results/videogpt.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from generate_speed import best_of, matmul_peak  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
PROMPT = "a small red circle moving left slowly"


def flops_of(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def random_pipeline():
    """The shipped configs' prior and VQ-VAE with random weights, as a pipeline."""
    from kinema.models.gpt import VideoGPT, VideoGPTConfig
    from kinema.models.text import MiniLMEncoder
    from kinema.models.vqvae import VideoVQVAE, VQVAEConfig
    from kinema.pipelines.videogpt import VideoGPTPipeline, VideoGPTSettings

    prior = yaml.safe_load((ROOT / "configs/videogpt/shapes.yaml").read_text())
    vqvae = yaml.safe_load((ROOT / "configs/vqvae/shapes.yaml").read_text())
    settings = VideoGPTSettings(num_frames=prior["data"]["num_frames"], default_guidance=prior["objective"]["guidance_scale"])
    return VideoGPTPipeline(VideoGPT(VideoGPTConfig(**prior["model"])), VideoVQVAE(VQVAEConfig(**vqvae["model"])),
                            MiniLMEncoder.from_pretrained(), settings)


def sample_without_cache(prior, tokens, mask, num_tokens: int, generator: torch.Generator) -> torch.Tensor:
    """Codes sampled one at a time, the whole sequence through the model at every step (no cache)."""
    codes = torch.zeros(tokens.shape[0], 0, dtype=torch.long)
    for _ in range(num_tokens):
        padded = torch.cat([codes, codes.new_zeros(codes.shape[0], 1)], dim=1)  # forward predicts position j from 0 .. j - 1
        logits = prior(padded, tokens, mask)[:, -1].float()
        codes = torch.cat([codes, torch.multinomial(logits.softmax(-1), 1, generator=generator)], dim=1)
    return codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a videogpt model (built-in name, folder or run); default: random weights")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "videogpt.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from kinema.pipelines import load_pipeline

    pipe = load_pipeline(args.model) if args.model else random_pipeline()
    prior, vqvae, p = pipe.prior, pipe.vqvae, pipe.prior.config
    r: dict = {"model": args.model or "random weights (configs/videogpt/shapes.yaml)", "threads": args.threads, "batch": args.batch,
               "prior_parameters": sum(t.numel() for t in prior.parameters()), "codes_per_clip": p.max_tokens}

    # 1. training the prior: codes and prompts as the objective gives them, bf16 autocast, AdamW
    captions = [PROMPT] * args.batch
    text = pipe.text_encoder.encode(captions)
    codes = torch.randint(0, p.vocab_size, (args.batch, p.max_tokens))
    frames = 1 + vqvae.config.temporal_compression * (p.latent_frames - 1)
    video = torch.rand(args.batch, 3, frames, pipe.settings.resolution, pipe.settings.resolution) * 2 - 1
    train = prior.train()
    optimizer = torch.optim.AdamW(train.parameters(), lr=1e-4)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = train(codes, text.tokens, text.mask).float()
        F.cross_entropy(logits.flatten(0, 1), codes.flatten()).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def encode():
        with torch.no_grad():
            vqvae.encode(video)

    step()
    encode()
    r["train_step_s"] = best_of(step, args.repeats)
    r["encode_s"] = best_of(encode, args.repeats)
    r["train_samples_per_s"] = args.batch / r["train_step_s"]
    r["train_samples_per_s_with_encode"] = args.batch / (r["train_step_s"] + r["encode_s"])
    r["train_gflop_per_sample"] = flops_of(step) / args.batch / 1e9
    r["matmul_peak_gflops_bf16"] = peak = matmul_peak(args.threads)
    r["train_mfu"] = r["train_gflop_per_sample"] * r["train_samples_per_s"] / peak
    prior.eval()

    # 2. sampling through the pipeline, float32 and bfloat16 weights, the settings' guidance
    runs = {"float32": pipe}
    if not args.model:
        r["sampling_note"] = "bfloat16 not timed for random weights"
    else:
        runs["bfloat16"] = load_pipeline(args.model, dtype="bfloat16")
    for dtype, run in runs.items():
        clip = lambda: run(PROMPT, generator=torch.Generator().manual_seed(0))  # noqa: E731
        clip()
        r[f"warm_s_per_clip_{dtype}"] = best_of(clip, args.repeats)
    r["guidance_scale"] = pipe.settings.default_guidance
    gflop = flops_of(lambda: pipe(PROMPT, generator=torch.Generator().manual_seed(0))) / 1e9
    r["sample_gflop_per_clip"] = gflop
    r["sample_mfu_float32"] = gflop / r["warm_s_per_clip_float32"] / peak

    # 3. the key/value cache: the prior's code sampling alone, one clip, no guidance, with and without it
    one = pipe.text_encoder.encode([PROMPT])
    with torch.no_grad():
        cached = lambda: prior.generate(one.tokens, one.mask, p.max_tokens, [torch.Generator().manual_seed(0)])  # noqa: E731
        uncached = lambda: sample_without_cache(prior, one.tokens, one.mask, p.max_tokens, torch.Generator().manual_seed(0))  # noqa: E731
        cached()
        r["codes_s_with_cache"] = best_of(cached, args.repeats)
        r["codes_s_without_cache"] = best_of(uncached, 1)
    r["cache_speedup"] = r["codes_s_without_cache"] / r["codes_s_with_cache"]

    print(f"prior: {r['prior_parameters'] / 1e6:.2f}M parameters, {r['codes_per_clip']} codes a clip ({r['model']}), {args.threads} threads")
    print(f"{'training samples/s (bf16)':40}{r['train_samples_per_s']:10.1f}   with the VQ-VAE encode: {r['train_samples_per_s_with_encode']:.1f}")
    print(f"{'training MFU':40}{r['train_mfu']:10.1%}   of {peak:.0f} GFLOP/s bf16 matmul peak (target >= 25%)")
    for dtype in runs:
        print(f"{'warm s per clip (' + dtype + ')':40}{r[f'warm_s_per_clip_{dtype}']:10.2f}   guidance {r['guidance_scale']} (target <= 2 s)")
    print(f"{'sampling MFU (float32)':40}{r['sample_mfu_float32']:10.1%}   {gflop:.1f} GFLOP a clip")
    print(f"{'codes of one clip, with the cache (s)':40}{r['codes_s_with_cache']:10.2f}")
    print(f"{'codes of one clip, without it (s)':40}{r['codes_s_without_cache']:10.2f}   cache speedup {r['cache_speedup']:.1f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
