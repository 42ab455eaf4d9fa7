"""Video generation with Kinema's video GAN (inference only): unconditional, class- or text-conditioned,
and image-to-video by inverting the first frame into the generator's latents.

Image-to-video inverts rather than conditions: the first frame is fitted by gradient descent on the
content latent z_c and the first step's motion noise (what the MoCoGAN decomposition says the first
frame is made of), and the later motion noise is drawn fresh, so one picture gives many continuations.
It needs no encoder or extra training, so every trained GAN animates images as shipped, at the price
of a few seconds of optimisation and a first frame that is as close as the generator can draw it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from kinema.models.gan import VideoGenerator
from kinema.pipelines import Registration, register
from kinema.pipelines.common import (
    OOD_THRESHOLD,
    Callback,
    Contract,
    Option,
    PipelineSettings,
    ReferencePrompts,
    VideoPipeline,
    VideoPipelineOutput,
    first_frame_tensor,
    paste_first_frame,
    resize_video,
    to_uint8,
)


@dataclass
class GANSettings(PipelineSettings):
    """How the trained generator is driven: model_index.json's "settings" for pipeline "gan"."""

    output_size: int = 64  # frames are resized to this on output (bilinear) when the model runs smaller
    num_frames: int = 16  # default clip length (the motion GRU runs any length; beyond this it extrapolates)
    fps: float = 8.0
    class_names: list[str] = field(default_factory=list)  # condition "class": the prompt that selects each class index
    reference_prompts: list[str] = field(default_factory=list)  # condition "text": training prompts, for the far-prompt warning
    ood_threshold: float = OOD_THRESHOLD  # MiniLM cosine to the nearest reference prompt below this warns
    default_steps: int = 100  # image-to-video: gradient steps fitting the latents to the first frame
    inversion_restarts: int = 4  # image-to-video: random starts fitted together; the closest wins
    inversion_lr: float = 0.05


@dataclass(repr=False)
class GANPipelineOutput(VideoPipelineOutput):
    inversion_error: list[float] | None = None  # image-to-video: RMS error of the fitted first frame, per clip, in [0, 255]


class GANPipeline(ReferencePrompts, VideoPipeline):
    """Generate clips with a VideoGenerator: one forward pass, no sampling steps.

    Unconditional models take no prompt (``num_videos`` clips); conditional ones need one prompt per
    clip (text, or a class name for class-conditional models) and make ``num_videos`` clips of each.
    """

    name = "gan"
    settings_class = GANSettings
    components = {"generator": "VideoGenerator"}

    def __init__(self, generator: VideoGenerator, settings: GANSettings, text_encoder=None) -> None:
        self.generator, self.settings = generator.eval(), settings
        self.condition = generator.config.condition
        if self.condition == "text" and text_encoder is None:
            from kinema.models.text import MiniLMEncoder

            text_encoder = MiniLMEncoder.from_pretrained().to(self.device)
        self.text_encoder = text_encoder
        if self.condition == "class" and len(settings.class_names) != generator.config.num_classes:
            raise ValueError(f"the settings name {len(settings.class_names)} classes; the model has {generator.config.num_classes}")

    @classmethod
    def from_folder(cls, folder, device: torch.device = torch.device("cpu"), dtype: torch.dtype = torch.float32,
                    text_encoder=None) -> GANPipeline:
        settings = GANSettings.from_dict(folder.index.settings, f"{folder.where} settings")
        generator = VideoGenerator.from_pretrained(folder.component("model" if folder.legacy else "generator"), device=device, dtype=dtype)
        return cls(generator, settings, text_encoder=text_encoder)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator}

    @classmethod
    def declare(cls, configs: dict[str, Any], settings: GANSettings) -> Contract:
        s, cfg = settings, configs["generator"]
        first = {"none": "unconditional", "class": "class-to-video", "text": "text-to-video"}[cfg.condition]
        return Contract(
            tasks=(first, "image-to-video"),
            prompt="none" if cfg.condition == "none" else "required",
            image=True,
            prompt_choices=tuple(s.class_names) if cfg.condition == "class" else (),
            size=(s.output_size, s.output_size),
            options=(
                Option("num_frames", int, s.num_frames, "frames per clip (the motion model runs past its training length)",
                       low=1, high=16 * cfg.num_frames, alias="frames"),
                Option("num_inference_steps", int, s.default_steps, "gradient steps fitting the first frame", low=1, high=10_000,
                       alias="steps", needs_image=True),
                Option("height", int, s.output_size, "frame height (resized from the model's)", low=8, high=2048),
                Option("width", int, s.output_size, "frame width (resized from the model's)", low=8, high=2048),
                Option("fps", float, s.fps, "frame rate of a written video", low=0, low_open=True, high=1000),
            ),
        )

    def encode_prompts(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """The generator's condition inputs for one prompt per clip."""
        if self.condition == "class":
            return {"labels": torch.tensor([self.settings.class_names.index(p.strip()) for p in prompts], device=self.device)}
        if self.condition == "text":
            text = self.text_encoder.encode(prompts)
            return {"text_tokens": text.tokens.to(self.device, self.dtype), "text_mask": text.mask.to(self.device)}
        return {}

    def sample_latents(self, num_frames: int, generators: list[torch.Generator]) -> tuple[torch.Tensor, torch.Tensor]:
        """(content (b, content_dim), motion noise (b, f, noise_dim)): clip i from generators[i]."""
        drawn = [self.generator.sample_latents(1, num_frames, g) for g in generators]
        return torch.cat([c for c, _ in drawn]).to(self.dtype), torch.cat([n for _, n in drawn]).to(self.dtype)

    def _generate(self, prompts: list[str], image, generators: list[torch.Generator], options: dict[str, Any],
                  callback: Callback | None) -> GANPipelineOutput:
        # 1. inputs were checked against the contract; warn about prompts far from the training ones
        notes = self.far_prompt_warnings(prompts) if self.condition == "text" else []
        # 2. encode the condition
        cond = self.encode_prompts(prompts)
        # 3. prepare latents
        content, noise = self.sample_latents(options["num_frames"], generators)
        error, steps = None, options["num_inference_steps"]
        total = steps + 1 if image is not None else 1  # progress: fitting steps, then the forward pass
        # 4. image-to-video: fit the content and the first motion step to the given first frame
        if image is not None:
            target = first_frame_tensor(image, len(prompts), self.generator.config.resolution, self.device).to(self.dtype)
            content, noise, error = self.invert(target, content, noise, cond, steps, generators, callback)
        # 5. generate and decode: frames at the asked size; image-to-video starts on the given image
        video = resize_video(self.generator(content, noise, **cond).float(), (options["height"], options["width"]))
        if image is not None:
            video = paste_first_frame(video, image)
        if callback is not None:
            callback(total, total, None)
        return GANPipelineOutput(frames=to_uint8(video), prompts=prompts, warnings=notes, inversion_error=error)

    @torch.enable_grad()
    def invert(
        self,
        target: torch.Tensor,
        content: torch.Tensor,
        noise: torch.Tensor,
        cond: dict[str, torch.Tensor],
        steps: int,
        generators: list[torch.Generator],
        callback: Callback | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
        """Fit (content, first motion noise) so that frame 0 matches ``target`` (b, c, h, w) in [-1, 1].

        ``inversion_restarts`` random starts per clip are fitted together with Adam on the pixel MSE
        (plus a weak pull of the latents towards the normal's typical radius); each clip keeps its
        closest start. Later motion noise stays as drawn. Only the first 1 + temporal_radius frames
        are generated while fitting: frame 0 does not depend on later ones.
        """
        settings, gen = self.settings, self.generator
        b, r = target.shape[0], settings.inversion_restarts
        # restart s of clip j sits at row s * b + j; restart 0 is the clip's drawn latent
        starts = [gen.sample_latents(r - 1, 1, g) for g in generators]  # per clip: (r-1, ...) each
        starts_c = torch.stack([c for c, _ in starts], dim=1).flatten(0, 1).to(self.dtype)
        starts_n = torch.stack([n for _, n in starts], dim=1).flatten(0, 1).to(self.dtype)
        content0 = torch.cat([content, starts_c]).detach().requires_grad_(True)
        first0 = torch.cat([noise[:, :1], starts_n]).detach().requires_grad_(True)
        horizon = min(noise.shape[1], 1 + gen.temporal_radius)
        rest = noise[:, 1:horizon].repeat(r, 1, 1)
        cond_r = {k: v.repeat(r, *([1] * (v.dim() - 1))) for k, v in cond.items()}
        target_r = target.repeat(r, 1, 1, 1)
        optimizer = torch.optim.Adam([content0, first0], lr=settings.inversion_lr)
        for step in range(steps):
            frame = gen(content0, torch.cat([first0, rest], dim=1), **cond_r)[:, :, 0].float()
            mse = (frame - target_r).pow(2).mean(dim=(1, 2, 3))
            prior = (content0.float().pow(2).mean(dim=1) - 1).pow(2) + (first0.float().pow(2).mean(dim=(1, 2)) - 1).pow(2)
            # gradients for the latents only: the shared weights are never written to (threads may share them)
            content0.grad, first0.grad = torch.autograd.grad(mse.sum() + 1e-3 * prior.sum(), [content0, first0])
            optimizer.step()
            if callback is not None:
                callback(step + 1, steps + 1, None)
        with torch.no_grad():
            frame = gen(content0, torch.cat([first0, rest], dim=1), **cond_r)[:, :, 0].float()
            mse = (frame - target_r).pow(2).mean(dim=(1, 2, 3)).view(r, b)
        best = mse.argmin(dim=0)  # (b,)
        pick = best * b + torch.arange(b, device=best.device)
        content = content0.detach()[pick]
        noise = torch.cat([first0.detach()[pick], noise[:, 1:]], dim=1)
        rms = (mse.gather(0, best[None])[0].sqrt() * 127.5).tolist()  # [-1, 1] units -> 0..255
        return content, noise, rms


def tiny_pipeline(text_encoder=None, condition: str = "none") -> GANPipeline:
    """A random 16x16 generator of 4 frames (output 32x32), for tests and the conformance suite."""
    from kinema.models.gan import GeneratorConfig

    torch.manual_seed(0)
    generator = VideoGenerator(GeneratorConfig(
        resolution=16, num_frames=4, content_dim=8, noise_dim=4, motion_dim=8, base_channels=16, min_channels=8,
        temporal_levels=1, condition=condition, num_classes=2 if condition == "class" else 0,
    ))
    settings = GANSettings(output_size=32, num_frames=4, default_steps=3, inversion_restarts=2,
                           class_names=["left", "right"] if condition == "class" else [],
                           reference_prompts=["a small red circle moving left slowly"] if condition == "text" else [])
    return GANPipeline(generator, settings, text_encoder=text_encoder if condition == "text" else None)


register(Registration(name="gan", pipeline=GANPipeline, legacy_model_class="VideoGenerator", tiny=tiny_pipeline))
