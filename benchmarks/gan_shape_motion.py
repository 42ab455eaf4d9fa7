"""Shape Motion benchmark of an unconditional video GAN (MoCoGAN, CVPR 2018, Table 1).

ACD (average content distance) on 256 generated videos, as in shapes.md: per video, the mean
pairwise L2 distance between the per-frame mean colours of the shape's interior pixels, RGB 0..255,
averaged over videos, on the generated frames themselves (never on a lossy encoding of them).
Published: training set 0, VGAN 5.02, TGAN 2.08, MoCoGAN 1.79 (lower is better).

ACD alone rewards a blank or frozen video, so the videos must also be real shapes (targets):
- the Shapes checker finds exactly one blob in >= 95% of frames;
- >= 90% of videos move left-to-right or top-to-bottom: the blob's centroid travels >= 12 px
  (64-px units) rightwards or downwards over the clip. Every training video travels >= 24 px along
  its axis; the cross-axis part of a Bezier path may be larger and go either way, which is why
  "the dominant axis points right or down" is reported but not the target (real videos: ~95%).
Also reported, as collapse detectors: colour diversity against the training set (mean pairwise
distance between videos' colours, generated / training, and the share of training colours with a
generated colour within 48 RGB units), and the balance of shapes and directions (training: ~50/50);
and, for shapes that morph or swell over a clip (which ACD, reading colour only, misses), the median
change of the shape's area over a clip, (max - min) / mean (real videos: 0.6%).

    python benchmarks/gan_shape_motion.py --model shape-motion-gan
    python benchmarks/gan_shape_motion.py --model runs/shape-motion-gan      # also reports training time
    python benchmarks/gan_shape_motion.py --reference                        # the same on real videos

Prints a table, writes benchmarks/results/gan_shape_motion.json and a preview grid PNG beside it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from kinema.data.shapes import ShapeMotion
from kinema.evaluation.metrics import average_content_distance, color_diversity
from kinema.evaluation.shapes_checker import read_shapes
from kinema.io.grid import frame_grid
from kinema.io.image import write_image
from kinema.training.logging import run_training_seconds

RESULTS = Path(__file__).parent / "results"
PUBLISHED = {"training set": 0.0, "VGAN": 5.02, "TGAN": 2.08, "MoCoGAN": 1.79}
TARGETS = {"acd": 1.79, "single_blob_rate": 0.95, "moves_right_or_down": 0.90}
MIN_TRAVEL = 12.0  # px at 64x64
COLOR_RADIUS = 48.0  # RGB units: 256 real test colours cover 99% of the training ones at this radius


def generated_videos(model: str, count: int, seed: int, batch: int) -> tuple[list[np.ndarray], float]:
    from kinema.pipelines import load_pipeline

    pipe = load_pipeline(model)
    start = time.perf_counter()
    videos = []
    for first in range(0, count, batch):
        out = pipe(num_videos=min(batch, count - first), seed=seed + first)
        videos.extend(out.frames)
    return videos, (time.perf_counter() - start) / count


def real_videos(split: str, count: int) -> list[np.ndarray]:
    ds = ShapeMotion(split, num_samples=count)
    return [ds.render(i) for i in range(count)]


def measure(videos: list[np.ndarray], training_colors: np.ndarray) -> dict:
    readings = [read_shapes(v) for v in videos]
    travel = np.array([r.velocity for r in readings]) * (videos[0].shape[0] - 1)  # (n, 2) start -> end, 64-px units
    right, down = travel[:, 0] >= MIN_TRAVEL, travel[:, 1] >= MIN_TRAVEL
    dominant = np.where(np.abs(travel[:, 0]) >= np.abs(travel[:, 1]), travel[:, 0] > 0, travel[:, 1] > 0)
    found = [r for r in readings if r.present_rate > 0]
    colors = np.array([r.mean_color for r in found]) if found else np.zeros((0, 3))
    shapes = [r.shape for r in found]
    return {
        **average_content_distance(videos),
        "present_rate": float(np.mean([r.present_rate for r in readings])),
        "single_blob_rate": float(np.mean([r.single_blob_rate for r in readings])),
        "moves_right_or_down": float(np.mean(right | down)),
        "dominant_axis_right_or_down": float(np.mean(dominant)),
        "share_left_to_right": float(np.mean(right & (travel[:, 0] >= travel[:, 1]))),
        "share_squares": shapes.count("square") / len(shapes) if shapes else 0.0,
        "size_drift_median": float(np.median([r.size_drift for r in found])) if found else float("nan"),
        **color_diversity(colors, training_colors, COLOR_RADIUS),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shape-motion-gan", help="built-in name, model folder or training run folder")
    parser.add_argument("--reference", action="store_true", help="measure 256 real Shape Motion test videos instead of a model")
    parser.add_argument("--num-videos", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/gan_shape_motion[_reference].json)")
    args = parser.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), 2))

    training = np.array([read_shapes(v).mean_color for v in real_videos("train", 256)])
    if args.reference:
        videos, seconds, name = real_videos("test", args.num_videos), None, "Shape Motion test videos (real)"
    else:
        videos, seconds = generated_videos(args.model, args.num_videos, args.seed, args.batch)
        name = str(args.model)
    result = {"model": name, "num_videos": len(videos), "frame_size": list(videos[0].shape[1:3]), **measure(videos, training)}
    result["seconds_per_video"] = seconds
    result["training_seconds"] = None if args.reference else run_training_seconds(args.model)
    result["published_acd"] = PUBLISHED
    result["meets_targets"] = bool(
        result["acd"] <= TARGETS["acd"]
        and result["single_blob_rate"] >= TARGETS["single_blob_rate"]
        and result["moves_right_or_down"] >= TARGETS["moves_right_or_down"]
    )

    rows = [
        ("ACD (RGB 0-255, lower is better)", f"{result['acd']:.2f}", f"<= {TARGETS['acd']} (MoCoGAN; TGAN 2.08, VGAN 5.02, real 0)"),
        ("videos measured by ACD", f"{result['num_measured']}/{result['num_videos']}", ""),
        ("frames with an object", f"{result['present_rate']:.1%}", ""),
        ("frames with one blob", f"{result['single_blob_rate']:.1%}", f">= {TARGETS['single_blob_rate']:.0%}"),
        ("videos moving right or down", f"{result['moves_right_or_down']:.1%}", f">= {TARGETS['moves_right_or_down']:.0%}"),
        ("  dominant axis right or down", f"{result['dominant_axis_right_or_down']:.1%}", "real: ~95%"),
        ("  of which left-to-right", f"{result['share_left_to_right']:.1%}", "real: ~50%"),
        ("squares (vs circles)", f"{result['share_squares']:.1%}", "real: ~50%"),
        ("shape area change over a clip (median)", f"{result['size_drift_median']:.1%}", "real: 0.6%; a shape that morphs or swells"),
        ("colour diversity / training", f"{result['color_diversity_ratio']:.2f}", "~1; << 1 is collapse"),
        (f"training colours within {COLOR_RADIUS:.0f}", f"{result['color_coverage']:.1%}", "real: ~99%"),
    ]
    if seconds is not None:
        rows.append(("sampling time per video", f"{seconds * 1000:.1f} ms", ""))
    if result["training_seconds"] is not None:
        rows.append(("training wall time", f"{result['training_seconds'] / 60:.1f} min", "this machine"))
    width = max(len(r[0]) for r in rows)
    print(f"Shape Motion: {name}, {len(videos)} videos of {videos[0].shape[1]}x{videos[0].shape[2]}")
    for label, value, note in rows:
        print(f"  {label:<{width}}  {value:>10}  {note}")
    print(f"  meets targets: {result['meets_targets']}")

    out = args.out or RESULTS / ("gan_shape_motion_reference.json" if args.reference else "gan_shape_motion.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    write_image(out.with_suffix(".png"), frame_grid(videos[:8], num_columns=8), overwrite=True)
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
