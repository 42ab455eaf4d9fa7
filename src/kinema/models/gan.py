"""A video GAN after MoCoGAN (Tulyakov et al., CVPR 2018): content and motion latents, image and video critics.

A clip is one content latent z_c, drawn once per video (what is shown), plus a motion latent z_m(t)
per frame, the hidden state of a GRU fed fresh noise at every step (how it moves). Every frame is
decoded from [z_c, z_m(t), condition] by the same 2D generator, whose levels are also modulated
(FiLM) by z_c and the condition, identically in every frame, so a clip keeps its look (the
StyleGAN idea, on MoCoGAN's split). Optional residual 3-tap convolutions over frames at the coarse
levels let neighbouring frames agree (smooth motion, a steady colour) at little cost. Two
discriminators judge the result: one on single frames (appearance), one with 3D convolutions on
whole clips (motion and consistency). Conditioning (class labels, or MiniLM token embeddings
pooled by learned queries) enters the generator at every level and the discriminators by
projection (Miyato & Koyama 2018); with condition "none" the model is unconditional.

The networks know nothing of losses or training: the GAN objective (kinema.training.objectives.gan)
drives them, the GAN pipeline (kinema.pipelines.gan) samples from the generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from kinema.models.base import PretrainedMixin
from kinema.models.unet3d import TextPooling

Condition = Literal["none", "class", "text"]


def _check_condition(condition: str, num_classes: int) -> None:
    if condition not in ("none", "class", "text"):
        raise ValueError(f"condition must be 'none', 'class' or 'text', got {condition!r}")
    if condition == "class" and num_classes < 2:
        raise ValueError(f"condition 'class' needs num_classes >= 2, got {num_classes}")
    if condition != "class" and num_classes:
        raise ValueError(f"num_classes is only for condition 'class' (got condition {condition!r} and num_classes {num_classes})")


@dataclass
class GeneratorConfig:
    """Shape of the video generator. Defaults: unconditional Shape Motion, 16 frames of 64x64."""

    resolution: int = 64  # frame height and width: a power of two from 8 to 256
    num_frames: int = 16  # clip length it is trained at (the motion GRU can run longer)
    out_channels: int = 3  # RGB
    content_dim: int = 64  # z_c, one per video: what the clip shows
    noise_dim: int = 16  # noise fed to the motion GRU at every frame
    motion_dim: int = 32  # z_m(t), the GRU's hidden state: where the clip is at frame t
    base_channels: int = 256  # channels at 4x4; halved at every doubling of the resolution ...
    min_channels: int = 16  # ... but never below this
    temporal_levels: int = 3  # the coarsest levels that end with a residual 3-tap convolution over frames (0: none)
    content_modulation: bool = True  # z_c also modulates every level (FiLM), the same in every frame: a clip keeps its look
    condition: Condition = "none"  # "none" (unconditional), "class" (labels) or "text" (MiniLM tokens)
    num_classes: int = 0  # condition "class": number of classes
    text_dim: int = 384  # condition "text": token embedding width of the text encoder (MiniLM: 384)
    text_queries: int = 4  # condition "text": learned queries that pool the prompt's tokens
    condition_dim: int = 64  # width of the condition vector that enters every level

    def __post_init__(self) -> None:
        if self.resolution not in (8, 16, 32, 64, 128, 256):
            raise ValueError(f"resolution must be a power of two from 8 to 256, got {self.resolution}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {self.num_frames}")
        if self.temporal_levels < 0:
            raise ValueError(f"temporal_levels must be 0 or more, got {self.temporal_levels}")
        for name in ("out_channels", "content_dim", "noise_dim", "motion_dim", "base_channels", "min_channels", "condition_dim", "text_queries"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        _check_condition(self.condition, self.num_classes)

    @property
    def level_channels(self) -> list[int]:
        """Channels of each level, from 4x4 up to the output resolution."""
        levels = int(math.log2(self.resolution // 4)) + 1
        return [max(self.min_channels, self.base_channels >> i) for i in range(levels)]


@dataclass
class DiscriminatorConfig:
    """Shape of the two discriminators; what they judge (frame size, clip length, condition) is the generator's."""

    image_channels: int = 32  # image discriminator: channels after its first downsampling, doubled per level
    video_channels: int = 32  # video discriminator: the same for its 3D convolutions
    max_channels: int = 256  # neither doubles past this
    spectral_norm: bool = True  # spectral normalisation of every weight (Miyato et al. 2018)
    # > 0: the video critic also sees each frame's difference from the one before, times this. Spectral
    # norm caps how much a critic can amplify anything, so a colour drift of 1% between frames stays a
    # 1% signal to it; handed over scaled, the drift is as plain to it as the clip itself.
    video_differences: float = 0.0
    # > 0: the video score also reads flicker statistics, weighted by this: how much each colour
    # channel's brightest values and frame mean vary over the clip (flicker_statistics). A real object
    # keeps its colour exactly; a generated one that brightens by 1% over a clip is a 1% signal in a
    # few dozen pixels, which a convolutional critic, seeing the clip a patch at a time, hardly notices.
    video_statistics: float = 0.0

    def __post_init__(self) -> None:
        for name in ("image_channels", "video_channels", "max_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("video_differences", "video_statistics"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 turns it off), got {getattr(self, name)}")


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit RMS (ProGAN): stateless, so eval equals train."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class ConditionEncoder(nn.Module):
    """Class labels or text tokens -> one condition vector (b, dim); the text path standardises the tokens
    with statistics of the training captions (``text_mean``, ``text_std``, saved with the weights), because
    MiniLM embeddings of captions that differ in one word are nearly parallel."""

    def __init__(self, condition: str, num_classes: int, text_dim: int, text_queries: int, dim: int) -> None:
        super().__init__()
        self.condition = condition
        if condition == "class":
            self.embed = nn.Embedding(num_classes, dim)
        elif condition == "text":
            self.register_buffer("text_mean", torch.zeros(text_dim))
            self.register_buffer("text_std", torch.ones(text_dim))
            self.pool = TextPooling(text_dim, text_queries, dim)

    def set_text_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.text_mean.copy_(mean)
        self.text_std.copy_(std.clamp_min(1e-4))

    def forward(
        self, batch: int, labels: torch.Tensor | None = None, text_tokens: torch.Tensor | None = None, text_mask: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        if self.condition == "none":
            if labels is not None or text_tokens is not None:
                raise ValueError("this model is unconditional: it takes no labels or text")
            return None
        if self.condition == "class":
            if labels is None:
                raise ValueError("this model is class-conditional: give labels (b,)")
            if labels.shape != (batch,):
                raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
            if labels.min() < 0 or labels.max() >= self.embed.num_embeddings:
                raise ValueError(f"labels must be in [0, {self.embed.num_embeddings}), got {labels.tolist()}")
            return self.embed(labels)
        if text_tokens is None or text_mask is None:
            raise ValueError("this model is text-conditioned: give text_tokens (b, n, d) and text_mask (b, n)")
        if text_tokens.dim() != 3 or text_tokens.shape[0] != batch or text_tokens.shape[-1] != self.text_mean.shape[0]:
            raise ValueError(f"text_tokens must be ({batch}, n, {self.text_mean.shape[0]}), got {tuple(text_tokens.shape)}")
        tokens = (text_tokens - self.text_mean) / self.text_std
        return self.pool(tokens, text_mask.bool())


class GeneratorLevel(nn.Module):
    """One level of the frame decoder: a stride-2 transposed convolution (or, at 4x4, a 3x3 one), pixel norm,
    FiLM from the per-clip style (content and/or condition), LeakyReLU, then optionally a residual 3-tap
    convolution over frames."""

    def __init__(self, cin: int, cout: int, style_dim: int, temporal: bool, upsample: bool) -> None:
        super().__init__()
        # a transposed conv rather than upsample + conv: the same output size, ~4x faster on a CPU
        self.conv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1) if upsample else nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(style_dim, 2 * cout) if style_dim else None
        if self.film is not None:  # starts unmodulated
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        # replicate padding: the first and last frames see themselves, not black, beyond the clip's ends
        self.temporal = nn.Conv3d(cout, cout, (3, 1, 1), padding=(1, 0, 0), padding_mode="replicate") if temporal else None
        if self.temporal is not None:  # starts as a frame-by-frame generator; agreement between frames is learned
            nn.init.zeros_(self.temporal.weight)
            nn.init.zeros_(self.temporal.bias)

    def forward(self, h: torch.Tensor, style: torch.Tensor | None, num_frames: int) -> torch.Tensor:
        # h: (b f) c h w; style: (b, style_dim) or None, one per clip
        h = pixel_norm(self.conv(h))
        if self.film is not None:
            scale, shift = self.film(style).repeat_interleave(num_frames, dim=0)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = F.leaky_relu(h, 0.2)
        if self.temporal is not None:
            v = rearrange(h, "(b f) c h w -> b c f h w", f=num_frames)
            h = h + rearrange(self.temporal(v), "b c f h w -> (b f) c h w")
        return h


class VideoGenerator(PretrainedMixin, nn.Module):
    """(z_c (b, content_dim), motion noise (b, f, noise_dim), condition) -> video (b, c, f, h, w) in [-1, 1]."""

    config_class = GeneratorConfig

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = cfg = config
        cond_dim = cfg.condition_dim if cfg.condition != "none" else 0
        self.condition = ConditionEncoder(cfg.condition, cfg.num_classes, cfg.text_dim, cfg.text_queries, cfg.condition_dim)
        # motion: the GRU starts from the content (and condition), then takes fresh noise every frame
        self.motion_init = nn.Linear(cfg.content_dim + cond_dim, cfg.motion_dim)
        self.motion_rnn = nn.GRUCell(cfg.noise_dim + cond_dim, cfg.motion_dim)
        ch = cfg.level_channels
        self.to_4x4 = nn.Linear(cfg.content_dim + cfg.motion_dim + cond_dim, ch[0] * 16)
        style_dim = (cfg.content_dim if cfg.content_modulation else 0) + cond_dim
        self.levels = nn.ModuleList(
            GeneratorLevel(ch[i - 1] if i else ch[0], c, style_dim, temporal=i < cfg.temporal_levels, upsample=i > 0)
            for i, c in enumerate(ch)
        )
        self.to_rgb = nn.Conv2d(ch[-1], cfg.out_channels, 3, padding=1)

    def set_text_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-dimension mean and std of the training captions' token embeddings (condition "text")."""
        if self.config.condition != "text":
            raise ValueError(f"set_text_statistics is for text-conditioned models; this one's condition is {self.config.condition!r}")
        self.condition.set_text_statistics(mean, std)

    def sample_latents(
        self, batch: int, num_frames: int | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standard normal (content (b, content_dim), motion noise (b, f, noise_dim)), drawn on the CPU
        from ``generator`` (the same seed gives the same clips on every device) and moved to the model."""
        cfg = self.config
        f = num_frames or cfg.num_frames
        content = torch.randn(batch, cfg.content_dim, generator=generator)
        noise = torch.randn(batch, f, cfg.noise_dim, generator=generator)
        device = self.to_rgb.weight.device
        return content.to(device), noise.to(device)

    def motion(self, content: torch.Tensor, noise: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The motion latents z_m(t) (b, f, motion_dim) from the content and the per-frame noise."""
        extra = [cond] if cond is not None else []
        h = torch.tanh(self.motion_init(torch.cat([content, *extra], dim=1)))
        states = []
        for t in range(noise.shape[1]):
            h = self.motion_rnn(torch.cat([noise[:, t], *extra], dim=1), h)
            states.append(h)
        return torch.stack(states, dim=1)

    def forward(
        self,
        content: torch.Tensor,
        motion_noise: torch.Tensor,
        labels: torch.Tensor | None = None,
        text_tokens: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        content: (b, content_dim); motion_noise: (b, f, noise_dim), any f >= 1; labels: (b,) class indices
        (condition "class"); text_tokens: (b, n, text_dim) and text_mask: (b, n) (condition "text").
        Returns the video (b, out_channels, f, resolution, resolution) in [-1, 1].
        """
        cfg = self.config
        if content.dim() != 2 or content.shape[1] != cfg.content_dim:
            raise ValueError(f"content must be (b, {cfg.content_dim}), got {tuple(content.shape)}")
        b = content.shape[0]
        if motion_noise.dim() != 3 or motion_noise.shape[0] != b or motion_noise.shape[2] != cfg.noise_dim or motion_noise.shape[1] < 1:
            raise ValueError(f"motion_noise must be ({b}, frames, {cfg.noise_dim}), got {tuple(motion_noise.shape)}")
        f = motion_noise.shape[1]
        cond = self.condition(b, labels, text_tokens, text_mask)  # (b, condition_dim) or None
        z_m = self.motion(content, motion_noise, cond)  # (b, f, motion_dim)
        per_frame = [content[:, None].expand(-1, f, -1), z_m]
        if cond is not None:
            per_frame.append(cond[:, None].expand(-1, f, -1))
        z = rearrange(torch.cat(per_frame, dim=2), "b f d -> (b f) d")
        h = rearrange(self.to_4x4(z), "n (c h w) -> n c h w", h=4, w=4)  # (b f, ch0, 4, 4)
        # channels-last activations: ~30% faster on a CPU (oneDNN), where the 3-channel to_rgb is slowest otherwise
        h = h.contiguous(memory_format=torch.channels_last)
        styles = ([content] if cfg.content_modulation else []) + ([cond] if cond is not None else [])
        style = torch.cat(styles, dim=1) if styles else None  # (b, style_dim): the same in every frame
        for level in self.levels:
            h = level(h, style, f)
        frames = torch.tanh(self.to_rgb(h))  # (b f, c, res, res)
        return rearrange(frames, "(b f) c h w -> b c f h w", f=f)

    @property
    def temporal_radius(self) -> int:
        """How many later frames a frame's pixels depend on (through the temporal convolutions)."""
        return min(self.config.temporal_levels, len(self.levels))


# ------------------------------------------------------------------------------------------ discriminators


def _sn(module: nn.Module, enabled: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if enabled else module


def _widths(base: int, maximum: int, levels: int) -> list[int]:
    return [min(maximum, base << i) for i in range(levels)]


class ImageDiscriminator(nn.Module):
    """Single frames (n, c, h, w) -> features (n, channels): stride-2 4x4 convolutions down to 4x4, then a sum."""

    def __init__(self, in_channels: int, resolution: int, base: int, maximum: int, sn: bool) -> None:
        super().__init__()
        widths = _widths(base, maximum, max(1, int(math.log2(resolution // 4))))
        cins = [in_channels, *widths[:-1]]
        self.convs = nn.ModuleList(_sn(nn.Conv2d(ci, co, 4, stride=2, padding=1), sn) for ci, co in zip(cins, widths))
        self.out_channels = widths[-1]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        h = frames
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        return h.sum(dim=(2, 3))  # (n, channels)


class VideoDiscriminator(nn.Module):
    """Clips (b, c, f, h, w) -> features (b, channels): 3D convolutions halving time, height and width per level."""

    def __init__(self, in_channels: int, resolution: int, base: int, maximum: int, sn: bool) -> None:
        super().__init__()
        widths = _widths(base, maximum, max(1, int(math.log2(resolution // 4))))
        cins = [in_channels, *widths[:-1]]
        self.convs = nn.ModuleList(
            _sn(nn.Conv3d(ci, co, (3, 4, 4), stride=2, padding=1), sn) for ci, co in zip(cins, widths)
        )
        self.out_channels = widths[-1]

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        h = video.contiguous(memory_format=torch.channels_last_3d)  # ~25% faster 3D convolutions on a CPU
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        return h.sum(dim=(2, 3, 4))  # (b, channels)


def _relative_variation(series: torch.Tensor, eps: float) -> torch.Tensor:
    """series (b, c, f) -> (b, 2c): its standard deviation and mean step over frames, over its mean."""
    level = series.mean(dim=2).clamp_min(eps)
    return torch.cat([series.std(dim=2) / level, series.diff(dim=2).abs().mean(dim=2) / level], dim=1)


def flicker_statistics(video: torch.Tensor, eps: float = 1e-3, area_floor: float = 0.02) -> torch.Tensor:
    """How much a clip's colour and its objects' extent vary over the frames, per colour channel.

    - colour: each frame's k brightest values (k = 1/256 of the pixels), averaged. A uniformly coloured
      object keeps them exactly, whatever its shape or where it is; one that brightens or shifts hue does not.
    - extent: each frame's mean (black = 0), colour times covered area: it moves when an object swells,
      shrinks or changes shape. Anti-aliasing alone moves it too, by ~0.2% for a real disc and ~0.9%
      for a real square; ``area_floor`` (2%) sits above both, so the critic cannot tell the shape by it.

    Each as log(relative spread + floor) and log(relative step + floor): video (b, c, f, h, w) in
    [-1, 1] -> (b, 4c), in float32 whatever the autocast.
    """
    light = video.float() + 1  # black = 0
    h, w = video.shape[-2:]
    peaks = light.flatten(3).topk(max(1, h * w // 256), dim=3).values.mean(dim=3)  # (b, c, f)
    colour = _relative_variation(peaks, eps).add(eps).log()
    extent = _relative_variation(light.mean(dim=(3, 4)), eps).add(area_floor).log()
    return torch.cat([colour, extent], dim=1)


class Discriminator(nn.Module):
    """Both critics of the GAN as one module (one optimizer, one DDP wrapper, one forward per loss).

    forward(video, condition, frame_index) -> (image logits (b, k), video logits (b,)); the image
    critic sees frames ``frame_index`` (b, k) of each clip. Conditional logits add the projection
    <embed(condition), features> to the unconditional score.
    """

    def __init__(self, config: DiscriminatorConfig, video: GeneratorConfig) -> None:
        super().__init__()
        self.config, self.video_config = config, video
        sn = config.spectral_norm
        c = video.out_channels
        self.image = ImageDiscriminator(c, video.resolution, config.image_channels, config.max_channels, sn)
        self.video = VideoDiscriminator(c * (2 if config.video_differences else 1), video.resolution, config.video_channels, config.max_channels, sn)
        self.image_out = _sn(nn.Linear(self.image.out_channels, 1), sn)
        self.video_out = _sn(nn.Linear(self.video.out_channels, 1), sn)
        if config.video_statistics:
            self.video_statistics = nn.Sequential(
                _sn(nn.Linear(4 * c, 32), sn), nn.LeakyReLU(0.2), _sn(nn.Linear(32, 1), sn)
            )
        self.condition = ConditionEncoder(video.condition, video.num_classes, video.text_dim, video.text_queries, video.condition_dim)
        if video.condition != "none":
            self.image_embed = _sn(nn.Linear(video.condition_dim, self.image.out_channels, bias=False), sn)
            self.video_embed = _sn(nn.Linear(video.condition_dim, self.video.out_channels, bias=False), sn)

    def set_text_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.condition.set_text_statistics(mean, std)

    def forward(
        self,
        video: torch.Tensor,
        labels: torch.Tensor | None = None,
        text_tokens: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        frame_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.video_config
        if video.dim() != 5 or video.shape[1] != cfg.out_channels or video.shape[-2:] != (cfg.resolution, cfg.resolution):
            raise ValueError(f"video must be (b, {cfg.out_channels}, f, {cfg.resolution}, {cfg.resolution}), got {tuple(video.shape)}")
        b, _, f = video.shape[:3]
        if frame_index is None:
            frame_index = torch.arange(f, device=video.device).expand(b, f)
        k = frame_index.shape[1]
        frames = video[torch.arange(b, device=video.device)[:, None], :, frame_index]  # (b, k, c, h, w)
        image_features = self.image(rearrange(frames, "b k c h w -> (b k) c h w"))  # (b k, ch)
        if self.config.video_differences:  # the first frame's difference is zero
            differences = F.pad(video.diff(dim=2), (0, 0, 0, 0, 1, 0)) * self.config.video_differences
            video_features = self.video(torch.cat([video, differences], dim=1))  # (b, ch)
        else:
            video_features = self.video(video)
        image_logits = self.image_out(image_features)[:, 0]
        video_logits = self.video_out(video_features)[:, 0]
        if self.config.video_statistics:
            with torch.autocast(video.device.type, enabled=False):
                flicker = self.video_statistics(flicker_statistics(video))[:, 0]
            video_logits = video_logits + self.config.video_statistics * flicker
        cond = self.condition(b, labels, text_tokens, text_mask)
        if cond is not None:
            image_logits = image_logits + (self.image_embed(cond).repeat_interleave(k, dim=0) * image_features).sum(dim=1)
            video_logits = video_logits + (self.video_embed(cond) * video_features).sum(dim=1)
        return rearrange(image_logits, "(b k) -> b k", k=k), video_logits
