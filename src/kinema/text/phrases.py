"""A vocabulary's own words in a text: its value phrases in any word form, and quantities with units matched to its measures.

The planner reads a prompt with this first (passes 1 and 2 of kinema.text.planner), and the sense reader
(kinema.text.senses) reads WordNet's lemmas and definitions with it ("travel rapidly", "at 180 degrees").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kinema.text.colors import angle_between
from kinema.text.vocabulary import Vocabulary
from kinema.text.words import FILLER_WORDS, NEGATIONS, STOP_WORDS, forms, read_number, tokenize

MAX_PHRASE = 4  # longest vocabulary phrase matched, in content words
# A quantity is the value whose measure is nearest by ratio (a log scale: 16 px is nearer 20 than 12), and only within
# half the ratio to the next measure, on either side: the speeds 1 and 2 px/frame take 0.71 to 2.83, so "3 pixels per
# frame" is reported, not snapped to fast; the sizes 12 and 20 px take 9.3 to 25.8 ("22 px" is large, "40 px" is
# reported). A single declared measure takes quantities within SINGLE_MEASURE_RATIO of it.
SINGLE_MEASURE_RATIO = 1.5

_PER = {"per", "a", "an", "each", "every", "/", "in"}
_FRAME = {"frame", "frames", "step", "steps", "tick", "ticks", "f"}
_SECOND = {"second", "seconds", "sec", "secs", "s"}
_FPS = {"fps"}
_PIXEL = {"px", "pixel", "pixels", "pixel's", "pix"}
_SIZE_WORDS = {"wide", "across", "tall", "diameter", "size", "width", "height", "sized"}
_DEGREES = {"degree", "degrees", "deg"}  # a compass bearing: WordNet's "the cardinal compass point that is at 270 degrees"
_CLOCK = {"o'clock", "oclock"}  # a clock-face bearing: 3 o'clock is 90 degrees, 9 o'clock 270
_RADIUS = {"radius", "radii"}
_BEARING_NOUNS = {"heading", "bearing", "course", "azimuth"}  # a bare number after one is in degrees: "heading 270", "on a bearing of 180"
_TO = {"to", "towards", "toward", "into", "till", "until"}


@dataclass
class Match:
    """One value found in a text, and how."""

    attribute: str
    value: str
    confidence: float
    how: str  # "named", "number", "color", "typo", "lexicon", "meaning", "lean"
    tokens: tuple[int, ...]  # indices into the text's tokens


class Phrases:
    """The value phrases and measures of one vocabulary, and where they occur in a list of words."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.attribute_names = {a.name for a in vocabulary.attributes}
        self.phrases: dict[tuple[str, ...], set[tuple[str, str]]] = {}  # content words -> the values they name
        self.embedded: list[tuple[str, str, str]] = []  # (attribute, value, phrase) compared by meaning
        for attribute in vocabulary.attributes:
            for value in attribute.values:
                for phrase in value.phrases:
                    words = tuple(t.text for t in tokenize(phrase) if t.text not in STOP_WORDS)
                    if not words or any(w[0].isdigit() for w in words):
                        continue  # measures are read as numbers
                    self.phrases.setdefault(words, set()).add((attribute.name, value.name))
                    self.embedded.append((attribute.name, value.name, phrase))
        self.phrases = {k: v for k, v in self.phrases.items() if len(v) == 1}  # a phrase of two values names neither
        lexicon = {w for words in self.phrases for w in words}
        self.form_of: dict[str, set[str]] = {}
        for word in lexicon:
            for form in forms(word):
                self.form_of.setdefault(form, set()).add(word)
        self.units = {a.unit: a for a in vocabulary.attributes if a.unit}

    def normal(self, word: str) -> str:
        """The vocabulary word this word is a form of ("rises" -> "rising"), else the word. A filler word or an
        attribute's name stays itself ("speed" is not a form of "speeding")."""
        if (word in self.form_of and word in self.form_of[word]) or word in FILLER_WORDS or word in self.attribute_names:
            return word
        for form in forms(word):
            found = self.form_of.get(form)
            if found and len(found) == 1:
                return next(iter(found))
        return word

    def is_value_word(self, word: str) -> bool:
        """Whether ``word`` is (a form of) a word of the vocabulary's phrases."""
        return self.normal(word) in self.form_of

    def named(self, texts: list[str], content: list[int], used: list[bool]) -> list[Match]:
        """The vocabulary's phrases, longest first, compared word form by word form."""
        found = []
        normal = {i: self.normal(texts[i]) for i in content}
        k = 0
        while k < len(content):
            for n in range(min(MAX_PHRASE, len(content) - k), 0, -1):
                span = content[k : k + n]
                key = tuple(normal[i] for i in span)
                if key in self.phrases and not any(used[i] for i in span):
                    attribute, value = next(iter(self.phrases[key]))
                    found.append(Match(attribute, value, 1.0, "named", tuple(span)))
                    for i in span:
                        used[i] = True
                    k += n
                    break
            else:
                k += 1
        return found

    def negated(self, matches: list[Match], texts: list[str], used: list[bool]) -> list[Match]:
        """"not fast", "not in a hurry": a value just after a negation (with at most two small words between) means the other
        value of a two-valued attribute, else nothing."""
        out = []
        for m in matches:
            before, j = [], m.tokens[0] - 1
            while j >= max(0, m.tokens[0] - 3) and (texts[j] in NEGATIONS or texts[j] in STOP_WORDS):  # "not in a hurry"
                before += [j] if texts[j] in NEGATIONS else []
                j -= 1
            if not before:
                out.append(m)
                continue
            for j in before:
                used[j] = True
            other = self.other_value((m.attribute, m.value))
            if other is not None:
                out.append(Match(m.attribute, other[1], 0.9, "named", tuple(before) + m.tokens))
        return out

    def other_value(self, found: tuple[str, str]) -> tuple[str, str] | None:
        """The other value of a two-valued attribute ("slowly" for "quickly"); None for any other."""
        if found[0] not in self.attribute_names:
            return None
        names = self.vocabulary.attribute(found[0]).names
        return (found[0], names[1] if names[0] == found[1] else names[0]) if len(names) == 2 else None

    @staticmethod
    def from_to(matches: list[Match], texts: list[str]) -> list[Match]:
        """"from left to right", "top to bottom": of two values of one attribute joined by "to", the second."""
        keep = []
        for m in matches:
            later = [o for o in matches if o.attribute == m.attribute and o.value != m.value and o.tokens[0] > m.tokens[-1]]
            if any(set(texts[m.tokens[-1] + 1 : o.tokens[0]]) & _TO and o.tokens[0] - m.tokens[-1] <= 3 for o in later):
                continue
            keep.append(m)
        return keep

    def read(self, text: str) -> tuple[set[tuple[str, str]], bool]:
        """The values a short text (a WordNet lemma) names, and whether it says nothing else (its other words are filler)."""
        words = [t.text for t in tokenize(text)]
        content = [i for i, w in enumerate(words) if w not in STOP_WORDS]
        used = [False] * len(words)
        values = {(m.attribute, m.value) for m in self.named(words, content, used)}
        rest = [words[i] for i in content if not used[i]]
        named = {attribute for attribute, _ in values}  # "round shape", "high speed": the attribute of the value named
        return values, all(w in FILLER_WORDS and (w not in self.attribute_names or {self.normal(w)} == named) for w in rest)

    # ------------------------------------------------------------------------------------------ quantities

    def numbers(self, texts: list[str], used: list[bool], between: set[int] | None = None, fps: float | None = None) -> list[Match]:
        """Quantities with units -> the value of the attribute in that unit whose measure is near (see
        SINGLE_MEASURE_RATIO); a signed x axis ("the minus-x direction") is a bearing. A quantity near no declared
        measure ("3 pixels per frame", "45 degrees", between two directions) is none of them: its words are added to
        ``between``, to be reported. A speed per second is at the frame rate the text states, else at ``fps``."""
        found = []
        stated, fps_words = _frame_rate(texts)
        fps = stated or fps
        i = 0
        while i < len(texts):
            axis = None if used[i] or used[i - 1] else _axis_bearing(texts, i)
            if axis is not None and "deg" in self.units:
                best = _nearest_measure(self.units["deg"], axis, "deg")
                found.append(Match(self.units["deg"].name, best[0], best[1], "number", (i - 1, i)))
                used[i - 1] = used[i] = True
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
            # a radius is half the size across: "radius 10 px", "a radius of 10", "a 6 px radius"
            radius = next((k for k in (i - 1, i - 2) if k >= 0 and texts[k] in _RADIUS and (k == i - 1 or texts[i - 1] == "of")), None)
            if radius is None and unit_at is not None and i + n + 1 < len(texts) and texts[i + n + 1] in _RADIUS:
                radius = i + n + 1
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
            elif after[:1] and after[0] in _SIZE_WORDS | _DEGREES | _CLOCK and unit_at is None:
                span.append(i + n)
            noun = next((k for k in range(i - 1, max(-1, i - 4), -1) if texts[k] not in ("of", "at", "a", "an", "the")), None)
            named = unit_at is None and not per_words and noun is not None and texts[noun] in _BEARING_NOUNS and not used[noun]
            bearing = unit_at is None and ((after[:1] and after[0] in _DEGREES | _CLOCK) or named)
            if named:
                span = list(range(noun, i)) + span
            if radius is not None and not per_words and not bearing and not used[radius]:
                value, sized = value * 2, True
                span = sorted({*span, *range(min(radius, i), i), radius})
            if bearing and after[:1] and after[0] in _CLOCK:
                value = value % 12 * 30  # the hand of a clock face: 12 is up, 3 is right
            if per_second and fps:
                value, per_second = value / fps, False  # "8 px per second" in a clip of 8 fps is 1 px a frame
                span += [k for k in fps_words if not used[k]]
            unit = "deg" if bearing else "px/frame" if per and not per_second else "px" if sized and not per else None
            if unit is None:
                # a count ("two circles") or a speed per second at no stated frame rate: nothing this vocabulary measures
                i += n
                continue
            for j in span:
                if j < len(used):
                    used[j] = True
            attribute = self.units.get(unit)
            best = _nearest_measure(attribute, value, unit) if attribute is not None else None
            if best is not None:
                found.append(Match(attribute.name, best[0], best[1], "number", tuple(span)))
            elif between is not None:
                between |= set(span)
            i = max(span) + 1
        return found


def _axis_bearing(texts: list[str], i: int) -> float | None:
    """The compass bearing of a signed x axis at texts[i] ("the positive x direction" -> 90, "minus-x" -> 270): x grows
    to the right on screen and in maths alike. A y axis grows up in maths and down on screen: no bearing."""
    if texts[i] != "x" or i == 0:
        return None
    sign = texts[i - 1]
    return 90.0 if sign in ("positive", "plus") else 270.0 if sign in ("negative", "minus") else None


def _frame_rate(texts: list[str]) -> tuple[float | None, list[int]]:
    """A frame rate the text states ("8 fps", "8 frames per second"), for speeds given per second, and its words."""
    for i, word in enumerate(texts):
        number = read_number(texts, i)
        if number is None or texts[i] in ("a", "an", "single", "couple"):
            continue
        at = i + number[1]
        after = texts[at : at + 3]
        if after[:1] and after[0] in _FPS:
            return number[0] or None, list(range(i, at + 1))
        if len(after) == 3 and after[0] in _FRAME and after[1] in _PER and after[2] in _SECOND:
            return number[0] or None, list(range(i, at + 3))
    return None, []


def _nearest_measure(attribute, value: float, unit: str) -> tuple[str, float] | None:
    """The value whose measure ``value`` is near, and a confidence; None when it is near none (see SINGLE_MEASURE_RATIO)."""
    measures = {v.name: v.measure for v in attribute.values}
    if unit == "deg":
        off = {name: angle_between(m, value) for name, m in measures.items()}
        best, second = sorted(off, key=off.__getitem__)[:2] if len(off) > 1 else (next(iter(off)), None)
        if second is not None and off[best] >= off[second]:
            return None  # "45 degrees": as near up as right
        return best, round(max(0.5, 1.0 - off[best] / 180), 3)
    linear = any(m <= 0 for m in measures.values())  # a measure of 0 has no ratio to another: compare differences
    if value <= 0 and not linear:
        return None  # "0 px": none of the vocabulary's sizes, all of them above nothing
    scale = (lambda x: x) if linear else math.log
    off = {name: abs(scale(value) - scale(m)) for name, m in measures.items()}
    best = min(off, key=off.__getitem__)
    gaps = [abs(scale(m) - scale(measures[best])) for name, m in measures.items() if name != best and m != measures[best]]
    tolerance = min(gaps) / 2 if gaps else math.log(SINGLE_MEASURE_RATIO) if not linear else math.inf
    if off[best] > tolerance + 1e-9:
        return None
    return best, round(max(0.5, 1.0 - abs(measures[best] - value) / max(abs(measures[best]), 1e-6)), 3)
