"""Splitting a description of several shots ("A red ball rolls left. Then a big blue box rises quickly.") into one Scene each.

A shot ends at a sentence end (. ! ? ; or a new line) and before "then", "after that", "afterwards",
"next", "later" or "finally" starting a clause. Each shot is planned on its own: nothing carries over,
so "A red ball rolls left. A blue box rises." is two unrelated shots. A shot that refers back to the
one before ("it", "its", "the same", "again", "still", "they") keeps every attribute it does not name
from that shot ("A red ball rolls left. Then it rises quickly." -> the same red ball, now rising):
those attributes are reported as "carried", not guessed.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from kinema.text.planner import Scene, plan
from kinema.text.vocabulary import Vocabulary
from kinema.text.words import REFERS_BACK, tokenize

_SENTENCE_END = re.compile(r"[.!?;]+(?=\s|$)|\n+")
_CONNECTOR = re.compile(r"(?:^|,|\band\b)\s*(?=\b(?:and then|then|after that|afterwards|next|later|finally)\b)", re.IGNORECASE)
_LEADING = re.compile(r"^(?:and\b\s*)?(?:(?:then|after that|afterwards|next|later|finally)\b[\s,]*)?", re.IGNORECASE)


def shot_texts(text: str) -> list[str]:
    """The text of each shot, connectors ("then") removed."""
    pieces = []
    for sentence in _SENTENCE_END.split(text):
        for part in _CONNECTOR.split(sentence):
            part = _LEADING.sub("", part.strip(" ,")).strip(" ,")
            if re.search(r"\w", part):
                pieces.append(part)
    return pieces


def refers_back(text: str) -> bool:
    """Whether a shot speaks of the previous shot's object ("it", "the same", ...)."""
    return any(t.text in REFERS_BACK for t in tokenize(text))


def split_shots(text: str, vocabulary: Vocabulary | Mapping[str, Any] | None = None, *, encoder=None, fps: float | None = None) -> list[Scene]:
    """One Scene per shot of ``text``, each planned onto ``vocabulary`` (unchanged without one, as plan() does; ``fps`` as there)."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    scenes: list[Scene] = []
    for piece in shot_texts(text) or [text]:
        previous = scenes[-1] if scenes and refers_back(piece) else None
        scenes.append(plan(piece, vocabulary, encoder=encoder, previous=previous, fps=fps))
    return scenes
