"""The four model families side by side (issue 16): warm seconds per clip measured here in one run, size on disk, and
the quality and training hours each built-in's card reports (benchmarks/shapes_t2v.py on the same 96 test and 48
held-out prompts, the Shapes checker).

    python benchmarks/families.py [--threads 2] [--clips 8]

Prints a Markdown table (README's) and writes benchmarks/results/families.json.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

import torch

from kinema.data.shapes import CaptionedShapes
from kinema.hub import open_model
from kinema.pipelines import load_pipeline

RESULTS = Path(__file__).parent / "results"
FAMILIES = {"diffusion (pixels, 32x32 upscaled)": "shapes-t2v", "latent diffusion (64x64)": "shapes-ldm", "GAN": "shapes-gan",
            "VQ-VAE + transformer": "shapes-videogpt"}
ATTRIBUTES = ("shape", "color", "size", "direction", "speed")


def card_numbers(card: str) -> dict:
    """Accuracy rows "| 96 test ... |" / "| 48 heldout ... |" (the model's own rows) and the training hours a card states."""
    out: dict = {}
    for split, pattern in (("test", r"\| (?:shapes-gan, )?96 test[^|]*\|([^\n]*)"), ("heldout", r"\| (?:shapes-gan, )?48 heldout[^|]*\|([^\n]*)")):
        found = re.search(pattern, card)
        if found:
            cells = [c.strip().rstrip("%") for c in found.group(1).split("|") if c.strip()]
            out[split] = min(float(c) for c in cells[: len(ATTRIBUTES)])  # the weakest attribute
    hours = re.findall(r"([0-9.]+) h (?:of training )?on", card)
    out["training_hours"] = sum(float(h) for h in hours) if hours else None
    return out


def seconds_per_clip(pipe, prompts: list[str]) -> float:
    pipe(prompts[0], seed=0)  # warm
    times = []
    for i, prompt in enumerate(prompts):
        start = time.perf_counter()
        pipe(prompt, seed=i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clips", type=int, default=8, help="clips timed per model (one at a time, after one warm-up)")
    parser.add_argument("--out", type=Path, default=RESULTS / "families.json")
    args = parser.parse_args()
    if args.threads < 1 or args.clips < 1:
        parser.error("--threads and --clips must be at least 1")
    torch.set_num_threads(args.threads)
    ds = CaptionedShapes("test", num_samples=args.clips, seed=1234)
    prompts = [ds.caption(i) for i in range(args.clips)]
    rows = []
    for family, name in FAMILIES.items():
        try:
            folder = open_model(name)
        except (FileNotFoundError, ValueError) as error:
            print(f"{name}: not available ({error})")
            continue
        row = {"family": family, "model": name, "size_mb": folder.size_bytes / 1e6, **card_numbers(folder.card)}
        row["seconds_per_clip"] = seconds_per_clip(load_pipeline(name, device="cpu"), prompts)
        rows.append(row)

    def pct(v):
        return "" if v is None else f"{v:.1f}%"

    print(f"| family | model | weakest attribute, 96 test | weakest attribute, 48 held-out | s/clip ({args.threads} threads) "
          "| training hours | size |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        hours = "" if r["training_hours"] is None else f"{r['training_hours']:.1f}"
        print(f"| {r['family']} | `{r['model']}` | {pct(r.get('test'))} | {pct(r.get('heldout'))} | {r['seconds_per_clip']:.2f} | {hours} "
              f"| {r['size_mb']:.1f} MB |")
    print("training hours: each model's own run(s); shapes-ldm starts from shapes-t2v's weights, whose hours it does not count")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": args.threads, "clips": args.clips, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
