"""Text-to-video and image-to-video with Kinema's video diffusion model (inference only)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from kinema.models.text import MiniLMEncoder
from kinema.models.unet3d import VideoUNet
from kinema.pipelines.common import OOD_THRESHOLD, PipelineSettings, ReferencePrompts, VideoPipelineOutput, first_frame_tensor, to_uint8

SCHEDULERS = ("dpm++", "ddim", "unipc", "euler")


@dataclass
class PipelineConfig(PipelineSettings):
    """How the trained denoiser is driven; saved as pipeline.json beside the weights."""

    family: ClassVar[str] = "diffusion"

    scheduler: dict[str, Any] = field(default_factory=dict)  # the diffusers training scheduler's config
    sample_size: int = 32  # resolution the network runs at
    output_size: int = 64  # frames are resized to this on output (the model card says which)
    num_frames: int = 16
    fps: float = 8.0
    default_steps: int = 20
    default_guidance: float = 4.0
    # guidance stops after this fraction of the steps (as diffusers' SDCFGCutoffCallback); the steps after
    # it run the conditional branch alone, at half the cost
    default_guidance_cutoff: float = 1.0
    default_scheduler: str = "dpm++"
    # prompts the model was trained on, to warn when a prompt is far from all of them
    reference_prompts: list[str] = field(default_factory=list)
    ood_threshold: float = OOD_THRESHOLD  # MiniLM cosine to the nearest reference prompt below this warns




def make_scheduler(name: str, train_config: dict[str, Any]):
    """A diffusers sampler built from the training scheduler's config (same betas and prediction type)."""
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        UniPCMultistepScheduler,
    )

    config = dict(train_config)
    if name == "dpm++":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++", solver_order=2)
    if name == "ddim":
        return DDIMScheduler.from_config(config, set_alpha_to_one=True, clip_sample=False)
    if name == "unipc":
        return UniPCMultistepScheduler.from_config(config)
    if name == "euler":
        return EulerDiscreteScheduler.from_config(config)
    raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")



class Text2VideoPipeline(ReferencePrompts):
    """Generate clips from prompts (and, in Image2VideoPipeline, from a first frame).

    ``unet`` predicts v; ``scheduler`` is any diffusers scheduler configured like the training one.
    """

    def __init__(self, unet: VideoUNet, text_encoder: MiniLMEncoder, config: PipelineConfig, scheduler: str | None = None) -> None:
        self.unet, self.text_encoder, self.config = unet.eval(), text_encoder, config
        self.scheduler = make_scheduler(scheduler or config.default_scheduler, config.scheduler)

    @classmethod
    def from_pretrained(
        cls, folder: str | os.PathLike, device: str | torch.device = "cpu", text_encoder: MiniLMEncoder | None = None,
        scheduler: str | None = None,
    ) -> Text2VideoPipeline:
        folder = Path(folder)
        config = PipelineConfig.load(folder)
        unet = VideoUNet.from_pretrained(folder, device=device)
        return cls(unet, text_encoder or MiniLMEncoder.from_pretrained().to(device), config, scheduler=scheduler)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def check_inputs(
        self, prompts: list[str], image: torch.Tensor | None, num_frames: int, steps: int, guidance: float, cutoff: float
    ) -> None:
        cfg = self.unet.config
        if not any(p.strip() for p in prompts) and image is None:
            raise ValueError("give a prompt, a first-frame image, or both")
        if not 2 <= num_frames <= cfg.num_frames:
            raise ValueError(f"num_frames must be between 2 and {cfg.num_frames} for this model, got {num_frames}")
        if steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {steps}")
        if guidance < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {guidance}")
        if not 0.0 <= cutoff <= 1.0:
            raise ValueError(f"guidance_cutoff must be a fraction of the steps in [0, 1], got {cutoff}")
        if image is not None and not cfg.image_conditioning:
            raise ValueError("this model was trained without image conditioning: it cannot animate an image")

    def prepare_image(self, image: np.ndarray | torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """uint8 (h, w, 3) or (b, h, w, 3) -> (b, 3, s, s) in [-1, 1] at the network's size."""
        if image is None:
            return None
        return first_frame_tensor(image, batch, self.config.sample_size, self.device)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str] = "",
        negative_prompt: str | Sequence[str] | None = None,
        image: np.ndarray | torch.Tensor | None = None,
        num_frames: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        guidance_cutoff: float | None = None,
        generator: torch.Generator | None = None,
        callback: Callable[[int, int, np.ndarray | None], None] | None = None,
        preview_every: int = 0,
    ) -> VideoPipelineOutput:
        """Generate one clip per prompt.

        ``callback(step, total, preview)`` runs after every step; every ``preview_every`` steps
        (0: never) ``preview`` is the current estimate of the clean video, decoded to uint8.
        ``guidance_cutoff``: classifier-free guidance applies to this first fraction of the steps only;
        the rest run the conditional branch alone (and cost half).
        """
        cfg = self.config
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        num_frames = num_frames or cfg.num_frames
        steps = num_inference_steps or cfg.default_steps
        guidance = cfg.default_guidance if guidance_scale is None else guidance_scale
        cutoff = cfg.default_guidance_cutoff if guidance_cutoff is None else guidance_cutoff
        # 1. check inputs
        self.check_inputs(prompts, image, num_frames, steps, guidance, cutoff)
        notes = self.far_prompt_warnings(prompts)
        b = len(prompts)
        # 2. encode prompts (the unconditional branch is the negative prompt, default "")
        negatives = [negative_prompt] * b if isinstance(negative_prompt, str) or negative_prompt is None else list(negative_prompt)
        use_cfg = guidance != 1.0 and cutoff > 0.0
        guided_steps = round(cutoff * steps) if use_cfg else 0
        text = self.text_encoder.encode(prompts + ([n or "" for n in negatives] if use_cfg else []))
        tokens, mask = text.tokens.to(self.device), text.mask.to(self.device)
        # 3. prepare latents and conditioning
        first = self.prepare_image(image, b)
        size = cfg.sample_size
        shape = (b, self.unet.config.in_channels, num_frames, size, size)
        x = torch.randn(shape, generator=generator, dtype=torch.float32).to(self.device)
        self.scheduler.set_timesteps(steps, device=self.device)
        x = x * self.scheduler.init_noise_sigma
        given = torch.ones(b, device=self.device) if first is not None else None
        if use_cfg:
            first = None if first is None else torch.cat([first, first])
            given = None if given is None else torch.cat([given, given])
        # 4. denoise
        for i, t in enumerate(self.scheduler.timesteps):
            guided = i < guided_steps
            if use_cfg and i == guided_steps:  # guidance is over: keep the conditional half only
                tokens, mask = tokens[:b], mask[:b]
                first = None if first is None else first[:b]
                given = None if given is None else given[:b]
            model_in = self.scheduler.scale_model_input(torch.cat([x, x]) if guided else x, t)
            out = self.unet(model_in, t.expand(model_in.shape[0]).to(self.device), tokens, mask, first, given).float()
            if guided:
                cond, uncond = out.chunk(2)
                out = uncond + guidance * (cond - uncond)
            step = self.scheduler.step(out, t, x)
            x = step.prev_sample
            if callback is not None:
                preview = None
                if preview_every and (i + 1) % preview_every == 0:
                    estimate = getattr(step, "pred_original_sample", None)
                    preview = self._decode(estimate if estimate is not None else x)
                callback(i + 1, steps, preview)
        # 5. decode
        return VideoPipelineOutput(frames=self._decode(x), prompts=prompts, warnings=notes)

    def _decode(self, x: torch.Tensor) -> np.ndarray:
        out = self.config.output_size
        if out != x.shape[-1]:
            b, c, f, h, w = x.shape
            x = rearrange(F.interpolate(rearrange(x, "b c f h w -> (b f) c h w"), size=(out, out), mode="bilinear", align_corners=False), "(b f) c h w -> b c f h w", f=f)
        return to_uint8(x)


class Image2VideoPipeline(Text2VideoPipeline):
    """Animate a first frame: the same network, with the clean first frame as conditioning."""

    @torch.no_grad()
    def __call__(self, image: np.ndarray | torch.Tensor, prompt: str | Sequence[str] = "", **kwargs: Any) -> VideoPipelineOutput:
        if image is None:
            raise ValueError("Image2VideoPipeline needs an image (the first frame)")
        return super().__call__(prompt=prompt, image=image, **kwargs)
