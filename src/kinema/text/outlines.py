"""Everyday things by their outline: a coin or a plate is drawn as a circle, a tent or a nacho as a triangle, a dice or a
sticky note as a square (outlines.tsv, beside this file: the silhouette a flat icon of the thing has).

WordNet says what a thing is, not what it looks like ("tent": "a portable shelter ..."), and MiniLM puts a nacho nearer
a square than a triangle, so the planner reads an everyday thing's shape here first. A word is looked up as written, in
its dictionary forms ("nachos", "dice"), and, failing those, by what WordNet says its commonest sense is a kind of, two
levels up ("pup tent" -> tent). Names of two or three words ("pizza slice", "slice of pizza") are read whole
(``Outlines.phrase``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from kinema.text.lexicon import Synset, wordnet

OUTLINE_FILE = Path(__file__).with_name("outlines.tsv")
OUTLINE_NAMES = ("circle", "oval", "square", "rectangle", "triangle", "diamond", "star", "crescent", "heart", "hexagon",
                 "ring", "cross")
KIND_LEVELS = 2  # how far up WordNet's "is a kind of" a word without an entry inherits one ("pup tent" -> tent)
_PLURALS = (("ies", "y"), ("ves", "f"), ("es", ""), ("s", ""))


@dataclass
class Outlines:
    """The entries of one outline file: names (as word tuples) -> outline, and the WordNet senses they name."""

    names: dict[tuple[str, ...], str]
    _senses: dict[tuple[str, int], str] | None = field(default=None, repr=False)

    @classmethod
    def read(cls, path: Path = OUTLINE_FILE) -> Outlines:
        names: dict[tuple[str, ...], str] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) < 2 or parts[1].strip() not in OUTLINE_NAMES:
                raise ValueError(f"{path}:{number}: expected 'name<TAB>outline' with outline one of {', '.join(OUTLINE_NAMES)}, got {line!r}")
            names[tuple(parts[0].lower().replace("-", " ").split())] = parts[1].strip()
        return cls(names)

    def word(self, word: str) -> str | None:
        """The outline of one word, as written or in a dictionary form ("dice", "nachos" -> nacho)."""
        for form in _forms(word):
            if (form,) in self.names:
                return self.names[(form,)]
        return None

    def phrase(self, words: list[str]) -> str | None:
        """The outline of a name of several words, its last word in any form ("pizza slices")."""
        return next((self.names[(*words[:-1], form)] for form in _forms(words[-1]) if (*words[:-1], form) in self.names), None)

    @property
    def longest(self) -> int:
        return max(map(len, self.names), default=1)

    def sense(self, synset: Synset) -> str | None:
        """The outline of a noun sense: its own entry's, else that of what it is a kind of (KIND_LEVELS up)."""
        senses = self._sense_map()
        for kind in [synset, *wordnet().hypernyms(synset, KIND_LEVELS)]:
            if (kind.pos, kind.offset) in senses:
                return senses[(kind.pos, kind.offset)]
        return None

    def _sense_map(self) -> dict[tuple[str, int], str]:
        """(pos, offset) of the commonest noun sense of every entry WordNet knows -> its outline."""
        if self._senses is None:
            net, senses = wordnet(), {}
            for words, outline in self.names.items():
                sense = net.commonest("_".join(words), "n")
                if sense is not None:
                    senses.setdefault((sense.pos, sense.offset), outline)
            self._senses = senses
        return self._senses


@functools.cache
def outlines() -> Outlines:
    """The outlines shipped beside this module, read once."""
    return Outlines.read()


def _forms(word: str) -> list[str]:
    """``word`` and the singulars it may be of: WordNet's dictionary forms, then the plural endings taken off."""
    word = word.lower()
    found = [word, *wordnet().lemmas(word, "n")]
    found += [word[: -len(end)] + base for end, base in _PLURALS if word.endswith(end) and len(word) - len(end) >= 3]
    return list(dict.fromkeys(found))
