"""Words of a prompt: tokens, the function and filler words that carry nothing to draw, word forms, and numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Function words: they join the words that matter and never name anything to draw.
STOP_WORDS = frozenset("""
a an the this that these those it its it's itself is are was were be being been am do does did has have had having
will would can could should shall may might must i i'm me my we us our you your he him his she her they them their
there here of on in at by for with from to into onto towards toward through across along over under around about as
than so and or but if while when where which who whom whose what how please kindly just also too very really quite
rather pretty super extremely somewhat fairly slightly like such same s
first firstly then next now later afterwards finally initially suddenly
""".split())

# Content words that say nothing the model could draw differently: the request itself, the medium, the
# background, the object in general, and motion without a direction or speed. A word left over from a
# prompt is reported as not understood unless it is one of FILLER_WORDS.
REQUEST_WORDS = frozenset("""
want wanted need needs give let lets let's see show shows showing shown make makes making made create creates creating
get gets got put place produce output animate paint illustrate visualize visualise compose
generate generating render rendering draw drawing drawn depict depicts depicting display displaying watch imagine
hello hi hey ok okay thanks thank
""".split())
MEDIUM_WORDS = frozenset("""
video videos clip clips animation animated movie film gif footage sequence scene shot frame frames screen canvas
background backdrop image picture view camera
""".split())
# Words that stand for the drawn object itself ("a red one", "a blue shape"), and ways of saying it is one plain object.
OBJECT_WORDS = frozenset("object objects shape shapes thing things item items figure form one".split())
PLAIN_WORDS = frozenset("single lone solid filled plain simple sharp".split())
# Verbs of motion that name no direction or speed ("a red disc rolling left"): the motion the model draws. A particle
# after one of these is a direction ("go up"); after another verb it is part of an idiom ("make up", "set up").
MOTION_WORDS = frozenset("""
move moves moving moved movement motion go goes going gone travel travels traveling travelling traveled travelled
drift drifts drifting drifted slide slides sliding slid glide glides gliding glided head heads heading headed
roll rolls rolling rolled float floats floating floated fly flies flying flew pass passes passing passed
cross crosses crossing crossed shift shifts shifting shifted run runs running ran
steadily steady smoothly smooth constantly constant straight
""".split())
ATTRIBUTE_WORDS = frozenset("""
way direction speed pace velocity rate line path edge side middle centre center
color colour colors colours colored coloured hue tint tinted shade size sized dimension diameter width height across
""".split())
FILLER_WORDS = REQUEST_WORDS | MEDIUM_WORDS | OBJECT_WORDS | PLAIN_WORDS | MOTION_WORDS | ATTRIBUTE_WORDS

# Shade and strength words: "dark blue", "bright red" are still blue and red (a phrase of the vocabulary's,
# such as "light blue", is matched whole before these are dropped).
MODIFIERS = frozenset("light dark deep bright pale vivid pure rich neon soft hot pastel dull strong bold brilliant intense faint".split())

# Things a closed vocabulary usually lacks: other colours, other shapes, living things and objects, and
# motions other than a straight line. A word nearer one of these than to any of the model's values (by
# MiniLM meaning) is reported as not drawable rather than forced onto the nearest value; an entry that is
# one of the model's own words is left out. Categories, not synonyms of anything the model draws.
OTHER_THINGS = (
    "white", "black", "grey", "brown", "orange", "silver", "beige",
    "polygon", "hexagon", "pentagon", "octagon", "star", "heart", "oval", "diamond", "cross", "arrow", "spiral", "letter", "number",
    "animal", "dog", "cat", "bird", "fish", "insect", "person", "man", "woman", "child", "face", "hand",
    "car", "vehicle", "boat", "plane", "train", "house", "building", "tree", "flower", "plant", "food", "fruit", "robot", "toy", "tool",
    "cloud", "water", "fire", "smoke", "rain", "wind", "sun", "moon", "planet", "text", "logo",
    "spinning", "rotating", "bouncing", "zigzagging", "wobbling", "shaking", "vibrating", "growing", "shrinking", "pulsing",
    "exploding", "fading", "blinking", "flashing", "jumping", "orbiting", "turning", "swinging", "waving", "dancing", "walking",
    "diagonally", "in a circle", "in a curve", "chasing", "colliding", "melting", "splitting",
)

# Words for a plain background, filler when next to one of BACKGROUND_NOUNS or after "on" ("on black").
BACKGROUND_COLORS = frozenset("black dark empty blank plain".split())
BACKGROUND_NOUNS = frozenset("background backdrop screen canvas".split())

# Compass points, and a word that only sharpens the one after it ("due west" is west; "due" alone is "owed").
COMPASS_POINTS = ("north", "south", "east", "west")
COMPASS_SHARPENERS = frozenset({"due"})

# Words that turn the next word around: "not fast" is slow (for an attribute of two values), "no red" names nothing.
NEGATIONS = frozenset("not no never without isn't aren't don't doesn't non".split())

# Grammar the planner reads phrases by: a preposition opens a phrase about a place, a path or a likeness ("in a park",
# "over the clouds", "like rain"), a determiner opens a noun phrase ("a red one").
PREPOSITIONS = frozenset("""
in on at over under across through into onto toward towards to like off around along behind past beyond inside near
above below beneath between within from with without upon against
""".split())
DETERMINERS = frozenset("a an the this that these those my your his her its our their some one another".split())
# Conjunctions and relative words that end a verb's complement ("spinning in place and ...", "... that changes colour").
CLAUSE_WORDS = frozenset("and or but that which who while whereas so then".split())

# Words that make the following sentence refer back to the previous shot's object.
REFERS_BACK = frozenset("it its it's itself same again still they them".split())

_NUMBER_WORDS = {
    "zero": 0, "half": 0.5, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90, "hundred": 100, "a": 1, "an": 1, "single": 1, "couple": 2, "dozen": 12,
}
_TENS = {"twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"}

_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+(?:'[^\W\d_]+)?|/")  # letters of any alphabet: "rápido" is one word


@dataclass(frozen=True)
class Token:
    text: str  # lowercased
    start: int  # character span in the prompt
    end: int


def tokenize(prompt: str) -> list[Token]:
    """Lowercased words, numbers and "/" (as in px/frame) with their places in the prompt; hyphens split words."""
    lowered = prompt.lower().replace("’", "'")
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(lowered)]


def forms(word: str) -> list[str]:
    """The word, then the forms it may come from: plurals, -ing/-ed, -ly, comparatives and -ish stripped
    (rises -> rise, boxes -> box, bigger -> big, bluish -> blue). Only forms of 3+ letters."""
    out = [word]

    def add(stem: str) -> None:
        if len(stem) >= 3:
            out.append(stem)
            if stem[-1] == stem[-2] and stem[-1] not in "aeiouls":  # bigger -> bigg -> big
                out.append(stem[:-1])
            if not stem.endswith("e"):
                out.append(stem + "e")

    if word.endswith("ss"):
        return out
    for suffix, replacement in (("wards", ""), ("ward", ""), ("ies", "y"), ("es", ""), ("s", ""), ("ing", ""), ("ed", ""), ("ily", "y"), ("ly", "le"),
                                ("ly", ""), ("ier", "y"), ("iest", "y"), ("er", ""), ("est", ""), ("ish", "")):
        if word.endswith(suffix):
            add(word[: len(word) - len(suffix)] + replacement)
    return list(dict.fromkeys(out))


def read_number(tokens: list[str], i: int) -> tuple[float, int] | None:
    """A number starting at tokens[i] (digits, "2.5", "twenty five", "half a") -> (value, tokens used)."""
    word = tokens[i]
    if re.fullmatch(r"\d+(?:\.\d+)?", word):
        return float(word), 1
    if word not in _NUMBER_WORDS:
        return None
    if word in ("a", "an", "single", "couple", "dozen"):  # numbers only before a unit; the caller checks
        return float(_NUMBER_WORDS[word]), 1
    value, used = float(_NUMBER_WORDS[word]), 1
    if word in _TENS and i + 1 < len(tokens) and tokens[i + 1] in _NUMBER_WORDS and _NUMBER_WORDS[tokens[i + 1]] < 10 \
            and tokens[i + 1] not in ("a", "an", "half"):
        value, used = value + _NUMBER_WORDS[tokens[i + 1]], 2
    if word == "half" and i + 1 < len(tokens) and tokens[i + 1] in ("a", "an"):
        used = 2
    return value, used


# Symbols people type for a direction or a shape, read as the words they stand for.
SYMBOL_WORDS = {
    "←": "left", "⬅": "left", "→": "right", "➡": "right", "↑": "up", "⬆": "up", "↓": "down", "⬇": "down",
    "▲": "triangle", "△": "triangle", "▵": "triangle", "Δ": "triangle", "●": "circle", "○": "circle", "⬤": "circle",
    "■": "square", "□": "square", "◼": "square", "◻": "square", "⬛": "square",
}
