"""What a closed-vocabulary text model understands: its attributes, their values in words, and its caption template.

A model trained on captions from a small vocabulary (the Shapes models) declares it in its model folder,
model_index.json's "vocabulary" (docs/model_format.md)::

    "vocabulary": {
      "template": "a {size} {color} {shape} moving {direction} {speed}",
      "attributes": {
        "shape": {"default": "circle", "values": {"circle": {"description": "round, a disc or dot"}, ...}},
        "size": {"default": "large", "unit": "px", "values": {"small": {"description": "small, tiny", "measure": 12}, ...}},
        ...
      },
      "unseen": [{"shape": "circle", "color": "green"}, ...]
    }

Each value's ``description`` is short phrases separated by commas or "or", each one way of saying the
value or a fact about it ("fast, rapidly, 2 pixels per frame"); the planner (kinema.text.planner) compares a prompt's words with them. ``measure`` is a number
in the attribute's ``unit`` ("px": pixels of the model's frame; "px/frame"; "deg": a compass bearing on
screen, 0 up and 90 right), so "two pixels a frame" or a compass point ("at 270 degrees") can find its value. ``rgb`` is a colour value's colour as the model draws it ([255, 0, 0]), so any colour name
("firebrick") finds the value nearest in hue. ``default`` is what a prompt that does not name the attribute gets. ``unseen`` lists
combinations never seen in training, which a guessed attribute avoids.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any, Mapping

from kinema.models.base import check_keys

UNITS = ("px", "px/frame", "deg")


class VocabularyError(ValueError):
    """A vocabulary declaration that is not well formed."""


@dataclass(frozen=True)
class Value:
    """One value of an attribute, in the model's own word (``name``) and in other words (``description``)."""

    name: str
    description: str = ""  # comma-separated phrases: "fast, moving two pixels per frame"
    measure: float | None = None  # in the attribute's unit
    rgb: tuple[int, int, int] | None = None  # a colour value's colour as drawn: colour names are matched to it by hue

    @property
    def phrases(self) -> tuple[str, ...]:
        """The name and each phrase of the description (phrases are separated by commas or "or")."""
        parts = [p.strip() for p in re.split(r",|\bor\b", self.description)]
        return tuple(dict.fromkeys([self.name, *[p for p in parts if p]]))


@dataclass(frozen=True)
class Attribute:
    """One slot of the caption template and the values it takes."""

    name: str
    values: tuple[Value, ...]
    default: str
    unit: str | None = None  # of the values' measures

    def value(self, name: str) -> Value:
        for value in self.values:
            if value.name == name:
                return value
        raise KeyError(f"attribute {self.name!r} has no value {name!r}; it has {', '.join(self.names)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.values)


@dataclass(frozen=True)
class Vocabulary:
    """A model's closed vocabulary: attributes in template order, the template, and unseen combinations."""

    template: str
    attributes: tuple[Attribute, ...]
    unseen: tuple[Mapping[str, str], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        slots = [name for _, name, _, _ in string.Formatter().parse(self.template) if name is not None]
        names = [a.name for a in self.attributes]
        if sorted(slots) != sorted(names) or len(set(slots)) != len(slots):
            raise VocabularyError(f"the template {self.template!r} must name every attribute once ({', '.join(names)}), "
                                  f"it names {', '.join(slots) or 'none'}")
        for attribute in self.attributes:
            if not attribute.values:
                raise VocabularyError(f"attribute {attribute.name!r} has no values")
            if len(set(attribute.names)) != len(attribute.names):
                raise VocabularyError(f"attribute {attribute.name!r} lists a value twice")
            if attribute.default not in attribute.names:
                raise VocabularyError(f"attribute {attribute.name!r}: default {attribute.default!r} is not one of its values "
                                      f"({', '.join(attribute.names)})")
            if attribute.unit is not None and attribute.unit not in UNITS:
                raise VocabularyError(f"attribute {attribute.name!r}: unit must be one of {', '.join(UNITS)}, got {attribute.unit!r}")
            measured = [v.measure is not None for v in attribute.values]
            if any(measured) and (attribute.unit is None or not all(measured)):
                raise VocabularyError(f"attribute {attribute.name!r}: measures need a unit and a measure for every value")
        for combination in self.unseen:
            for name, value in combination.items():
                if value not in self.attribute(name).names:
                    raise VocabularyError(f"unseen combination {dict(combination)}: {value!r} is not a value of {name!r}")

    def attribute(self, name: str) -> Attribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise VocabularyError(f"no attribute {name!r}; the vocabulary has {', '.join(a.name for a in self.attributes)}")

    @property
    def defaults(self) -> dict[str, str]:
        return {a.name: a.default for a in self.attributes}

    def caption(self, values: Mapping[str, str]) -> str:
        """The template filled with one value per attribute."""
        for attribute in self.attributes:
            attribute.value(values[attribute.name])  # a KeyError names a wrong value
        return " ".join(self.template.format(**values).split())

    def parse_caption(self, caption: str) -> dict[str, str] | None:
        """The values of a caption the template wrote, or None when it is not one."""
        pattern = re.escape(" ".join(self.template.split()))
        for attribute in self.attributes:
            choices = "|".join(re.escape(n) for n in sorted(attribute.names, key=len, reverse=True))
            pattern = pattern.replace(re.escape("{" + attribute.name + "}"), f"(?P<{attribute.name}>{choices})", 1)
        match = re.fullmatch(pattern, " ".join(caption.split()))
        return match.groupdict() if match else None

    def describe(self) -> str:
        """One line: the template and every attribute's values."""
        values = "; ".join(f"{a.name}: {', '.join(a.names)}" for a in self.attributes)
        return f"prompts in any wording, read as '{self.template}' ({values})"

    def is_unseen(self, values: Mapping[str, str]) -> bool:
        """Whether these values hold a combination the model never saw in training."""
        return any(all(values.get(k) == v for k, v in combination.items()) for combination in self.unseen)

    # ------------------------------------------------------------------------------------------- JSON

    def to_json(self) -> dict[str, Any]:
        attributes = {}
        for a in self.attributes:
            values = {}
            for v in a.values:
                values[v.name] = {"description": v.description, **({"measure": v.measure} if v.measure is not None else {}),
                                  **({"rgb": list(v.rgb)} if v.rgb is not None else {})}
            attributes[a.name] = {"default": a.default, **({"unit": a.unit} if a.unit else {}), "values": values}
        data: dict[str, Any] = {"template": self.template, "attributes": attributes}
        if self.unseen:
            data["unseen"] = [dict(c) for c in self.unseen]
        return data

    @classmethod
    def from_json(cls, data: Any, where: str = "vocabulary") -> Vocabulary:
        """Read a declaration; a key it does not know is an error naming the key, ``where`` it was and the closest known one."""
        _need(isinstance(data, dict), f"{where} must be a JSON object")
        check_keys(data, ["template", "attributes", "unseen"], where)
        _need(isinstance(data.get("template"), str), f"{where}.template must be text such as \"a {{size}} {{shape}}\"")
        raw = data.get("attributes")
        _need(isinstance(raw, dict) and raw, f"{where}.attributes must map attribute names to their values")
        attributes = []
        for name, spec in raw.items():
            at = f"{where}.attributes.{name}"
            _need(isinstance(spec, dict), f"{at} must be a JSON object")
            check_keys(spec, ["default", "unit", "values"], at)
            _need(isinstance(spec.get("values"), dict) and spec["values"], f"{at}.values must map value names to descriptions")
            values = []
            for value, about in spec["values"].items():
                vat = f"{at}.values.{value}"
                _need(isinstance(about, dict), f"{vat} must be a JSON object with a \"description\"")
                check_keys(about, ["description", "measure", "rgb"], vat)
                _need(isinstance(about.get("description", ""), str), f"{vat}.description must be text")
                measure = about.get("measure")
                _need(measure is None or (isinstance(measure, (int, float)) and not isinstance(measure, bool)), f"{vat}.measure must be a number")
                rgb = about.get("rgb")
                _need(rgb is None or (isinstance(rgb, list) and len(rgb) == 3 and all(type(c) is int and 0 <= c <= 255 for c in rgb)),
                      f"{vat}.rgb must be three integers from 0 to 255 (red, green, blue), got {rgb!r}")
                values.append(Value(value, about.get("description", ""), None if measure is None else float(measure), None if rgb is None else tuple(rgb)))
            _need(isinstance(spec.get("default"), str), f"{at}.default must name one of its values")
            attributes.append(Attribute(name, tuple(values), spec["default"], spec.get("unit")))
        unseen = data.get("unseen", [])
        _need(isinstance(unseen, list) and all(isinstance(c, dict) for c in unseen),
              f"{where}.unseen must be a list of {{attribute: value}} objects")
        try:
            return cls(data["template"], tuple(attributes), tuple(dict(c) for c in unseen))
        except VocabularyError as error:
            raise VocabularyError(f"{where}: {error}") from None


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise VocabularyError(message)
