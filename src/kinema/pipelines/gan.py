"""Video generation with Kinema's video GAN (inference only): unconditional, class- or text-conditioned,
and image-to-video by inverting the first frame into the generator's latents.

Image-to-video inverts rather than conditions: the first frame is fitted by gradient descent on the
content latent z_c and the first step's motion noise (what the MoCoGAN decomposition says the first
frame is made of), and the later motion noise is drawn fresh, so one picture gives many continuations.
It needs no encoder or extra training, so every trained GAN animates images as shipped, at the price
of a few seconds of optimisation and a first frame that is as close as the generator can draw it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from kinema.models.gan import VideoGenerator
from kinema.pipelines.common import OOD_THRESHOLD, PipelineSettings, ReferencePrompts, VideoPipelineOutput, first_frame_tensor, to_uint8


@dataclass
class GANPipelineConfig(PipelineSettings):
    """How the trained generator is driven; saved as pipeline.json beside the weights."""

    family: ClassVar[str] = "GAN"

    output_size: int = 64  # frames are resized to this on output (bilinear) when the model runs smaller
    num_frames: int = 16  # default clip length (the motion GRU runs any length; beyond this it extrapolates)
    fps: float = 8.0
    class_names: list[str] = field(default_factory=list)  # condition "class": the prompt that selects each class index
    reference_prompts: list[str] = field(default_factory=list)  # condition "text": training prompts, for the far-prompt warning
    ood_threshold: float = OOD_THRESHOLD  # MiniLM cosine to the nearest reference prompt below this warns
    default_steps: int = 100  # image-to-video: gradient steps fitting the latents to the first frame
    inversion_restarts: int = 4  # image-to-video: random starts fitted together; the closest wins
    inversion_lr: float = 0.05



@dataclass
class GANPipelineOutput(VideoPipelineOutput):
    inversion_error: list[float] | None = None  # image-to-video: RMS error of the fitted first frame, per clip, in [0, 255]



class GANPipeline(ReferencePrompts):
    """Generate clips with a VideoGenerator: one forward pass, no sampling steps.

    Unconditional models take no prompt (``num_videos`` clips); conditional ones need one prompt per
    clip (text, or a class name for class-conditional models) and make ``num_videos`` clips of each.
    """

    def __init__(self, generator: VideoGenerator, config: GANPipelineConfig, text_encoder=None) -> None:
        self.generator, self.config = generator.eval(), config
        self.condition = generator.config.condition
        if self.condition == "text" and text_encoder is None:
            from kinema.models.text import MiniLMEncoder

            text_encoder = MiniLMEncoder.from_pretrained().to(self.device)
        self.text_encoder = text_encoder
        if self.condition == "class" and len(config.class_names) != generator.config.num_classes:
            raise ValueError(f"pipeline.json names {len(config.class_names)} classes; the model has {generator.config.num_classes}")

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device = "cpu", text_encoder=None) -> GANPipeline:
        folder = Path(folder)
        config = GANPipelineConfig.load(folder)
        return cls(VideoGenerator.from_pretrained(folder, device=device), config, text_encoder=text_encoder)

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def check_inputs(
        self, prompts: list[str], num_videos: int, num_frames: int, image, negative_prompt, steps: int | None,
        guidance: float | None, cutoff: float | None,
    ) -> None:
        if num_videos < 1:
            raise ValueError(f"num_videos must be at least 1, got {num_videos}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {num_frames}")
        if negative_prompt:
            raise ValueError("a GAN has no negative prompt: it samples in one pass, without guidance")
        if guidance is not None:
            raise ValueError("a GAN has no guidance scale: it samples in one pass, without guidance")
        if cutoff is not None:
            raise ValueError("a GAN has no guidance cutoff: it samples in one pass, without guidance")
        if steps is not None and image is None:
            raise ValueError("a GAN samples in one pass: num_inference_steps only sets the first-frame fitting of image-to-video")
        if steps is not None and steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {steps}")
        given = [p for p in prompts if p.strip()]
        if self.condition == "none":
            if given:
                raise ValueError(f"this model is unconditional: it takes no prompt (got {given[0]!r}); generate without one")
            return
        if len(given) < len(prompts) or not prompts:
            kind = "text-conditioned" if self.condition == "text" else f"class-conditional (classes: {', '.join(self.config.class_names)})"
            raise ValueError(f"this model is {kind}: give a prompt")
        if self.condition == "class":
            for p in prompts:
                if p.strip() not in self.config.class_names:
                    raise ValueError(f"{p!r} is not a class of this model; the prompt must be one of: {', '.join(self.config.class_names)}")

    def encode_prompts(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """The generator's condition inputs for one prompt per clip."""
        if self.condition == "class":
            return {"labels": torch.tensor([self.config.class_names.index(p.strip()) for p in prompts], device=self.device)}
        if self.condition == "text":
            text = self.text_encoder.encode(prompts)
            return {"text_tokens": text.tokens.to(self.device), "text_mask": text.mask.to(self.device)}
        return {}

    def prepare_image(self, image: np.ndarray | torch.Tensor, batch: int) -> torch.Tensor:
        """uint8 (h, w, 3) or (b, h, w, 3) -> (b, 3, s, s) in [-1, 1] at the generator's resolution."""
        return first_frame_tensor(image, batch, self.generator.config.resolution, self.device)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str] | None = None,
        num_videos: int | None = None,
        image: np.ndarray | torch.Tensor | None = None,
        num_frames: int | None = None,
        generator: torch.Generator | None = None,
        negative_prompt: str | Sequence[str] | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        guidance_cutoff: float | None = None,
        callback: Callable[[int, int, np.ndarray | None], None] | None = None,
    ) -> GANPipelineOutput:
        """Generate clips: ``num_videos`` of them (default 1) for an unconditional model, ``num_videos`` per
        prompt for a conditional one. With ``image`` (uint8 (h, w, 3), or one per clip) the clips start
        from that frame (image-to-video; ``num_inference_steps`` sets the fitting steps).

        ``negative_prompt``, ``guidance_scale`` and ``guidance_cutoff`` exist so callers written for the
        diffusion pipeline can call this one; a GAN has none of them, and a value for them is an error. ``callback(step, total,
        None)`` runs after each fitting step of image-to-video and once after the forward pass.
        """
        cfg = self.config
        prompts = [] if prompt is None else [prompt] if isinstance(prompt, str) else list(prompt)
        per_prompt = 1 if num_videos is None else num_videos
        num_frames = cfg.num_frames if num_frames is None else num_frames
        # 1. check inputs
        if self.condition == "none" and not prompts:
            prompts = [""]
        self.check_inputs(prompts, per_prompt, num_frames, image, negative_prompt, num_inference_steps, guidance_scale, guidance_cutoff)
        prompts = [p for p in prompts for _ in range(per_prompt)]
        notes = []
        if self.condition == "text":
            unique = list(dict.fromkeys(prompts))
            notes = self.far_prompt_warnings(unique)
        b = len(prompts)
        # 2. encode the condition
        cond = self.encode_prompts(prompts)
        # 3. prepare latents
        content, noise = self.generator.sample_latents(b, num_frames, generator)
        error, steps = None, num_inference_steps or cfg.default_steps
        total = steps + 1 if image is not None else 1  # progress: fitting steps, then the forward pass
        # 4. image-to-video: fit the content and the first motion step to the given first frame
        if image is not None:
            target = self.prepare_image(image, b)
            content, noise, error = self.invert(target, content, noise, cond, steps, generator, callback)
        # 5. generate and decode
        video = self.generator(content, noise, **cond)
        if callback is not None:
            callback(total, total, None)
        return GANPipelineOutput(frames=self._decode(video), prompts=prompts, warnings=notes, inversion_error=error)

    @torch.enable_grad()
    def invert(
        self,
        target: torch.Tensor,
        content: torch.Tensor,
        noise: torch.Tensor,
        cond: dict[str, torch.Tensor],
        steps: int,
        generator: torch.Generator | None,
        callback: Callable[[int, int, np.ndarray | None], None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
        """Fit (content, first motion noise) so that frame 0 matches ``target`` (b, c, h, w) in [-1, 1].

        ``inversion_restarts`` random starts per clip are fitted together with Adam on the pixel MSE
        (plus a weak pull of the latents towards the normal's typical radius); each clip keeps its
        closest start. Later motion noise stays as drawn. Only the first 1 + temporal_radius frames
        are generated while fitting: frame 0 does not depend on later ones.
        """
        cfg, gen = self.config, self.generator
        b, r = target.shape[0], cfg.inversion_restarts
        starts_c, starts_n = gen.sample_latents(b * (r - 1), 1, generator)
        content0 = torch.cat([content, starts_c]).detach().requires_grad_(True)  # start 0 is the drawn latent
        first0 = torch.cat([noise[:, :1], starts_n]).detach().requires_grad_(True)
        horizon = min(noise.shape[1], 1 + gen.temporal_radius)
        rest = noise[:, 1:horizon].repeat(r, 1, 1)
        cond_r = {k: v.repeat(r, *([1] * (v.dim() - 1))) for k, v in cond.items()}
        target_r = target.repeat(r, 1, 1, 1)
        optimizer = torch.optim.Adam([content0, first0], lr=cfg.inversion_lr)
        params_before = [p.requires_grad for p in gen.parameters()]
        gen.requires_grad_(False)
        try:
            for step in range(steps):
                frame = gen(content0, torch.cat([first0, rest], dim=1), **cond_r)[:, :, 0]
                mse = (frame - target_r).pow(2).mean(dim=(1, 2, 3))
                prior = (content0.pow(2).mean(dim=1) - 1).pow(2) + (first0.pow(2).mean(dim=(1, 2)) - 1).pow(2)
                optimizer.zero_grad(set_to_none=True)
                (mse.sum() + 1e-3 * prior.sum()).backward()
                optimizer.step()
                if callback is not None:
                    callback(step + 1, steps + 1, None)
            with torch.no_grad():
                frame = gen(content0, torch.cat([first0, rest], dim=1), **cond_r)[:, :, 0]
                mse = (frame - target_r).pow(2).mean(dim=(1, 2, 3)).view(r, b)
        finally:
            for p, flag in zip(gen.parameters(), params_before):
                p.requires_grad_(flag)
        best = mse.argmin(dim=0)  # (b,)
        pick = best * b + torch.arange(b, device=best.device)
        content = content0.detach()[pick]
        noise = torch.cat([first0.detach()[pick], noise[:, 1:]], dim=1)
        rms = (mse.gather(0, best[None])[0].sqrt() * 127.5).tolist()  # [-1, 1] units -> 0..255
        return content, noise, rms

    def _decode(self, video: torch.Tensor) -> np.ndarray:
        out = self.config.output_size
        if out != video.shape[-1]:
            f = video.shape[2]
            frames = F.interpolate(rearrange(video, "b c f h w -> (b f) c h w"), size=(out, out), mode="bilinear", align_corners=False)
            video = rearrange(frames, "(b f) c h w -> b c f h w", f=f)
        return to_uint8(video)
