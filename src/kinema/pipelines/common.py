"""What every pipeline shares: the pipeline.json settings file, the output dataclass, decoding to uint8."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from kinema.io.atomic import atomic_path
from kinema.models.text import PromptReference

PIPELINE_NAME = "pipeline.json"

# A prompt whose MiniLM cosine to the nearest training prompt is below this still generates, with a
# warning naming that prompt. scripts/calibrate_prompt_threshold.py: in-domain prompts (the varied
# Shapes captions and typed paraphrases) score >= 0.41, off-topic ones <= 0.34.
OOD_THRESHOLD = 0.37


class PipelineSettings:
    """Mixin for a pipeline's settings dataclass, saved as pipeline.json beside the weights."""

    family: ClassVar[str] = "Kinema"  # named in the error for a folder without pipeline.json

    def save(self, folder: str | os.PathLike) -> None:
        with atomic_path(Path(folder) / PIPELINE_NAME, overwrite=True) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | os.PathLike):
        path = Path(folder) / PIPELINE_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{folder} has no {PIPELINE_NAME}: not a Kinema {cls.family} model folder")
        data = json.loads(path.read_text())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class VideoPipelineOutput:
    frames: np.ndarray  # uint8 (b, f, h, w, 3)
    prompts: list[str]  # the prompt of each clip ("" where there was none)
    warnings: list[str] = field(default_factory=list)


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(b, c, f, h, w) in [-1, 1] -> uint8 (b, f, h, w, c)."""
    video = video.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return rearrange(video, "b c f h w -> b f h w c").cpu().numpy()


class ReferencePrompts:
    """Mixin for text-conditioned pipelines (``self.text_encoder``, ``self.config.reference_prompts`` and
    ``.ood_threshold``): each prompt's nearest training prompt, and a warning for those far from all."""

    _reference: PromptReference | None = None

    def closest_reference(self, prompts: Sequence[str]) -> list[tuple[str, float]]:
        """For each prompt, the nearest training prompt and its MiniLM cosine."""
        if self._reference is None:
            self._reference = PromptReference(self.text_encoder, self.config.reference_prompts)
        return self._reference.closest(prompts)

    def far_prompt_warnings(self, prompts: Sequence[str]) -> list[str]:
        """Warn (and return the messages) for each non-empty prompt below the config's ood_threshold."""
        notes = []
        for prompt, (reference, cos) in zip(prompts, self.closest_reference(prompts)):
            if prompt.strip() and cos < self.config.ood_threshold:
                notes.append(f"prompt {prompt!r} is far from what this model was trained on (cosine {cos:.2f}); "
                             f"closest it understands: {reference!r}")
                warnings.warn(notes[-1], stacklevel=3)
        return notes


def first_frame_tensor(image: np.ndarray | torch.Tensor, batch: int, size: int, device: torch.device) -> torch.Tensor:
    """uint8 (h, w, 3) or (b, h, w, 3) -> (batch, 3, size, size) in [-1, 1]: the first frame a model animates."""
    image = torch.as_tensor(np.array(image))  # a copy: read-only arrays (decoded images) stay untouched
    if image.dtype != torch.uint8 or image.shape[-1] != 3 or image.dim() not in (3, 4):
        raise ValueError(f"image must be uint8 (h, w, 3) or (b, h, w, 3), got {image.dtype} {tuple(image.shape)}")
    image = image[None] if image.dim() == 3 else image
    if image.shape[0] not in (1, batch):
        raise ValueError(f"give one image or one per clip ({batch}), got {image.shape[0]}")
    image = rearrange(image, "b h w c -> b c h w").float().div(127.5).sub(1)
    if image.shape[-2:] != (size, size):
        image = F.interpolate(image, size=(size, size), mode="area")
    return image.expand(batch, -1, -1, -1).to(device)
