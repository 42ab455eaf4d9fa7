"""A sample of a dataset's captions, e.g. to standardise text embeddings over what a model trains on."""

from __future__ import annotations

from kinema.data.shapes import CaptionedShapes
from kinema.data.video_folder import VideoFolder


def caption_sample(dataset: CaptionedShapes | VideoFolder, count: int) -> list[str]:
    """The first ``count`` captions of a dataset (non-empty ones for a folder); [""] when it has none."""
    if isinstance(dataset, CaptionedShapes):
        return [dataset.caption(i) for i in range(min(max(count, 1), len(dataset)))]
    return [c for c in dataset.captions if c][:count] or [""]
