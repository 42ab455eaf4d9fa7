"""Prompt words against a vocabulary's phrases by MiniLM sentence-embedding cosine: the scene planner's last resort (pass 6)."""

from __future__ import annotations

import threading

import torch

from kinema.text.phrases import Phrases
from kinema.text.words import OTHER_THINGS, STOP_WORDS, tokenize

# Another thing (words.OTHER_THINGS) within ANCHOR_SAME of a value's own phrase is that value said otherwise, and is
# not compared with ("round" things are circles).
ANCHOR_SAME = 0.85


class Meaning:
    """Compares words with the value phrases of one vocabulary and with words.OTHER_THINGS; the phrases are embedded once."""

    def __init__(self, phrases: Phrases, encoder) -> None:
        self.phrases, self.encoder = phrases, encoder
        self._matrix: torch.Tensor | None = None
        self._anchors: torch.Tensor | None = None
        self._lock = threading.Lock()

    def knows(self, word: str) -> bool:
        """Whether the encoder's tokenizer has ``word`` as one token (a word in use, not a spelling mistake)."""
        tokenizer = getattr(self.encoder, "tokenizer", None)
        return tokenizer is not None and tokenizer.token_to_id(word) is not None

    def compare(self, spans: list[str]) -> list[tuple[str, str, float, float, float]]:
        """For each span: (attribute, value, cosine, margin over the attribute's next value, cosine to the nearest other thing)."""
        matrix, anchors = self._phrase_matrix()
        embedded = self.encoder.encode(spans).pooled.float().cpu()
        sims = embedded @ matrix.T  # (spans, phrases)
        other = (embedded @ anchors.T).max(dim=1).values.tolist() if len(anchors) else [-1.0] * len(spans)
        out = []
        for row, near in zip(sims.tolist(), other):
            best: dict[tuple[str, str], float] = {}
            for (attribute, value, _), s in zip(self.phrases.embedded, row):
                best[(attribute, value)] = max(best.get((attribute, value), -1.0), s)
            (attribute, value), score = max(best.items(), key=lambda kv: kv[1])
            others = [s for (a, v), s in best.items() if a == attribute and v != value]
            out.append((attribute, value, score, score - max(others, default=-1.0), near))
        return out

    def _phrase_matrix(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The embeddings of the value phrases (phrases, d) and of the other things (anchors, d)."""
        with self._lock:
            if self._matrix is None:
                matrix = self.encoder.encode([p for _, _, p in self.phrases.embedded]).pooled.float().cpu()
                anchors = [a for a in OTHER_THINGS
                           if tuple(self.phrases.normal(t.text) for t in tokenize(a) if t.text not in STOP_WORDS) not in self.phrases.phrases]
                embedded = self.encoder.encode(anchors).pooled.float().cpu()
                keep = (embedded @ matrix.T).max(dim=1).values < ANCHOR_SAME
                self._matrix, self._anchors = matrix, embedded[keep]
        return self._matrix, self._anchors
