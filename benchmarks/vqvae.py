"""VQ-VAE benchmark: reconstruction quality and codebook use on Captioned Shapes (issue 16, part 3).

On test-split Captioned Shapes videos (17 frames of 64x64: the first frame and four groups of four, the
clips the prior samples; the rendered frames, never a lossy encoding of them), each clip is coded and
decoded:
- PSNR and SSIM of every frame pair (kinema.evaluation.metrics, skimage's definitions), averaged;
- the codebook: the fraction of its codes that code at least one position of the whole set (the target),
  the perplexity of the codes' histogram (how many it uses effectively), the share of positions taken
  by the commonest code (the background);
- the same quality on Shape Motion test clips (random colours and curved paths), a check that the codes
  are not tuned to one dataset;
- encode + decode frames/s on --threads CPU threads.
Targets: PSNR >= 30 dB with >= 80% of the codes in use.

    python benchmarks/vqvae.py --model runs/vqvae-shapes     # a run folder: its newest checkpoint
    python benchmarks/vqvae.py --model shapes-videogpt       # the VQ-VAE inside a VideoGPT model folder

Prints a table and writes benchmarks/results/vqvae.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from kinema.data.shapes import CaptionedShapes, ShapeMotion, frames_to_tensor, tensor_to_frames
from kinema.models.vqvae import VideoVQVAE

sys.path.insert(0, str(Path(__file__).parent))
from vae import quality  # noqa: E402  (PSNR, SSIM, ACD: the same measures as the VAE's)

RESULTS = Path(__file__).parent / "results"
TARGETS = {"psnr": 30.0, "codes_used": 0.8}
NUM_FRAMES, SIZE = 17, 64


def load_vqvae(model: str) -> tuple[VideoVQVAE, dict]:
    """The VQ-VAE (component "vqvae") of a model folder, a run folder or a built-in, and its training record."""
    from kinema.hub import open_model

    opened = open_model(model)
    return VideoVQVAE.from_pretrained(opened.component("vqvae")).eval(), dict(opened.index.training)


@torch.no_grad()
def code_and_decode(vqvae: VideoVQVAE, videos: list[np.ndarray], batch: int) -> tuple[list[np.ndarray], torch.Tensor]:
    """uint8 (f, h, w, 3) videos -> their reconstructions from their codes, and the codes (n, f', h', w')."""
    out, codes = [], []
    for first in range(0, len(videos), batch):
        x = torch.stack([frames_to_tensor(v) for v in videos[first : first + batch]])  # (b, c, f, h, w)
        c = vqvae.encode(x)
        codes.append(c)
        out.extend(tensor_to_frames(r) for r in vqvae.decode(c))
    return out, torch.cat(codes)


def codebook(codes: torch.Tensor, size: int) -> dict:
    counts = torch.bincount(codes.flatten(), minlength=size).double()
    probs = counts / counts.sum()
    perplexity = torch.exp(-(probs[probs > 0] * probs[probs > 0].log()).sum())
    return {"codes_used": float((counts > 0).double().mean()), "perplexity": float(perplexity),
            "commonest_code_share": float(probs.max()), "codebook_size": size, "positions": int(counts.sum())}


@torch.no_grad()
def speed(vqvae: VideoVQVAE, batch: int, repeats: int = 5) -> float:
    """Encode + decode frames/s on random clips (batch, 3, 17, 64, 64), the median of `repeats` warm runs."""
    x = torch.rand(batch, 3, NUM_FRAMES, SIZE, SIZE) * 2 - 1
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        vqvae.decode(vqvae.encode(x))
        if i >= 2:  # two warm-up runs
            times.append(time.perf_counter() - start)
    return batch * NUM_FRAMES / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="run folder, model folder or built-in holding a 'vqvae' component")
    parser.add_argument("--num-videos", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "vqvae.json")
    args = parser.parse_args()
    if args.num_videos < 1 or args.batch < 1 or args.threads < 1:
        parser.error("--num-videos, --batch and --threads must be at least 1")
    torch.set_num_threads(args.threads)

    vqvae, training = load_vqvae(args.model)
    real = [CaptionedShapes("test", num_samples=args.num_videos, num_frames=NUM_FRAMES).render(i) for i in range(args.num_videos)]
    fake, codes = code_and_decode(vqvae, real, args.batch)
    motion = [ShapeMotion("test", num_samples=args.num_videos, num_frames=NUM_FRAMES).render(i) for i in range(args.num_videos)]
    motion_fake, _ = code_and_decode(vqvae, motion, args.batch)
    result = {
        "model": args.model,
        "num_videos": args.num_videos,
        "clip": [NUM_FRAMES, SIZE, SIZE],
        "code_grid": list(codes.shape[1:]),
        "captioned_shapes": quality(real, fake) | codebook(codes, vqvae.config.codebook_size),
        "shape_motion": quality(motion, motion_fake),
        "frames_per_s": speed(vqvae, args.batch),
        "threads": args.threads,
        "training": training,
        "targets": TARGETS,
    }
    shapes = result["captioned_shapes"]
    met = {"psnr": shapes["psnr"] >= TARGETS["psnr"], "codes_used": shapes["codes_used"] >= TARGETS["codes_used"]}
    result["met"] = met

    print(f"VQ-VAE {args.model}: {args.num_videos} test clips of {NUM_FRAMES}x{SIZE}x{SIZE} -> codes {tuple(codes.shape[1:])}")
    print(f"{'':24s}{'PSNR dB':>9s}{'SSIM':>8s}{'worst':>8s}")
    for name, q in (("Captioned Shapes", shapes), ("Shape Motion", result["shape_motion"])):
        print(f"{name:24s}{q['psnr']:9.2f}{q['ssim']:8.4f}{q['psnr_worst_video']:8.2f}")
    print(f"codes in use: {shapes['codes_used']:.1%} of {shapes['codebook_size']} (target {TARGETS['codes_used']:.0%}); "
          f"perplexity {shapes['perplexity']:.1f}; the commonest code holds {shapes['commonest_code_share']:.1%} of positions")
    print(f"encode + decode: {result['frames_per_s']:.0f} frames/s on {args.threads} thread(s)")
    print("targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
