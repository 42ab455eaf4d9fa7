"""The video GAN family: MoCoGAN's generator against an image and a video discriminator, hinge or
non-saturating loss, optional lazy R1, conditioning on class labels or MiniLM tokens (or none)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kinema.data.captions import caption_sample
from kinema.data.shapes import (
    DIRECTIONS,
    SIZES,
    SPEEDS,
    CaptionedShapes,
    ShapeMotion,
    canonical_captions,
    frames_to_tensor,
    shapes_vocabulary,
)
from kinema.models.gan import (
    Discriminator,
    DiscriminatorConfig,
    GeneratorConfig,
    VideoGenerator,
)
from kinema.training.config import RunConfig
from kinema.training.objectives import Family, Objective, register_family

PREVIEW_PROMPTS = (
    "a small red circle moving left slowly",
    "a large blue triangle moving up quickly",
    "a big yellow square drifting right",
    "a tiny cyan circle moving down fast",
)

# the values of each attribute a class-conditional model can be trained on, in class-index order
CLASS_ATTRIBUTES = {
    "shape_motion": {"shape": ("circle", "square"), "direction": ("left-to-right", "top-to-bottom")},
    "shapes": {
        "shape": ("circle", "square", "triangle"),
        "color": ("red", "green", "blue", "yellow", "cyan", "magenta"),
        "size": tuple(SIZES),
        "direction": tuple(DIRECTIONS),
        "speed": tuple(SPEEDS),
    },
}
_CACHE_LIMIT_BYTES = 4 << 30


@dataclass
class GANDataConfig:
    dataset: Literal["shape_motion", "shapes", "folder"] = "shape_motion"  # Shape Motion, Captioned Shapes, or your videos
    split: Literal["train", "test", "heldout"] = "train"  # Shapes split (Shape Motion has train and test)
    num_samples: int = 4000  # clips per epoch; Shape Motion's training set (MoCoGAN) is 4,000 videos
    resolution: int = 64  # frame size the model trains at
    num_frames: int = 16
    captions: Literal["canonical", "varied"] = "varied"  # Captioned Shapes phrasing (text conditioning)
    label: Optional[str] = None  # model.condition "class": the attribute whose values are the classes, e.g. "shape"
    cache: bool = False  # keep rendered Shapes clips in memory as uint8 (num_samples x frames x res x res x 3 bytes)
    seed: int = 0
    folder: Optional[str] = None  # dataset "folder": the VideoFolder root

    def __post_init__(self) -> None:
        if self.dataset == "shape_motion" and self.split == "heldout":
            raise ValueError("Shape Motion has no heldout split: use train or test")
        if self.cache and self.num_samples * self.num_frames * self.resolution**2 * 3 > _CACHE_LIMIT_BYTES:
            gb = self.num_samples * self.num_frames * self.resolution**2 * 3 / 1e9
            raise ValueError(f"cache would hold {gb:.1f} GB of clips (limit {_CACHE_LIMIT_BYTES / 1e9:.1f} GB): lower num_samples or set cache false")
        if self.label is not None:
            known = CLASS_ATTRIBUTES.get(self.dataset, {})
            if self.label not in known:
                raise ValueError(f"label {self.label!r} is not an attribute of dataset {self.dataset!r}; choose one of {sorted(known) or 'none'}")


@dataclass
class GANObjectiveConfig:
    loss: Literal["hinge", "non_saturating"] = "hinge"
    discriminator_lr: Optional[float] = None  # null: train.lr (the generator's); train.betas apply to both
    r1_gamma: float = 0.0  # weight of the R1 penalty (gradient of D on real clips); 0 disables it
    r1_every: int = 16  # lazy R1 (StyleGAN2): every k steps, scaled by k
    image_weight: float = 1.0  # the image discriminator's share of both losses
    video_weight: float = 1.0  # the video discriminator's share
    image_frames: int = 2  # random frames per clip the image discriminator judges
    mismatch_weight: float = 0.0  # conditional: real clips paired with another clip's condition count as fake for D
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    text_statistics_prompts: int = 2000  # captions used to standardise the MiniLM token embeddings
    output_size: Optional[int] = None  # frames are resized to this on output; null: the training resolution
    fps: float = 8.0  # frame rate of written videos
    inversion_steps: int = 100  # image-to-video: gradient steps that fit the latents to the first frame
    preview_prompts: list[str] = field(default_factory=lambda: list(PREVIEW_PROMPTS))

    def __post_init__(self) -> None:
        if self.r1_gamma < 0 or self.r1_every < 1:
            raise ValueError(f"r1_gamma must be >= 0 and r1_every >= 1, got {self.r1_gamma} and {self.r1_every}")
        if self.image_weight < 0 or self.video_weight < 0 or self.image_weight + self.video_weight == 0:
            raise ValueError(f"image_weight and video_weight must be >= 0, not both 0; got {self.image_weight} and {self.video_weight}")
        if self.image_frames < 1:
            raise ValueError(f"image_frames must be at least 1, got {self.image_frames}")
        if not 0 <= self.mismatch_weight < 1:
            raise ValueError(f"mismatch_weight must be in [0, 1), got {self.mismatch_weight}")
        if self.discriminator_lr is not None and not self.discriminator_lr > 0:
            raise ValueError(f"discriminator_lr must be positive or null, got {self.discriminator_lr}")




def class_names(data: GANDataConfig) -> list[str]:
    return list(CLASS_ATTRIBUTES[data.dataset][data.label]) if data.label else []


# ------------------------------------------------------------------------------------------ data


class GANClips(torch.utils.data.Dataset):
    """The family's training items: {"video": (c, f, h, w) in [-1, 1]} plus "caption" (text conditioning)
    or "label" (a class index). Only what the model uses is kept, so batches collate cheaply."""

    def __init__(self, data: GANDataConfig, condition: str) -> None:
        self.data, self.condition = data, condition
        if data.dataset == "shape_motion":
            self.source = ShapeMotion(data.split, num_samples=data.num_samples, resolution=data.resolution, num_frames=data.num_frames, seed=data.seed)
        elif data.dataset == "shapes":
            self.source = CaptionedShapes(
                data.split, num_samples=data.num_samples, resolution=data.resolution, num_frames=data.num_frames,
                captions=data.captions, seed=data.seed,
            )
        else:
            if not data.folder:
                raise ValueError("data.folder is required when data.dataset is 'folder'")
            from kinema.data.video_folder import VideoFolder

            self.source = VideoFolder(data.folder, num_frames=data.num_frames, size=data.resolution, crop=data.resolution, seed=data.seed)
        self.classes = class_names(data)
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.data.dataset == "folder":
            item = self.source[index]
            out = {"video": item["video"]}
            if self.condition == "text":
                out["caption"] = item["caption"]
            return out
        if index not in self._cache:
            frames = self.source.render(index)
            if not self.data.cache:
                return self._item(index, frames)
            self._cache[index] = frames
        return self._item(index, self._cache[index])

    def _item(self, index: int, frames: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {"video": frames_to_tensor(frames)}
        if self.condition == "text":
            out["caption"] = self.source.caption(index)
        elif self.condition == "class":
            labels = self.source.labels(index)
            value = labels[self.data.label] if isinstance(labels, dict) else getattr(labels, self.data.label)
            out["label"] = self.classes.index(value)
        return out


def build_dataset(config: RunConfig) -> torch.utils.data.Dataset:
    return GANClips(config.data, config.model.condition)


# ------------------------------------------------------------------------------------------ objective


def d_real(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The discriminator's loss on logits of real clips (hinge: max(0, 1 - D); non-saturating: softplus(-D))."""
    return F.relu(1 - logits).mean() if kind == "hinge" else F.softplus(-logits).mean()


def d_fake(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The discriminator's loss on logits of fake clips."""
    return F.relu(1 + logits).mean() if kind == "hinge" else F.softplus(logits).mean()


def g_loss(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The generator's loss on logits of its clips (hinge GANs train G on -D, as in SNGAN and BigGAN)."""
    return -logits.mean() if kind == "hinge" else F.softplus(-logits).mean()


@contextlib.contextmanager
def frozen(module: nn.Module):
    """No parameter gradients for ``module`` while the other network's loss backpropagates through it.

    Skipped under DistributedDataParallel, which expects every parameter it tracks to get a gradient;
    there the frozen network's gradients are computed, then cleared by its own phase's zero_grad.
    """
    if isinstance(module, nn.parallel.DistributedDataParallel):
        yield
        return
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


class GANObjective(Objective):
    """Two phases per step: the discriminators on real against fake clips, then the generator against them."""

    ema_modules = ("generator",)

    def __init__(self, config: RunConfig) -> None:
        self.config, model, data, obj = config, config.model, config.data, config.objective
        if model.resolution != data.resolution:
            raise ValueError(f"model.resolution ({model.resolution}) must equal data.resolution ({data.resolution})")
        if model.num_frames != data.num_frames:
            raise ValueError(f"model.num_frames ({model.num_frames}) must equal data.num_frames ({data.num_frames})")
        if (model.condition == "class") != (data.label is not None):
            raise ValueError("model.condition 'class' and data.label go together: set both (e.g. data.label: shape) or neither")
        if model.condition == "class" and model.num_classes != len(class_names(data)):
            raise ValueError(
                f"data.label {data.label!r} has {len(class_names(data))} classes ({', '.join(class_names(data))}); "
                f"model.num_classes is {model.num_classes}"
            )
        if model.condition == "text" and data.dataset == "shape_motion":
            raise ValueError("Shape Motion has no captions: text conditioning needs data.dataset 'shapes' or 'folder'")
        generator = VideoGenerator(model)
        discriminator = Discriminator(obj.discriminator, model)
        self.text_encoder = None
        if model.condition == "text":
            from kinema.models.text import MiniLMEncoder

            self.text_encoder = MiniLMEncoder.from_pretrained()
            mean, std = self._text_statistics(obj.text_statistics_prompts)
            generator.set_text_statistics(mean, std)
            discriminator.set_text_statistics(mean, std)
        self.modules = {"generator": generator, "discriminator": discriminator}

    def _text_statistics(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.text_encoder.token_statistics(caption_sample(build_dataset(self.config).source, count))

    def optimizer_groups(self) -> dict[str, list[dict[str, Any]]]:
        d_group: dict[str, Any] = {"params": list(self.modules["discriminator"].parameters())}
        if self.config.objective.discriminator_lr is not None:
            d_group["lr"] = self.config.objective.discriminator_lr
        return {"discriminator": [d_group], "generator": [{"params": list(self.modules["generator"].parameters())}]}

    def phases(self, step: int) -> list[str]:
        return ["discriminator", "generator"]

    def _condition(self, batch: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
        kind = self.config.model.condition
        if kind == "class":
            return {"labels": batch["label"].to(device)}
        if kind == "text":
            text = self.text_encoder.encode(list(batch["caption"]))
            return {"text_tokens": text.tokens.to(device), "text_mask": text.mask.to(device)}
        return {}

    def training_step(self, batch: dict[str, Any], step: int, phase: str) -> dict[str, torch.Tensor]:
        obj = self.config.objective
        generator, discriminator = self.modules["generator"], self.modules["discriminator"]
        real = batch["video"]  # (b, c, f, h, w) in [-1, 1]
        b, f, device = real.shape[0], real.shape[2], real.device
        cond = self._condition(batch, device)
        content = torch.randn(b, self.config.model.content_dim, device=device)
        noise = torch.randn(b, f, self.config.model.noise_dim, device=device)

        if phase == "discriminator":
            # detached rather than under no_grad: one graph for both phases when train.compile is on
            # (inductor in torch 2.13 fails to compile the generator's no-grad graph)
            fake = generator(content, noise, **cond).detach()
            r1 = obj.r1_gamma > 0 and step % obj.r1_every == 0
            if r1:
                real = real.detach().requires_grad_(True)
            # one forward over [real, fake (, real with another clip's condition)]: one call per backward (DDP)
            videos, conds = [real, fake], [cond, cond]
            mismatch = obj.mismatch_weight > 0 and bool(cond) and b > 1
            if mismatch:
                videos.append(real)
                conds.append({k: v.roll(1, dims=0) for k, v in cond.items()})
            joined = {k: torch.cat([c[k] for c in conds]) for k in cond}
            index = torch.randint(0, f, (len(videos) * b, obj.image_frames), device=device)
            image_logits, video_logits = discriminator(torch.cat(videos), frame_index=index, **joined)
            logs, loss = {}, 0.0
            for name, logits, weight in (("image", image_logits, obj.image_weight), ("video", video_logits, obj.video_weight)):
                real_logits, fake_logits, *mismatched = logits.split(b)
                part = d_real(real_logits, obj.loss) + d_fake(fake_logits, obj.loss)
                if mismatched:
                    w = obj.mismatch_weight
                    part = d_real(real_logits, obj.loss) + (1 - w) * d_fake(fake_logits, obj.loss) + w * d_fake(mismatched[0], obj.loss)
                loss = loss + weight * part
                logs[name] = part.detach()
                logs[f"{name}_real"] = real_logits.detach().mean()
                logs[f"{name}_fake"] = fake_logits.detach().mean()
            if r1:
                real_score = obj.image_weight * image_logits[:b].sum() + obj.video_weight * video_logits[:b].sum()
                (grad,) = torch.autograd.grad(real_score, real, create_graph=True)
                penalty = grad.pow(2).sum(dim=(1, 2, 3, 4)).mean()
                loss = loss + obj.r1_gamma / 2 * penalty * obj.r1_every
                logs["r1"] = penalty.detach()
            return {"loss": loss, **logs}

        if phase != "generator":
            raise ValueError(f"unknown phase {phase!r}; the GAN's phases are 'discriminator' and 'generator'")
        fake = generator(content, noise, **cond)
        index = torch.randint(0, f, (b, obj.image_frames), device=device)
        with frozen(discriminator):
            image_logits, video_logits = discriminator(fake, frame_index=index, **cond)
        image, video = g_loss(image_logits, obj.loss), g_loss(video_logits, obj.loss)
        loss = obj.image_weight * image + obj.video_weight * video
        return {"loss": loss, "image": image.detach(), "video": video.detach()}

    def pipeline(self, generator: VideoGenerator):
        from kinema.pipelines.gan import GANPipeline

        return GANPipeline(generator, self.pipeline_settings(), text_encoder=self.text_encoder)

    def pipeline_settings(self):
        from kinema.pipelines.gan import GANSettings

        obj, data, model = self.config.objective, self.config.data, self.config.model
        return GANSettings(
            output_size=obj.output_size or data.resolution,
            num_frames=data.num_frames,
            fps=obj.fps,
            class_names=class_names(data),
            reference_prompts=canonical_captions() if model.condition == "text" and data.dataset == "shapes" else [],
            default_steps=obj.inversion_steps,
        )

    @torch.no_grad()
    def sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        pipe = self.pipeline(self.modules["generator"])
        kind = self.config.model.condition
        if kind == "text":
            prompts = [self.config.objective.preview_prompts[i % len(self.config.objective.preview_prompts)] for i in range(num)]
            out = pipe(prompts, generator=generator)
        elif kind == "class":
            names = pipe.settings.class_names
            out = pipe([names[i % len(names)] for i in range(num)], generator=generator)
        else:
            out = pipe(num_videos=num, generator=generator)
        return torch.from_numpy(out.frames)

    def export_components(self) -> dict[str, nn.Module]:
        return {"generator": self.modules["generator"]}

    def export_pipeline(self) -> tuple[str, Any]:
        """The "gan" pipeline with output size, fps, class names and reference prompts."""
        return "gan", self.pipeline_settings()

    def export_vocabulary(self):
        """Captioned Shapes' vocabulary for a text-conditioned generator trained on its captions."""
        return shapes_vocabulary() if self.config.model.condition == "text" and self.config.data.dataset == "shapes" else None

    def fine_tuning_modules(self) -> dict[str, nn.Module]:
        """A GAN fine-tuned against a fresh discriminator first unlearns what the random D tells it."""
        return {"discriminator": self.modules["discriminator"]}


register_family(
    Family(
        name="gan",
        model_config=GeneratorConfig,
        data_config=GANDataConfig,
        objective=GANObjective,
        dataset=build_dataset,
        objective_config=GANObjectiveConfig,
    )
)
