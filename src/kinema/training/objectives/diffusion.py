"""The diffusion family: v-prediction on the video U-Net, text through MiniLM tokens, image-to-video
through a first-frame channel dropped at random, classifier-free guidance by caption dropout."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F

from kinema.data.captions import caption_sample
from kinema.data.shapes import CaptionedShapes, canonical_captions, shapes_vocabulary
from kinema.models.text import MiniLMEncoder
from kinema.models.unet3d import VideoUNet, VideoUNetConfig
from kinema.training.config import RunConfig
from kinema.training.objectives import Family, Objective, register_family

PREVIEW_PROMPTS = (
    "a small red circle moving left slowly",
    "a large blue triangle moving up quickly",
    "a big yellow square drifting right",
    "a tiny cyan circle moving down fast",
)


@dataclass
class DiffusionDataConfig:
    dataset: Literal["shapes", "folder"] = "shapes"  # Captioned Shapes, or a folder of your videos (VideoFolder)
    split: Literal["train", "test", "heldout"] = "train"  # Shapes split
    num_samples: int = 200_000  # Shapes clips per epoch (procedural: any number)
    resolution: int = 32  # frame size the model trains at
    num_frames: int = 16
    captions: Literal["canonical", "varied"] = "varied"  # varied phrasing teaches wording, not one template
    seed: int = 0
    folder: Optional[str] = None  # dataset: folder -> the VideoFolder root


@dataclass
class DiffusionObjectiveConfig:
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"  # cosine schedule (diffusers name)
    # Divide the schedule's signal-to-noise ratio by noise_shift**2 at every step (Hoogeboom et al.
    # 2023, "simple diffusion"; Open-Sora and HunyuanVideo shift their video schedules the same
    # way). Sixteen frames of one object repeat the same pixels, so noise that hides a still image
    # still shows a clip's motion: unshifted, the cosine schedule left direction readable from the
    # noisy input up to t=900 of 1000, and the model never learnt to decide it. 1.0: no shift.
    noise_shift: float = 1.0
    prediction_type: Literal["v_prediction", "epsilon"] = "v_prediction"
    # min-SNR-gamma loss weighting (Hang et al. 2023); null: plain MSE on the target. Off by default:
    # for v-prediction it weights the noisiest steps by ~snr, and those are where a video's motion is
    # decided. Measured on Captioned Shapes at 2000 steps with gamma=5: the model denoised real motion
    # (direction right in 94% of clips from t=900) yet generated direction at chance (22%).
    snr_gamma: Optional[float] = None
    # training timesteps are drawn uniformly from this fraction of the schedule (0: clean, 1: pure noise);
    # a fine-tuning stage can narrow it to the low-noise steps where small details are drawn
    timestep_range: tuple[float, float] = (0.0, 1.0)
    text_dropout: float = 0.1  # captions replaced by "" so the model also learns the unconditional branch
    image_conditioning: float = 0.3  # fraction of clips conditioned on their clean first frame
    text_statistics_prompts: int = 2000  # captions used to standardise the MiniLM token embeddings
    output_size: int = 64  # generated frames are resized to this on output
    sample_steps: int = 20  # DPM-Solver++ steps for previews and the exported default
    guidance_scale: float = 4.0
    guidance_cutoff: float = 1.0  # guidance stops after this fraction of the sampling steps
    preview_prompts: list[str] = field(default_factory=lambda: list(PREVIEW_PROMPTS))
    # Latent diffusion: an autoencoder (built-in name or model folder, e.g. shapes-vae) whose frozen VAE
    # encodes every clip; the denoiser works on its latents (model.in_channels = its latent channels,
    # model.sample_size = data.resolution / its spatial compression) and the export ships a copy of it.
    # null: pixel space.
    vae: Optional[str] = None
    # sha256 of the VAE's model.safetensors: a run refuses another VAE (its latents would mean something else)
    vae_sha256: Optional[str] = None
    latent_scale_clips: int = 64  # clips whose latents set the scale (1 / their std) the denoiser sees

    def __post_init__(self) -> None:
        lo, hi = self.timestep_range
        if not 0.0 <= lo < hi <= 1.0 or round(hi * self.num_train_timesteps) <= round(lo * self.num_train_timesteps):
            raise ValueError(f"timestep_range must be [lo, hi] with 0 <= lo < hi <= 1 spanning at least one timestep, got {list(self.timestep_range)}")




class DiffusionObjective(Objective):
    def __init__(self, config: RunConfig) -> None:
        from diffusers import DDPMScheduler

        self.config, obj = config, config.objective
        self.vae, self.latent_scale = self._load_vae() if obj.vae else (None, 0.0)
        compression = self.vae.config.spatial_compression if self.vae is not None else 1
        if config.model.sample_size * compression != config.data.resolution:
            what = f"data.resolution / the VAE's spatial compression {compression}" if self.vae is not None else "data.resolution"
            raise ValueError(f"model.sample_size ({config.model.sample_size}) must equal {what} ({config.data.resolution // compression})")
        self.noise_scheduler = DDPMScheduler(
            num_train_timesteps=obj.num_train_timesteps,
            beta_schedule=obj.beta_schedule,
            prediction_type=obj.prediction_type,
            clip_sample=False,
        )
        if obj.noise_shift != 1.0:
            self.noise_scheduler = DDPMScheduler.from_config(
                self.noise_scheduler.config, trained_betas=shifted_betas(self.noise_scheduler.alphas_cumprod, obj.noise_shift).tolist()
            )
        self.text_encoder = MiniLMEncoder.from_pretrained()
        unet = VideoUNet(config.model)
        mean, std = self._text_statistics(obj.text_statistics_prompts)
        unet.set_text_statistics(mean, std)
        self.modules = {"model": unet}
        if self.vae is not None:
            self.latent_scale = self._latent_scale(obj.latent_scale_clips)

    def _load_vae(self):
        """The frozen VAE of objective.vae, checked against objective.vae_sha256 and the model's channels."""
        from kinema.hub import open_model
        from kinema.models.text import sha256_file
        from kinema.models.vae import VideoVAE

        obj = self.config.objective
        folder = open_model(obj.vae).component("vae")
        if obj.vae_sha256 and (found := sha256_file(folder / "model.safetensors")) != obj.vae_sha256:
            raise ValueError(f"objective.vae_sha256: the VAE of {obj.vae} has sha256 {found}, not the {obj.vae_sha256} this run "
                             "trains on (its latents would mean something else); start a new run for another VAE")
        vae = VideoVAE.from_pretrained(folder).requires_grad_(False)
        if vae.config.latent_channels != self.config.model.in_channels:
            raise ValueError(f"model.in_channels ({self.config.model.in_channels}) must equal the VAE's latent channels ({vae.config.latent_channels})")
        return vae, 1.0

    @torch.no_grad()
    def _latent_scale(self, count: int) -> float:
        """1 / the std of the VAE's latents (posterior means) over ``count`` training clips: unit-scale latents."""
        dataset = build_dataset(self.config)
        clips = torch.stack([dataset[i]["video"] for i in range(min(count, len(dataset)))])
        return float(1.0 / self.vae.encode(clips).mode().std().clamp_min(1e-6))

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Pixels (b, c, f, h, w) in [-1, 1] -> what the denoiser sees: the scaled latent, or the pixels themselves."""
        if self.vae is None:
            return video
        self.vae.to(video.device)
        return self.vae.encode(video.float()).mode() * self.latent_scale

    def _text_statistics(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.text_encoder.token_statistics(caption_sample(build_dataset(self.config), count))

    def training_step(self, batch: dict[str, Any], step: int, phase: str) -> dict[str, torch.Tensor]:
        unet = self.modules["model"]
        x0 = self.encode(batch["video"])  # (b, c, f, h, w): pixels in [-1, 1], or scaled latents
        b, device = x0.shape[0], x0.device
        obj = self.config.objective
        captions = ["" if torch.rand(()) < obj.text_dropout else c for c in batch["caption"]]
        text = self.text_encoder.encode(captions)
        given = (torch.rand(b) < obj.image_conditioning).float().to(device)

        noise = torch.randn_like(x0)
        lo, hi = (round(f * obj.num_train_timesteps) for f in obj.timestep_range)
        t = torch.randint(lo, hi, (b,), device=device)
        xt = self.noise_scheduler.add_noise(x0, noise, t)
        target = self.noise_scheduler.get_velocity(x0, noise, t) if obj.prediction_type == "v_prediction" else noise
        pred = unet(xt, t, text.tokens.to(device), text.mask.to(device), x0[:, :, 0], given).float()

        per_sample = F.mse_loss(pred, target.float(), reduction="none").mean(dim=(1, 2, 3, 4))
        if obj.snr_gamma is not None:
            alphas = self.noise_scheduler.alphas_cumprod.to(device)[t]
            snr = alphas / (1 - alphas)
            weight = snr.clamp(max=obj.snr_gamma) / (snr + 1 if obj.prediction_type == "v_prediction" else snr)
            per_sample = per_sample * weight
        return {"loss": per_sample.mean()}

    def pipeline(self, unet: VideoUNet):
        from kinema.pipelines.text2video import Text2VideoPipeline

        device = next(unet.parameters()).device
        vae = None if self.vae is None else self.vae.to(device)
        return Text2VideoPipeline(unet, self.text_encoder.to(device), self.pipeline_settings(), vae=vae)

    def pipeline_settings(self):
        from kinema.pipelines.text2video import DiffusionSettings

        obj, data = self.config.objective, self.config.data
        return DiffusionSettings(
            scheduler=dict(self.noise_scheduler.config),
            sample_size=self.config.model.sample_size,
            latent_scale=self.latent_scale,
            output_size=obj.output_size,
            num_frames=data.num_frames,
            default_steps=obj.sample_steps,
            default_guidance=obj.guidance_scale,
            default_guidance_cutoff=obj.guidance_cutoff,
            reference_prompts=canonical_captions() if data.dataset == "shapes" else [],
        )

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        prompts = [self.config.objective.preview_prompts[i % len(self.config.objective.preview_prompts)] for i in range(num)]
        out = self.pipeline(self.modules["model"])(prompts, generator=generator)
        return torch.from_numpy(out.frames)

    def export_components(self) -> dict[str, torch.nn.Module]:
        """The denoiser, and for latent diffusion a copy of its VAE (a later shapes-vae cannot change it)."""
        return {"denoiser": self.modules["model"], **({"vae": self.vae} if self.vae is not None else {})}

    def export_pipeline(self) -> tuple[str, Any]:
        """The "diffusion" pipeline with the training scheduler and the sampling defaults."""
        return "diffusion", self.pipeline_settings()

    def export_vocabulary(self):
        """Captioned Shapes' vocabulary for a model trained on its captions."""
        return shapes_vocabulary() if self.config.data.dataset == "shapes" else None


def shifted_betas(alphas_cumprod: torch.Tensor, shift: float) -> torch.Tensor:
    """Betas of the schedule whose SNR at every step is the given one's divided by ``shift**2``."""
    if shift <= 0:
        raise ValueError(f"noise_shift must be positive, got {shift}")
    log_snr = torch.log(alphas_cumprod.double()) - torch.log1p(-alphas_cumprod.double()) - 2 * math.log(shift)
    shifted = torch.sigmoid(log_snr)
    previous = torch.cat([shifted.new_ones(1), shifted[:-1]])
    return (1 - shifted / previous).clamp(max=0.999).float()


def build_dataset(config: RunConfig) -> torch.utils.data.Dataset:
    data = config.data
    if data.dataset == "shapes":
        return CaptionedShapes(
            data.split, num_samples=data.num_samples, resolution=data.resolution, num_frames=data.num_frames,
            captions=data.captions, seed=data.seed,
        )
    if not data.folder:
        raise ValueError("data.folder is required when data.dataset is 'folder'")
    from kinema.data.video_folder import VideoFolder

    return VideoFolder(data.folder, num_frames=data.num_frames, size=data.resolution, crop=data.resolution, seed=data.seed)


register_family(
    Family(
        name="diffusion",
        model_config=VideoUNetConfig,
        data_config=DiffusionDataConfig,
        objective=DiffusionObjective,
        dataset=build_dataset,
        objective_config=DiffusionObjectiveConfig,
    )
)
