"""Provenance records saying which model, seed and prompt made a video, stored inside the file."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from kinema import __version__

# Container tags are plain strings shared with other tools; the prefix marks ours.
TAG_PREFIX = "kinema-provenance:"


def _default_generator() -> str:
    return f"kinema {__version__}"


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(kw_only=True)
class Provenance:
    """Who made a video and how: enough to regenerate it or to credit the model."""

    generator: str = field(default_factory=_default_generator)
    model: str | None = None
    seed: int | None = None
    prompt: str | None = None  # as the user wrote it
    caption: str | None = None  # what the model was given, when a planner rewrote the prompt onto the model's vocabulary
    created: str = field(default_factory=_utc_now)  # UTC, ISO 8601
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["caption"] is None:
            data.pop("caption")  # records of unplanned prompts read as before
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        """Build from a dict; keys this version does not know go into ``extra`` rather than being lost."""
        if not isinstance(data, dict):
            raise ValueError(f"provenance must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        extra = dict(data.get("extra") or {})
        extra.update({k: v for k, v in data.items() if k not in known})
        kwargs = {k: v for k, v in data.items() if k in known and k != "extra"}
        return cls(**kwargs, extra=extra)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Provenance:
        return cls.from_dict(json.loads(text))

    def to_tag(self) -> str:
        """The string stored in a container's ``comment`` tag."""
        return TAG_PREFIX + self.to_json()

    @classmethod
    def from_tag(cls, tag: str | None) -> Provenance | None:
        """Parse a ``comment`` tag; None when it is not ours.

        A damaged record only warns: it must not make the video itself unreadable.
        """
        if not tag or not tag.startswith(TAG_PREFIX):
            return None
        try:
            return cls.from_json(tag[len(TAG_PREFIX) :])
        except (ValueError, TypeError) as err:
            warnings.warn(f"ignoring a damaged kinema provenance tag: {err}", stacklevel=2)
            return None
