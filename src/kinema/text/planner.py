"""The scene planner: a prompt in any wording -> the caption a closed-vocabulary model was trained to understand.

A prompt (kinema.text.reading) is read in passes, each taking the words the ones before left:

0. informal words and fixed phrases (kinema.text.idioms, written by hand: "smol", "full tilt", "at a snail's
   pace", "hold A" on a WASD keyboard, "verde"), as the plain value they stand for; then idioms: two or three
   words WordNet lists whole, holding a vocabulary word beside one that is not ("right away", "set up", "red
   tape"), are read whole: as the value they mean ("speed up" -> fast), or dropped when they mean none; words
   that mean what they say are left to the next passes ("fall down", "round shape");
1. the vocabulary's own words (kinema.text.phrases): value names and description phrases, in any word form
   ("boxes", "rises", "bigger", "bluish"), longest phrase first; "from left to right" keeps the value after
   "to"; "not fast" is slow; two values of one attribute side by side ("top right") name one between them,
   and a comparative said twice ("grows bigger and bigger") a change: both reported;
2. quantities, in digits or words, matched to a declared measure ("two pixels a frame" -> 2 px/frame, "20 px
   wide", "at 270 degrees", "toward three o'clock", "the minus-x direction", "8 px per second" in a clip of
   8 fps); one near no measure ("3 pixels per frame", "45 degrees") is reported, not snapped;
3. spelling mistakes of words no dictionary knows: against the vocabulary's words ("trinagle", difflib), else
   one letter off a word WordNet or the colour names know ("saphire" is read as sapphire); then the
   background: "on a black background" is the model's own and dropped, "on a red background" is not the
   object's colour and is reported;
4. colour names (the CSS names, kinema.text.colors): the value of the colour attribute nearest in CIELAB hue;
   a grey, or a colour nearer one the vocabulary lacks (orange), is reported; one between two values is
   settled by its basic colour category ("pink" is not red, so magenta: kinema.text.senses), or left;
5. the lexicon: an everyday thing goes by its outline (kinema.text.outlines: "a tent", "a slice of pizza" are
   triangles; "an egg" is an oval, which a model of circles, squares and triangles cannot draw); each remaining
   word (kinema.text.senses), or a compound WordNet lists ("king-size"), goes where most of the weight of its
   WordNet senses leads, a value or something the model cannot draw
   ("giraffe" -> animal); as the part of speech its place makes it ("a giant block": an adjective; "the
   large kind": a noun; "a sphere that darts": a verb); a compass word's derivation by its root
   ("westbound", "northerly"); "X-coloured", "X-shaped", "X-sized" for that attribute only; a word that
   speaks of an attribute but names none of its values ("medium-sized") is reported. Then a word in a
   colour's place (before the object's noun, "in X") is read for its colour only: "a lemon pyramid" is
   lemon's colour sense, "cobalt" the compound "cobalt blue", "daffodil-coloured" the daffodil's yellow;
6. meaning (kinema.text.meaning): each remaining word, alone or with a neighbour ("high speed"), against
   every value's phrases by MiniLM cosine. It is placed when close enough to one value, closer to it than to
   the attribute's other values and to any of words.OTHER_THINGS; never a verb the lexicon could not place;
7. what is left: function and filler words ("please", "a video of", "moving") are dropped; every other
   word is reported in ``Scene.unplaced``, with the phrase it heads: a place or likeness ("in a park",
   "like rain", "toward the camera"), what a verb the model cannot draw governs ("spinning in place",
   "changes colour to red halfway through"), the motion of a thing it cannot draw ("a dog running"). A
   word reported may still tip an attribute nothing else names towards the value it is nearest by
   meaning: a lean, reported with its cosine. A motion attribute still unnamed leans to a verb's manner, the
   adverb of its definition ("ambling": "walk leisurely" -> slow), over that verb's own lean by meaning.

When one attribute gets two values, the one said of the object wins (``Planner._places``): in the sentence
part (between . ! ? ; and :) that holds the object's noun phrase, not before it ("Right, I'd like a ...",
"Quick request: ..."), not describing another noun ("a quick clip of", "small favour"); then the surer
evidence. An attribute the prompt does not name gets the vocabulary's default (avoiding a combination the
model never saw), so the caption always asks for a whole object; ``Scene.guessed`` says which.

The thresholds were tuned on every prompt set in benchmarks/prompts/ but the newest held-out one
(benchmarks/prompt_understanding.py prints the accuracy they give).
"""

from __future__ import annotations

import difflib
import json
import math
import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from kinema.text.colors import COLOUR_NAMES, Palette, is_chromatic, nearest_by_hue, nearest_name, rgb_of
from kinema.text.idioms import Idiom, hex_rgb, idioms
from kinema.text.lexicon import wordnet
from kinema.text.meaning import Meaning
from kinema.text.outlines import outlines
from kinema.text.phrases import Match, Phrases
from kinema.text.reading import RELATIVE, Reading, respelt, verb_form
from kinema.text.senses import OTHER, Senses, describes_next
from kinema.text.vocabulary import Vocabulary
from kinema.text.words import (
    BACKGROUND_COLORS,
    BACKGROUND_NOUNS,
    CLAUSE_WORDS,
    COMPASS_POINTS,
    COMPASS_SHARPENERS,
    FILLER_WORDS,
    MEDIUM_WORDS,
    MODIFIERS,
    MOTION_WORDS,
    OBJECT_WORDS,
    OTHER_THINGS,
    PREPOSITIONS,
    STOP_WORDS,
    SYMBOL_WORDS,
    forms,
    read_number,
    tokenize,
)

# Pass 6. A word is placed by meaning when its best cosine to a value's phrases is at least MEANING_MIN
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
# words go, and nearer still to "brown"; kinema.text.meaning).
ANCHOR_MARGIN = 0.0
TYPO_CUTOFF = 0.75  # difflib ratio for a spelling mistake of a vocabulary word ("yelow", "lfet")
COLOUR_TYPO_CUTOFF = 0.85  # ... and of a CSS colour name, two letters off at most in eight ("fuschia")
_COLORED = {"coloured", "colored", "colour", "color", "hued", "tinted", "toned"}  # "straw-coloured": straw's colour, not straw
_SUFFIX_ATTRIBUTE = {"shaped": "shape", "sized": "size", "size": "size"}  # "heart-shaped", "pocket-sized": that attribute only
_COMPASS_SUFFIXES = ("bound", "wards", "ward", "erly", "ern")  # "westbound", "northerly": the compass word's direction
# prepositions of a place, path or likeness ("in a park", "toward the camera", "like rain"); not "with", "of"
_DETERMINERS = {"a", "an", "the", "this", "that", "its", "their", "his", "her", "my", "your", "our"}
_PLACE_WORDS = PREPOSITIONS - {"with", "without", "from", "to"}
_PATH_WORDS = frozenset("toward towards into onto past through behind beyond under over above below beneath inside near around across along at off".split())
# "toward the camera", "towards the viewer's picture": a motion in depth, out of the frame
_BEYOND_THE_FRAME = MEDIUM_WORDS - BACKGROUND_NOUNS - {"frame", "frames"}
# which evidence wins when two values of one attribute are named in the same place
_RANK = {"named": 6, "number": 5, "color": 4, "typo": 3, "lexicon": 2, "meaning": 1, "lean": 0}


@dataclass
class Choice:
    """The value of one attribute and how the planner came to it."""

    value: str
    confidence: float  # 1.0: named in the vocabulary's words or a colour name; the share of the senses for "lexicon"; the cosine for a match by meaning (or a lean); 0.0: guessed
    how: str  # "named", "number", "color", "typo", "lexicon", "meaning", "lean" (a word not placed tipped it), "carried" (from the previous shot) or "guess"
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


class Planner:
    """Plans prompts for one vocabulary; the MiniLM embeddings of its phrases are computed once."""

    def __init__(self, vocabulary: Vocabulary, encoder) -> None:
        self.vocabulary, self.encoder = vocabulary, encoder
        self.phrases = Phrases(vocabulary)
        # 3. single words a misspelling is compared with
        self._typo_targets = {words[0]: next(iter(v)) for words, v in self.phrases.phrases.items() if len(words) == 1 and len(words[0]) >= 3}
        # 4. colour names: the attribute whose values are colours, and the other colours that lie between two of them
        # (orange; not brown, which is a dark red by hue): a name nearer one of these in hue is none of the values
        self.palette = _palette(vocabulary)
        # 5. the lexicon: a word WordNet leads to one of these is something the model cannot draw
        self._other_words = set()
        for thing in OTHER_THINGS:
            words = tuple(self.phrases.normal(t.text) for t in tokenize(thing) if t.text not in STOP_WORDS)
            if len(words) == 1 and words not in self.phrases.phrases:
                self._other_words.add(words[0])
        # the attribute whose value is the object's noun ("a small red circle"): by convention, the one named "shape"
        self._noun = "shape" if "shape" in self.phrases.attribute_names else None
        self.senses = Senses(self.phrases, self.palette, self._other_words, self._noun)
        self._motion = {a.name for a in vocabulary.attributes if a.unit in ("deg", "px/frame")}  # a direction, a speed
        self._quiet = FILLER_WORDS | MODIFIERS | self.phrases.attribute_names
        self.meaning = Meaning(self.phrases, encoder)

    # ------------------------------------------------------------------------------------------ planning

    def plan(self, prompt: str, previous: Scene | None = None, fps: float | None = None) -> Scene:
        """Read ``prompt``; attributes it does not name come from ``previous`` (a shot referring back) or are guessed;
        a speed per second at the prompt's stated frame rate, else at ``fps``."""
        r = Reading.of(spelled_out(prompt))
        self._fixed_phrases(r)  # 0.
        self._idioms(r)
        self._named(r)  # 1.
        r.matches += self.phrases.numbers(r.texts, r.used, r.between, fps)  # 2.
        self._typos(r)  # 3.
        self._background(r)
        self._colour_names(r)  # 4.
        self._outline_names(r)  # 5.
        self._lexicon(r)
        self._colour_places(r)
        unsure = r.left(self._quiet)
        if unsure or any(not r.used[i] for i in r.refused):  # 6. and the leans of 7.
            self._meaning(r, unsure)
        self._places_and_likenesses(r)  # 7.
        self._complements(r)
        self._manner(r)
        choices, losers = self._choose(r)
        unplaced = set(r.left(self._quiet)) | {i for i in r.refused if not r.used[i]} | losers | r.between | r.lacking | r.report
        unplaced = self._phrases_governed(r, unplaced)
        for attribute in self.vocabulary.attributes:
            if attribute.name not in choices and previous is not None and attribute.name in previous.choices:
                carried = previous.choices[attribute.name]
                choices[attribute.name] = Choice(carried.value, carried.confidence, "carried")
        self._guess(choices)
        ordered = {a.name: choices[a.name] for a in self.vocabulary.attributes}
        caption = self.vocabulary.caption({name: c.value for name, c in ordered.items()})
        return Scene(prompt, caption, ordered, r.entries(unplaced), rewritten=caption != prompt)

    def _fixed_phrases(self, r: Reading) -> None:
        """Pass 0, first: informal words and fixed phrases (kinema.text.idioms: "smol", "full tilt", "hold A", "verde"),
        longest first, as the plain value they stand for; a colour the model lacks ("naranja") is refused."""
        table = idioms()
        for n in range(table.longest, 0, -1):
            for i in range(len(r.texts) - n + 1):
                span = tuple(range(i, i + n))
                if any(r.used[k] or k in r.refused for k in span) or any(r.broken(k) for k in span[:-1]):
                    continue
                idiom = table.at(r.texts, i, n)
                if idiom is None or (idiom.attribute == "color" and i + n < len(r.texts) and r.texts[i + n] in BACKGROUND_NOUNS):
                    continue  # "on a verde background" is not the object's colour (see _background)
                found = self._idiom_value(idiom)
                content = [self.phrases.read(w)[0] for w in r.texts[i : i + n] if w not in STOP_WORDS and w not in MEDIUM_WORDS]
                if found and content and all(values and {a for a, _ in values} == {found[0]} for values in content):
                    continue  # the vocabulary's own words for it ("to the top", "left to right"): pass 1 reads them, "from ... to" too
                if found == OTHER:
                    r.refused |= set(span)
                elif found is not None:
                    r.matches.append(Match(*found, 1.0, "lexicon", span))
                    for k in span:
                        r.used[k] = True

    def _idiom_value(self, idiom: Idiom) -> tuple[str, str] | None:
        """The vocabulary's value an idiom's plain value is (OTHER: a colour the palette lacks; None: an attribute the
        vocabulary does not have)."""
        if idiom.attribute == "color":
            rgb = hex_rgb(idiom.value)
            return self.senses.colour_name(nearest_name(rgb) if rgb else idiom.value) if self.palette else None
        values, only = self.phrases.read(idiom.value)
        found = [v for v in values if v[0] == idiom.attribute] or (list(values) if len(values) == 1 else [])
        return found[0] if only and len(found) == 1 else None

    def _idioms(self, r: Reading) -> None:
        """Pass 0: a WordNet compound holding a vocabulary word and a word that is not one (not after a verb of
        motion: "go up" is a direction) is read whole; one that leads to a value its words do not name by themselves is
        that value ("speed up" -> fast), one that leads nowhere is an idiom and dropped ("right away", "set up")."""
        for n in (3, 2):
            for i in range(len(r.texts) - n + 1):
                span = range(i, i + n)
                words = r.texts[i : i + n]
                if any(r.used[k] for k in span) or not all(w.isalpha() for w in words) or words[0] in MOTION_WORDS \
                        or any(r.broken(k) for k in span[:-1]):
                    continue
                value = [self.phrases.is_value_word(w) and w not in self.phrases.attribute_names for w in words]
                if not any(value) or all(v or w in STOP_WORDS or w in MOTION_WORDS for v, w in zip(value, words)):
                    continue
                if value[0] and n == 3 and words[1] in _DETERMINERS:
                    continue  # a path: "up the stairs", "down the hill" say where it goes
                net = wordnet()
                names = [r.joined(i, n)] + [" ".join([base, *words[1:]]) for base in net.lemmas(words[0], "v") if base != words[0]]
                name = next((c for c in names if net.knows(c)), None)
                if name is None:
                    continue
                verdict = self.senses.word(name)
                literal, _ = self.phrases.read(" ".join(words))
                alone = {found[0] for w in words if w not in STOP_WORDS and not self.phrases.is_value_word(w)
                         for found in [self.senses.word(w)] if found is not None}
                if (verdict is not None and verdict[0] in literal) or literal & alone:
                    continue  # "round shape", "fall down": the words mean what they say
                if verdict is not None and verdict[0] == OTHER:
                    r.refused |= set(span)
                elif verdict is not None:
                    r.matches.append(Match(*verdict[0], round(verdict[1], 3), "lexicon", tuple(span)))
                else:
                    r.quiet |= set(span)
                for k in span:
                    r.used[k] = True

    def _named(self, r: Reading) -> None:
        """Pass 1: the vocabulary's phrases; "from left to right"; "not fast"; "top right" and "bigger and bigger" reported."""
        matches = self.phrases.named(r.texts, r.content, r.used)
        matches = self.phrases.negated(self.phrases.from_to(matches, r.texts), r.texts, r.used)
        for m in matches:
            beside = [o for o in matches if o.attribute == m.attribute and o.value != m.value and o.tokens[0] == m.tokens[-1] + 1]
            if beside and not r.broken(m.tokens[-1]):
                r.between |= set(m.tokens) | set(beside[0].tokens)  # "top right corner": a direction between two
        r.matches += [m for m in matches if not set(m.tokens) & r.between]
        for i in range(len(r.texts) - 2):
            if r.texts[i] == r.texts[i + 2] and r.texts[i + 1] == "and" and (r.texts[i].endswith("er") or r.texts[i] == "more"):
                verb = {i - 1} if i > 0 and verb_form(r.texts[i - 1]) else set()
                r.report_phrase(verb | {i, i + 1, i + 2})  # "grows bigger and bigger": a change over the clip, not a size
        for i in range(len(r.texts) - 1):
            if r.texts[i] in COMPASS_SHARPENERS and r.texts[i + 1].startswith(COMPASS_POINTS) and not r.broken(i):
                r.quiet.add(i)  # "due west"

    def _typos(self, r: Reading) -> None:
        """Pass 3: a word no dictionary knows, close in spelling to one of the vocabulary's words, else one letter off a
        word WordNet or the colour names know (read as that word by the passes after)."""
        for i in r.content:
            word = r.texts[i]
            if r.used[i] or len(word) < 3 or not word.isalpha() or word in FILLER_WORDS or word in MODIFIERS \
                    or word in self.phrases.form_of:
                continue
            close = [] if self.meaning.knows(word) else difflib.get_close_matches(word, list(self._typo_targets), n=1, cutoff=TYPO_CUTOFF)
            if not close and not wordnet().knows(word):
                cut = [t for t in self._typo_targets if t.startswith(word) and len(t) > len(word)]
                close = cut if len(cut) == 1 else []  # a clipped word: "tri", "circ", "magen"
            if close:
                attribute, value = self._typo_targets[close[0]]
                ratio = difflib.SequenceMatcher(None, word, close[0]).ratio()
                r.matches.append(Match(attribute, value, round(ratio, 3), "typo", (i,)))
                r.used[i] = True
            elif len(word) >= 5 and not wordnet().knows(word) and rgb_of(word) is None:
                r.texts[i] = respelt(word) or next(iter(difflib.get_close_matches(word, COLOUR_NAMES, n=1, cutoff=COLOUR_TYPO_CUTOFF)), word)

    def _background(self, r: Reading) -> None:
        """"on a black background", "on black": the model's own background, dropped. A background of another colour
        ("on a red background") is not the object's colour: the phrase is reported and its colour word not placed."""
        texts, colour = r.texts, self.palette.attribute if self.palette else None
        for j, word in enumerate(texts):
            if word in BACKGROUND_COLORS and j > 0 and texts[j - 1] in ("on", "against", "over"):
                r.quiet.add(j)  # "on black"
            if word not in BACKGROUND_NOUNS:
                continue
            start = j
            while start > 0 and not r.broken(start - 1) and texts[start - 1] not in PREPOSITIONS and j - start < 4:
                start -= 1
            if start > 0 and texts[start - 1] in PREPOSITIONS and not r.broken(start - 1):
                start -= 1
            phrase = set(range(start, j + 1))
            said = [k for k in phrase if texts[k] not in STOP_WORDS and texts[k] not in PREPOSITIONS and k != j]
            coloured = [k for k in said if rgb_of(texts[k]) or any(k in m.tokens for m in r.matches if m.attribute == colour)]
            if all(texts[k] in BACKGROUND_COLORS | MODIFIERS for k in said):
                r.quiet |= phrase
            elif texts[start] in PREPOSITIONS and coloured:  # not "toward the top of the screen"
                r.report_phrase(phrase)

    def _colour_names(self, r: Reading) -> None:
        """Pass 4: colour names ("firebrick", "sky blue", "bluish") -> the vocabulary's colour nearest in hue; a name
        nearest none of them (orange, grey) is reported as not placed. A name of two or three words replaces the
        vocabulary's word it holds ("sky blue" is cyan) when it is one of the vocabulary's colours."""
        if self.palette is None:
            return
        attribute = self.palette.attribute
        named = {i: m for m in r.matches if m.attribute == attribute and m.how == "named" for i in m.tokens}
        for n in (3, 2, 1):
            for start in range(len(r.texts) - n + 1):
                span = tuple(range(start, start + n))
                if any(r.texts[i] in STOP_WORDS or (r.used[i] and (n == 1 or i not in named)) or i in r.quiet for i in span):
                    continue
                if n == 1 and r.texts[start] in self._other_words:
                    r.refused.add(start)  # "brown": a colour the vocabulary lacks, whatever its hue is near
                    continue
                names = [name for name in _names(r.texts, span) if rgb_of(name)]
                found = self.senses.colour_name(names[0]) if names else None
                if found is not None and found != OTHER:
                    r.matches = [m for m in r.matches if not set(m.tokens) <= set(span)]
                    r.matches.append(Match(*found, 1.0, "color", span))
                    for i in span:
                        r.used[i] = True
                elif found == OTHER and not any(i in named for i in span):
                    r.refused |= set(span)  # a colour the vocabulary lacks; one between two of its colours is left to the lexicon

    def _outline_names(self, r: Reading) -> None:
        """Pass 5, first: an everyday thing named in two or three words ("pizza slice", "slice of pizza") by its outline
        (kinema.text.outlines); one word is read by the lexicon, which looks there first."""
        if self._noun is None:
            return
        table = outlines()
        for n in range(table.longest, 1, -1):
            for i in range(len(r.texts) - n + 1):
                span = tuple(range(i, i + n))
                if any(r.used[k] or k in r.refused or k in r.quiet for k in span) or any(r.broken(k) for k in span[:-1]):
                    continue
                outline = table.phrase(r.texts[i : i + n])
                if outline is None or self._names_object(r, i + n):
                    continue  # before another name of the object, a name says what it is like: "an egg-yolk ball"
                found = self.senses.outline(outline)
                if found == OTHER:
                    r.refused |= set(span)  # "a slice of watermelon" is no shape this model draws; it may lean (pass 6)
                    continue
                r.matches.append(Match(*found, 1.0, "lexicon", span))
                for k in span:
                    r.used[k] = True

    def _names_object(self, r: Reading, i: int) -> bool:
        """Whether word i, right after the word before it, names the object: a value of its noun ("box", "ball")."""
        if i >= len(r.texts) or r.broken(i - 1) or r.texts[i] in STOP_WORDS:
            return False
        if any(i in m.tokens for m in r.matches if m.attribute == self._noun):
            return True
        found = self.senses.word(r.texts[i], pos="n")
        return found is not None and found[0][0] == self._noun

    def _lexicon(self, r: Reading) -> None:
        """Pass 5: a word WordNet knows, by what its senses lead to (kinema.text.senses); a compound WordNet lists
        ("king-size") is read whole; "X-coloured", "X-shaped", "X-sized" for that attribute only; a compass word's
        derivation by its root ("westbound" -> west)."""
        known, found = None, []
        phrases = r.noun_phrases(self._noun, self._motion)
        heads = {head for head, _ in phrases}
        # the word before "shape", "thing" ... is the object's noun: "a tent shape", "a pizza-slice thing"
        modifiers = {i for head, before in phrases for i in before if not (i == head - 1 and r.texts[head] in OBJECT_WORDS)}
        # the noun of a place or path is not the object's ("racing toward the roof": a roof's outline is no shape here)
        places = {head for head, before in phrases if self._after_place(r, before[0] if before else head)}
        for i in reversed(r.left(self._quiet)):  # a noun first: the words before it are its adjectives
            if r.used[i] or r.texts[i] in self._other_words or not r.texts[i].isalpha():
                continue
            known = known or wordnet().knows
            sizes = [n for n in (3, 2) if i + n <= len(r.texts) and not any(r.used[i : i + n]) and known(r.joined(i, n))]
            pos = "v" if i - 1 in heads or r.texts[i - 1] in RELATIVE else "a" if i in modifiers else "n" if i in heads else None
            verdict = None
            for n in [*sizes, 1]:
                word, after = r.joined(i, n), r.texts[i + n] if i + n < len(r.texts) else ""
                verdict, span = self._word(word, after, pos if n == 1 else None), tuple(range(i, i + n))
                if verdict is not None and verdict[0][0] == self._noun and span[-1] in places:
                    verdict = None  # left to the passes that report places and lean
                    break
                if verdict is not None:
                    if after in _COLORED or after in _SUFFIX_ATTRIBUTE:
                        span += (i + n,)
                    break
                if self.senses.attribute_named(word) is not None:
                    r.lacking |= set(span)  # "medium-sized": "intermediate in size", a size the model lacks: no lean
                    for k in span:
                        r.used[k] = True
                    break
            if verdict is None:
                if self.senses.between_measures(r.texts[i]):
                    r.between.add(i)  # "southeast": between two directions, drawn as neither
                    r.used[i] = True
                continue
            (attribute, value), share = verdict
            if (attribute, value) == OTHER:
                r.refused |= set(span)
            else:
                found.append(Match(attribute, value, round(share, 3), "lexicon", span))
                for k in span:
                    r.used[k] = True
        r.matches += self.phrases.negated(found, r.texts, r.used)  # "no rush": the other speed, as "not fast" is
        for i, word in enumerate(r.texts):  # "at speed": an attribute's name alone, as a manner, is what WordNet says it is
            if word in self.phrases.attribute_names and not r.used[i] and i > 0 and r.texts[i - 1] in ("at", "with") \
                    and (r.broken(i) or r.texts[i + 1] in STOP_WORDS - {"of"}):
                found = self.senses.word(word, word, pos="n")
                if found is not None:
                    r.matches.append(Match(*found[0], round(found[1], 3), "lexicon", (i,)))
                    r.used[i] = True

    @staticmethod
    def _after_place(r: Reading, start: int) -> bool:
        """Whether the noun phrase starting at word ``start`` follows a preposition of a path or place apart from the object
        ("toward the", "into a"; not "like": "a shape like a tent" is a likeness of it; nor "on", "in": "fade in on a ...")."""
        k = start - 1
        while k >= 0 and r.texts[k] in _DETERMINERS and not r.broken(k):
            k -= 1
        return k >= 0 and r.texts[k] in _PATH_WORDS and not r.broken(k)

    def _word(self, word: str, after: str, pos: str | None = None) -> tuple[tuple[str, str], float] | None:
        """What one word (or compound) of a prompt leads to, given the word after it ("-coloured", "-shaped"), and the
        part of speech its place makes it (``pos``: "a" before a noun, "n" a noun phrase's last word, "v" just after
        one or after "that") by those senses when they lead anywhere ("a giant block": not the giant of tales; "the
        large kind": not kind-hearted; "a sphere that darts": not the darts of a game)."""
        if after in _COLORED:
            colour = self.senses.colour(word)
            return ((self.palette.attribute, colour), 1.0) if colour and self.palette else None
        if after in _SUFFIX_ATTRIBUTE and _SUFFIX_ATTRIBUTE[after] in self.phrases.attribute_names:
            found = self.senses.word(word)  # "heart-shaped": a heart's shape, and the model draws no heart
            return found if found and found[0][0] in (OTHER[0], _SUFFIX_ATTRIBUTE[after]) else None
        bearing = next((a.name for a in self.vocabulary.attributes if a.unit == "deg"), None)
        for suffix in _COMPASS_SUFFIXES:
            root = word[: -len(suffix)]
            if bearing and word.endswith(suffix) and len(root) >= 3:
                found = self.senses.word(root, bearing)
                if found is not None:
                    return found
        if pos == "a":  # a word before a noun is no verb: "a rose square" is not the past of rise
            return self.senses.word(word, pos="a") or self.senses.word(word, pos="an")
        return (pos and self.senses.word(word, pos=pos)) or self.senses.word(word)

    def _colour_places(self, r: Reading) -> None:
        """Pass 5, last: a word in a colour's place (before the object's noun, or after "in") that no pass placed, or that
        the lexicon placed by a sense other than its colour, is read for its colour only ("a lemon pyramid": lemon's
        colour sense, though its commonest is the fruit; "cobalt": the compound "cobalt blue")."""
        if self.palette is None or any(m.attribute == self.palette.attribute and m.how in ("named", "color") for m in r.matches):
            return
        head = r.object(self._noun, self._motion)
        places = sorted((i for h, before in r.noun_phrases(self._noun, self._motion) for i in before
                         if h == head or (head is None and not r.used[h] and r.texts[h] not in FILLER_WORDS)), reverse=True)
        places += [i for i in range(1, len(r.texts)) if r.texts[i - 1] == "in" and (r.broken(i) or i + 1 == len(r.texts))]
        for i in places:
            word = r.texts[i]
            if not word.isalpha() or word in self._quiet or word in self._other_words or rgb_of(word) \
                    or any(m.how != "lexicon" or m.attribute != self.palette.attribute for m in r.matches if i in m.tokens):
                continue  # a colour name was read in pass 4; a word placed otherwise keeps its place
            colour = self.senses.colour(r.texts[i])
            if colour is not None:
                r.drop({i})
                r.matches.append(Match(self.palette.attribute, colour, 1.0, "lexicon", (i,)))
                r.used[i] = True
                r.refused.discard(i)

    def _places_and_likenesses(self, r: Reading) -> None:
        """Pass 7, first: a phrase about a place, path or likeness whose noun no pass placed ("in a park", "like rain",
        "over the clouds", "toward the camera") is reported whole, and what it holds is not the object's ("across a
        green field": the field is green)."""
        head = r.object(self._noun, self._motion)
        for j in range(len(r.texts)):
            word = r.texts[j]
            unplaced = r.weak(j) and j not in r.quiet and word not in self._quiet and word.isalpha() and word not in STOP_WORDS \
                and bool(wordnet().lemmas(word, "n"))
            viewer = word in _BEYOND_THE_FRAME and j > 0
            if not (unplaced or viewer):
                continue
            start = j
            while start > 0 and not r.broken(start - 1) and r.texts[start - 1] not in PREPOSITIONS and j - start < 4 \
                    and (r.texts[start - 1] in STOP_WORDS or r.texts[start - 1] in MODIFIERS or not r.used[start - 1]
                         or any(start - 1 in m.tokens and m.attribute != self._noun for m in r.matches)):
                start -= 1
            if start == 0 or r.texts[start - 1] not in _PLACE_WORDS or r.broken(start - 1):
                continue
            if viewer and r.texts[start - 1] not in ("toward", "towards"):
                continue
            phrase = set(range(start - 1, j + 1))
            subject = any(k in r.refused for k in range(start - 1))
            if (head in phrase or (head is None and not subject)) and any(set(m.tokens) & phrase for m in r.matches if m.how != "lean"):
                continue  # with no object found (nor a thing before), a noun with the object's words may be the object itself
            r.report_phrase(phrase)

    def _complements(self, r: Reading) -> None:
        """Pass 7: a verb no pass placed ("spinning", "changes") is something the model cannot draw, and so is what
        follows it up to the clause's end or a word of a value ("spinning in place", "bouncing off each other",
        "changes colour to | red"): reported as one phrase; a match by meaning in it is dropped."""
        for i in range(len(r.texts)):
            if r.texts[i] in STOP_WORDS or r.texts[i] in self._quiet or i in r.quiet | r.report or not r.weak(i) or not verb_form(r.texts[i]):
                continue
            k, last = i + 1, i
            while k < len(r.texts) and not r.broken(k - 1) and r.texts[k] not in CLAUSE_WORDS and k not in r.quiet and r.weak(k):
                if r.texts[k] not in STOP_WORDS:
                    last = k
                k += 1
            r.report_phrase(set(range(i, last + 1)))

    def _phrases_governed(self, r: Reading, unplaced: set[int]) -> set[int]:
        """Pass 7, last: a preposition left at a clause's end goes with the word before ("halfway through"); a count
        takes its article ("a dozen"); a verb of motion after a thing the model cannot draw is that thing's ("a dog
        running"), when no object of the model's is named."""
        out = set(unplaced)
        for i in sorted(out):
            k = i + 1
            while k < len(r.texts) and r.texts[k] in PREPOSITIONS and not r.broken(k - 1):
                k += 1
            if k > i + 1 and r.broken(k - 1) and not r.used[k - 1]:
                r.units.append(set(range(i, k)))
                out |= set(range(i, k))
            if i > 0 and r.texts[i - 1] in ("a", "an") and read_number(r.texts, i) is not None and r.texts[i].isalpha():
                r.units.append({i - 1, i})
                out.add(i - 1)
        things = [i for i in out if i in r.refused and wordnet().lemmas(r.texts[i], "n")]
        if things and r.object(self._noun, self._motion) is None:
            out |= {k for k in range(min(things), len(r.texts)) if r.texts[k] in MOTION_WORDS and r.part(k) == r.part(min(things))}
        return out

    def _manner(self, r: Reading) -> None:
        """A motion attribute nothing in the prompt names (the speed) leans to what a verb's definition says of its
        manner ("a crate ambling west": amble is "walk leisurely", slow; "rocketing upward": "shoot up abruptly", fast),
        the verb placed for another attribute or not placed at all (kinema.text.senses: ``Senses.manner``). The
        definition outweighs the verb's own lean by MiniLM, not another word's ("ascending at a snail's pace")."""
        missing = self._motion - {m.attribute for m in r.matches if m.how != "lean"}
        for i, word in enumerate(r.texts):
            if not missing:
                return
            if not word.isalpha() or word in MOTION_WORDS or i in r.quiet or not word.endswith(("ing", "s")) \
                    or not verb_form(word) or (i > 0 and r.texts[i - 1] in _DETERMINERS):
                continue  # a verb in a verb's place: "ambling", "rockets"; not "a relaxed way", "the rising sun"
            found = next((f for lemma in wordnet().lemmas(word, "v") for f in [self.senses.manner(lemma, missing)] if f), None)
            if found is None:
                continue
            (attribute, value), share = found
            leans = [m for m in r.matches if m.attribute == attribute]
            if all(m.tokens == (i,) for m in leans):
                r.matches = [m for m in r.matches if m not in leans] + [Match(attribute, value, round(share, 3), "lean", (i,))]
            missing.discard(attribute)

    def _choose(self, r: Reading) -> tuple[dict[str, Choice], set[int]]:
        """One value per attribute: the value said of the object wins (see the module's docstring), then the strongest
        evidence (named > number > colour > typo > lexicon > meaning), then confidence, then the first named; the
        words of a losing value are reported as not placed."""
        choices, losers = {}, set()
        place = self._places(r)
        by_attribute: dict[str, list[Match]] = {}
        for m in r.matches:
            by_attribute.setdefault(m.attribute, []).append(m)
        for attribute, found in by_attribute.items():
            best = max(found, key=lambda m: (place(m), _RANK[m.how], m.confidence, -m.tokens[0]))
            agree = [m for m in found if m.value == best.value]
            words = " ".join(dict.fromkeys(w for m in agree for w in r.words(m.tokens)))
            choices[attribute] = Choice(best.value, best.confidence, best.how, words)
            losers |= {i for m in found if m.value != best.value for i in m.tokens}
            r.units += [set(m.tokens) for m in found if m.value != best.value and len(m.tokens) > 1]  # "2 px/frame": one entry
        return choices, losers

    def _places(self, r: Reading):
        """How surely a match is said of the object: 2 in the object's sentence part, 1 there but before the object's
        noun phrase ("Right, I'd like a ...") or describing another noun ("a quick clip of", "small favour"), 0
        elsewhere. A lean is 0."""
        head = r.object(self._noun, self._motion)
        if head is None:
            return lambda m: 0 if m.how == "lean" else 2
        part = r.part(head)
        start = min([head, *next((before for h, before in r.noun_phrases(self._noun, self._motion) if h == head), [])])
        taken = [any(i in m.tokens for m in r.matches) for i in range(len(r.texts))]

        def place(m: Match) -> int:
            if m.how == "lean" or r.part(m.tokens[0]) != part:
                return 0
            after = m.tokens[-1] + 1
            if m.attribute == self._noun and head not in m.tokens:
                return 1  # another noun than the object's ("Circle back to me with a small green triangle")
            if m.tokens[-1] < start:
                return 1  # before the object's noun phrase: "Right, I'd like a ...", "Quick request: ..."
            other_noun = after != head and after < len(r.texts) and not r.broken(m.tokens[-1]) and r.texts[after] not in OBJECT_WORDS \
                and (r.texts[after] in MEDIUM_WORDS or describes_next(r.texts, after, taken))
            return 1 if other_noun else 2

        return place

    def _guess(self, choices: dict[str, Choice]) -> None:
        """Fill the attributes not named: the default, or the first value that makes no unseen combination."""
        for attribute in self.vocabulary.attributes:
            if attribute.name in choices:
                continue
            order = [attribute.default] + [n for n in attribute.names if n != attribute.default]
            values = {name: c.value for name, c in choices.items()}
            pick = next((n for n in order if not self.vocabulary.is_unseen({**values, attribute.name: n})), attribute.default)
            choices[attribute.name] = Choice(pick, 0.0, "guess")

    def _meaning(self, r: Reading, left: list[int]) -> None:
        """Pass 6 (and the leans of pass 7): the words left, alone or with a neighbour, by MiniLM meaning; a word
        refused (a colour or a thing the model lacks, by passes 4 and 5) is never placed, but may lean."""
        texts, used = r.texts, r.used
        named = {m.attribute for m in r.matches if m.how == "named"}
        spans: list[tuple[int, ...]] = []
        for i in left + sorted(r.refused):
            spans.append((i,))
            for j in (i - 1, i + 1):
                if i in left and 0 <= j < len(texts) and not used[j] and texts[j] not in STOP_WORDS and j not in r.quiet \
                        and not r.broken(min(i, j)):
                    spans.append(tuple(sorted((i, j))))
        spans = list(dict.fromkeys(s for s in spans if not any(used[i] for i in s)))
        if not spans:
            return
        # a thing the model cannot draw leans by its outline, when it has one: an egg (an oval) towards a circle
        said = [" ".join(self._outline_of(texts[i]) if i in r.refused else texts[i] for i in span) for span in spans]
        scored = self.meaning.compare(said)
        candidates, leans = [], []
        for span, (attribute, value, score, margin, near) in zip(spans, scored):
            if len(span) == 1 and margin > 0:
                leans.append((score, span, attribute, value))
            need = MEANING_AGAIN if attribute in named else MEANING_MIN
            need_margin = FILLER_PAIR_MARGIN if any(texts[i] in FILLER_WORDS for i in span) else MEANING_MARGIN
            verbs = any(verb_form(texts[i]) for i in span)  # an action the lexicon could not place is not drawn
            if score >= need and margin >= need_margin and score - near >= ANCHOR_MARGIN and not r.refused & set(span) and not verbs:
                candidates.append((score, span, attribute, value))
        found = []
        for score, span, attribute, value in sorted(candidates, key=lambda c: -c[0]):
            if not any(used[i] for i in span):
                found.append(Match(attribute, value, round(score, 3), "meaning", span))
                for i in span:
                    used[i] = True
        leaned = {m.attribute for m in found + r.matches}
        for score, span, attribute, value in sorted(leans, key=lambda c: -c[0]):
            if not used[span[0]] and attribute not in leaned:  # the word stays unplaced
                found.append(Match(attribute, value, round(score, 3), "lean", span))
                leaned.add(attribute)
        r.matches += found


    def _outline_of(self, word: str) -> str:
        """The outline of a thing (outlines.tsv) the object's noun may be, else the word itself."""
        return (self._noun and outlines().word(word)) or word


def _palette(vocabulary: Vocabulary) -> Palette | None:
    """The attribute whose values are colours, each value's RGB (as declared, else its name's: "red"), and the other
    colours of words.OTHER_THINGS that lie between two of them (orange; not brown, a dark red by hue)."""
    for attribute in vocabulary.attributes:
        rgb = {v.name: v.rgb or rgb_of(v.name) for v in attribute.values}
        if all(rgb.values()):
            named = {word: rgb_of(word) for word in OTHER_THINGS}
            others = {w: c for w, c in named.items() if c and is_chromatic(c) and nearest_by_hue(c, rgb) is None}
            return Palette(attribute.name, rgb, others)
    return None


def _names(texts: list[str], span: tuple[int, ...]) -> list[str]:
    """The colour names a span may spell: as written, then its last word without -ish ("sky blueish", "reddish")."""
    head = " ".join(texts[i] for i in span[:-1])
    return [f"{head} {form}".strip() for form in forms(texts[span[-1]])]


# ---------------------------------------------------------------------------------------------- module API

_ENCODER = None
_PLANNERS: dict[tuple[int, str], Planner] = {}
_LOCK = threading.Lock()


_HEX = re.compile(r"#([0-9a-fA-F]{6}|(?=[0-9]*[a-fA-F])[0-9a-fA-F]{3})\b")  # "#f0f", not "#123" (a number)
_SQUARE_SIZE = re.compile(r"\b(\d+)\s*[x×]\s*\1\b")  # "12x12": 12 px
_RGB = re.compile(r"\brgb\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)", re.IGNORECASE)


def spelled_out(prompt: str) -> str:
    """The prompt with arrows and shape symbols as words ("↓" -> " down "), colour codes ("#FF00FF", "rgb(0, 0, 255)")
    as the nearest CSS colour's name, which the colour pass then reads by hue, and "12x12" as "12 px"."""
    def code(match: re.Match) -> str:
        if match.re is _RGB:
            rgb = tuple(min(255, int(v)) for v in match.groups())
        else:
            digits = match.group(1) if len(match.group(1)) == 6 else "".join(c * 2 for c in match.group(1))
            rgb = tuple(int(digits[k : k + 2], 16) for k in (0, 2, 4))
        return nearest_name(rgb)

    text = _SQUARE_SIZE.sub(r"\1 px", _RGB.sub(code, _HEX.sub(code, prompt)))
    return "".join(f" {SYMBOL_WORDS[c]} " if c in SYMBOL_WORDS else c for c in text)


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


def plan(prompt: str, vocabulary: Vocabulary | Mapping[str, Any] | None, *, encoder=None, previous: Scene | None = None,
         fps: float | None = None) -> Scene:
    """Map a prompt onto a model's vocabulary: the Scene holding the caption to give the model.

    ``vocabulary``: the model's (``ModelFolder.vocabulary``, a Vocabulary or its JSON); None (a model that
    declares none) or a blank prompt gives the prompt back unchanged. ``encoder``: a loaded MiniLMEncoder
    to share (default: one loaded on first use). ``previous``: the scene a prompt refers back to (a shot's
    "it"): attributes the prompt does not name are carried from it instead of guessed. ``fps``: the frame rate the
    clip will play at, for a speed given per second ("16 px/s"); a rate the prompt states ("at 8 fps") comes first,
    and without either such a speed is reported, not placed.
    """
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be text, got {type(prompt).__name__}")
    if vocabulary is None or not prompt.strip():
        return Scene(prompt, prompt)
    if not isinstance(vocabulary, Vocabulary):
        vocabulary = Vocabulary.from_json(vocabulary)
    if fps is not None and not (isinstance(fps, (int, float)) and not isinstance(fps, bool) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    return planner_for(vocabulary, encoder).plan(prompt, previous, fps)
