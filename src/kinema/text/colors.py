"""Colour names -> RGB (the CSS Color Module's 147 names, from `webcolors`), and the nearest of a few colours by hue.

A colour is compared by its CIELAB hue angle, the one coordinate that does not change when a colour is
made lighter or darker ("midnight blue" and "dark cyan" keep the hue of blue and cyan). A colour too grey
to have a hue (white, grey, silver, beige), or one that lies between two of the colours it is compared
with (orange, between red and yellow), is nearest to none.
"""

from __future__ import annotations

import math
from typing import Mapping

import webcolors

RGB = tuple[int, int, int]

# Below this CIELAB chroma a colour reads as a grey (CSS "silver" 0, "beige" 13, "lavender" 11; "sky blue" 26).
MIN_CHROMA = 18.0
# The hue must be at most this share of the way to the second nearest palette colour: "deep sky blue" (0.46 of
# the way from cyan to blue) is between them; "sky blue" (0.35) is cyan. (Shares for the Shapes palette.)
MAX_HUE_SHARE = 0.42


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


def angle_between(a: float, b: float) -> float:
    """The smaller angle between two directions in degrees (350 and 10 are 20 apart)."""
    return abs((a - b + 180) % 360 - 180)
