"""Colour names -> RGB (the CSS Color Module's 147 names, from `webcolors`), and the nearest of a few colours by hue.

A colour is compared by its CIELAB hue angle, the one coordinate that does not change when a colour is
made lighter or darker ("midnight blue" and "dark cyan" keep the hue of blue and cyan). A colour too grey
to have a hue (white, grey, silver, beige), or one that lies between two of the colours it is compared
with (orange, between red and yellow), is nearest to none.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Mapping

import webcolors

RGB = tuple[int, int, int]
COLOUR_NAMES = tuple(webcolors.names("css3"))  # "aliceblue", ..., "yellowgreen"

# Below this CIELAB chroma a colour reads as a grey (CSS "silver" 0, "beige" 13, "lavender" 11; "sky blue" 26).
MIN_CHROMA = 18.0
# The hue must be at most this share of the way to the second nearest palette colour: "deep sky blue" (0.46 of
# the way from cyan to blue) is between them; "sky blue" (0.35) is cyan. (Shares for the Shapes palette.)
MAX_HUE_SHARE = 0.42
# A colour between two palette colours whose name is of another basic colour category than one of them (pink is not
# red: WordNet files pink and red as two kinds of chromatic colour) goes to the other one if it is within this hue
# angle of it: CSS pink is 32 degrees from the Shapes red and 40 from magenta, so it is drawn magenta.
MAX_CATEGORY_ANGLE = 45.0


@functools.cache
def _css_rgb() -> dict[str, RGB]:
    return {name: tuple(webcolors.name_to_rgb(name)) for name in COLOUR_NAMES}


def nearest_name(rgb: RGB) -> str:
    """The CSS colour name nearest an RGB code (its own name when it has one: (255, 0, 255) is "fuchsia")."""
    table = _css_rgb()
    return min(table, key=lambda name: sum((a - b) ** 2 for a, b in zip(table[name], rgb)))


def rgb_of(name: str) -> RGB | None:
    """The RGB of a colour name in any spacing ("sky blue", "sky-blue", "SkyBlue"), or None."""
    key = "".join(name.lower().replace("-", " ").split())
    try:
        found = webcolors.name_to_rgb(key)
    except ValueError:
        return None
    return (found.red, found.green, found.blue)


def lch(rgb: RGB) -> tuple[float, float, float]:
    """CIELAB lightness, chroma and hue angle (degrees) of an sRGB colour (D65 white)."""
    linear = [((c / 255 + 0.055) / 1.055) ** 2.4 if c / 255 > 0.04045 else c / 255 / 12.92 for c in rgb]
    r, g, b = linear
    xyz = (
        (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
        0.2126 * r + 0.7152 * g + 0.0722 * b,
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
    )
    fx, fy, fz = (t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116 for t in xyz)
    a, b_ = 500 * (fx - fy), 200 * (fy - fz)
    return 116 * fy - 16, math.hypot(a, b_), math.degrees(math.atan2(b_, a)) % 360


def is_chromatic(rgb: RGB) -> bool:
    """Whether a colour has a hue at all (white, grey, silver and beige do not)."""
    return lch(rgb)[1] >= MIN_CHROMA


def nearest_by_hue(rgb: RGB, palette: Mapping[str, RGB], others: Mapping[str, RGB] | None = None,
                   max_share: float = MAX_HUE_SHARE) -> str | None:
    """The palette colour whose hue is nearest ``rgb``'s; None for a grey, for one nearer one of ``others``
    (colours the palette lacks, such as orange), and for one more than ``max_share`` of the way to the
    second nearest palette colour (1.0: never)."""
    if not is_chromatic(rgb) or not palette:
        return None
    hue = lch(rgb)[2]
    distance = sorted((angle_between(hue, lch(value)[2]), name) for name, value in palette.items())
    (near, name), (second, _) = distance[0], distance[min(1, len(distance) - 1)]
    if any(angle_between(hue, lch(value)[2]) < near for value in (others or {}).values()):
        return None
    return name if len(distance) == 1 or near <= max_share * (near + second) else None


@dataclass
class Palette:
    """The colours of a vocabulary's colour attribute, as drawn, and colours it lacks (a name nearer one of those in hue is none of its values)."""

    attribute: str
    colors: dict[str, RGB]
    others: dict[str, RGB] = field(default_factory=dict)

    def nearest(self, rgb: RGB, exclude: frozenset[str] = frozenset()) -> str | None:
        """The value nearest ``rgb`` in hue; None for a grey, a colour it lacks, or one between two of its values.
        ``exclude``: values of another colour category than ``rgb``'s name, which settle a colour between two values
        (see MAX_CATEGORY_ANGLE)."""
        found = nearest_by_hue(rgb, self.colors, self.others)
        if found is not None or not exclude or self.lacks(rgb):
            return found
        kept = {name: value for name, value in self.colors.items() if name not in exclude}
        found = nearest_by_hue(rgb, kept, self.others)
        return found if found is not None and angle_between(lch(rgb)[2], lch(kept[found])[2]) <= MAX_CATEGORY_ANGLE else None

    def lacks(self, rgb: RGB) -> bool:
        """Whether ``rgb`` is no colour of the palette at all: a grey, or nearer in hue to a colour it lacks (orange)."""
        return nearest_by_hue(rgb, self.colors, self.others, max_share=1.0) is None


def angle_between(a: float, b: float) -> float:
    """The smaller angle between two directions in degrees (350 and 10 are 20 apart)."""
    return abs((a - b + 180) % 360 - 180)
