"""What a word's WordNet senses lead to in one closed vocabulary: a value, something the model cannot draw, or nothing.

Each sense of a word leads to a value by its surest clue (``Senses.sense``): a synonym, similar adjective or
hypernym that is one of the vocabulary's phrases ("scurry": its adjective is similar to "hurried", and hurried
to "fast"), a hypernym that is one of words.OTHER_THINGS ("giraffe" -> ... -> animal: not drawable), an
antonym whose clue is the other value of a two-valued attribute, or the value or measure its definition names
("scud": "run or move very quickly"; a compass point is "at 180 degrees"), the definition's first words read
one level further ("hurtle": "move with a rushing sound", and rush is "move fast"). A colour sense (one whose
hypernyms reach "chromatic color") leads to the palette colour its name, definition or hypernyms give
(``Senses.sense_colour``). Senses weigh by how often WordNet's corpus used the word in that sense, and the
word goes where most of that weight leads (``Senses.word``).

A word in a colour's place ("a lemon pyramid", "cobalt-coloured") is read for its colour only
(``Senses.colour``): its colour senses, a compound that names one ("cobalt blue"), or the colour its
definition gives the thing ("daffodil": "...having showy often yellow flowers").
"""

from __future__ import annotations

from typing import Iterator

from kinema.text.colors import Palette, rgb_of
from kinema.text.lexicon import Synset, wordnet
from kinema.text.outlines import outlines
from kinema.text.phrases import Match, Phrases
from kinema.text.words import FILLER_WORDS, MODIFIERS, MOTION_WORDS, NEGATIONS, STOP_WORDS, forms, tokenize

# A word is placed from the lexicon when the senses that lead to one value hold at least LEXICON_SHARE of the weight
# of the senses that lead anywhere, and at least LEXICON_COVER of the weight of all its senses (a sense weighs its tag
# count + 1/(1 + its rank)). Measured on the dev sets: "driving" leads to fast only by its golf sense (1.6% of its
# weight) and stays unplaced; compass points lead to a direction by 3-5% of theirs.
LEXICON_SHARE = 0.5
LEXICON_COVER = 0.02
HYPERNYM_DEPTH = 2  # levels of WordNet hypernyms read for a value ("flit" -> "travel rapidly")
KIND_DEPTH = 12  # levels read for one of words.OTHER_THINGS ("giraffe" -> ruminant -> ... -> animal, 9 levels up)
# The first words of a definition read one level further: a verb's genus and manner ("walk leisurely"), an adjective's
# or adverb's genus ("not hurried", "in an unhurried way"); a noun's none (they say what the thing is like).
LOOK_UP_WORDS = {"v": 2, "a": 1, "r": 1, "n": 0}
COLOUR_DEPTH = 8  # levels read for "chromatic color" (crimson -> red -> chromatic color)
OTHER = ("", "")  # what a sense leading to one of words.OTHER_THINGS leads to
_CHROMATIC = "chromatic color"  # the WordNet noun above every hue; its direct kinds are the basic colour categories
_CHROMATIC_ADJECTIVE = "chromatic"  # the head adjective of the colour adjectives ("pink": of a light shade of red)
_DERIVED_SUFFIXES = ("y", "ey", "ish", "en")  # "lemony", "golden": an adjective of the thing whose colour it is

Evidence = tuple[str, str]  # (attribute, value), or OTHER


class Senses:
    """Reads words by their WordNet senses against one vocabulary; every answer is cached."""

    def __init__(self, phrases: Phrases, palette: Palette | None, other_words: set[str], noun: str | None = None) -> None:
        self.phrases, self.palette, self.other_words = phrases, palette, other_words
        self.noun = noun  # the attribute whose values are the object's noun ("shape"): a verb never names one
        self._senses: dict[tuple, Evidence | None] = {}  # (pos, offset, attribute) -> what the sense leads to
        self._words: dict[tuple, tuple[Evidence, float] | None] = {}
        self._between: dict[str, bool] = {}  # a word -> whether its commonest sense states a measure between two values
        self._looked_up: dict[tuple, Evidence | None] = {}  # a definition's word -> what its commonest sense leads to
        self._colours: dict[str, str | None] = {}  # a word in a colour's place -> its palette colour
        self._categories: dict[str, str | None] = {}  # a colour name -> its basic colour category
        self._palette_categories: dict[str, str] | None = None
        self._other_stems: set[tuple[str, str]] | None = None  # the WordNet lemmas of words.OTHER_THINGS and the nouns derived from them

    # ------------------------------------------------------------------------------------------ a word

    def word(self, word: str, attribute: str | None = None, pos: str | None = None) -> tuple[Evidence, float] | None:
        """The value (or OTHER) the senses of ``word`` lead to (of ``attribute`` only, and of the parts of speech in
        ``pos`` only, "an": nouns and adjectives, when given), and the share of their weight that leads there; None when
        they lead nowhere clearly (see LEXICON_SHARE)."""
        key = (word, attribute, pos)
        if key not in self._words and self.noun and attribute in (None, self.noun) and pos in (None, "n"):
            # a thing by its outline: "a tent" is a triangle, and so is a kind of one ("pup tent"); not as an adjective ("a
            # pizza box" is a box)
            outline = outlines().word(word)
            sense = wordnet().commonest(word, "n") if outline is None else None
            outline = outline or (outlines().sense(sense) if sense is not None else None)
            if outline is not None:
                self._words[key] = (self.outline(outline), 1.0)
        if key not in self._words:
            votes: dict[Evidence, float] = {}
            total = 0.0
            for synset, weight in _weighted([s for p in pos or "nvar" for s in wordnet().synsets(word, p)]):
                total += weight
                found = self.sense(synset, attribute)
                if found is not None:
                    votes[found] = votes.get(found, 0.0) + weight
            self._words[key] = _winner(votes, total)
        return self._words[key]

    def manner(self, word: str, attributes: set[str]) -> tuple[Evidence, float] | None:
        """The value of one of ``attributes`` a verb's manner gives: the adverbs its definitions add to the
        genus ("amble": "walk leisurely" -> slow; "rocket": "shoot up abruptly" -> fast), by their own senses; the senses
        of the verb vote by weight as in ``word`` (see LEXICON_SHARE). None for a verb whose definitions say no manner."""
        key = (word, "manner", tuple(sorted(attributes)))
        if key not in self._words:
            net = wordnet()
            votes: dict[Evidence, float] = {}
            total = 0.0
            for synset, weight in _weighted(net.synsets(word, "v")):
                total += weight
                words = [t.text for t in tokenize(synset.gloss.split(";")[0].split('"')[0])]  # not the examples
                content = [i for i, w in enumerate(words) if w not in STOP_WORDS and w.isalpha()]
                for i in content[1:]:  # the first is the genus ("walk", "drop")
                    if any(w in NEGATIONS for w in words[max(0, i - 2) : i]) or not net.lemmas(words[i], "r"):
                        continue
                    found = self.word(words[i], pos="r") or self.word(words[i])  # "leisurely": by its adjective too
                    if found is not None and found[0][0] in attributes:
                        votes[found[0]] = votes.get(found[0], 0.0) + weight
                        break
            self._words[key] = _winner(votes, total)
        return self._words[key]

    def outline(self, name: str) -> Evidence:
        """The value of the object's noun an outline is (outlines.OUTLINE_NAMES), or OTHER when the vocabulary has none
        for it: an egg is an oval, which a model of circles, squares and triangles cannot draw."""
        values, only = self.phrases.read(name)
        found = [v for v in values if v[0] == self.noun]
        return found[0] if len(found) == 1 and only else OTHER

    def between_measures(self, word: str) -> bool:
        """Whether the commonest sense of a noun or adverb states a measure near none of the vocabulary's ("southeast":
        "the compass point midway between south and east; at 135 degrees", as near down as right)."""
        if word not in self._between:
            senses = filter(None, (wordnet().commonest(word, pos) for pos in ("n", "r")))
            self._between[word] = any(self._states_between(sense.gloss) for sense in senses)
        return self._between[word]

    def _states_between(self, gloss: str) -> bool:
        words = [t.text for t in tokenize(gloss)]
        between: set[int] = set()
        self.phrases.numbers(words, [False] * len(words), between)
        return bool(between)

    def colour(self, word: str) -> str | None:
        """The palette colour of a word in a colour's place ("a lemon pyramid", "daffodil-coloured"): its colour
        senses, else a compound naming a colour ("cobalt blue"), else the colour its definition gives the thing,
        else the same for the word it is derived from ("lemony" -> lemon)."""
        if self.palette is None:
            return None
        if word not in self._colours:
            found = self._colour_of_word(word)
            for suffix in _DERIVED_SUFFIXES:
                if found is None and word.endswith(suffix) and len(word) - len(suffix) >= 3:
                    found = self._colour_of_word(word[: -len(suffix)])
            self._colours[word] = found
        return self._colours[word]

    def _colour_of_word(self, word: str) -> str | None:
        net = wordnet()
        senses = _weighted(net.synsets(word, "n") + net.synsets(word, "a"))
        readings = [
            [(self.sense_colour(s), w) for s, w in senses if self.is_colour(s)],
            [(self.sense_colour(s), w) for name in net.compounds(word, "n") + net.compounds(word, "a")
             for s, w in _weighted(net.synsets(name)) if self.is_colour(s)],
            [(self._gloss_colour(s.gloss), w) for s, w in senses if s.pos == "n"],
        ]
        for reading in readings:
            votes: dict[Evidence, float] = {}
            for found, weight in reading:
                if found is not None and (found != OTHER or reading is readings[0]):
                    votes[found] = votes.get(found, 0.0) + weight
            if votes:  # its colour senses may name a colour the palette lacks ("tangerine": "reddish orange")
                best = max(votes, key=votes.__getitem__)
                return None if best == OTHER else best[1]
        return None

    def attribute_named(self, word: str) -> str | None:
        """The attribute a word speaks of without naming a value of it: its commonest senses' definitions (or their
        similar adjectives) name the attribute ("medium-sized": "intermediate in size"), not a thing's ("straw-colored":
        "having the color of dry straw", the colour of straw). None when they do not."""
        net = wordnet()
        for synset in net.synsets(word)[:2]:
            words = [t.text for t in tokenize(synset.gloss)]
            content = [i for i, w in enumerate(words) if w not in STOP_WORDS]
            if self._named_in(words, content, [False] * len(words)) or (self.palette and self._gloss_colour(synset.gloss)):
                continue  # "straw-colored": "of a pale yellow color like straw" names its value
            named = [(k, f) for k, w in enumerate(words) for f in forms(w) if f in self.phrases.attribute_names]
            if any(words[k + 1 : k + 2] == ["of"] for k, _ in named):
                continue  # "the color of dry straw": straw's, a value
            similar = [lemma for p, o in synset.related("&") for lemma in net.synset(p, o).lemmas]
            found = named + [(0, f) for w in similar for f in forms(w) if f in self.phrases.attribute_names]
            if found:
                return found[0][1]
        return None

    # ------------------------------------------------------------------------------------------ colours

    def is_colour(self, synset: Synset) -> bool:
        """Whether a sense is a colour: a noun below "chromatic color", or an adjective similar to "chromatic"."""
        net = wordnet()
        if synset.pos == "n":
            return any(_CHROMATIC in s.lemmas for s in net.hypernyms(synset, COLOUR_DEPTH))
        return synset.pos == "a" and any(_CHROMATIC_ADJECTIVE in net.synset(p, o).lemmas for p, o in synset.related("&"))

    def sense_colour(self, synset: Synset, depth: int = 1) -> Evidence | None:
        """The palette colour of a colour sense: the first of its names a palette colour is known for (a CSS name, by
        hue, or a palette colour's phrase), else the first colour its definition names (CSS "lavender" is near white,
        WordNet's is "pale purple"), else its hypernyms' names (an adjective: the noun it is derived from)."""
        names = [self.colour_name(lemma) for lemma in synset.lemmas]
        found = next((c for c in names if c is not None and c != OTHER), None) or self._gloss_colour(synset.gloss)
        if found is not None:
            return found
        if OTHER in names:
            return OTHER  # a name the palette lacks, and a definition that names no palette colour either
        net = wordnet()
        if synset.pos == "a" and depth > 0:
            nouns = [net.synset(p, o) for p, o in synset.related("+", "=") if p == "n"]
            return next(filter(None, (self.sense_colour(n, depth - 1) for n in nouns if self.is_colour(n))), None)
        for above in net.hypernyms(synset, COLOUR_DEPTH):
            if _CHROMATIC in above.lemmas:
                break
            found = next(filter(None, map(self.colour_name, above.lemmas)), None)
            if found is not None:
                return found
        return None

    def colour_name(self, name: str) -> Evidence | None:
        """A colour name's palette colour: one of the palette colours' phrases ("purplish red"), a CSS name by hue
        (OTHER for one the palette lacks, such as orange or grey; None for one between two palette colours that its
        category does not settle), else a palette colour's own name, as the last word of a compound ("lemon yellow")."""
        if self.palette is None:
            return None
        words = [t.text for t in tokenize(name)]
        core = " ".join(w for w in words if w not in MODIFIERS)  # "dark purplish red": a shade of purplish red
        for candidate in dict.fromkeys([name, core] if core else [name]):
            values, only = self.phrases.read(candidate)
            if only and len(values) == 1 and next(iter(values))[0] == self.palette.attribute:
                return next(iter(values))  # a palette colour's own phrase: "purplish red" is magenta
            rgb = rgb_of(candidate)
            if rgb is not None:
                if self.palette.lacks(rgb):
                    return OTHER
                found = self.palette.nearest(rgb) or self.palette.nearest(rgb, self._other_categories(candidate))
                return (self.palette.attribute, found) if found else None
        if words and words[-1] in self.palette.colors:
            return self.palette.attribute, words[-1]
        return OTHER if words and words[-1] in self.other_words and rgb_of(words[-1]) else None  # "reddish orange"

    def category(self, name: str) -> str | None:
        """The basic colour category of a colour name: the kind of chromatic colour WordNet files it under ("crimson"
        -> red, "pink" -> pink, "teal" -> green)."""
        if name not in self._categories:
            net = wordnet()
            found = None
            for synset in net.synsets(name, "n"):
                chain = [synset, *net.hypernyms(synset, COLOUR_DEPTH)]
                at = next((i for i, s in enumerate(chain) if _CHROMATIC in s.lemmas), None)
                if at:
                    found = chain[at - 1].lemmas[0].lower()
                    break
            self._categories[name] = found
        return self._categories[name]

    def _other_categories(self, name: str) -> frozenset[str]:
        """The palette colours whose names are basic colour categories other than ``name``'s (for pink: red, green, ...)."""
        if self._palette_categories is None:
            self._palette_categories = {v: v for v in self.palette.colors if self.category(v) == v}
        own = self.category(" ".join(t.text for t in tokenize(name)))
        if own is None:
            return frozenset()
        return frozenset(v for v, category in self._palette_categories.items() if category != own)

    def _gloss_colour(self, gloss: str) -> Evidence | None:
        """The first colour a definition names (of the thing defined, or of a part of it: "often yellow flowers")."""
        words = [t.text for t in tokenize(gloss)]
        for i in range(len(words)):
            for n in (3, 2, 1):
                if i + n > len(words) or any(w in STOP_WORDS for w in words[i : i + n]):
                    continue
                found = self.colour_name(" ".join(words[i : i + n]))
                if found is not None:
                    return found  # OTHER too: "a reddish orange color" is orange, not red
        return None

    # ------------------------------------------------------------------------------------------ one sense

    def sense(self, synset: Synset, attribute: str | None = None) -> Evidence | None:
        """What one sense leads to: the first of its clues that names a value (of ``attribute`` only, when given) or another thing."""
        key = (synset.pos, synset.offset, attribute)
        if key not in self._senses:
            clues = (c for c in self._clues(synset) if c is not None and (attribute is None or c[0] == attribute)
                     and not (synset.pos in ("v", "r") and c[0] == self.noun))  # a verb or adverb is no shape: "turn in a
            # circular manner"; "flat out" is "in a blunt direct manner" before "at top speed"
            self._senses[key] = next(clues, None)
        return self._senses[key]

    def _clues(self, synset: Synset) -> Iterator[Evidence | None]:
        """A sense's clues, surest first: its colour (a colour sense); its synonyms' (see _synonym_clues); one of
        words.OTHER_THINGS among all its hypernyms; the other value of what an antonym's synonyms lead to (the opposite
        of an adjective similar to "fast" is slow); its definition, then those of its similar adjectives ("fleetly":
        "in a fleet manner"; fleet: "moving very fast"); a noun's last, the shape the definitions of what it is a kind of give."""
        net = wordnet()
        if self.palette is not None and self.is_colour(synset):
            yield self.sense_colour(synset)
        yield from self._synonym_clues(synset)
        kinds = net.hypernyms(synset, KIND_DEPTH)
        if any(lemma.lower() in self.other_words for kind in kinds for lemma in kind.lemmas):
            yield OTHER
        if synset.pos == "n":  # a kind of one of the values, further up ("bubble" -> globule -> ball -> sphere -> round shape)
            for kind in kinds:
                yield from (c for c in (self._lemma(lemma, kind) for lemma in kind.lemmas) if c != OTHER)
        similar = [net.synset(p, o) for p, o in synset.related("&", "\\")]
        for near in [synset, *similar]:
            for p, o in near.related("!"):
                yield from (self.phrases.other_value(c) if c and c != OTHER else None for c in self._synonym_clues(net.synset(p, o)))
        for near in [synset, *similar]:
            yield self._gloss(near.gloss, near.pos, own=near is synset)
        if synset.pos == "n" and self.noun:  # its shape by what it is a kind of: a marble is a ball, "a round object"
            for p, o in synset.related("@"):
                found = self._gloss(net.synset(p, o).gloss, "n", own=False)
                yield found if found is not None and found[0] == self.noun else None

    def _synonym_clues(self, synset: Synset) -> Iterator[Evidence | None]:
        """What the lemmas of a sense, of its similar adjectives (or the adjective of an adverb) and of two levels of
        its hypernyms are: a vocabulary phrase, a colour name or another thing ("flit" -> "travel rapidly")."""
        net = wordnet()
        similar = [net.synset(p, o) for p, o in synset.related("&", "\\")]
        for near in [synset, *similar, *net.hypernyms(synset, HYPERNYM_DEPTH)]:
            for lemma in near.lemmas:
                yield self._lemma(lemma, near)

    def _lemma(self, lemma: str, synset: Synset) -> Evidence | None:
        """A lemma of ``synset`` that is a vocabulary phrase (with filler words: "travel rapidly"; a particle only after
        a verb of motion: "go up", not "make up"; a value's word only in the value's sense: "right" as "correct" is not
        the direction), a colour name of a colour sense, or another thing; an adjective by the noun it comes from."""
        values, only = self.phrases.read(lemma)
        words = [t.text for t in tokenize(lemma)]
        if len(values) == 1 and only and not (synset.pos == "v" and len(words) > 1 and words[0] not in MOTION_WORDS):
            value = next(iter(values))
            if self.palette is not None and value[0] == self.palette.attribute and not self.is_colour(synset):
                return None  # "green" is also a park ("a piece of open land"): a colour only in a colour sense
            if len(words) == 1 and synset.pos == "v":
                return None  # a value's word as a verb is another word: "right" is "make right or correct"
            return value if len(words) > 1 or self._described(lemma, value, synset) else None
        found = self.colour_name(lemma) if self.palette and self.is_colour(synset) else None
        if found is not None:
            return found  # a colour sense's name; "green" is also a park ("a piece of open land"), not a colour there
        if any(self.phrases.normal(w) in self.other_words for w in words if w not in STOP_WORDS):
            return OTHER
        if synset.pos == "a":  # an adjective by the noun it is derived from: "triangular" -> triangle
            net = wordnet()
            for p, o, t in synset.related_words(lemma, "+"):
                noun = net.synset(p, o)
                values, only = self.phrases.read(noun.lemmas[t - 1] if 0 < t <= len(noun.lemmas) else noun.lemmas[0])
                if len(values) == 1 and only:
                    return next(iter(values))
        return None

    def _described(self, lemma: str, value: Evidence, synset: Synset) -> bool:
        """Whether ``synset`` is a sense of a value's word in the value's meaning: a word with an antonym there must be
        the opposite of another value of the attribute ("right" opposite "left", not "right" opposite "wrong", which is
        "correct"); one without may be ("little" in "short, little")."""
        net = wordnet()
        opposites = [name for p, o in synset.related_to(lemma, "!") for name in net.synset(p, o).lemmas]
        if not opposites:
            return True
        return any(other[0] == value[0] and other != value for lemma in opposites for other in self.phrases.read(lemma)[0])

    def _gloss(self, gloss: str, pos: str = "n", own: bool = True) -> Evidence | None:
        """The first value a definition names, in the vocabulary's words or by a measure ("the cardinal compass point
        that is at 180 degrees" -> down), else the first its words lead to, read one level further ("walk leisurely")."""
        words = [t.text for t in tokenize(gloss)]
        content = [i for i, w in enumerate(words) if w not in STOP_WORDS]
        used = [False] * len(words)
        found = self._named_in(words, content, used)
        if found is not None:
            return found
        if own and pos in ("a", "r") and any(self._names_other(words[i]) for i in content):
            return OTHER  # a quality like another thing's: "clockwise": "in the same direction as the rotating hands of a clock"
        rest = [i for i in content if not used[i] and words[i].isalpha() and words[i] not in FILLER_WORDS]
        # an adjective of a definition by the noun it comes from ("triangular sides" -> triangle); a verb's or
        # adjective's first words, its genus and manner ("rise dramatically", "walk leisurely"), by their commonest
        # sense's synonyms ("not hurried" is slow); not a thing's: they say what it is like, not what it is
        for i in rest:
            found = self._derived(words[i])
            if found is None and i in content[: LOOK_UP_WORDS[pos]] and not _particle(words, i):
                found = self._look_up(words[i], ("v", "r", "a") if i == rest[0] and pos == "v" else ("r", "a"))
            if found is not None and any(w in NEGATIONS for w in words[max(0, i - 2) : i]):
                found = self.phrases.other_value(found)
            if found is not None:
                return found
        return None

    def _names_other(self, word: str) -> bool:
        """Whether a word is one of words.OTHER_THINGS, in any inflection WordNet lists, or a noun derived from one of
        its motions ("dogs" is "dog"; "rotation" is "rotating"; "facing" is not "face", a thing)."""
        net = wordnet()
        if self._other_stems is None:
            stems: set[tuple[str, str]] = set()
            for other in self.other_words:
                pos = "v" if other.endswith("ing") else "n"
                for lemma in net.lemmas(other, pos):
                    stems.add((lemma, pos))
                    if pos == "v":
                        stems |= {(net.synset(p, o).lemmas[t - 1].lower(), "n") for s in net.synsets(lemma, pos)[:1]
                                  for p, o, t in s.related_words(lemma, "+") if t and p == "n"}
            self._other_stems = stems
        return self.phrases.normal(word) in self.other_words or any(
            (lemma, pos) in self._other_stems for pos in ("n", "v") for lemma in net.lemmas(word, pos))

    def _named_in(self, words: list[str], content: list[int], used: list[bool]) -> Evidence | None:
        """The first value a definition names in the vocabulary's words or by a measure; a value word before another
        noun describes that thing ("small rodents", "right angles"), and a particle after a verb other than one of
        motion is part of an idiom ("make up"): neither counts."""
        named = self.phrases.negated(self.phrases.named(words, content, used), words, used) + self.phrases.numbers(words, used)
        named = [m for m in named if not describes_next(words, m.tokens[-1] + 1, used) and not _after_verb(words, m)]
        first = min(named, key=lambda m: m.tokens[0], default=None)
        return (first.attribute, first.value) if first else None

    def _look_up(self, word: str, parts: tuple[str, ...]) -> Evidence | None:
        """What the commonest sense of a definition's word, as the first of ``parts`` it has that leads anywhere, leads to
        by its lemmas (an adjective's: with the noun it comes from), its head adjective (not a head's many satellites),
        its hypernyms and the values its definition names; not further: no other things, no colours (a definition's
        colours are read by their names)."""
        key = (word, parts)
        if key not in self._looked_up:
            net = wordnet()
            colour = self.palette.attribute if self.palette else None
            found = None
            for pos in parts:
                sense = net.commonest(word, pos)
                if sense is None:
                    continue
                similar = [net.synset(p, o) for p, o in sense.related("&")]
                near = [sense, *(similar if len(similar) == 1 else []), *[net.synset(p, o) for p, o in sense.related("\\")],
                        *net.hypernyms(sense, HYPERNYM_DEPTH)]
                words = [t.text for t in tokenize(sense.gloss)]
                named = self._named_in(words, [i for i, w in enumerate(words) if w not in STOP_WORDS], [False] * len(words))
                clues = [*(self._lemma(lemma, s) for s in near for lemma in s.lemmas), named]
                found = next((c for c in clues if c is not None and c != OTHER and c[0] != colour), None)
                if found is not None:
                    break
            self._looked_up[key] = found
        return self._looked_up[key]

    def _derived(self, word: str) -> Evidence | None:
        """A definition's adjective by the noun it comes from ("triangular sides" -> triangle; "posterior" -> posterior,
        the noun, not its synonym "bottom")."""
        sense = wordnet().commonest(word, "a")
        found = self._lemma(word, sense) if sense is not None else None
        colour = self.palette.attribute if self.palette else None
        return found if found is not None and found != OTHER and found[0] != colour else None


def describes_next(words: list[str], i: int, used: list[bool]) -> bool:
    """Whether words[i] is a noun (not yet read as a value) that a value word just before it describes."""
    if i >= len(words) or words[i] in STOP_WORDS or words[i] in FILLER_WORDS or used[i] or not words[i].isalpha():
        return False
    return bool(wordnet().lemmas(words[i], "n"))


def _after_verb(words: list[str], match: Match) -> bool:
    """Whether a one-word value follows a verb it makes an idiom with ("make up": a WordNet verb; "go up" is motion)."""
    return len(match.tokens) == 1 and words[match.tokens[0] - 1] not in MOTION_WORDS and _particle(words, match.tokens[0])


def _particle(words: list[str], i: int) -> bool:
    """Whether words[i] is the particle of a phrasal verb WordNet lists with the word before ("carry out", "make up")."""
    if i == 0:
        return False
    net = wordnet()
    return any(net.lemmas(f"{verb} {words[i]}", "v") for verb in net.lemmas(words[i - 1], "v"))


def _weighted(synsets: list[Synset]) -> list[tuple[Synset, float]]:
    """Each sense with its weight: its tag count + 1/(1 + its rank among the word's senses of its part of speech)."""
    rank: dict[str, int] = {}
    out = []
    for synset in synsets:
        rank[synset.pos] = rank.get(synset.pos, -1) + 1
        out.append((synset, synset.count + 1 / (1 + rank[synset.pos])))
    return out


def _winner(votes: dict[Evidence, float], total: float) -> tuple[Evidence, float] | None:
    if not votes:
        return None
    best = max(votes, key=votes.__getitem__)
    share = votes[best] / sum(votes.values())
    return (best, share) if share >= LEXICON_SHARE and votes[best] >= LEXICON_COVER * total else None
