"""Video VAE benchmark: reconstruction quality and speed on Captioned Shapes (issue 16, part 1).

On test-split Captioned Shapes videos (16 frames of 64x64, the rendered frames, never a lossy encoding
of them), each clip is encoded to the posterior mean and decoded:
- PSNR and SSIM of every frame pair (kinema.evaluation.metrics, skimage's definitions), averaged;
- ACD (MoCoGAN's average content distance, RGB 0..255) of the reconstructions against the inputs';
- the same for the first frame encoded alone as an image, and on Shape Motion test clips (random
  colours and curved paths), as a check that the model is not tuned to one dataset;
- chunked decoding (one latent frame at a time, causal cache) against the whole decode;
- encode + decode frames/s, fp32 and bf16 autocast, on --threads CPU threads (the target is on 2);
- the latent's per-channel mean and std, which the latent diffusion model normalises by.
Targets: PSNR >= 32 dB, SSIM >= 0.95, |ACD(reconstructions) - ACD(inputs)| <= 1.0, >= 200 frames/s.

    python benchmarks/vae.py --model shapes-vae
    python benchmarks/vae.py --model runs/shapes-vae          # a run folder: its newest checkpoint
    python benchmarks/vae.py --model runs/shapes-vae --threads 1

Prints a table and writes benchmarks/results/vae.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from kinema.data.shapes import CaptionedShapes, ShapeMotion, frames_to_tensor, tensor_to_frames
from kinema.evaluation.metrics import average_content_distance, psnr_frames, ssim_frames
from kinema.models.vae import VideoVAE
from kinema.training.logging import run_training_seconds

RESULTS = Path(__file__).parent / "results"
TARGETS = {"psnr": 32.0, "ssim": 0.95, "acd_gap": 1.0, "frames_per_s": 200.0}


def load_vae(model: str) -> tuple[VideoVAE, dict]:
    """The VideoVAE of a built-in name, a model folder or a run folder, and what the folder says of its training.

    The one place that knows the model folder layout (component "vae" of model_index.json).
    """
    from kinema.hub import open_model

    opened = open_model(model)
    return VideoVAE.from_pretrained(opened.component("vae")), dict(opened.index.training)


@torch.no_grad()
def reconstruct(vae: VideoVAE, videos: list[np.ndarray], batch: int) -> tuple[list[np.ndarray], torch.Tensor]:
    """uint8 (f, h, w, 3) videos -> their reconstructions through the posterior mean, and the latents."""
    out, latents = [], []
    for first in range(0, len(videos), batch):
        x = torch.stack([frames_to_tensor(v) for v in videos[first : first + batch]])  # (b, c, f, h, w)
        z = vae.encode(x).mode()
        latents.append(z)
        out.extend(tensor_to_frames(r) for r in vae.decode(z))
    return out, torch.cat(latents)


def quality(real: list[np.ndarray], fake: list[np.ndarray]) -> dict:
    psnr = np.array([psnr_frames(a, b) for a, b in zip(real, fake)])  # (videos, frames)
    ssim = np.array([ssim_frames(a, b) for a, b in zip(real, fake)])
    result = {"psnr": float(psnr.mean()), "ssim": float(ssim.mean()), "psnr_worst_video": float(psnr.mean(axis=1).min())}
    result["psnr_per_frame"] = [round(float(v), 2) for v in psnr.mean(axis=0)]
    if len(real[0]) > 1:
        acd_real, acd_fake = average_content_distance(real)["acd"], average_content_distance(fake)["acd"]
        result.update(acd_inputs=acd_real, acd_reconstructions=acd_fake, acd_gap=abs(acd_fake - acd_real))
    return result


@torch.no_grad()
def speed(vae: VideoVAE, num_frames: int, size: int, batch: int, bf16: bool, repeats: int = 5) -> float:
    """Encode + decode frames/s on clips of (batch, 3, num_frames, size, size), the median of `repeats` warm runs."""
    x = torch.rand(batch, 3, num_frames, size, size) * 2 - 1
    times = []
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        for i in range(repeats + 2):
            start = time.perf_counter()
            vae.decode(vae.encode(x).mode())
            if i >= 2:  # two warm-up runs
                times.append(time.perf_counter() - start)
    return batch * num_frames / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shapes-vae", help="built-in name, model folder or training run folder")
    parser.add_argument("--num-videos", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8, help="clips per encode/decode call (quality and speed)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the whole benchmark (the speed target is on 2)")
    parser.add_argument("--out", type=Path, default=RESULTS / "vae.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    vae, training = load_vae(args.model)
    size, num_frames = 64, 16
    real = [CaptionedShapes("test", num_samples=args.num_videos).render(i) for i in range(args.num_videos)]
    fake, latents = reconstruct(vae, real, args.batch)
    motion = [ShapeMotion("test", num_samples=args.num_videos).render(i) for i in range(args.num_videos)]
    images = [v[:1] for v in real]

    with torch.no_grad():
        z = latents[: args.batch]
        whole = vae.decode(z)
        chunked = vae.decode(z, chunk_size=1)
    result = {
        "model": str(args.model),
        "training": training,
        "num_videos": args.num_videos,
        "clip": [num_frames, size, size],
        "latent": list(vae.latent_shape(num_frames, size, size)),
        "compression": {"spatial": vae.config.spatial_compression, "temporal": vae.config.temporal_compression},
        "parameters": sum(p.numel() for p in vae.parameters()),
        "captioned_shapes": quality(real, fake),
        "first_frame_as_image": quality(images, reconstruct(vae, images, args.batch)[0]),
        "shape_motion": quality(motion, reconstruct(vae, motion, args.batch)[0]),
        "chunked_decode_max_abs_diff": float((chunked - whole).abs().max()),
        "latent_channel_mean": [round(float(v), 4) for v in latents.mean(dim=(0, 2, 3, 4))],
        "latent_channel_std": [round(float(v), 4) for v in latents.std(dim=(0, 2, 3, 4))],
        "latent_std": float(latents.std()),
        "threads": args.threads,
        "frames_per_s": {
            "fp32": speed(vae, num_frames, size, args.batch, bf16=False),
            "bf16": speed(vae, num_frames, size, args.batch, bf16=True),
        },
        "training_seconds": run_training_seconds(args.model),
    }
    shapes = result["captioned_shapes"]
    best_speed = max(result["frames_per_s"].values())
    result["meets_targets"] = bool(
        shapes["psnr"] >= TARGETS["psnr"] and shapes["ssim"] >= TARGETS["ssim"]
        and shapes["acd_gap"] <= TARGETS["acd_gap"] and best_speed >= TARGETS["frames_per_s"]
    )  # fmt: skip
    result["targets"] = TARGETS

    image, motion_q = result["first_frame_as_image"], result["shape_motion"]
    rows = [
        ("PSNR (Captioned Shapes)", f"{shapes['psnr']:.2f} dB", f">= {TARGETS['psnr']:.0f} dB; worst video {shapes['psnr_worst_video']:.2f}"),
        ("SSIM", f"{shapes['ssim']:.4f}", f">= {TARGETS['ssim']}"),
        ("ACD inputs -> reconstructions", f"{shapes['acd_inputs']:.2f} -> {shapes['acd_reconstructions']:.2f}", f"gap <= {TARGETS['acd_gap']}"),
        ("first frame as an image: PSNR / SSIM", f"{image['psnr']:.2f} / {image['ssim']:.4f}", "a one-frame video"),
        ("Shape Motion: PSNR / SSIM", f"{motion_q['psnr']:.2f} / {motion_q['ssim']:.4f}", f"ACD gap {motion_q['acd_gap']:.2f}"),
        ("chunked decode vs whole", f"{result['chunked_decode_max_abs_diff']:.1e}", "max |difference|, one latent frame per chunk"),
        ("latent (c, f, h, w) of 16x64x64", str(tuple(result["latent"])), f"std {result['latent_std']:.3f}"),
        ("parameters", f"{result['parameters'] / 1e6:.2f} M", ""),
        (f"encode + decode, fp32, {args.threads} thr", f"{result['frames_per_s']['fp32']:.0f} fr/s", f">= {TARGETS['frames_per_s']:.0f} (on 2 threads)"),
        (f"encode + decode, bf16, {args.threads} thr", f"{result['frames_per_s']['bf16']:.0f} fr/s", ""),
    ]
    if result["training_seconds"] is not None:
        rows.append(("training wall time", f"{result['training_seconds'] / 3600:.2f} h", f"step {training.get('step', '?')}"))
    width = max(len(r[0]) for r in rows)
    print(f"Video VAE: {args.model}, {args.num_videos} test clips of {num_frames}x{size}x{size}")
    for label, value, note in rows:
        print(f"  {label:<{width}}  {value:>16}  {note}")
    print(f"  meets targets: {result['meets_targets']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
