"""Text-to-video and image-to-video with Kinema's video diffusion model (inference only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from kinema.models.text import MiniLMEncoder
from kinema.models.unet3d import VideoUNet
from kinema.models.vae import VideoVAE
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
    randn_per_clip,
    resize_video,
    to_uint8,
)
from kinema.pipelines.preview import LatentPreviewer

SCHEDULERS = ("dpm++", "ddim", "unipc", "euler")


@dataclass
class DiffusionSettings(PipelineSettings):
    """How the trained denoiser is driven: model_index.json's "settings" for pipeline "diffusion"."""

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
    # > 0: latent diffusion; the denoiser works on the "vae" component's latents times this; 0: pixels
    latent_scale: float = 0.0


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


class Text2VideoPipeline(ReferencePrompts, VideoPipeline):
    """Generate clips from prompts and, when the model was trained with image conditioning, from a first frame.

    ``unet`` predicts v; the sampler is any diffusers scheduler configured like the training one, built
    fresh for every call (a scheduler holds per-call state, so sharing one would break threads). With a
    ``vae`` (latent diffusion) the denoiser works on its scaled latents and the VAE decodes the result.
    """

    name = "diffusion"
    settings_class = DiffusionSettings
    components = {"denoiser": "VideoUNet", "vae": "VideoVAE"}

    def __init__(self, unet: VideoUNet, text_encoder: MiniLMEncoder, settings: DiffusionSettings, vae: VideoVAE | None = None) -> None:
        self.unet, self.text_encoder, self.settings = unet.eval(), text_encoder, settings
        self.vae = None if vae is None else vae.eval()
        self._previewer: LatentPreviewer | None = None  # the VAE's linear preview, fitted on first use (kinema.pipelines.preview)
        if (vae is None) != (settings.latent_scale == 0):
            raise ValueError("a latent diffusion model needs both its vae component and settings.latent_scale > 0")

    @classmethod
    def from_folder(cls, folder, device: torch.device = torch.device("cpu"), dtype: torch.dtype = torch.float32,
                    text_encoder: MiniLMEncoder | None = None) -> Text2VideoPipeline:
        settings = DiffusionSettings.from_dict(folder.index.settings, f"{folder.where} settings")
        unet = VideoUNet.from_pretrained(folder.component("model" if folder.legacy else "denoiser"), device=device, dtype=dtype)
        vae = VideoVAE.from_pretrained(folder.component("vae"), device=device, dtype=dtype) if "vae" in folder.index.components else None
        return cls(unet, text_encoder or MiniLMEncoder.from_pretrained().to(device), settings, vae=vae)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"denoiser": self.unet, **({"vae": self.vae} if self.vae is not None else {})}

    @classmethod
    def declare(cls, configs: dict[str, Any], settings: DiffusionSettings) -> Contract:
        s, cfg = settings, configs["denoiser"]
        size = s.output_size
        return Contract(
            tasks=("text-to-video", "image-to-video") if cfg.image_conditioning else ("text-to-video",),
            prompt="optional" if cfg.image_conditioning else "required",
            image=cfg.image_conditioning,
            size=(size, size),
            options=(
                Option("num_frames", int, s.num_frames, "frames per clip", low=2, high=cfg.num_frames, alias="frames"),
                Option("num_inference_steps", int, s.default_steps, "denoising steps", low=1, high=1000, alias="steps"),
                Option("guidance_scale", float, s.default_guidance, "classifier-free guidance (1: none)", low=0, high=100, alias="guidance"),
                Option("guidance_cutoff", float, s.default_guidance_cutoff, "guide only this first fraction of the steps", low=0, high=1),
                Option("negative_prompt", str, "", "what guidance steers away from", alias="negative"),
                Option("scheduler", str, s.default_scheduler, "sampler", choices=SCHEDULERS),
                Option("height", int, size, "frame height (resized from the model's)", low=8, high=2048),
                Option("width", int, size, "frame width (resized from the model's)", low=8, high=2048),
                Option("fps", float, s.fps, "frame rate of a written video", low=0, low_open=True, high=1000),
                Option("preview_every", int, 0, "hand the callback a decoded preview every N steps (0: never)", low=0),
            ),
        )

    def _generate(self, prompts: list[str], image: np.ndarray | torch.Tensor | None, generators: list[torch.Generator],
                  options: dict[str, Any], callback: Callback | None) -> VideoPipelineOutput:
        s, device, dtype = self.settings, self.device, self.dtype
        steps, guidance, cutoff = options["num_inference_steps"], options["guidance_scale"], options["guidance_cutoff"]
        size, out_size = s.sample_size, (options["height"], options["width"])
        b = len(prompts)
        # 1. inputs were checked against the contract; warn about prompts far from the training ones
        notes = self.far_prompt_warnings(prompts)
        # 2. encode prompts (the unconditional branch is the negative prompt, default "")
        use_cfg = guidance != 1.0 and cutoff > 0.0
        guided_steps = round(cutoff * steps) if use_cfg else 0
        text = self.text_encoder.encode(prompts + ([options["negative_prompt"]] * b if use_cfg else []))
        tokens, mask = text.tokens.to(device, dtype), text.mask.to(device)
        # 3. prepare latents and conditioning
        scheduler = make_scheduler(options["scheduler"], s.scheduler)
        scheduler.set_timesteps(steps, device=device)
        x = randn_per_clip((self.unet.config.in_channels, options["num_frames"], size, size), generators, device)
        x = x * scheduler.init_noise_sigma
        first = None if image is None else self._first_frame(image, b)
        given = None if image is None else torch.ones(b, device=device, dtype=dtype)
        if use_cfg and first is not None:
            first, given = torch.cat([first, first]), torch.cat([given, given])
        # 4. denoise
        for i, t in enumerate(scheduler.timesteps):
            guided = i < guided_steps
            if use_cfg and i == guided_steps:  # guidance is over: keep the conditional half only
                tokens, mask = tokens[:b], mask[:b]
                first = None if first is None else first[:b]
                given = None if given is None else given[:b]
            model_in = scheduler.scale_model_input(torch.cat([x, x]) if guided else x, t)
            out = self.unet(model_in.to(dtype), t.expand(model_in.shape[0]).to(device), tokens, mask, first, given).float()
            if guided:
                cond, uncond = out.chunk(2)
                out = uncond + guidance * (cond - uncond)
            step = scheduler.step(out, t, x)
            if callback is not None:
                preview = None
                if options["preview_every"] and (i + 1) % options["preview_every"] == 0:
                    preview = self._preview(predicted_original(scheduler, step, x, out, t), out_size, image)
                callback(i + 1, steps, preview)
            x = step.prev_sample
        # 5. decode: frames at the asked size; image-to-video starts on the given image
        return VideoPipelineOutput(frames=self._decode(x, out_size, image), prompts=prompts, warnings=notes)

    def _first_frame(self, image: np.ndarray | torch.Tensor, batch: int) -> torch.Tensor:
        """The conditioning first frame: the image at the network's size, or its scaled latent (an image is a one-frame video)."""
        s = self.settings
        if self.vae is None:
            return first_frame_tensor(image, batch, s.sample_size, self.device).to(self.dtype)
        pixels = first_frame_tensor(image, batch, s.sample_size * self.vae.config.spatial_compression, self.device)
        return (self.vae.encode(pixels[:, :, None].to(self.dtype)).mode()[:, :, 0] * s.latent_scale).to(self.dtype)

    def _preview(self, x: torch.Tensor, size: tuple[int, int], image: np.ndarray | torch.Tensor | None) -> np.ndarray:
        """A step's preview: pixels as they are; latents through the VAE's linear map (a full decode per
        preview would cost what the final one does: shapes-ldm's, 125 ms on one CPU thread against 1.3 ms;
        benchmarks/latent_preview.py)."""
        if self.vae is None:
            return self._decode(x, size, image)
        video = self.latent_previewer().video(x, size)
        return to_uint8(video if image is None else paste_first_frame(video, image))

    def latent_previewer(self) -> LatentPreviewer:
        """The VAE's linear latent -> RGB preview (fitted once per VAE, then cached: kinema.pipelines.preview)."""
        if self.vae is None:
            raise ValueError("a pixel-space model has no latents to preview")
        if self._previewer is None:
            vae, device, dtype, c = self.vae, self.device, self.dtype, self.vae.config
            grid = (3, self.settings.sample_size, self.settings.sample_size)
            clip = (1 + c.temporal_compression * (grid[0] - 1), grid[1] * c.spatial_compression, grid[2] * c.spatial_compression)
            self._previewer = LatentPreviewer(
                vae, lambda z: vae.decode(z.to(device, dtype)).float(), c.latent_channels,
                encode=lambda x: vae.encode(x.to(device, dtype)).mode(), clip=clip, grid=grid, scale=1 / self.settings.latent_scale,
            )
        return self._previewer

    def _decode(self, x: torch.Tensor, size: tuple[int, int], image: np.ndarray | torch.Tensor | None) -> np.ndarray:
        if self.vae is not None:
            x = self.vae.decode((x / self.settings.latent_scale).to(self.dtype)).float()
        video = resize_video(x, size)
        return to_uint8(video if image is None else paste_first_frame(video, image))


def predicted_original(scheduler, step: Any, sample: torch.Tensor, prediction: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The clean clip the denoiser sees at this step (x0): the scheduler's own estimate where its step returns
    one (DDIM, Euler); else from the prediction, as DPM-Solver++ and UniPC compute it without returning it."""
    estimate = getattr(step, "pred_original_sample", None)
    if estimate is not None:
        return estimate
    alpha = scheduler.alphas_cumprod[int(t)].to(sample.device, torch.float32)
    a, s = alpha.sqrt(), (1 - alpha).sqrt()
    kind = scheduler.config.prediction_type
    if kind == "v_prediction":
        return a * sample - s * prediction
    if kind == "epsilon":
        return (sample - s * prediction) / a
    return prediction  # "sample": the network predicts x0 itself


def tiny_pipeline(text_encoder: MiniLMEncoder | None = None, image_conditioning: bool = True, variant: str = "pixels") -> Text2VideoPipeline:
    """A random two-level denoiser at 16x16x4 (output 32x32), for tests and the conformance suite; variant
    "latent": a denoiser on the 8x8 latents (4 channels) of a random VAE that doubles the size on decoding."""
    from diffusers import DDPMScheduler

    from kinema.models.unet3d import VideoUNetConfig
    from kinema.models.vae import VideoVAEConfig

    if variant not in ("pixels", "latent"):
        raise ValueError(f"variant must be pixels or latent, got {variant!r}")
    latent = variant == "latent"
    generator = torch.Generator().manual_seed(0)
    unet = VideoUNet(VideoUNetConfig(
        in_channels=4 if latent else 3, sample_size=8 if latent else 16, num_frames=4, patch_size=2, channels=(16, 32), blocks_per_level=1,
        attention_levels=(1,), attention_head_dim=16, text_queries=2, groups=4, image_conditioning=image_conditioning,
    ))
    vae = VideoVAE(VideoVAEConfig(latent_channels=4, patch_size=2, channels=(8,), encoder_blocks=1, decoder_blocks=1, mid_blocks=0)) if latent else None
    with torch.no_grad():
        for module in (unet, vae) if latent else (unet,):
            for p in module.parameters():  # zero-initialised outputs would make every sample the same: randomise
                p.copy_(torch.randn(p.shape, generator=generator) * 0.05)
    scheduler = DDPMScheduler(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction", clip_sample=False)
    settings = DiffusionSettings(
        scheduler=dict(scheduler.config), sample_size=8 if latent else 16, output_size=32, num_frames=4, default_steps=2,
        reference_prompts=["a small red circle moving left slowly", "a large blue square moving up quickly"], latent_scale=1.5 if latent else 0.0,
    )
    return Text2VideoPipeline(unet, text_encoder or MiniLMEncoder.from_pretrained(), settings, vae=vae)


register(Registration(name="diffusion", pipeline=Text2VideoPipeline, legacy_model_class="VideoUNet", tiny=tiny_pipeline,
                      variants=("pixels", "latent")))
