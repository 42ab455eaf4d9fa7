"""The VideoGPT family: a transformer prior learns the codes of a frozen VQ-VAE by next-token cross-entropy,
text through a MiniLM prefix, classifier-free guidance by caption dropout.

Image-to-video needs no extra training: the prior is causal and the first latent frame is the first
frame's codes, so every clip also teaches continuing from a given first frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F

from kinema.data.shapes import CaptionedShapes, canonical_captions, shapes_vocabulary
from kinema.models.gpt import VideoGPT, VideoGPTConfig
from kinema.models.text import MiniLMEncoder
from kinema.models.vqvae import VideoVQVAE
from kinema.training.config import RunConfig
from kinema.training.objectives import Family, Objective, register_family
from kinema.training.objectives.diffusion import PREVIEW_PROMPTS


@dataclass
class VideoGPTDataConfig:
    dataset: Literal["shapes", "folder"] = "shapes"  # Captioned Shapes, or a folder of your videos (VideoFolder)
    split: Literal["train", "test", "heldout"] = "train"  # Shapes split
    num_samples: int = 200_000  # Shapes clips per epoch (procedural: any number)
    resolution: int = 64  # frame size the VQ-VAE codes
    num_frames: int = 17  # 1 + t*k for the VQ-VAE's temporal compression t
    captions: Literal["canonical", "varied"] = "varied"  # varied phrasing teaches wording, not one template
    seed: int = 0
    folder: Optional[str] = None  # dataset: folder -> the VideoFolder root


@dataclass
class VideoGPTObjectiveConfig:
    # the frozen VQ-VAE whose codes the prior learns: a built-in name, a model folder or a vqvae run folder
    # (its "vqvae" component). The export ships a copy of it.
    vqvae: Optional[str] = None
    # sha256 of the VQ-VAE's model.safetensors: a run refuses another VQ-VAE (its codes would mean something else)
    vqvae_sha256: Optional[str] = None
    text_dropout: float = 0.1  # captions replaced by "" so the prior also learns the unconditional branch
    output_size: int = 64  # generated frames are resized to this on output
    # sampling defaults for previews and the exported settings
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    guidance_scale: float = 3.0
    preview_prompts: list[str] = field(default_factory=lambda: list(PREVIEW_PROMPTS))

    def __post_init__(self) -> None:
        if not self.vqvae:
            raise ValueError("objective.vqvae is required: the VQ-VAE (built-in name, model folder or vqvae run folder) whose codes "
                             "the prior learns, e.g. runs/vqvae-shapes")
        if not 0.0 <= self.text_dropout <= 1.0:
            raise ValueError(f"text_dropout must be in [0, 1], got {self.text_dropout}")


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


class VideoGPTObjective(Objective):
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.vqvae = self._load_vqvae()
        self.text_encoder = MiniLMEncoder.from_pretrained()
        self.modules = {"model": VideoGPT(config.model)}

    def _load_vqvae(self) -> VideoVQVAE:
        """The frozen VQ-VAE of objective.vqvae, checked against objective.vqvae_sha256 and the model's code grid."""
        from kinema.hub import open_model
        from kinema.models.text import sha256_file

        obj, model, data = self.config.objective, self.config.model, self.config.data
        folder = open_model(obj.vqvae).component("vqvae")
        if obj.vqvae_sha256 and (found := sha256_file(folder / "model.safetensors")) != obj.vqvae_sha256:
            raise ValueError(f"objective.vqvae_sha256: the VQ-VAE of {obj.vqvae} has sha256 {found}, not the {obj.vqvae_sha256} this run "
                             "trains on (its codes would mean something else); start a new run for another VQ-VAE")
        vqvae = VideoVQVAE.from_pretrained(folder).requires_grad_(False)  # eval mode: the codebook stays as it is
        if model.vocab_size != vqvae.config.codebook_size:
            raise ValueError(f"model.vocab_size ({model.vocab_size}) must equal the VQ-VAE's codebook_size ({vqvae.config.codebook_size})")
        grid = vqvae.latent_shape(data.num_frames, data.resolution, data.resolution)
        if (model.latent_frames, model.latent_height, model.latent_width) != grid:
            raise ValueError(f"model.latent_frames, latent_height, latent_width ({model.latent_frames}, {model.latent_height}, "
                             f"{model.latent_width}) must be the VQ-VAE's code grid of {data.num_frames} frames at "
                             f"{data.resolution}x{data.resolution}: {grid}")
        return vqvae

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Pixels (b, c, f, h, w) in [-1, 1] -> the flattened codes (b, f' * h' * w') the prior learns."""
        self.vqvae.to(video.device)
        with torch.autocast(video.device.type, enabled=False):  # the codes of the float32 tokenizer, under bf16 runs too
            return self.vqvae.encode(video.float()).flatten(1)

    def training_step(self, batch: dict[str, Any], step: int, phase: str) -> dict[str, torch.Tensor]:
        gpt, obj = self.modules["model"], self.config.objective
        codes = self.encode(batch["video"])  # (b, n)
        device = codes.device
        captions = ["" if torch.rand(()) < obj.text_dropout else c for c in batch["caption"]]
        text = self.text_encoder.encode(captions)
        logits = gpt(codes, text.tokens.to(device), text.mask.to(device)).float()  # (b, n, vocab)
        loss = F.cross_entropy(logits.flatten(0, 1), codes.flatten())
        with torch.no_grad():
            accuracy = (logits.argmax(-1) == codes).float().mean()
        return {"loss": loss, "accuracy": accuracy}

    def pipeline(self, gpt: VideoGPT):
        from kinema.pipelines.videogpt import VideoGPTPipeline

        device = next(gpt.parameters()).device
        return VideoGPTPipeline(gpt, self.vqvae.to(device), self.text_encoder.to(device), self.pipeline_settings())

    def pipeline_settings(self):
        from kinema.pipelines.videogpt import VideoGPTSettings

        obj, data = self.config.objective, self.config.data
        return VideoGPTSettings(
            resolution=data.resolution,
            output_size=obj.output_size,
            num_frames=data.num_frames,
            default_temperature=obj.temperature,
            default_top_k=obj.top_k,
            default_top_p=obj.top_p,
            default_guidance=obj.guidance_scale,
            reference_prompts=canonical_captions() if data.dataset == "shapes" else [],
        )

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        prompts = [self.config.objective.preview_prompts[i % len(self.config.objective.preview_prompts)] for i in range(num)]
        out = self.pipeline(self.modules["model"])(prompts, generator=generator)
        return torch.from_numpy(out.frames)

    def export_components(self) -> dict[str, torch.nn.Module]:
        """The prior and a copy of its frozen VQ-VAE (a later retrained VQ-VAE cannot change what the codes mean)."""
        return {"prior": self.modules["model"], "vqvae": self.vqvae}

    def export_pipeline(self) -> tuple[str, Any]:
        """The "videogpt" pipeline with the sampling defaults."""
        return "videogpt", self.pipeline_settings()

    def export_vocabulary(self):
        """Captioned Shapes' vocabulary for a prior trained on its captions."""
        return shapes_vocabulary() if self.config.data.dataset == "shapes" else None


register_family(
    Family(
        name="videogpt",
        model_config=VideoGPTConfig,
        data_config=VideoGPTDataConfig,
        objective=VideoGPTObjective,
        dataset=build_dataset,
        objective_config=VideoGPTObjectiveConfig,
    )
)
