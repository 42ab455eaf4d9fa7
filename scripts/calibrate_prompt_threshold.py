"""Calibrate the "far from the training prompts" warning of the Shapes models (PipelineConfig.ood_threshold).

A prompt is compared with every canonical Captioned Shapes caption by MiniLM cosine (the sentence
embedding); below the threshold, generation still runs but warns, naming the closest caption.
This script measures that nearest-caption cosine for three sets of prompts:

- in: the varied training phrasings (CaptionedShapes, captions="varied"), every split;
- paraphrase: wordings a person might type that no template produces ("a red ball rolling left");
- far: prompts about anything else ("a dog running on a beach").

and picks the threshold halfway between the lowest in-domain cosine (varied + paraphrases) and the
highest far one, printing both error rates.

    python scripts/calibrate_prompt_threshold.py

Writes benchmarks/results/prompt_threshold.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kinema.data.shapes import CaptionedShapes, canonical_captions
from kinema.models.text import MiniLMEncoder, PromptReference

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "prompt_threshold.json"

PARAPHRASES = [
    "a red ball rolling to the left",
    "small blue box going up fast",
    "big green triangle sliding down slowly",
    "a yellow dot that moves right quickly",
    "tiny magenta square heading left at speed",
    "one large cyan circle travelling downward",
    "a little white triangle creeping to the right",
    "a huge red square rushing upwards",
    "blue circle, small, moves left",
    "the green square goes down fast",
    "a small purple circle moving right",
    "red triangle floating up gently",
    "a big yellow box drifting to the left slowly",
    "a cyan ball bouncing right quickly",
    "white square slowly going up",
    "a fast small blue triangle going right",
]

FAR = [
    "a dog running on a beach at sunset",
    "a city street at night in the rain",
    "portrait of an old man smiling",
    "a rocket launching into space",
    "waves crashing on rocks",
    "a chef cooking pasta in a kitchen",
    "a timelapse of clouds over mountains",
    "two people dancing at a wedding",
    "a cat sleeping on a sofa",
    "fireworks over a river",
    "a car driving through a forest road",
    "an astronaut riding a horse",
    "a bowl of fruit on a wooden table",
    "a crowd cheering at a football match",
    "close-up of a blooming flower",
    "a train passing through the countryside",
    "a panda eating bamboo",
    "snow falling on a quiet village",
    "a robot walking in a factory",
    "a jellyfish swimming in the deep sea",
    "hello world",
    "make me a movie",
    "the quick brown fox jumps over the lazy dog",
    "an abstract painting in the style of Kandinsky",
]


def main() -> None:
    encoder = MiniLMEncoder.from_pretrained()
    reference = PromptReference(encoder, canonical_captions())
    varied = [CaptionedShapes(split, num_samples=160, captions="varied", seed=99).caption(i) for split in ("train", "test", "heldout") for i in range(160)]
    scores = {name: np.array([cos for _, cos in reference.closest(prompts)])
              for name, prompts in (("in", varied), ("paraphrase", PARAPHRASES), ("far", FAR))}
    inside = np.concatenate([scores["in"], scores["paraphrase"]])
    threshold = round(float((inside.min() + scores["far"].max()) / 2), 2)
    result = {
        "threshold": threshold,
        "in_domain_min": float(inside.min()),
        "far_max": float(scores["far"].max()),
        "sets": {name: {"count": len(s), "min": float(s.min()), "median": float(np.median(s)), "max": float(s.max()),
                        "warned": float(np.mean(s < threshold))} for name, s in scores.items()},
    }
    print(f"{'set':11} {'count':>5} {'min':>6} {'median':>6} {'max':>6} {'warned':>7}")
    for name, row in result["sets"].items():
        print(f"{name:11} {row['count']:5d} {row['min']:6.3f} {row['median']:6.3f} {row['max']:6.3f} {row['warned']:7.1%}")
    print(f"threshold {threshold} (halfway between in-domain min {result['in_domain_min']:.3f} and far max {result['far_max']:.3f})")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
