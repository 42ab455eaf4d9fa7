"""The "Prompts in other words" section of a Shapes text model's card (issue 17): its clips on a held-out prompt set.

Reads benchmarks/results/prompt_understanding_<set>_<model>.json, written by

    python benchmarks/prompt_understanding.py --set benchmarks/prompts/wordings_heldout8.jsonl \\
        --model shapes-t2v --generate --out benchmarks/results/prompt_understanding_wordings_heldout8_shapes-t2v.json

and puts the section into the card between its markers, replacing an earlier one (the card writers,
scripts/write_*model_card.py, call ``section`` too, so a rewritten card keeps it):

    python scripts/card_wordings.py shapes-t2v shapes-gan shapes-ldm
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BUILTIN = ROOT / "src" / "kinema" / "builtin"
ATTRIBUTES = ("shape", "color", "size", "direction", "speed")
HELD_OUT = "wordings_heldout8"  # written apart after the outline and idiom lexicons, read once (benchmarks/prompts/README_heldout8.md)
TARGET = 0.95
BEGIN, END = "<!-- wordings: scripts/card_wordings.py -->", "<!-- /wordings -->"


def section(model: str, results: Path = RESULTS, prompt_set: str = HELD_OUT) -> str:
    """The section's Markdown, or "" when the benchmark has not been run for ``model``."""
    path = results / f"prompt_understanding_{prompt_set}_{model}.json"
    if not path.is_file():
        return ""
    result = json.loads(path.read_text())
    clips, planner = result["clips"], result["planner"]
    rows = []
    for name, label in (("planner", "planner on (the default)"), ("raw_prompt", "`--raw-prompt` (as written)")):
        run = clips[name]
        cells = " | ".join(f"{run['accuracy'][a]:.1%}" for a in ATTRIBUTES)
        rows.append(f"| {label} | {cells} | {run['clips_without_object']} | {run['seconds_per_clip']:.2f} |")
    reading = ", ".join(f"{planner['accuracy'][a]:.1%}" for a in ATTRIBUTES)
    short = [f"{a} {clips['planner']['accuracy'][a]:.1%}" for a in ATTRIBUTES if clips["planner"]["accuracy"][a] < TARGET]
    if clips["planner"]["clips_without_object"]:
        short.append(f"{clips['planner']['clips_without_object']} clip(s) in which the checker found no object")
    verdict = ("Every attribute reaches the 95% target." if not short
               else "Below the 95% target or the no-empty-clip rule: " + "; ".join(short) + ".")
    n = planner["num_prompts"]
    return f"""{BEGIN}
## Prompts in other words (benchmarks/prompt_understanding.py, issue 17)

{n} prompts written apart from the scene planner and never tuned on (`benchmarks/prompts/{prompt_set}.jsonl`:
synonyms, typos, reorderings, chatty and terse wordings), one clip each (seed {result.get('seed', 0)} + i), read by the
Shapes checker; the planner's own reading of the same prompts: {reading} (shape, color, size, direction, speed);
canonical captions come back unchanged ({result['canonical_round_trip']:.0%}).

| clips | shape | color | size | direction | speed | no object | s/clip |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

{verdict}
{END}
"""


def put(card: str, text: str) -> str:
    """``card`` with its wordings section replaced by ``text`` (added before "## Limits", else at the end)."""
    if BEGIN in card and END in card:
        start, end = card.index(BEGIN), card.index(END) + len(END)
        return card[:start] + text.rstrip("\n") + card[end:]
    if not text:
        return card
    at = card.find("## Limits")
    return card[:at] + text + "\n" + card[at:] if at >= 0 else card.rstrip("\n") + "\n\n" + text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="built-in names")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    for model in args.models:
        text = section(model, args.results)
        if not text:
            raise SystemExit(f"no {args.results}/prompt_understanding_{HELD_OUT}_{model}.json: run the benchmark first (see --help)")
        card = BUILTIN / model / "MODEL_CARD.md"
        card.write_text(put(card.read_text(), text))
        print(f"wrote the wordings section of {card}")


if __name__ == "__main__":
    main()
