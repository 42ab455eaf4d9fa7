"""How well prompts in any wording reach a Shapes text model (issue 17): the scene planner alone, and with --generate
the clips a model makes from them, planner on against --raw-prompt.

A prompt set is JSONL, one {"prompt": ..., "labels": {shape, color, size, direction, speed}} per line (labels
may leave an attribute out; it is then not scored). Rows with "unplaced": [words] instead are requests the
model cannot draw: each listed word must be reported as not placed. The default set,
benchmarks/prompts/wordings_dev.jsonl, is the one the planner was tuned on; give a held-out set with --set.

    python benchmarks/prompt_understanding.py                                   # planner accuracy and timing
    python benchmarks/prompt_understanding.py --set benchmarks/prompts/undrawable_dev.jsonl
    python benchmarks/prompt_understanding.py --model shapes-t2v --generate     # + clips, planner on vs --raw-prompt

Prints a table, writes benchmarks/results/prompt_understanding[_<set>].json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from kinema.data.shapes import canonical_captions, shapes_vocabulary
from kinema.text import plan
from kinema.text.planner import default_encoder

ROOT = Path(__file__).parent
DEV_SET = ROOT / "prompts" / "wordings_dev.jsonl"
RESULTS = ROOT / "results"
ATTRIBUTES = ("shape", "color", "size", "direction", "speed")


def read_set(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if "prompt" not in row or not ("labels" in row or "unplaced" in row):
                raise ValueError(f"{path} line {number}: needs \"prompt\" and \"labels\" (or \"unplaced\")")
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} holds no prompts")
    return rows


def score_planner(rows: list[dict], vocabulary, encoder, fps: float | None = 8.0) -> dict:
    """Per-attribute accuracy of the planner's values against the labels, undrawable words found, and timing
    (``fps``: the frame rate the clips play at, as `kinema generate` gives the planner; the Shapes models' is 8)."""
    right = {a: 0 for a in ATTRIBUTES}
    total = {a: 0 for a in ATTRIBUTES}
    whole = whole_total = 0
    found = found_total = 0
    spurious = 0
    times, misses = [], []
    plan("a zorblax", vocabulary, encoder=encoder)  # warm: the vocabulary's embeddings, computed on the first word read by meaning
    for row in rows:
        start = time.perf_counter()
        scene = plan(row["prompt"], vocabulary, encoder=encoder, fps=fps)
        times.append(time.perf_counter() - start)
        if "labels" in row:
            labels = {a: v for a, v in row["labels"].items() if a in ATTRIBUTES}
            wrong = {a: (scene.values[a], want) for a, want in labels.items() if scene.values[a] != want}
            for a in labels:
                total[a] += 1
                right[a] += a not in wrong
            whole_total += 1
            whole += not wrong
            spurious += bool(scene.unplaced)
            if wrong:
                misses.append({"prompt": row["prompt"], "caption": scene.caption, "wrong": wrong, "unplaced": scene.unplaced})
        if "unplaced" in row:
            said = " ".join(scene.unplaced).lower()
            for word in row["unplaced"]:
                found_total += 1
                found += word.lower() in said
            if not all(w.lower() in said for w in row["unplaced"]):
                misses.append({"prompt": row["prompt"], "caption": scene.caption, "expected_unplaced": row["unplaced"], "unplaced": scene.unplaced})
    return {
        "num_prompts": len(rows),
        "accuracy": {a: right[a] / total[a] for a in ATTRIBUTES if total[a]},
        "all_attributes": whole / whole_total if whole_total else None,
        "undrawable_words_reported": found / found_total if found_total else None,
        "labelled_prompts_with_unplaced_words": spurious / whole_total if whole_total else None,
        "ms_per_prompt": {"median": 1000 * statistics.median(times), "max": 1000 * max(times)},
        "misses": misses,
    }


def canonical_round_trip(vocabulary, encoder) -> float:
    captions = canonical_captions()
    return sum(plan(c, vocabulary, encoder=encoder).caption == c for c in captions) / len(captions)


def score_clips(rows: list[dict], model: str, seed: int, device: str, limit: int | None = None) -> dict:
    """Generate every labelled prompt with the planner on and off; Shapes-checker accuracy and clips with no object."""
    from kinema.evaluation.shapes_checker import check_videos
    from kinema.pipelines import load_pipeline
    from kinema.pipelines.generate import generate

    rows = [r for r in rows if "labels" in r][:limit]
    pipe = load_pipeline(model, device=device)
    out = {}
    for mode, raw in (("planner", False), ("raw_prompt", True)):
        start = time.perf_counter()
        clips = [generate(r["prompt"], pipeline=pipe, seed=seed + i, raw_prompt=raw, progress=False).frames for i, r in enumerate(rows)]
        report = check_videos(clips, [r["labels"] for r in rows])
        empty = sum(1 for reading in report.readings if reading.present_rate < 0.5)
        out[mode] = {"accuracy": report.accuracy, "clips_without_object": empty, "present_rate": report.present_rate,
                     "seconds_per_clip": (time.perf_counter() - start) / len(rows)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, default=DEV_SET, help="JSONL prompt set (default: the dev set)")
    parser.add_argument("--model", default="shapes-t2v", help="the model whose declared vocabulary is used, and which --generate runs")
    parser.add_argument("--generate", action="store_true", help="also generate every prompt and score the clips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="--generate: only the first N labelled prompts")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(1)  # planning is one short encoder call: what a CLI user waits for
    from kinema.hub import open_model

    folder = open_model(args.model)
    vocabulary = folder.vocabulary or shapes_vocabulary()
    encoder = default_encoder()
    rows = read_set(args.set)
    fps = folder.index.settings.get("fps", 8.0)
    result = {"set": str(args.set), "model": args.model, "planner": score_planner(rows, vocabulary, encoder, fps),
              "canonical_round_trip": canonical_round_trip(vocabulary, encoder)}
    p = result["planner"]
    print(f"{args.set.name}: {p['num_prompts']} prompts")
    if p["accuracy"]:
        print(f"{'':12} " + " ".join(f"{a:>9}" for a in ATTRIBUTES) + f" {'all five':>9}")
        print(f"{'planner':12} " + " ".join(f"{p['accuracy'].get(a, float('nan')):9.1%}" for a in ATTRIBUTES) + f" {p['all_attributes']:9.1%}")
    if p["undrawable_words_reported"] is not None:
        print(f"undrawable words reported as not placed: {p['undrawable_words_reported']:.1%}")
    if p["labelled_prompts_with_unplaced_words"] is not None:
        print(f"labelled prompts with a word reported as not placed: {p['labelled_prompts_with_unplaced_words']:.1%}")
    print(f"canonical captions that round-trip: {result['canonical_round_trip']:.1%}")
    print(f"planning: median {p['ms_per_prompt']['median']:.1f} ms, max {p['ms_per_prompt']['max']:.1f} ms per prompt (one thread, warm)")
    if args.show_misses:
        for miss in p["misses"]:
            print("  miss:", json.dumps(miss))
    if args.generate:
        result["clips"] = score_clips(rows, args.model, args.seed, args.device, args.limit)
        print(f"{'clips':12} " + " ".join(f"{a:>9}" for a in ATTRIBUTES) + f" {'no object':>9}")
        for mode, r in result["clips"].items():
            print(f"{mode:12} " + " ".join(f"{r['accuracy'].get(a, float('nan')):9.1%}" for a in ATTRIBUTES) + f" {r['clips_without_object']:9d}")
    out = args.out or RESULTS / ("prompt_understanding.json" if args.set == DEV_SET else f"prompt_understanding_{args.set.stem}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
