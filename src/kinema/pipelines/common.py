"""What every pipeline shares: the pipeline.json settings file, the output dataclass, decoding to uint8."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from einops import rearrange

PIPELINE_NAME = "pipeline.json"


class PipelineSettings:
    """Mixin for a pipeline's settings dataclass, saved as pipeline.json beside the weights."""

    family: ClassVar[str] = "Kinema"  # named in the error for a folder without pipeline.json

    def save(self, folder: str | os.PathLike) -> None:
        (Path(folder) / PIPELINE_NAME).write_text(json.dumps(asdict(self), indent=2) + "\n")

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
