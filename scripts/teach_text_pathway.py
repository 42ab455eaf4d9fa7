"""Teach a Shapes GAN's text pathway other words for its attributes (issue 17 part 3, "or teach the model").

The other road to prompts in any wording: instead of rewriting the prompt (the scene planner, kinema.text), train the
model's own text pathway on captions augmented from a large maintained lexicon, and see which generalises better to
words neither was given. The GAN's whole text pathway is its ConditionEncoder (MiniLM tokens -> attention pooling ->
one condition vector), so it is taught by distillation: a copy of it (the student) learns to give, for an augmented
caption, the vector the trained encoder (the teacher) gives the canonical caption of the same attributes. The
generator is untouched, so what it draws for a canonical caption stays as it was.

The lexicon is Princeton WordNet 3.0 (the one the planner reads, kinema.text.lexicon): for each value, the lemmas of
the senses of its name, training words and description words (the sense whose definition is nearest the value's
description), and of the senses one or two pointers away (hyponyms, similar adjectives, derivations, see-also), kept
where the planner itself places the word on that value in a probe sentence (so both roads start from the same
knowledge: the planner applies it at run time, the student learns it). Words of the prompt
sets given with --exclude (the held-out wordings) are removed from the lexicon, so those sets measure words neither
road was given. 20% of the lexicon words are kept out of training too (--holdout-share): the "unseen lexicon words"
check of the report.

    python scripts/teach_text_pathway.py --model shapes-gan --out runs/gan-taught \\
        --exclude benchmarks/prompts/wordings_heldout3.jsonl benchmarks/prompts/wordings_heldout4.jsonl
    python benchmarks/prompt_understanding.py --model runs/gan-taught --generate --set benchmarks/prompts/wordings_heldout4.jsonl

Writes a full model folder at --out (the input's, with the taught generator) and teach_report.json in it.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import random
import re
import shutil
import time
from pathlib import Path

import torch

from kinema.data.shapes import _WORDS, COLORS, DIRECTIONS, SHAPES, SIZES, SPEEDS, ShapesLabels, shapes_vocabulary
from kinema.hub import open_model
from kinema.io.atomic import atomic_dir
from kinema.models.gan import VideoGenerator
from kinema.models.text import MiniLMEncoder
from kinema.text import plan
from kinema.text.lexicon import wordnet
from kinema.text.planner import planner_for
from kinema.text.vocabulary import Vocabulary
from kinema.text.words import FILLER_WORDS, STOP_WORDS

ATTRIBUTES = {"shape": SHAPES, "color": COLORS, "size": SIZES, "direction": DIRECTIONS, "speed": SPEEDS}
POINTERS = ("~", "&", "+", "^", "\\", "~i")  # hyponym, similar adjective, derivation, see also, pertainym, instance
# the parts of speech an attribute's words are read in: a direction is not the noun "right" (an entitlement)
PARTS = {"shape": ("n", "a"), "color": ("n", "a"), "size": ("a", "r"), "direction": ("r", "a", "v"), "speed": ("r", "a", "v")}
# probe sentences: the word in one attribute's place, every other attribute named by its training word
PROBES = {
    "shape": ("a red {w} moving left slowly",),
    "color": ("a {w} circle moving left slowly",),
    "size": ("a {w} red circle moving left slowly",),
    "direction": ("a small red circle moving {w} slowly", "a small red circle {w} slowly"),
    "speed": ("a small red circle moving left {w}", "a small red circle {w} to the left"),
}
WORD = re.compile(r"[a-z][a-z-]*[a-z]")


def training_words() -> dict[str, list[str]]:
    """Each value's name and training-caption phrasings."""
    return {value: list(dict.fromkeys([value, *_WORDS.get(value, ())])) for values in ATTRIBUTES.values() for value in values}


def candidates(seeds: list[str], parts: tuple[str, ...], about: str, encoder: MiniLMEncoder, limit: int = 400) -> list[str]:
    """Single-word lemmas of the seeds' senses meant here and of the senses one or two pointers from them. The sense
    meant: in each part of speech, of a seed's four commonest senses the one whose definition is nearest the value's
    description (``about``) by MiniLM (so "circle" the figure, not the circle of friends)."""
    wn = wordnet()
    target = encoder.encode([about]).pooled[0]
    found: dict[str, None] = {}
    for seed in seeds:
        if " " in seed:
            continue
        frontier = []
        for pos in parts:
            senses = wn.synsets(seed, pos)[:4]
            if senses:
                near = encoder.encode([s.gloss for s in senses]).pooled @ target
                frontier.append(senses[int(near.argmax())])
        for depth in range(3):
            following = []
            for synset in frontier:
                for lemma in synset.lemmas:
                    word = lemma.lower().replace("_", " ")
                    if WORD.fullmatch(word):
                        found.setdefault(word)
                if depth < 2:
                    following += [wn.synset(pos, offset) for symbol, pos, offset in synset.pointers if symbol in POINTERS and pos.replace("s", "a") in parts][:40]
            frontier = following
        if len(found) >= limit:
            break
    return list(found)[:limit]


def accepted(word: str, attribute: str, value: str, vocabulary, encoder) -> str | None:
    """Which probe (0: modifier place, 1: verb place) the planner reads ``word`` as ``value`` in, or None."""
    for kind, probe in enumerate(PROBES[attribute]):
        scene = plan(probe.format(w=word), vocabulary, encoder=encoder)
        choice = scene.choices.get(attribute)
        if choice and choice.value == value and choice.how not in ("guess", "lean", "carried") and word in choice.words and not scene.unplaced:
            return ("modifier", "verb")[kind]
    return None


def build_lexicon(vocabulary, encoder, excluded: set[str]) -> dict[str, dict[str, dict[str, str]]]:
    """attribute -> value -> {word: "modifier" or "verb"}: the WordNet words the planner places on that value."""
    train = training_words()
    taken = {w for words in train.values() for w in words}
    lexicon: dict[str, dict[str, dict[str, str]]] = {}
    for attribute, values in ATTRIBUTES.items():
        lexicon[attribute] = {}
        for value in values:
            words = {}
            about = next(v.description for v in vocabulary.attribute(attribute).values if v.name == value)
            described = [w for w in re.findall(r"[a-z]+", about) if w not in STOP_WORDS and w not in FILLER_WORDS and len(w) > 2]
            for word in candidates(train[value] + described, PARTS[attribute], about, encoder):
                if word in taken or word in excluded:
                    continue
                kind = accepted(word, attribute, value, vocabulary, encoder)
                if kind:
                    words[word] = kind
            lexicon[attribute][value] = words
            print(f"  {attribute:9} {value:8} {len(words):3} words: {', '.join(list(words)[:12])}", flush=True)
    return lexicon


def excluded_words(paths: list[Path]) -> set[str]:
    """Every word of the prompts in these sets that is not a training word."""
    train = {t for words in training_words().values() for w in words for t in w.split()}
    words = set()
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                words |= set(re.findall(r"[a-z][a-z-]*", json.loads(line)["prompt"].lower()))
    return words - train


# --------------------------------------------------------------------------------------------- captions

OPENERS = ("", "", "", "please make ", "show me ", "i want ", "can you render ", "generate ", "a clip of ", "video: ")
CLOSERS = ("", "", "", " on a black background", " please", ", thanks", " on black", " in the frame")


def phrase(rng: random.Random, words: dict[str, str], train: list[str], kind: str | None = None) -> str:
    """A word for one value: a lexicon word (of the wanted kind) or, one time in four, a training word."""
    pool = [w for w, k in words.items() if kind is None or k == kind]
    if pool and rng.random() < 0.75:
        return rng.choice(pool)
    return rng.choice(train)


def typo(rng: random.Random, text: str) -> str:
    words = text.split()
    i = rng.randrange(len(words))
    w = words[i]
    if len(w) >= 5:
        j = rng.randrange(1, len(w) - 2)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def augmented_caption(rng: random.Random, labels: ShapesLabels, lexicon, train: dict[str, list[str]]) -> str:
    """One caption of ``labels`` in other words: lexicon words, shuffled places, fillers, now and then a typo."""
    word = lambda attribute, kind=None: phrase(rng, lexicon[attribute][getattr(labels, attribute)], train[getattr(labels, attribute)], kind)  # noqa: E731
    size, color, shape = word("size"), word("color"), word("shape")
    if rng.random() < 0.15 and not shape.endswith("s"):
        shape += "s"  # a plural now and then ("squares")
    obj = rng.choice((f"a {size} {color} {shape}", f"a {color} {shape}, {size},", f"one {size} {shape} in {color}",
                      f"the {size} {color} {shape}", f"{size} {color} {shape}"))
    direction_verb = rng.random() < 0.4 and any(k == "verb" for k in lexicon["direction"][labels.direction].values())
    speed_verb = not direction_verb and rng.random() < 0.4 and any(k == "verb" for k in lexicon["speed"][labels.speed].values())
    if direction_verb:
        motion = f"{word('direction', 'verb')} {word('speed', 'modifier')}"
    elif speed_verb:
        motion = f"{word('speed', 'verb')} {word('direction', 'modifier')}"
    else:
        verb = rng.choice(("moving", "going", "heading", "travelling", "drifting", "moves", "goes"))
        motion = f"{verb} {word('direction', 'modifier')} {word('speed', 'modifier')}"
    text = rng.choice((f"{obj} {motion}", f"{obj} that is {motion}", f"{motion}: {obj}"))
    text = rng.choice(OPENERS) + text + rng.choice(CLOSERS)
    return typo(rng, text) if rng.random() < 0.1 else text


# --------------------------------------------------------------------------------------------- teaching


def encode(encoder: MiniLMEncoder, captions: list[str], batch: int = 256) -> list[tuple[torch.Tensor, torch.Tensor]]:
    chunks = []
    for first in range(0, len(captions), batch):
        text = encoder.encode(captions[first : first + batch])
        chunks.append((text.tokens.float(), text.mask))
    return chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shapes-gan")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--exclude", type=Path, nargs="*", default=[], help="prompt sets whose words stay out of the lexicon")
    parser.add_argument("--captions", type=int, default=16384)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--holdout-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = parser.parse_args()
    if args.out.exists() and not args.overwrite:
        raise SystemExit(f"--out {args.out} exists; pass --overwrite to replace it")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    folder = open_model(args.model)
    if folder.index.pipeline != "gan":
        raise SystemExit(f"{args.model} is a {folder.index.pipeline} model; this script teaches a GAN's text pathway")
    generator = VideoGenerator.from_pretrained(folder.component("generator")).eval()
    teacher = generator.condition
    vocabulary = Vocabulary.from_json(folder.index.vocabulary) if folder.index.vocabulary else shapes_vocabulary()
    encoder = MiniLMEncoder.from_pretrained()
    planner_for(vocabulary, encoder)

    # 1. the lexicon, less the excluded sets' words; a share of each value's words kept out of training
    start = time.perf_counter()
    excluded = excluded_words(args.exclude)
    print(f"lexicon from WordNet ({len(excluded)} words of {len(args.exclude)} prompt set(s) excluded):")
    lexicon = build_lexicon(vocabulary, encoder, excluded)
    taught = copy.deepcopy(lexicon)
    unseen = {a: {v: {} for v in vals} for a, vals in ATTRIBUTES.items()}
    for attribute, values in lexicon.items():
        for value, words in values.items():
            names = sorted(words)
            rng.shuffle(names)
            for name in names[: int(len(names) * args.holdout_share)]:
                unseen[attribute][value][name] = taught[attribute][value].pop(name)
    print(f"lexicon built in {time.perf_counter() - start:.0f} s")

    # 2. captions: augmented from the taught words, and a share in the training phrasings (canonical kept)
    train = training_words()
    combos = [ShapesLabels(*c) for c in itertools.product(SHAPES, COLORS, SIZES, DIRECTIONS, SPEEDS)]
    index = {labels: i for i, labels in enumerate(combos)}
    with torch.no_grad():
        targets = torch.cat([teacher(len(chunk), text_tokens=t, text_mask=m) for chunk in [combos[i : i + 96] for i in range(0, len(combos), 96)]
                             for t, m in encode(encoder, [c.caption() for c in chunk])])

    def caption_set(words, count: int) -> tuple[list[str], torch.Tensor]:
        labels = [rng.choice(combos) for _ in range(count)]
        texts = [augmented_caption(rng, lab, words, train) if rng.random() < 0.85 else lab.caption() for lab in labels]
        return texts, torch.tensor([index[lab] for lab in labels])

    start = time.perf_counter()
    texts, target_ids = caption_set(taught, args.captions)
    chunks = encode(encoder, texts, args.batch)
    check_texts, check_ids = caption_set(unseen, 1024)
    check_chunks = encode(encoder, check_texts, args.batch)
    print(f"{len(texts)} captions encoded in {time.perf_counter() - start:.0f} s; e.g. {texts[:3]}")

    # 3. distil: the student's vector for an augmented caption -> the teacher's for its canonical caption
    student = copy.deepcopy(teacher).train()
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    scale = targets.var(dim=0).mean()

    def loss_of(module, tokens, mask, ids):
        return ((module(len(ids), text_tokens=tokens, text_mask=mask) - targets[ids]) ** 2).mean() / scale

    def evaluate(module, parts, ids) -> dict[str, float]:
        """Relative error, and how often the nearest canonical vector is the right combination (per attribute)."""
        with torch.no_grad():
            vectors = torch.cat([module(len(m), text_tokens=t, text_mask=m) for t, m in parts])
        nearest = torch.cdist(vectors, targets).argmin(dim=1)
        out = {"relative_error": float(((vectors - targets[ids]) ** 2).mean() / scale)}
        for attribute in ATTRIBUTES:
            out[attribute] = sum(getattr(combos[n], attribute) == getattr(combos[i], attribute) for n, i in zip(nearest.tolist(), ids.tolist())) / len(ids)
        return out

    before = evaluate(teacher, check_chunks, check_ids)
    sizes = [len(m) for _, m in chunks]
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        c = rng.randrange(len(chunks))
        tokens, mask = chunks[c]
        ids = target_ids[offsets[c] : offsets[c] + sizes[c]]
        loss = loss_of(student, tokens, mask, ids)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 250 == 0 or step == args.steps:
            print(f"step {step}  loss {loss.item():.4f}  ({time.perf_counter() - start:.0f} s)", flush=True)
    student.eval()
    after = evaluate(student, check_chunks, check_ids)
    print(f"unseen lexicon words, nearest canonical combination: teacher {before} -> student {after}")

    # 4. the model folder: the input's, with the taught generator
    generator.condition = student
    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        shutil.copytree(folder.path, tmp, dirs_exist_ok=True)
        generator.save_pretrained(tmp / folder.component("generator").relative_to(folder.path), overwrite=True)
        write_report(tmp, args, excluded, taught, unseen, before, after, texts)
    print(f"wrote {args.out}")


def write_report(folder: Path, args, excluded, taught, unseen, before, after, texts) -> None:
    report = {"model": args.model, "excluded_sets": [str(p) for p in args.exclude], "excluded_words": len(excluded),
              "lexicon_words": {a: {v: sorted(w) for v, w in vals.items()} for a, vals in taught.items()},
              "unseen_lexicon_words": {a: {v: sorted(w) for v, w in vals.items()} for a, vals in unseen.items()},
              "captions": args.captions, "steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": args.seed,
              "unseen_words_teacher": before, "unseen_words_student": after, "examples": texts[:20]}
    (folder / "teach_report.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
