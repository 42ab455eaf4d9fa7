"""The scene planner: a prompt in any wording -> the caption a closed-vocabulary model was trained to understand.

A prompt is read in passes, each taking the words the ones before left:

1. the vocabulary's own words: value names and description phrases, in any word form ("boxes", "rises",
   "bigger", "bluish"), longest phrase first; "from left to right" keeps the value after "to";
2. numbers with units, in digits or words, matched to the nearest declared measure ("two pixels a frame"
   -> the speed whose measure is 2 px/frame, "20 px wide" -> the size of 20 px);
3. spelling mistakes of words no dictionary knows ("trinagle"), against the vocabulary's words (difflib);
4. meaning: each remaining word, alone or with a neighbour ("high speed"), against every value's name and
   description phrases by MiniLM sentence-embedding cosine. It is placed when it is close enough to one
   value, closer to it than to the attribute's other values, and closer to it than to any of
   words.OTHER_THINGS (other colours, shapes, creatures, objects, motions: what a closed vocabulary
   usually lacks, so "hexagon" is not taken for the nearest shape);
5. what is left: function and filler words ("please", "a video of", "on a black background", "moving")
   are dropped; every other word is reported in ``Scene.unplaced``: something the model cannot draw, or a
   word it could not place. Such a word may still tip an attribute that nothing else names, towards the
   value it is nearest ("zooming" is nearer fast than slow): a lean, reported with its cosine.

An attribute the prompt does not name gets the vocabulary's default (avoiding a combination the model
never saw), so the caption always asks for a whole object; ``Scene.guessed`` says which.

The thresholds below were tuned on benchmarks/prompts/wordings_dev.jsonl and undrawable_dev.jsonl only
(benchmarks/prompt_understanding.py prints the accuracy they give).
"""

from __future__ import annotations

import difflib
import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import torch

from kinema.text.vocabulary import Vocabulary
from kinema.text.words import (
    BACKGROUND_COLORS,
    BACKGROUND_NOUNS,
    FILLER_WORDS,
    MODIFIERS,
    NEGATIONS,
    OTHER_THINGS,
    STOP_WORDS,
    Token,
    forms,
    read_number,
    tokenize,
)

# Pass 4. A word is placed by meaning when its best cosine to a value's phrases is at least MEANING_MIN
# and beats the attribute's next value by MEANING_MARGIN. Measured on the dev sets: thresholds from
# 0.25 to 0.4 give the same accuracy once the other things (below) are there to refuse undrawable words.
MEANING_MIN = 0.35
MEANING_MARGIN = 0.01
# When the prompt already names that attribute in the vocabulary's own words, a second word for it needs
# MEANING_AGAIN (so "spinning" beside "circle" is reported, not taken for another word for circle).
MEANING_AGAIN = 0.6
# A word read with a filler neighbour ("high speed") shares the neighbour with phrases of several values
# ("at a slow pace", "at a fast pace"), so the pair must win by more: "leisurely pace" scores fast.
FILLER_PAIR_MARGIN = 0.05
# The word must be nearer the value than any of words.OTHER_THINGS ("brown" is near "green" as colour
# words go, and nearer still to "brown"); another thing within ANCHOR_SAME of a value's own phrase is
# that value said otherwise, and is dropped.
ANCHOR_MARGIN = 0.0
ANCHOR_SAME = 0.85
TYPO_CUTOFF = 0.75  # difflib ratio for a spelling mistake of a vocabulary word ("yelow", "lfet")
MAX_PHRASE = 4  # longest vocabulary phrase matched, in content words

_PER = {"per", "a", "an", "each", "every", "/", "in"}
_FRAME = {"frame", "frames", "step", "steps", "tick", "ticks", "f"}
_SECOND = {"second", "seconds", "sec", "secs", "s"}
_PIXEL = {"px", "pixel", "pixels", "pixel's", "pix"}
_SIZE_WORDS = {"wide", "across", "tall", "diameter", "size", "width", "height", "sized"}
_TO = {"to", "towards", "toward", "into", "till", "until"}
# which evidence wins when two values of one attribute are named
_RANK = {"named": 4, "number": 3, "typo": 2, "meaning": 1, "lean": 0}


@dataclass
class Choice:
    """The value of one attribute and how the planner came to it."""

    value: str
    confidence: float  # 1.0: named in the vocabulary's words; the cosine for a match by meaning (or a lean); 0.0: guessed
    how: str  # "named", "number", "typo", "meaning", "lean" (a word not placed tipped it), "carried" (from the previous shot) or "guess"
    words: str = ""  # the words of the prompt that named it


@dataclass
class Scene:
    """What a prompt asks a model to draw: the caption it understands, and how each attribute was read."""

    prompt: str
    caption: str  # what the model is given
    choices: dict[str, Choice] = field(default_factory=dict)  # attribute -> value, in template order
    unplaced: list[str] = field(default_factory=list)  # words it could not place: mostly something the model cannot draw
    rewritten: bool = False  # caption != prompt

    @property
    def values(self) -> dict[str, str]:
        return {name: c.value for name, c in self.choices.items()}

    @property
    def confidence(self) -> dict[str, float]:
        return {name: c.confidence for name, c in self.choices.items()}

    @property
    def guessed(self) -> list[str]:
        """Attributes the prompt did not name: the vocabulary's default, or a lean from a word not placed."""
        return [name for name, c in self.choices.items() if c.how in ("guess", "lean")]

    def warnings(self, model: str = "this model") -> list[str]:
        """What a user should hear: words the model cannot draw, and a prompt it could not read at all."""
        notes = []
        if self.unplaced:
            words = ", ".join(repr(w) for w in self.unplaced)
            notes.append(f"{model} cannot draw {words} (or does not know the word); it draws its best guess: {self.caption!r}")
        elif self.choices and len(self.guessed) == len(self.choices):
            notes.append(f"nothing in {self.prompt!r} is something {model} knows; it draws its default: {self.caption!r}")
        return notes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "guessed": self.guessed}


@dataclass
class _Match:
    attribute: str
    value: str
    confidence: float
    how: str
    tokens: tuple[int, ...]  # indices into the prompt's tokens


class Planner:
    """Plans prompts for one vocabulary; the MiniLM embeddings of its phrases are computed once."""

    def __init__(self, vocabulary: Vocabulary, encoder) -> None:
        self.vocabulary, self.encoder = vocabulary, encoder
        self._attribute_names = {a.name for a in vocabulary.attributes}
        # 1. phrases by their content words, and every word form of those words
        self._phrases: dict[tuple[str, ...], set[tuple[str, str]]] = {}
        self._embedded: list[tuple[str, str, str]] = []  # (attribute, value, phrase) compared by meaning
        for attribute in vocabulary.attributes:
            for value in attribute.values:
                for phrase in value.phrases:
                    words = tuple(t.text for t in tokenize(phrase) if t.text not in STOP_WORDS)
                    if not words or any(w[0].isdigit() for w in words):
                        continue  # measures are read as numbers
                    self._phrases.setdefault(words, set()).add((attribute.name, value.name))
                    self._embedded.append((attribute.name, value.name, phrase))
        self._phrases = {k: v for k, v in self._phrases.items() if len(v) == 1}  # a phrase of two values names neither
        lexicon = {w for words in self._phrases for w in words}
        self._form_of: dict[str, set[str]] = {}
        for word in lexicon:
            for form in forms(word):
                self._form_of.setdefault(form, set()).add(word)
        # 3. single words a misspelling is compared with
        self._typo_targets = {words[0]: next(iter(v)) for words, v in self._phrases.items() if len(words) == 1 and len(words[0]) >= 3}
        self._matrix: torch.Tensor | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ helpers

    def _normal(self, word: str) -> str:
        """The vocabulary word this word is a form of ("rises" -> "rising"), else the word. A filler word or an
        attribute's name stays itself ("speed" is not a form of "speeding")."""
        if (word in self._form_of and word in self._form_of[word]) or word in FILLER_WORDS or word in self._attribute_names:
            return word
        for form in forms(word):
            found = self._form_of.get(form)
            if found and len(found) == 1:
                return next(iter(found))
        return word

    def _known_word(self, word: str) -> bool:
        tokenizer = getattr(self.encoder, "tokenizer", None)
        return tokenizer is not None and tokenizer.token_to_id(word) is not None

    def _phrase_matrix(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The embeddings of the value phrases (phrases, d) and of the other things (anchors, d)."""
        with self._lock:
            if self._matrix is None:
                matrix = self.encoder.encode([p for _, _, p in self._embedded]).pooled.float().cpu()
                anchors = [a for a in OTHER_THINGS if tuple(self._normal(t.text) for t in tokenize(a) if t.text not in STOP_WORDS) not in self._phrases]
                embedded = self.encoder.encode(anchors).pooled.float().cpu()
                keep = (embedded @ matrix.T).max(dim=1).values < ANCHOR_SAME
                self._matrix, self._anchors = matrix, embedded[keep]
        return self._matrix, self._anchors

    def _by_meaning(self, spans: list[str]) -> list[tuple[str, str, float, float, float]]:
        """For each span: (attribute, value, cosine, margin over the attribute's next value, cosine to the nearest other thing)."""
        matrix, anchors = self._phrase_matrix()
        embedded = self.encoder.encode(spans).pooled.float().cpu()
        sims = embedded @ matrix.T  # (spans, phrases)
        other = (embedded @ anchors.T).max(dim=1).values.tolist() if len(anchors) else [-1.0] * len(spans)
        out = []
        for row, near in zip(sims.tolist(), other):
            best: dict[tuple[str, str], float] = {}
            for (attribute, value, _), s in zip(self._embedded, row):
                best[(attribute, value)] = max(best.get((attribute, value), -1.0), s)
            (attribute, value), score = max(best.items(), key=lambda kv: kv[1])
            others = [s for (a, v), s in best.items() if a == attribute and v != value]
            out.append((attribute, value, score, score - max(others, default=-1.0), near))
        return out

    # ------------------------------------------------------------------------------------------ planning

    def plan(self, prompt: str, previous: Scene | None = None) -> Scene:
        """Read ``prompt``; attributes it does not name come from ``previous`` (a shot referring back) or are guessed."""
        tokens = tokenize(prompt)
        texts = [t.text for t in tokens]
        used = [False] * len(tokens)
        content = [i for i, w in enumerate(texts) if w not in STOP_WORDS]
        matches = self._negated(self._from_to(self._named(texts, content, used), texts), texts, used)  # 1.
        matches += self._numbers(texts, used)  # 2.
        matches += self._typos(texts, content, used)  # 3.
        background = self._background(texts)
        quiet = FILLER_WORDS | MODIFIERS | {a.name for a in self.vocabulary.attributes}
        left = [i for i in content if not used[i] and texts[i] not in quiet and i not in background and not texts[i].isdigit()]
        if left:  # 4. and the leans of 5.
            matches += self._meaning(texts, left, used, background, matches)
        choices, conflicting = self._choose(matches, tokens, prompt)
        unplaced = _words(sorted({i for i in left if not used[i]} | conflicting), tokens, prompt)
        for attribute in self.vocabulary.attributes:
            if attribute.name not in choices and previous is not None and attribute.name in previous.choices:
                carried = previous.choices[attribute.name]
                choices[attribute.name] = Choice(carried.value, carried.confidence, "carried")
        self._guess(choices)
        ordered = {a.name: choices[a.name] for a in self.vocabulary.attributes}
        caption = self.vocabulary.caption({name: c.value for name, c in ordered.items()})
        return Scene(prompt, caption, ordered, unplaced, rewritten=caption != prompt)

    def _named(self, texts: list[str], content: list[int], used: list[bool]) -> list[_Match]:
        """Pass 1: the vocabulary's phrases, longest first, compared word form by word form."""
        found = []
        normal = {i: self._normal(texts[i]) for i in content}
        k = 0
        while k < len(content):
            for n in range(min(MAX_PHRASE, len(content) - k), 0, -1):
                span = content[k : k + n]
                key = tuple(normal[i] for i in span)
                if key in self._phrases:
                    attribute, value = next(iter(self._phrases[key]))
                    found.append(_Match(attribute, value, 1.0, "named", tuple(span)))
                    for i in span:
                        used[i] = True
                    k += n
                    break
            else:
                k += 1
        return found

    def _typos(self, texts: list[str], content: list[int], used: list[bool]) -> list[_Match]:
        """Pass 3: a word no dictionary knows, close in spelling to one of the vocabulary's words."""
        found = []
        for i in content:
            word = texts[i]
            if used[i] or len(word) < 3 or not word.isalpha() or word in FILLER_WORDS or word in MODIFIERS \
                    or word in self._form_of or self._known_word(word):
                continue
            close = difflib.get_close_matches(word, list(self._typo_targets), n=1, cutoff=TYPO_CUTOFF)
            if close:
                attribute, value = self._typo_targets[close[0]]
                ratio = difflib.SequenceMatcher(None, word, close[0]).ratio()
                found.append(_Match(attribute, value, round(ratio, 3), "typo", (i,)))
                used[i] = True
        return found

    def _meaning(self, texts: list[str], left: list[int], used: list[bool], background: set[int], earlier: list[_Match]) -> list[_Match]:
        """Pass 4 (and the leans of pass 5): the words left, alone or with a neighbour, by MiniLM meaning."""
        named = {m.attribute for m in earlier if m.how == "named"}
        spans: list[tuple[int, ...]] = []
        for i in left:
            spans.append((i,))
            for j in (i - 1, i + 1):
                if 0 <= j < len(texts) and not used[j] and texts[j] not in STOP_WORDS and j not in background:
                    spans.append(tuple(sorted((i, j))))
        spans = list(dict.fromkeys(spans))
        scored = self._by_meaning([" ".join(texts[i] for i in span) for span in spans])
        candidates, leans = [], []
        for span, (attribute, value, score, margin, near) in zip(spans, scored):
            if len(span) == 1 and margin > 0:
                leans.append((score, span, attribute, value))
            need = MEANING_AGAIN if attribute in named else MEANING_MIN
            need_margin = FILLER_PAIR_MARGIN if any(texts[i] in FILLER_WORDS for i in span) else MEANING_MARGIN
            if score >= need and margin >= need_margin and score - near >= ANCHOR_MARGIN:
                candidates.append((score, span, attribute, value))
        found = []
        for score, span, attribute, value in sorted(candidates, key=lambda c: -c[0]):
            if not any(used[i] for i in span):
                found.append(_Match(attribute, value, round(score, 3), "meaning", span))
                for i in span:
                    used[i] = True
        leaned = {m.attribute for m in found + earlier}
        for score, span, attribute, value in sorted(leans, key=lambda c: -c[0]):
            if not used[span[0]] and attribute not in leaned:  # the word stays unplaced
                found.append(_Match(attribute, value, round(score, 3), "lean", span))
                leaned.add(attribute)
        return found

    def _negated(self, matches: list[_Match], texts: list[str], used: list[bool]) -> list[_Match]:
        """"not fast": a value just after a negation means the other value of a two-valued attribute, else nothing."""
        out = []
        for m in matches:
            before = [j for j in range(max(0, m.tokens[0] - 2), m.tokens[0]) if texts[j] in NEGATIONS]
            if not before:
                out.append(m)
                continue
            for j in before:
                used[j] = True
            names = self.vocabulary.attribute(m.attribute).names
            if len(names) == 2:
                other = names[1] if names[0] == m.value else names[0]
                out.append(_Match(m.attribute, other, 0.9, "named", tuple(before) + m.tokens))
        return out

    def _from_to(self, matches: list[_Match], texts: list[str]) -> list[_Match]:
        """"from left to right", "top to bottom": of two values of one attribute joined by "to", the second."""
        keep = []
        for m in matches:
            later = [o for o in matches if o.attribute == m.attribute and o.value != m.value and o.tokens[0] > m.tokens[-1]]
            if any(set(texts[m.tokens[-1] + 1 : o.tokens[0]]) & _TO and o.tokens[0] - m.tokens[-1] <= 3 for o in later):
                continue
            keep.append(m)
        return keep

    def _numbers(self, texts: list[str], used: list[bool]) -> list[_Match]:
        """Quantities with units -> the value of the attribute in that unit whose measure is nearest."""
        found = []
        units = {a.unit: a for a in self.vocabulary.attributes if a.unit}
        i = 0
        while i < len(texts):
            number = None if used[i] else read_number(texts, i)
            if number is None:
                i += 1
                continue
            value, n = number
            after = texts[i + n : i + n + 5]
            unit_at = 0 if after[:1] and after[0] in _PIXEL else None  # "20 px", "20-pixel"
            rest = after[unit_at + 1 :] if unit_at is not None else after
            per_words = 2 if len(rest) >= 2 and rest[0] in _PER and rest[1] in (_FRAME | _SECOND) else 0
            per_second = per_words and rest[1] in _SECOND
            if any(used[i + n : i + n + (unit_at + 1 if unit_at is not None else 1)]):
                i += 1
                continue  # "one big": the next word is already the vocabulary's own
            sized = unit_at is not None or (after[:1] and after[0] in _SIZE_WORDS) or (i > 0 and texts[i - 1] in ("size", "diameter", "width"))
            per = bool(per_words) or (unit_at is None and i > 0 and texts[i - 1] in ("speed", "velocity"))  # "speed 2"
            if texts[i] in ("a", "an", "single", "couple", "dozen") and unit_at != 0:
                i += 1
                continue  # "a" is a number only in "a pixel"
            span = list(range(i, i + n))
            if unit_at is not None:
                span += list(range(i + n, i + n + unit_at + 1))
                if not per and i + n + unit_at + 1 < len(texts) and texts[i + n + unit_at + 1] in _SIZE_WORDS | {"big", "large", "high", "long"}:
                    span.append(i + n + unit_at + 1)  # "12 pixels wide"
            if per_words:
                start = i + n + (unit_at + 1 if unit_at is not None else 0)
                span += [start, start + 1]
            elif after[:1] and after[0] in _SIZE_WORDS and unit_at is None:
                span.append(i + n)
            unit = "px/frame" if per and not per_second else "px" if sized and not per else None
            if unit is None:
                # a count ("two circles") or a speed per second: nothing this vocabulary measures; left for step 5
                i += n
                continue
            for j in span:
                if j < len(used):
                    used[j] = True
            attribute = units.get(unit)
            if attribute is not None:
                best = min(attribute.values, key=lambda v: abs(v.measure - value))
                off = abs(best.measure - value) / max(abs(best.measure), 1e-6)
                found.append(_Match(attribute.name, best.name, round(max(0.5, 1.0 - off), 3), "number", tuple(span)))
            i = max(span) + 1
        return found

    def _background(self, texts: list[str]) -> set[int]:
        """Indices of "black" in "on a black background", "on black": the model's own background."""
        out = set()
        for i, w in enumerate(texts):
            if w in BACKGROUND_COLORS:
                near = texts[i + 1 : i + 3]
                if any(n in BACKGROUND_NOUNS for n in near) or (i > 0 and texts[i - 1] in ("on", "against", "over")) \
                        or (i > 1 and texts[i - 2] in ("on", "against", "over") and texts[i - 1] in ("a", "the")):
                    out.add(i)
        return out

    def _choose(self, matches: list[_Match], tokens: list[Token], prompt: str) -> tuple[dict[str, Choice], set[int]]:
        """One value per attribute: the strongest evidence wins (named > number > typo > meaning, then
        confidence, then the first named); the words of a losing value are reported as not placed."""
        choices, losers = {}, set()
        by_attribute: dict[str, list[_Match]] = {}
        for m in matches:
            by_attribute.setdefault(m.attribute, []).append(m)
        for attribute, found in by_attribute.items():
            best = max(found, key=lambda m: (_RANK[m.how], m.confidence, -m.tokens[0]))
            agree = [m for m in found if m.value == best.value]
            words = " ".join(dict.fromkeys(w for m in agree for w in _words(m.tokens, tokens, prompt)))
            choices[attribute] = Choice(best.value, best.confidence, best.how, words)
            losers |= {i for m in found if m.value != best.value for i in m.tokens}
        return choices, losers

    def _guess(self, choices: dict[str, Choice]) -> None:
        """Fill the attributes not named: the default, or the first value that makes no unseen combination."""
        for attribute in self.vocabulary.attributes:
            if attribute.name in choices:
                continue
            order = [attribute.default] + [n for n in attribute.names if n != attribute.default]
            values = {name: c.value for name, c in choices.items()}
            pick = next((n for n in order if not self.vocabulary.is_unseen({**values, attribute.name: n})), attribute.default)
            choices[attribute.name] = Choice(pick, 0.0, "guess")


def _words(indices, tokens: list[Token], prompt: str) -> list[str]:
    """The prompt's own text of these tokens, word by word (a hyphenated word whole: "itsy-bitsy")."""
    out, run = [], []
    for i in sorted(indices):
        if run and (i != run[-1] + 1 or prompt[tokens[run[-1]].end : tokens[i].start] not in ("-", "/")):
            out.append(prompt[tokens[run[0]].start : tokens[run[-1]].end])
            run = []
        run.append(i)
    if run:
        out.append(prompt[tokens[run[0]].start : tokens[run[-1]].end])
    return out


# ---------------------------------------------------------------------------------------------- module API

_ENCODER = None
_PLANNERS: dict[tuple[int, str], Planner] = {}
_LOCK = threading.Lock()


def default_encoder():
    """The MiniLM encoder the planner uses when given none, loaded once (CPU, float32)."""
    global _ENCODER
    with _LOCK:
        if _ENCODER is None:
            from kinema.models.text import MiniLMEncoder

            _ENCODER = MiniLMEncoder.from_pretrained()
    return _ENCODER


def planner_for(vocabulary: Vocabulary, encoder=None) -> Planner:
    """The cached planner of a vocabulary (and encoder): its phrase embeddings are computed once."""
    encoder = encoder or default_encoder()
    key = (id(encoder), json.dumps(vocabulary.to_json(), sort_keys=True))
    with _LOCK:
        if key not in _PLANNERS:
            _PLANNERS[key] = Planner(vocabulary, encoder)
        return _PLANNERS[key]


def plan(prompt: str, vocabulary: Vocabulary | Mapping[str, Any] | None, *, encoder=None, previous: Scene | None = None) -> Scene:
    """Map a prompt onto a model's vocabulary: the Scene holding the caption to give the model.

    ``vocabulary``: the model's (``ModelFolder.vocabulary``, a Vocabulary or its JSON); None (a model that
    declares none) or a blank prompt gives the prompt back unchanged. ``encoder``: a loaded MiniLMEncoder
    to share (default: one loaded on first use). ``previous``: the scene a prompt refers back to (a shot's
    "it"): attributes the prompt does not name are carried from it instead of guessed.
    """
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be text, got {type(prompt).__name__}")
    if vocabulary is None or not prompt.strip():
        return Scene(prompt, prompt)
    if not isinstance(vocabulary, Vocabulary):
        vocabulary = Vocabulary.from_json(vocabulary)
    return planner_for(vocabulary, encoder).plan(prompt, previous)
