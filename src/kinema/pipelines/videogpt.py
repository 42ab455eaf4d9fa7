"""Text-to-video, image-to-video and unconditional generation with VideoGPT (inference only): a transformer
prior samples a VQ-VAE's codes one at a time (with a key/value cache) and the VQ-VAE decodes them.

An image is a one-frame video to the causal VQ-VAE, so image-to-video encodes it and fixes its codes as
the first latent frame; sampling continues after them. No prompt means the empty prompt, which the
prior was trained on by caption dropout: the unconditional model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from kinema.models.gpt import VideoGPT
from kinema.models.text import MiniLMEncoder
from kinema.models.vqvae import VideoVQVAE
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
class VideoGPTSettings(PipelineSettings):
    """How the prior and its VQ-VAE are driven: model_index.json's "settings" for pipeline "videogpt"."""

    resolution: int = 64  # frame size the VQ-VAE codes (what it and the prior were trained at)
    output_size: int = 64  # frames are resized to this on output
    num_frames: int = 17  # default clip length
    fps: float = 8.0
    default_temperature: float = 1.0
    default_top_k: int = 0  # 0: no top-k filtering
    default_top_p: float = 1.0  # 1.0: no nucleus filtering
    default_guidance: float = 1.0  # classifier-free guidance scale (1: none, half the cost)
    # prompts the prior was trained on, to warn when a prompt is far from all of them
    reference_prompts: list[str] = field(default_factory=list)
    ood_threshold: float = OOD_THRESHOLD  # MiniLM cosine to the nearest reference prompt below this warns


class VideoGPTPipeline(ReferencePrompts, VideoPipeline):
    """Generate clips by sampling the prior's codes and decoding them with the VQ-VAE.

    Any clip length up to the prior's grid: the VQ-VAE decodes whole groups of t frames (t its temporal
    compression), and the frames past the asked number are cut.
    """

    name = "videogpt"
    settings_class = VideoGPTSettings
    components = {"prior": "VideoGPT", "vqvae": "VideoVQVAE"}

    def __init__(self, prior: VideoGPT, vqvae: VideoVQVAE, text_encoder: MiniLMEncoder, settings: VideoGPTSettings) -> None:
        self.prior, self.vqvae, self.text_encoder, self.settings = prior.eval(), vqvae.eval(), text_encoder, settings
        p, v = prior.config, vqvae.config
        grid = (p.latent_frames, p.latent_height, p.latent_width)
        frames = 1 + v.temporal_compression * (p.latent_frames - 1)
        if p.vocab_size != v.codebook_size:
            raise ValueError(f"the prior has {p.vocab_size} codes, the VQ-VAE {v.codebook_size}: they were not trained together")
        if vqvae.latent_shape(frames, settings.resolution, settings.resolution) != grid:
            raise ValueError(f"the prior's code grid {grid} is not what the VQ-VAE makes of {frames} frames at {settings.resolution}x{settings.resolution}")
        if p.text_dim != text_encoder.dim:
            raise ValueError(f"the prior reads {p.text_dim}-d prompt tokens; the text encoder gives {text_encoder.dim}")

    @classmethod
    def from_folder(cls, folder, device: torch.device = torch.device("cpu"), dtype: torch.dtype = torch.float32,
                    text_encoder: MiniLMEncoder | None = None) -> VideoGPTPipeline:
        settings = VideoGPTSettings.from_dict(folder.index.settings, f"{folder.where} settings")
        prior = VideoGPT.from_pretrained(folder.component("prior"), device=device, dtype=dtype)
        vqvae = VideoVQVAE.from_pretrained(folder.component("vqvae"), device=device, dtype=dtype)
        return cls(prior, vqvae, text_encoder or MiniLMEncoder.from_pretrained().to(device), settings)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"prior": self.prior, "vqvae": self.vqvae}

    @classmethod
    def declare(cls, configs: dict[str, Any], settings: VideoGPTSettings) -> Contract:
        s, prior, vqvae = settings, configs["prior"], configs["vqvae"]
        size = s.output_size
        return Contract(
            tasks=("text-to-video", "image-to-video", "unconditional"),
            prompt="optional",
            image=True,
            size=(size, size),
            options=(
                Option("num_frames", int, s.num_frames, "frames per clip", low=1,
                       high=1 + vqvae.temporal_compression * (prior.latent_frames - 1), alias="frames"),
                Option("temperature", float, s.default_temperature, "sampling temperature (lower: more likely codes)",
                       low=0, low_open=True, high=10),
                Option("top_k", int, s.default_top_k, "sample among the k most likely codes (0: all)", low=0, high=prior.vocab_size),
                Option("top_p", float, s.default_top_p, "sample among the most likely codes holding this probability (1: all)",
                       low=0, low_open=True, high=1),
                Option("guidance_scale", float, s.default_guidance, "classifier-free guidance (1: none)", low=0, high=100, alias="guidance"),
                Option("negative_prompt", str, "", "what guidance steers away from", alias="negative"),
                Option("height", int, size, "frame height (resized from the model's)", low=8, high=2048),
                Option("width", int, size, "frame width (resized from the model's)", low=8, high=2048),
                Option("fps", float, s.fps, "frame rate of a written video", low=0, low_open=True, high=1000),
                Option("preview_every", int, 0, "hand the callback a decoded preview every N codes (0: never)", low=0),
            ),
        )

    def _generate(self, prompts: list[str], image: np.ndarray | torch.Tensor | None, generators: list[torch.Generator],
                  options: dict[str, Any], callback: Callback | None) -> VideoPipelineOutput:
        s, device, dtype = self.settings, self.device, self.dtype
        b, t = len(prompts), self.vqvae.config.temporal_compression
        p = self.prior.config
        # 1. inputs were checked against the contract; warn about prompts far from the training ones
        notes = self.far_prompt_warnings(prompts)
        # 2. encode prompts (the unconditional branch of guidance is the negative prompt, default "")
        guidance = options["guidance_scale"]
        text = self.text_encoder.encode(prompts)
        null = self.text_encoder.encode([options["negative_prompt"]] * b) if guidance != 1.0 else None
        # 3. prepare tokens: enough latent frames to cover num_frames; an image's codes are the first latent frame
        latent_frames = 1 + -(-(options["num_frames"] - 1) // t)
        num_tokens = latent_frames * p.latent_height * p.latent_width
        known = None
        if image is not None:
            first = first_frame_tensor(image, b, s.resolution, device)[:, :, None]  # (b, c, 1, h, w): a one-frame video
            known = self.vqvae.encode(first.to(dtype)).flatten(1)  # (b, h' * w')
        # 4. sample tokens, one at a time with the key/value cache
        codes = self.prior.generate(
            text.tokens.to(device, dtype), text.mask.to(device), num_tokens, generators, known=known,
            temperature=options["temperature"], top_k=options["top_k"], top_p=options["top_p"], guidance_scale=guidance,
            null_tokens=None if null is None else null.tokens.to(device, dtype), null_mask=None if null is None else null.mask.to(device),
            callback=None if callback is None else self._progress(callback, options, latent_frames, image),
        )
        # 5. decode: the asked frames at the asked size; image-to-video starts on the given image
        grid = codes.view(b, latent_frames, p.latent_height, p.latent_width)
        video = self.vqvae.decode(grid).float()[:, :, : options["num_frames"]]  # (b, c, f, h, w)
        video = resize_video(video, (options["height"], options["width"]))
        if image is not None:
            video = paste_first_frame(video, image)
        return VideoPipelineOutput(frames=to_uint8(video), prompts=prompts, warnings=notes)

    def _progress(self, callback: Callback, options: dict[str, Any], latent_frames: int, image) -> Callable:
        """The prior's callback: ``callback(done, total, preview)``, the preview decoded every preview_every codes."""
        every = options["preview_every"]

        def progress(done: int, total: int, codes: torch.Tensor) -> None:
            preview = None
            if every and done % every == 0:
                preview = self._preview(codes, latent_frames, options, image)
            callback(done, total, preview)

        return progress

    @torch.no_grad()
    def _preview(self, codes: torch.Tensor, latent_frames: int, options: dict[str, Any], image) -> np.ndarray:
        """The clip as it stands: the codes sampled so far (b, k), each position not yet sampled holding the code one
        latent frame before it (in the first latent frame: the commonest code so far, the background), decoded."""
        p = self.prior.config
        b, cells = codes.shape[0], p.latent_height * p.latent_width
        grid = torch.empty(b, latent_frames * cells, dtype=torch.long, device=codes.device)
        grid[:, : codes.shape[1]] = codes
        if codes.shape[1] < cells:
            grid[:, codes.shape[1] : cells] = codes.mode(dim=1).values[:, None]
        for position in range(max(codes.shape[1], cells), latent_frames * cells):
            grid[:, position] = grid[:, position - cells]
        video = self.vqvae.decode(grid.view(b, latent_frames, p.latent_height, p.latent_width)).float()[:, :, : options["num_frames"]]
        video = resize_video(video, (options["height"], options["width"]))
        if image is not None:
            video = paste_first_frame(video, image)
        return to_uint8(video)


def tiny_pipeline(text_encoder: MiniLMEncoder | None = None) -> VideoGPTPipeline:
    """A random VQ-VAE (16x16 clips of 5 frames -> 3 x 4 x 4 codes of 32) under a random two-layer prior, output
    32x32: seconds on a CPU, for tests and the conformance suite."""
    from kinema.models.gpt import VideoGPTConfig
    from kinema.models.vqvae import VQVAEConfig

    torch.manual_seed(0)
    vqvae = VideoVQVAE(VQVAEConfig(channels=(8, 16), encoder_blocks=1, decoder_blocks=1, mid_blocks=1, mid_channels=None,
                                   temporal_compression=2, codebook_size=32, embed_dim=8))
    prior = VideoGPT(VideoGPTConfig(vocab_size=32, latent_frames=3, latent_height=4, latent_width=4, width=32, layers=2, heads=2))
    settings = VideoGPTSettings(resolution=16, output_size=32, num_frames=5, default_guidance=2.0,
                                reference_prompts=["a small red circle moving left slowly", "a large blue square moving up quickly"])
    return VideoGPTPipeline(prior, vqvae, text_encoder or MiniLMEncoder.from_pretrained(), settings)


register(Registration(name="videogpt", pipeline=VideoGPTPipeline, tiny=tiny_pipeline))
