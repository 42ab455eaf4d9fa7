"""The video VAE family: the causal VideoVAE trained to reconstruct Shapes clips, L1 + MSE + a small KL term."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F
from einops import rearrange

from kinema.data.shapes import CaptionedShapes, ShapeMotion, frames_to_tensor
from kinema.models.vae import VideoVAE, VideoVAEConfig
from kinema.training.config import RunConfig
from kinema.training.objectives import Family, Objective, register_family


@dataclass
class VAEDataConfig:
    # "mixed": Captioned Shapes and Shape Motion in turn (the fixed palette of one, the random colours and curved
    # paths of the other); "shapes" / "shape_motion" one of them; "folder": your videos (VideoFolder)
    dataset: Literal["mixed", "shapes", "shape_motion", "folder"] = "mixed"
    split: Literal["train", "test"] = "train"
    num_samples: int = 200_000  # clips per epoch (procedural: any number)
    resolution: int = 64  # frame size the model trains at
    num_frames: int = 16  # must be 1 + t*k for the model's temporal_compression t
    seed: int = 0
    folder: Optional[str] = None  # dataset "folder": the VideoFolder root

    def __post_init__(self) -> None:
        if self.dataset == "folder" and not self.folder:
            raise ValueError("data.folder is required when data.dataset is 'folder'")


@dataclass
class VAEObjectiveConfig:
    l1_weight: float = 1.0  # mean absolute error on [-1, 1] pixels: keeps edges sharp
    mse_weight: float = 1.0  # mean squared error: what PSNR measures
    # KL(q(z|x) || N(0, I)) per latent element, averaged. Small: it keeps the latent's scale near 1 for the
    # latent diffusion model that trains on it, without blurring the reconstructions.
    kl_weight: float = 1.0e-5
    sample_posterior: bool = True  # decode a sample of q(z|x) while training (false: its mean)
    # Pixels at the ends of the range (black background, saturated colour) are penalised only for falling short:
    # every reader clips the output to [-1, 1], so an overshoot there is exact, and the network need not learn to
    # land on -1 and 1 exactly. Elsewhere (edges, other colours) the error counts both ways.
    clip_aware: bool = True
    preview_split: Literal["train", "test"] = "test"  # previews reconstruct clips of this split

    def __post_init__(self) -> None:
        for name in ("l1_weight", "mse_weight", "kl_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.l1_weight == 0 and self.mse_weight == 0:
            raise ValueError("l1_weight and mse_weight cannot both be 0: nothing would teach reconstruction")


class VAEClips(torch.utils.data.Dataset):
    """{"video": (c, f, h, w) in [-1, 1]}: Captioned Shapes, Shape Motion, both in turn, or a VideoFolder."""

    def __init__(self, data: VAEDataConfig, split: str | None = None) -> None:
        split = split or data.split
        kind, n = data.dataset, data.num_samples
        common = dict(resolution=data.resolution, num_frames=data.num_frames, seed=data.seed)
        if kind == "folder":
            from kinema.data.video_folder import VideoFolder

            self.sources = [VideoFolder(data.folder, num_frames=data.num_frames, size=data.resolution, crop=data.resolution, seed=data.seed)]
        elif kind == "mixed":  # even items from Captioned Shapes, odd from Shape Motion
            self.sources = [CaptionedShapes(split, num_samples=(n + 1) // 2, **common), ShapeMotion(split, num_samples=max(1, n // 2), **common)]
        elif kind == "shapes":
            self.sources = [CaptionedShapes(split, num_samples=n, **common)]
        else:
            self.sources = [ShapeMotion(split, num_samples=n, **common)]
        self.length = len(self.sources[0]) if kind == "folder" else n

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} clips")
        source = self.sources[index % len(self.sources)]
        i = index // len(self.sources)
        if hasattr(source, "render"):
            return {"video": frames_to_tensor(source.render(i))}
        return {"video": source[i]["video"]}


def build_dataset(config: RunConfig) -> torch.utils.data.Dataset:
    return VAEClips(config.data)


def reconstruction_error(reconstruction: torch.Tensor, target: torch.Tensor, clip_aware: bool) -> torch.Tensor:
    """reconstruction - target; with ``clip_aware``, an overshoot past a target at -1 or 1 counts as 0 (it is clipped)."""
    error = reconstruction - target
    if not clip_aware:
        return error
    at_end = target.abs() >= 1.0  # frames_to_tensor maps 0 and 255 to exactly -1 and 1
    return torch.where(at_end, reconstruction.clamp(-1, 1) - target, error)


def psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of clips in [-1, 1] (peak-to-peak 2), over the batch; the reconstruction is clipped first."""
    mse = F.mse_loss(reconstruction.float().clamp(-1, 1), target.float())
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-10))


class VAEObjective(Objective):
    """Reconstruction (L1 + MSE on pixels) plus kl_weight x the mean KL of the posterior."""

    def __init__(self, config: RunConfig) -> None:
        self.config, model, data = config, config.model, config.data
        vae = VideoVAE(model)
        vae.latent_shape(data.num_frames, data.resolution, data.resolution)  # names a clip size the model cannot take
        self.modules = {"model": vae}

    def training_step(self, batch: dict[str, Any], step: int, phase: str) -> dict[str, torch.Tensor]:
        vae, obj = self.modules["model"], self.config.objective
        x = batch["video"]  # (b, c, f, h, w) in [-1, 1]
        reconstruction, posterior = vae(x, sample=obj.sample_posterior)
        reconstruction = reconstruction.float()
        error = reconstruction_error(reconstruction, x, obj.clip_aware)
        l1 = error.abs().mean()
        mse = error.pow(2).mean()
        kl = posterior.kl().mean()
        loss = obj.l1_weight * l1 + obj.mse_weight * mse + obj.kl_weight * kl
        with torch.no_grad():
            metrics = {"l1": l1.detach(), "mse": mse.detach(), "kl": kl.detach(), "psnr": psnr(reconstruction, x), "latent_std": posterior.mean.detach().std()}
        return {"loss": loss, **metrics}

    purpose = "autoencoder"  # kinema reconstruct / interpolate, and the frozen component of a latent model

    def export_pipeline(self) -> tuple[None, Any]:
        """No generation pipeline; the settings kinema reconstruct / interpolate read."""
        from kinema.pipelines.autoencoder import AutoencoderSettings

        return None, AutoencoderSettings(resolution=self.config.data.resolution)

    def export_components(self) -> dict[str, torch.nn.Module]:
        """The model folder holds one component, "vae" (a latent model's folder can point at it)."""
        return {"vae": self.modules["model"]}

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        """Test clips and their reconstructions (from the posterior mean) side by side: uint8 (b, f, h, 2w, c)."""
        vae = self.modules["model"]
        clips = VAEClips(self.config.data, split=self.config.objective.preview_split)
        picks = torch.randint(len(clips), (num,), generator=generator).tolist()
        x = torch.stack([clips[i]["video"] for i in picks])  # (b, c, f, h, w)
        device = next(vae.parameters()).device
        reconstruction = vae.decode(vae.encode(x.to(device)).mode()).float().cpu().clamp(-1, 1)
        pair = torch.cat([x, reconstruction], dim=-1)  # (b, c, f, h, 2w)
        return rearrange(((pair + 1) * 127.5).round().to(torch.uint8), "b c f h w -> b f h w c")


register_family(
    Family(
        name="vae",
        model_config=VideoVAEConfig,
        data_config=VAEDataConfig,
        objective=VAEObjective,
        dataset=build_dataset,
        objective_config=VAEObjectiveConfig,
    )
)
