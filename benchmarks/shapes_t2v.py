"""Quality of a text/image-to-video model on Captioned Shapes, judged by the Shapes checker.

Text-to-video: one sample each for the captions of 96 test-split and 48 heldout-split videos.
Targets (issue 4): >= 95% on every attribute for test prompts, >= 80% for heldout ones, the
object present as one blob in >= 98% of frames. Shape accuracy is also reported per asked size.
Colour collapse check (for GANs above all): spread of the generated clips' object colours over that
of real training clips, and the share of training colours matched within 48 RGB units.
Image-to-video: 64 test videos, given the true first frame and caption; PSNR / SSIM of frames
2-16 against the truth, which must beat copying the first frame by >= 3 dB PSNR.

    python benchmarks/shapes_t2v.py --model shapes-t2v
    python benchmarks/shapes_t2v.py --model runs/shapes-t2v --num-test 32 --num-heldout 16 --num-i2v 16

Prints a table, writes benchmarks/results/shapes_t2v.json and a sample grid PNG.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from kinema.data.shapes import CaptionedShapes
from kinema.evaluation.metrics import color_diversity, psnr_frames, ssim_frames
from kinema.evaluation.shapes_checker import ATTRIBUTES, check_videos, read_shapes
from kinema.io.grid import frame_grid
from kinema.io.image import write_image
from kinema.pipelines import load_pipeline

RESULTS = Path(__file__).parent / "results"


def generate_all(pipe, prompts: list[str], seed: int, batch: int, **kwargs) -> np.ndarray:
    clips = []
    for start in range(0, len(prompts), batch):
        clips.append(pipe(prompts[start : start + batch], seed=seed + start, **kwargs).frames)  # clip i: seed + i
    return np.concatenate(clips)


def text_to_video(pipe, split: str, count: int, seed: int, batch: int, steps: int | None, guidance: float | None):
    ds = CaptionedShapes(split, num_samples=count, seed=1234)  # the benchmark's own draw of the split
    prompts = [ds.caption(i) for i in range(count)]
    start = time.perf_counter()
    videos = generate_all(pipe, prompts, seed, batch, num_inference_steps=steps, guidance_scale=guidance)
    seconds = time.perf_counter() - start
    report = check_videos(list(videos), prompts)
    return report, videos, prompts, seconds


def shape_accuracy_by_size(report) -> dict[str, float]:
    """Shape accuracy over the clips of each asked size: small triangles read as circles show up here."""
    by_size: dict[str, list[bool]] = {}
    for reading, expected in zip(report.readings, report.expected):
        if "shape" in expected and "size" in expected:
            by_size.setdefault(expected["size"], []).append(reading.shape == expected["shape"])
    return {size: sum(hits) / len(hits) for size, hits in sorted(by_size.items())}


def training_colors(count: int = 256) -> np.ndarray:
    """Object colours of real training-split videos: the reference for the colour-collapse check."""
    ds = CaptionedShapes("train", num_samples=count, resolution=32, seed=99)
    return np.array([read_shapes(ds.render(i)).mean_color for i in range(count)])


def image_to_video(pipe, count: int, seed: int, batch: int, steps: int | None, guidance: float | None) -> dict:
    ds = CaptionedShapes("test", num_samples=count, resolution=pipe.settings.output_size, num_frames=pipe.settings.num_frames, seed=4321)
    truth = np.stack([ds.render(i) for i in range(count)])
    generated = []
    for start in range(0, count, batch):
        idx = range(start, min(start + batch, count))
        out = pipe([ds.caption(i) for i in idx], image=truth[list(idx), 0], seed=seed + start, num_inference_steps=steps, guidance_scale=guidance)
        generated.append(out.frames)
    generated = np.concatenate(generated)
    copy = np.repeat(truth[:, :1], truth.shape[1], axis=1)
    scores = {}
    for name, fake in (("model", generated), ("copy_first_frame", copy)):
        psnr = np.concatenate([psnr_frames(t[1:], f[1:]) for t, f in zip(truth, fake)])
        ssim = np.concatenate([ssim_frames(t[1:], f[1:]) for t, f in zip(truth, fake)])
        scores[name] = {"psnr": float(np.mean(psnr[np.isfinite(psnr)])), "ssim": float(np.mean(ssim))}
    scores["psnr_gain_db"] = scores["model"]["psnr"] - scores["copy_first_frame"]["psnr"]
    scores["num_videos"] = count
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shapes-t2v")
    parser.add_argument("--num-test", type=int, default=96)
    parser.add_argument("--num-heldout", type=int, default=48)
    parser.add_argument("--num-i2v", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default=None, help="the pipeline's dtype (default: float32 on a CPU)")
    parser.add_argument("--out", type=Path, default=RESULTS / "shapes_t2v.json")
    args = parser.parse_args()

    pipe = load_pipeline(args.model, dtype=args.dtype)
    result: dict = {"model": str(args.model), "dtype": str(pipe.dtype).replace("torch.", ""), "steps": args.steps or getattr(pipe.settings, "default_steps", None),
                    "guidance": getattr(pipe.settings, "default_guidance", None) if args.guidance is None else args.guidance}
    grids, reference_colors = [], training_colors()
    for split, count in (("test", args.num_test), ("heldout", args.num_heldout)):
        if count <= 0:
            continue
        report, videos, prompts, seconds = text_to_video(pipe, split, count, args.seed, args.batch, args.steps, args.guidance)
        colors = [r.mean_color for r in report.readings if r.present_rate > 0]
        result[split] = {**report.to_dict(), **color_diversity(colors, reference_colors), "seconds_per_clip": seconds / count,
                         "shape_accuracy_by_size": shape_accuracy_by_size(report)}
        grids.append(frame_grid(list(videos[:8])))
    if args.num_i2v > 0:
        result["image_to_video"] = image_to_video(pipe, args.num_i2v, args.seed, args.batch, args.steps, args.guidance)

    targets = {"test": 0.95, "heldout": 0.80}
    print(f"{'split':8} " + " ".join(f"{a:>9}" for a in ATTRIBUTES) + f" {'one blob':>9} {'s/clip':>7}")
    for split in ("test", "heldout"):
        if split in result:
            r = result[split]
            accs = " ".join(f"{r['accuracy'][a]:9.1%}" for a in ATTRIBUTES)
            print(f"{split:8} {accs} {r['single_blob_rate']:9.1%} {r['seconds_per_clip']:7.2f}   (target {targets[split]:.0%} each, blob 98%)")
            print(f"{'':8} shape accuracy by size: " + ", ".join(f"{k} {v:.1%}" for k, v in r["shape_accuracy_by_size"].items()))
            print(f"{'':8} colour diversity / training {r['color_diversity_ratio']:.2f} (<< 1: collapse), "
                  f"training colours covered {r['color_coverage']:.0%}")
            r["meets_targets"] = all(r["accuracy"][a] >= targets[split] for a in ATTRIBUTES) and r["single_blob_rate"] >= 0.98
    if "image_to_video" in result:
        i2v = result["image_to_video"]
        print(f"image-to-video frames 2-16: PSNR {i2v['model']['psnr']:.2f} dB (copy-first-frame {i2v['copy_first_frame']['psnr']:.2f}, "
              f"gain {i2v['psnr_gain_db']:+.2f} dB, target +3), SSIM {i2v['model']['ssim']:.3f} ({i2v['copy_first_frame']['ssim']:.3f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if grids:
        grid = np.concatenate(grids, axis=0)
        write_image(args.out.with_suffix(".png"), grid, overwrite=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
