"""Step previews through a VAE's linear latent -> RGB map (issue 18, part 3): how close, how fast.

For shapes-vae (as shapes-ldm scales its latents) and the tiny random diffusers pipelines the tests build
(TextToVideoSDPipeline's AutoencoderKL, CogVideoXPipeline's AutoencoderKLCogVideoX):
- the fit: seconds, and PSNR of the preview against the VAE's real decode on latents the fit did not see,
  for the default fit (the VAE's encodings of dead-leaves clips) and for one on standard normal latents;
- shapes-vae only: PSNR on real latents (test-split Captioned Shapes clips, encoded), the same map fitted on
  such real latents (the best this map can do), and the ceiling of any preview of one colour per latent pixel
  (the real decode area-pooled to the latent grid, upsampled bilinearly again);
- a preview's time against the full decode of the same latent (median of 20), and what writing it as a GIF costs.

    python benchmarks/latent_preview.py            # one CPU thread, as the tests run
    python benchmarks/latent_preview.py --threads 2

Prints a table and writes benchmarks/results/latent_preview.json. The tiny pipelines' VAEs are random:
their PSNR says the fit runs on that VAE class and layout, not how good a preview of a trained one looks.
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
import torch.nn.functional as F
from einops import rearrange

from kinema.pipelines.preview import fit_linear_preview, video_psnr

RESULTS = Path(__file__).parent / "results"


def median_ms(fn, repeats: int = 20) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@torch.no_grad()
def shapes_vae() -> dict:
    from kinema.data.shapes import CaptionedShapes, frames_to_tensor
    from kinema.pipelines import load_pipeline

    pipe = load_pipeline("shapes-ldm", device="cpu")
    previewer = pipe.latent_previewer()
    vae, scale = pipe.vae, 1 / pipe.settings.latent_scale
    decode, encode = previewer.decode, previewer.encode
    size = pipe.settings.sample_size
    s = vae.config.spatial_compression
    fit = dict(scale=scale, grid=(3, size, size), clip=(3, size * s, size * s))
    encoded = fit_linear_preview(decode, 8, encode=encode, **fit)
    random = fit_linear_preview(decode, 8, **fit)
    clips = CaptionedShapes("test", num_samples=16)
    x = torch.stack([frames_to_tensor(clips.render(i)) for i in range(16)])  # (16, 3, 16, 64, 64)
    z = vae.encode(x).mode() / scale  # as the sampler holds them
    real = vae.decode(z[8:] * scale)
    on_real = fit_linear_preview(decode, 8, scale=scale, latents=z[:8], held_out=0)
    pooled = F.avg_pool2d(rearrange(real, "b c f h w -> (b f) c h w"), 4)
    ceiling = rearrange(F.interpolate(pooled, size=(64, 64), mode="bilinear", align_corners=False), "(b f) c h w -> b c f h w", b=8)
    one = z[8:9]
    return {
        "vae": "shapes-vae (shapes-ldm's scaling)",
        "fit_seconds": encoded.fit_seconds, "fit_seconds_random": random.fit_seconds,
        "psnr_held_out": encoded.psnr, "psnr_held_out_random_fit": random.psnr,
        "psnr_real_latents": video_psnr(encoded.video(z[8:], (64, 64)), real),
        "psnr_real_latents_random_fit": video_psnr(random.video(z[8:], (64, 64)), real),
        "psnr_real_latents_fit_on_real": video_psnr(on_real.video(z[8:], (64, 64)), real),
        "psnr_ceiling_one_colour_per_latent_pixel": video_psnr(ceiling, real),
        "preview_ms": median_ms(lambda: encoded.frames(one, (64, 64))),
        "decode_ms": median_ms(lambda: pipe._decode(one, (64, 64), None)),
        "frames": "16 x 64x64",
    }


@torch.no_grad()
def diffusers_vae(name: str) -> dict:
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    if name == "AutoencoderKL":
        from kinema.pipelines.diffusers_backend import tiny_pipeline

        pipe = tiny_pipeline()
        latents = torch.randn(1, 4, 16, 16, 16)  # (b, c, f, h, w): a 16-frame clip at 32x32
    else:
        from diffusers import CogVideoXDDIMScheduler, CogVideoXPipeline
        from test_diffusers_backend import cogvideox_parts

        from kinema.pipelines.diffusers_backend import DiffusersPipeline

        pipe = DiffusersPipeline(CogVideoXPipeline(scheduler=CogVideoXDDIMScheduler(), **cogvideox_parts(image_to_video=False)))
        latents = torch.randn(1, 4, 13, 8, 8)  # 49 frames at 64x64
    previewer = pipe.latent_previewer(latents.shape[-2:])
    preview = previewer.map()
    random = fit_linear_preview(previewer.decode, previewer.channels, scale=previewer.scale, shift=previewer.shift, grid=previewer.fit["grid"])
    raw = latents * previewer.scale.reshape(-1, 1, 1, 1) + previewer.shift.reshape(-1, 1, 1, 1)
    frames = preview.num_frames(latents.shape[2])
    return {
        "vae": f"tiny random {name}", "fit_seconds": preview.fit_seconds, "fit_seconds_random": random.fit_seconds,
        "psnr_held_out": preview.psnr, "psnr_held_out_random_fit": random.psnr,
        "preview_ms": median_ms(lambda: preview.frames(latents)),
        "decode_ms": median_ms(lambda: previewer.decode(raw), repeats=5),
        "frames": f"{frames} x {latents.shape[-2] * preview.spatial}x{latents.shape[-1] * preview.spatial}",
    }


def gif_ms() -> dict:
    from kinema.io import write_video
    from kinema.pipelines.generate import PreviewWriter

    frames = np.random.default_rng(0).integers(0, 256, (1, 16, 64, 64, 3), dtype=np.uint8)
    folder = RESULTS / ".preview_tmp"
    folder.mkdir(parents=True, exist_ok=True)
    writer = PreviewWriter(folder / "p.gif", 8)
    try:
        return {"preview_writer_ms": median_ms(lambda: writer(1, 1, frames), 5),
                "write_video_gif_ms": median_ms(lambda: write_video(folder / "w.gif", frames[0], fps=8, overwrite=True), 5)}
    finally:
        for file in folder.iterdir():
            file.unlink()
        folder.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import os

    os.environ["KINEMA_PREVIEW_CACHE"] = ""  # every fit measured, none read from the cache
    rows = [shapes_vae(), diffusers_vae("AutoencoderKL"), diffusers_vae("AutoencoderKLCogVideoX")]
    gif = gif_ms()
    print(f"{'VAE':44} {'fit s':>6} {'held-out dB':>11} {'random-fit dB':>13} {'preview ms':>10} {'decode ms':>9}  frames")
    for r in rows:
        print(f"{r['vae']:44} {r['fit_seconds']:6.2f} {r['psnr_held_out']:11.1f} {r['psnr_held_out_random_fit']:13.1f} "
              f"{r['preview_ms']:10.2f} {r['decode_ms']:9.1f}  {r['frames']}")
    s = rows[0]
    print(f"shapes-vae on real Shapes latents: {s['psnr_real_latents']:.1f} dB (random-latent fit {s['psnr_real_latents_random_fit']:.1f}, "
          f"fitted on real latents {s['psnr_real_latents_fit_on_real']:.1f}, ceiling {s['psnr_ceiling_one_colour_per_latent_pixel']:.1f})")
    print(f"GIF of 16 frames of 64x64: PreviewWriter {gif['preview_writer_ms']:.1f} ms, write_video {gif['write_video_gif_ms']:.1f} ms")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "latent_preview.json"
    out.write_text(json.dumps({"threads": args.threads, "vaes": rows, "gif": gif}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
