"""Train the Shapes classifier behind FD-Shapes and report its per-attribute accuracy.

Writes the weights to OUT (config.json + model.safetensors, what `kinema evaluate --classifier OUT`
loads) and benchmarks/results/shapes_classifier.json. The defaults take under 10 minutes on a CPU
(about 0.13 s a step on one core). FD-Shapes values are comparable only between evaluations that use the
same weights, so keep the folder (and this result file) with the numbers you publish.

    python scripts/train_shapes_classifier.py --out runs/shapes_classifier
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from kinema.evaluation.classifier import HEADS, ClassifierTraining, train_shapes_classifier
from kinema.io.atomic import atomic_path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "shapes_classifier.json"


def main(argv: list[str] | None = None) -> int:
    defaults = ClassifierTraining()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "shapes_classifier", help="folder for the weights")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--overwrite", action="store_true", help="replace weights already in OUT")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    training = ClassifierTraining(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    scores = train_shapes_classifier(args.out, training, device=args.device, overwrite=args.overwrite)

    print(f"\n{'attribute':<10} {'test':>7} {'heldout':>8}")
    for name in HEADS:
        print(f"{name:<10} {scores['test'][name]:>7.1%} {scores['heldout'][name]:>8.1%}")
    print(f"loss {scores['first_loss']:.3f} -> {scores['last_loss']:.3f} in {scores['seconds'] / 60:.1f} min; weights in {args.out}")

    config = asdict(training)
    result = {"weights": str(args.out), "training": config, "device": args.device, "threads": torch.get_num_threads(), **scores}
    with atomic_path(RESULT, overwrite=True) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
