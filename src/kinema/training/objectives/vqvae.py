"""The video VQ-VAE family: VideoVQVAE trained to reconstruct clips, MSE (+ optional L1) + beta x commitment,
its EMA codebook updated by the forward pass itself (kinema.models.vqvae)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from einops import rearrange

from kinema.models.vqvae import VideoVQVAE, VQVAEConfig
from kinema.training.config import RunConfig
from kinema.training.objectives import Family, Objective, register_family
from kinema.training.objectives.vae import VAEClips, VAEDataConfig, build_dataset, psnr, reconstruction_error


@dataclass
class VQVAEObjectiveConfig:
    mse_weight: float = 1.0  # mean squared error on [-1, 1] pixels: what PSNR measures
    l1_weight: float = 0.0  # mean absolute error: sharper edges, optional
    # beta: pulls the encoder's outputs towards their codes (the codebook itself moves by EMA, not by this loss).
    # 0.25 as in VQ-VAE, VQ-VAE-2 and VideoGPT.
    commitment_weight: float = 0.25
    # pixels at the ends of the range may overshoot (every reader clips the output to [-1, 1]): see the vae family
    clip_aware: bool = True
    preview_split: Literal["train", "test"] = "test"  # previews reconstruct clips of this split

    def __post_init__(self) -> None:
        for name in ("mse_weight", "l1_weight", "commitment_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.l1_weight == 0 and self.mse_weight == 0:
            raise ValueError("l1_weight and mse_weight cannot both be 0: nothing would teach reconstruction")


class VQVAEObjective(Objective):
    """Reconstruction plus commitment; logs the codebook's use every step (fraction used, perplexity, restarts).

    Keep train.ema_decay null for this family: the codebook tracks the raw encoder's outputs, and an EMA
    of the encoder's weights would be exported with a codebook that does not match it.
    """

    purpose = "autoencoder"  # no generation pipeline: the frozen tokenizer of a videogpt model

    def __init__(self, config: RunConfig) -> None:
        self.config, data = config, config.data
        vqvae = VideoVQVAE(config.model)
        vqvae.latent_shape(data.num_frames, data.resolution, data.resolution)  # names a clip size the model cannot take
        self.modules = {"model": vqvae}

    def training_step(self, batch: dict[str, Any], step: int, phase: str) -> dict[str, torch.Tensor]:
        vqvae, obj = self.modules["model"], self.config.objective
        x = batch["video"]  # (b, c, f, h, w) in [-1, 1]
        reconstruction, quantized = vqvae(x)
        reconstruction = reconstruction.float()
        error = reconstruction_error(reconstruction, x, obj.clip_aware)
        mse, l1 = error.pow(2).mean(), error.abs().mean()
        loss = obj.mse_weight * mse + obj.l1_weight * l1 + obj.commitment_weight * quantized.commitment
        with torch.no_grad():
            metrics = {
                "mse": mse.detach(), "l1": l1.detach(), "commitment": quantized.commitment.detach(), "psnr": psnr(reconstruction, x),
                # this batch: the fraction of the codebook it used and its effective number of codes
                "codebook_used": quantized.used, "perplexity": quantized.perplexity, "codes_restarted": quantized.restarted,
            }
        return {"loss": loss, **metrics}

    def export_pipeline(self) -> tuple[None, Any]:
        """No generation pipeline; the settings an autoencoder folder carries."""
        from kinema.pipelines.autoencoder import AutoencoderSettings

        return None, AutoencoderSettings(resolution=self.config.data.resolution)

    def export_components(self) -> dict[str, torch.nn.Module]:
        """One component, "vqvae": what a videogpt run's objective.vqvae points at."""
        return {"vqvae": self.modules["model"]}

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        """Test clips and their reconstructions through the codes side by side: uint8 (b, f, h, 2w, c)."""
        vqvae = self.modules["model"]
        clips = VAEClips(self.config.data, split=self.config.objective.preview_split)
        picks = torch.randint(len(clips), (num,), generator=generator).tolist()
        x = torch.stack([clips[i]["video"] for i in picks])  # (b, c, f, h, w)
        device = next(vqvae.parameters()).device
        reconstruction = vqvae.decode(vqvae.encode(x.to(device))).float().cpu()
        pair = torch.cat([x, reconstruction], dim=-1)  # (b, c, f, h, 2w)
        return rearrange(((pair + 1) * 127.5).round().to(torch.uint8), "b c f h w -> b f h w c")


register_family(
    Family(
        name="vqvae",
        model_config=VQVAEConfig,
        data_config=VAEDataConfig,
        objective=VQVAEObjective,
        dataset=build_dataset,
        objective_config=VQVAEObjectiveConfig,
    )
)
