"""Informal words and fixed phrases for size, speed, direction and colour (idioms.tsv, beside this file): "smol",
"chonky", "full tilt", "at a snail's pace", "hold A" on a WASD keyboard, "verde", "mustard".

WordNet lists the standard language; what people type is often slang, an idiom whose words mean nothing alone ("hell
for leather"), a gamer's or designer's convention, or a colour word of another language. These entries were written
by hand from general knowledge, apart from every prompt set. Each gives an attribute (size, speed, direction, color) and
a plain value ("small", "fast", "left", a basic colour name or "#RRGGBB"), which the planner reads onto the model's own
vocabulary as it reads those plain words.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from kinema.text.words import tokenize

IDIOM_FILE = Path(__file__).with_name("idioms.tsv")
IDIOM_VALUES = {
    "size": ("small", "large"),
    "speed": ("slow", "fast"),
    "direction": ("left", "right", "up", "down"),
    "color": ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "magenta", "pink", "brown", "white", "grey", "black"),
}


@dataclass(frozen=True)
class Idiom:
    attribute: str  # size, speed, direction or color
    value: str  # one of IDIOM_VALUES[attribute], or "#RRGGBB" for a colour


@dataclass
class Idioms:
    """The entries of one idiom file: phrases (as the tokenizer splits them) -> what they mean."""

    phrases: dict[tuple[str, ...], Idiom]

    @classmethod
    def read(cls, path: Path = IDIOM_FILE) -> Idioms:
        phrases: dict[tuple[str, ...], Idiom] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = [p.strip() for p in line.split("\t")]
            attribute, value = (parts[1], parts[2].lower()) if len(parts) >= 3 else ("", "")
            if attribute not in IDIOM_VALUES or not (value in IDIOM_VALUES[attribute] or (attribute == "color" and hex_rgb(value))):
                raise ValueError(f"{path}:{number}: expected 'phrase<TAB>attribute<TAB>value' with attribute one of "
                                 f"{', '.join(IDIOM_VALUES)} and a value of it, got {line!r}")
            words = tuple(t.text for t in tokenize(parts[0]))
            if words:
                phrases[words] = Idiom(attribute, value)
        return cls(phrases)

    @property
    def longest(self) -> int:
        return max(map(len, self.phrases), default=1)

    def at(self, texts: list[str], i: int, n: int) -> Idiom | None:
        """The idiom words i .. i + n - 1 are, if any."""
        return self.phrases.get(tuple(texts[i : i + n]))


@functools.cache
def idioms() -> Idioms:
    """The idioms shipped beside this module, read once."""
    return Idioms.read()


def hex_rgb(value: str) -> tuple[int, int, int] | None:
    """(r, g, b) of "#rrggbb", else None."""
    if len(value) != 7 or value[0] != "#":
        return None
    try:
        return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
    except ValueError:
        return None
