"""The toy family, for smoke tests only: a tiny conv net that denoises procedurally drawn moving squares.

It exercises every part of the trainer (data order, dropout RNG, EMA, previews, export with
save_pretrained / from_pretrained) in seconds on a CPU; it is not a video model to use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from safetensors.torch import load_file, save_file
from torch import nn

from kinema.io.atomic import atomic_path
from kinema.training.config import RunConfig, from_dict, to_dict
from kinema.training.objectives import Family, Objective, register_family


@dataclass
class ToyDenoiserConfig:
    channels: int = 3  # colour channels of the clips
    hidden: int = 16  # channels of the single hidden 3-D conv layer
    dropout: float = 0.0  # dropout after the hidden layer (makes the RNG state matter for exact resume)

    def __post_init__(self) -> None:
        if self.channels < 1 or self.hidden < 1:
            raise ValueError(f"channels and hidden must be at least 1, got {self.channels} and {self.hidden}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class ToyDataConfig:
    num_samples: int = 64  # clips in the dataset (one epoch)
    num_frames: int = 4
    height: int = 8
    width: int = 8
    noise_std: float = 0.5  # Gaussian noise added to the clean clip; the model learns to remove it
    seed: int = 0  # the dataset is a pure function of (seed, index)

    def __post_init__(self) -> None:
        if min(self.num_samples, self.num_frames, self.height, self.width) < 1:
            raise ValueError("num_samples, num_frames, height and width must be at least 1")


class ToyDenoiser(nn.Module):
    """x (b c f h w) noisy in [-1, 1] -> denoised clip, the same shape."""

    def __init__(self, config: ToyDenoiserConfig):
        super().__init__()
        self.config = config
        self.conv_in = nn.Conv3d(config.channels, config.hidden, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(config.dropout)
        self.conv_out = nn.Conv3d(config.hidden, config.channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(F.silu(self.conv_in(x)))  # (b, hidden, f, h, w)
        return x + self.conv_out(h)

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / "config.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps({"_class_name": type(self).__name__, **to_dict(self.config)}, indent=2) + "\n")
        state = {k: (v.to(dtype) if dtype is not None else v).detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_path(directory / "model.safetensors", overwrite=True) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ToyDenoiser:
        """Load from a component folder (config.json + model.safetensors), a model folder or a run folder."""
        directory = Path(directory)
        if not (directory / "config.json").is_file():
            from kinema.hub import open_model

            directory = open_model(directory).component("denoiser")
        raw = json.loads((directory / "config.json").read_text())
        # keys starting with "_" are metadata (class name, training provenance), not config
        config = from_dict(ToyDenoiserConfig, {k: v for k, v in raw.items() if not k.startswith("_")}, "config.json")
        model = cls(config)
        model.load_state_dict(load_file(str(directory / "model.safetensors")))
        return model


def render_clips(num: int, config: ToyDataConfig, generator: torch.Generator) -> torch.Tensor:
    """`num` clips (b c f h w) in [-1, 1]: a square of one colour moving on a background of another."""
    f, h, w = config.num_frames, config.height, config.width
    colours = torch.rand(num, 2, 3, generator=generator) * 2 - 1  # (b, background/square, rgb)
    start = torch.rand(num, 2, generator=generator) * torch.tensor([h, w])
    velocity = torch.randint(-1, 2, (num, 2), generator=generator)
    size = max(1, min(h, w) // 3)
    t = torch.arange(f)
    pos = (start[:, None, :] + velocity[:, None, :] * t[None, :, None]).floor()  # (b, f, yx)
    ys = (torch.arange(h)[None, None, :] - pos[..., 0:1]) % h < size  # (b, f, h)
    xs = (torch.arange(w)[None, None, :] - pos[..., 1:2]) % w < size  # (b, f, w)
    mask = (ys[..., :, None] & xs[..., None, :]).float()  # (b, f, h, w)
    background = colours[:, 0, :, None, None, None]  # (b, c, 1, 1, 1)
    square = colours[:, 1, :, None, None, None]
    return background + (square - background) * mask[:, None]  # (b, c, f, h, w)


class ToyClips(torch.utils.data.Dataset):
    """Map-style dataset of (noisy, clean) clips, each a pure function of (seed, index)."""

    def __init__(self, config: ToyDataConfig):
        self.config = config

    def __len__(self) -> int:
        return self.config.num_samples

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + index)
        clean = render_clips(1, self.config, generator)[0]  # (c, f, h, w)
        noise = torch.randn(clean.shape, generator=generator)
        return {"noisy": clean + self.config.noise_std * noise, "clean": clean}


class ToyObjective(Objective):
    """Mean squared error between the denoised and the clean clip."""

    def __init__(self, config: RunConfig):
        if config.model.channels != 3:
            raise ValueError(f"the toy clips are RGB: model.channels must be 3, got {config.model.channels}")
        self.data_config = config.data
        self.modules = {"model": ToyDenoiser(config.model)}

    def training_step(self, batch: dict[str, torch.Tensor], step: int, phase: str) -> dict[str, torch.Tensor]:
        denoised = self.modules["model"](batch["noisy"])
        return {"loss": F.mse_loss(denoised.float(), batch["clean"])}

    def export_components(self) -> dict[str, nn.Module]:
        return {"denoiser": self.modules["model"]}

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        model = self.modules["model"]
        clean = render_clips(num, self.data_config, generator)
        noisy = clean + self.data_config.noise_std * torch.randn(clean.shape, generator=generator)
        device = next(model.parameters()).device
        denoised = model(noisy.to(device)).float().cpu()
        video = ((denoised.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return rearrange(video, "b c f h w -> b f h w c")


register_family(
    Family(
        name="toy",
        model_config=ToyDenoiserConfig,
        data_config=ToyDataConfig,
        objective=ToyObjective,
        dataset=lambda config: ToyClips(config.data),
    )
)
