"""A video denoiser for small compute: a factorised space/time U-Net with text cross-attention.

Every block is (2+1)D: a 2D convolution over each frame, then a 1D convolution over time at
each pixel. Temporal self-attention and cross-attention to text tokens run at the coarse
levels, where they are cheap. The text also enters globally: a few learned queries attend over
the prompt's tokens, and the result joins the timestep embedding that modulates every block,
so a single word ("left") can steer the whole clip. The first frame and a mask enter as extra
input channels: one network does text-to-video and image-to-video.

The network predicts whatever its training objective asks (v for Kinema's diffusion); it knows
nothing of the noise schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from kinema.models.base import PretrainedMixin


@dataclass
class VideoUNetConfig:
    """Shape of the denoiser. Defaults: a 32x32 RGB pixel model, 2x2 patches; the shipped models set their own widths and
    depth (configs/diffusion/shapes.yaml, shapes_ldm.yaml: channels [32, 64, 128], one block per level)."""

    in_channels: int = 3  # RGB
    sample_size: int = 32  # frame height and width it is trained at
    num_frames: int = 16  # frames it is trained at (temporal position embeddings cover this many)
    patch_size: int = 2  # pixel packing: each patch x patch block becomes channels (cheap first level)
    channels: tuple[int, ...] = (64, 96, 128)  # per level; each level halves height and width
    blocks_per_level: int = 2
    attention_levels: tuple[int, ...] = (1, 2)  # levels with temporal self-attention and text cross-attention
    attention_head_dim: int = 32
    text_dim: int = 384  # token embedding width of the text encoder (MiniLM: 384)
    text_queries: int = 4  # learned queries that pool the prompt into the global conditioning
    image_conditioning: bool = True  # first frame + mask as extra input channels
    groups: int = 8  # GroupNorm groups
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.sample_size % (self.patch_size * 2 ** (len(self.channels) - 1)):
            raise ValueError(
                f"sample_size {self.sample_size} must be divisible by patch_size * 2**(levels-1) = "
                f"{self.patch_size * 2 ** (len(self.channels) - 1)}"
            )
        if any(c % self.groups for c in self.channels):
            raise ValueError(f"every channel count {self.channels} must be divisible by groups={self.groups}")
        if any(not 0 <= level < len(self.channels) for level in self.attention_levels):
            raise ValueError(f"attention_levels {self.attention_levels} must index channels (0..{len(self.channels) - 1})")


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of (b,) timesteps -> (b, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def spatial_conv(cin: int, cout: int, stride: int = 1) -> nn.Conv3d:
    """3x3 convolution over each frame of a (b, c, f, h, w) tensor."""
    return nn.Conv3d(cin, cout, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1))


class ResBlock(nn.Module):
    """(2+1)D residual block: 3x3 conv over each frame, FiLM from the embedding, 3-tap conv over time.

    Both convolutions are Conv3d with a flat kernel on the native (b, c, f, h, w) layout: no
    reshuffling of the tensor between the spatial and the temporal step.
    """

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.spatial = spatial_conv(cin, cout)
        self.film = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.dropout = nn.Dropout(dropout)
        self.temporal = nn.Conv3d(cout, cout, (3, 1, 1), padding=(1, 0, 0))
        nn.init.zeros_(self.temporal.weight)  # starts as an image block; motion is learned on top
        nn.init.zeros_(self.temporal.bias)
        self.skip = nn.Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        # x: (b, c, f, h, w); emb: (b, emb_dim)
        h = self.spatial(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None, None].chunk(2, dim=1)
        h = F.silu(self.norm2(h) * (1 + scale) + shift)
        h = h + self.temporal(self.dropout(h))
        return self.skip(x) + h


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v for short sequences: (B, h, n, d), keys (B, h, m, d), mask (B, m).

    Written out rather than F.scaled_dot_product_attention: for thousands of 16-token sequences
    the CPU flash kernel's backward under bf16 is ~4x slower than two batched matmuls.
    """
    scores = torch.einsum("bhnd,bhmd->bhnm", q, k) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    return torch.einsum("bhnm,bhmd->bhnd", scores.softmax(dim=-1), v)


class Attention(nn.Module):
    """Multi-head attention with a pre-norm and a zero-initialised output (the block starts as identity)."""

    def __init__(self, dim: int, context_dim: int | None, head_dim: int) -> None:
        super().__init__()
        self.heads = max(1, dim // head_dim)
        self.norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(context_dim or dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, N, dim); context: (B, M, context_dim); mask: (B, M) True where a key may be attended
        h = self.norm(x)
        q = rearrange(self.q(h), "b n (h d) -> b h n d", h=self.heads)
        k, v = rearrange(self.kv(h if context is None else context), "b m (two h d) -> two b h m d", two=2, h=self.heads)
        return x + self.out(rearrange(attend(q, k, v, mask), "b h n d -> b n (h d)"))


class AttentionBlock(nn.Module):
    """Temporal self-attention at each pixel, then cross-attention from each frame's pixels to the text."""

    def __init__(self, dim: int, text_dim: int, num_frames: int, head_dim: int) -> None:
        super().__init__()
        self.frame_pos = nn.Parameter(torch.zeros(num_frames, dim))
        self.temporal = Attention(dim, None, head_dim)
        self.cross = Attention(dim, text_dim, head_dim)

    def forward(self, x: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        # x: (b, c, f, h, w); text: (b, n, text_dim); text_mask: (b, n)
        _, _, f, height, width = x.shape
        if f > self.frame_pos.shape[0]:
            raise ValueError(f"the model was built for at most {self.frame_pos.shape[0]} frames, got {f}")
        t = rearrange(x, "b c f h w -> (b h w) f c")
        t = self.temporal(t + self.frame_pos[:f])
        s = rearrange(t, "(b h w) f c -> (b f) (h w) c", h=height, w=width)
        s = self.cross(s, text.repeat_interleave(f, dim=0), text_mask.repeat_interleave(f, dim=0))
        return rearrange(s, "(b f) (h w) c -> b c f h w", f=f, h=height)


class TextPooling(nn.Module):
    """A few learned queries attend over the prompt's tokens: a global text vector that, unlike the
    mean-pooled sentence embedding, can carry a single word such as the direction."""

    def __init__(self, text_dim: int, queries: int, out_dim: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, text_dim) / math.sqrt(text_dim))
        self.proj = nn.Sequential(nn.Linear(queries * text_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # tokens: (b, n, d); mask: (b, n) -> (b, out_dim)
        q = self.queries[None].expand(tokens.shape[0], -1, -1)
        pooled = attend(q[:, None], tokens[:, None], tokens[:, None], mask)[:, 0]  # (b, queries, d)
        return self.proj(pooled.flatten(1))


class VideoUNet(PretrainedMixin, nn.Module):
    """The denoiser: noisy video (b, c, f, h, w) + timestep + text (+ first frame) -> prediction, same shape.

    Text arrives as token embeddings (b, n, text_dim) with a mask; the model standardises them
    with per-dimension statistics of its training captions (``text_mean``, ``text_std``, saved
    with the weights), because MiniLM's raw embeddings of similar captions are nearly parallel.
    """

    config_class = VideoUNetConfig

    def __init__(self, config: VideoUNetConfig) -> None:
        super().__init__()
        self.config = cfg = config
        p, ch = cfg.patch_size, cfg.channels
        emb_dim = 4 * ch[0]
        self.register_buffer("text_mean", torch.zeros(cfg.text_dim))
        self.register_buffer("text_std", torch.ones(cfg.text_dim))

        self.time_mlp = nn.Sequential(nn.Linear(ch[0], emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.text_pool = TextPooling(cfg.text_dim, cfg.text_queries, emb_dim)
        # input: noisy video, plus (first frame, given-mask) channels, packed p x p into channels
        cond = cfg.in_channels + 1 if cfg.image_conditioning else 0
        self.conv_in = spatial_conv((cfg.in_channels + cond) * p * p, ch[0])

        # Down: each level runs its blocks, then a strided conv into the next level's width.
        # Up mirrors it; the skip from each level is added (not concatenated): half the cost of
        # the up path's convolutions at a small loss of capacity, which this compute budget favours.
        self.down, self.down_attn, self.downsample = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for level, c in enumerate(ch):
            self.down.append(nn.ModuleList(ResBlock(c, c, emb_dim, cfg.groups, cfg.dropout) for _ in range(cfg.blocks_per_level)))
            self.down_attn.append(nn.ModuleList(self._attention(level, c) for _ in range(cfg.blocks_per_level)))
            if level + 1 < len(ch):
                self.downsample.append(spatial_conv(c, ch[level + 1], stride=2))

        self.mid = nn.ModuleList([ResBlock(ch[-1], ch[-1], emb_dim, cfg.groups, cfg.dropout) for _ in range(2)])
        self.mid_attn = AttentionBlock(ch[-1], cfg.text_dim, cfg.num_frames, cfg.attention_head_dim)

        self.up, self.up_attn, self.upsample = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(ch))):
            c = ch[level]
            self.up.append(nn.ModuleList(ResBlock(c, c, emb_dim, cfg.groups, cfg.dropout) for _ in range(cfg.blocks_per_level)))
            self.up_attn.append(nn.ModuleList(self._attention(level, c) for _ in range(cfg.blocks_per_level)))
            if level > 0:
                self.upsample.append(spatial_conv(c, ch[level - 1]))

        self.norm_out = nn.GroupNorm(cfg.groups, ch[0])
        self.conv_out = spatial_conv(ch[0], cfg.in_channels * p * p)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _attention(self, level: int, c: int) -> nn.Module:
        cfg = self.config
        if level in cfg.attention_levels:
            return AttentionBlock(c, cfg.text_dim, cfg.num_frames, cfg.attention_head_dim)
        return nn.Identity()

    @staticmethod
    def _run_level(h, blocks, attns, emb, text, text_mask) -> torch.Tensor:
        for block, attn in zip(blocks, attns):
            h = block(h, emb)
            if not isinstance(attn, nn.Identity):
                h = attn(h, text, text_mask)
        return h

    def set_text_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-dimension mean and std of the training captions' token embeddings."""
        self.text_mean.copy_(mean)
        self.text_std.copy_(std.clamp_min(1e-4))

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        text_tokens: torch.Tensor,
        text_mask: torch.Tensor,
        first_frame: torch.Tensor | None = None,
        first_frame_given: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        sample: (b, c, f, h, w) noisy video; timestep: (b,) or scalar; text_tokens: (b, n, text_dim);
        text_mask: (b, n) bool; first_frame: (b, c, h, w) clean first frame in [-1, 1];
        first_frame_given: (b,) 1 where the first frame conditions the sample, 0 where it does not.
        """
        cfg = self.config
        b, c, f, height, width = sample.shape
        if c != cfg.in_channels:
            raise ValueError(f"sample has {c} channels, the model takes {cfg.in_channels}")
        if height % (cfg.patch_size * 2 ** (len(cfg.channels) - 1)) or height != width:
            raise ValueError(f"frames must be square with sides divisible by {cfg.patch_size * 2 ** (len(cfg.channels) - 1)}, got {height}x{width}")
        timestep = timestep.expand(b) if timestep.dim() == 0 else timestep
        text = (text_tokens - self.text_mean) / self.text_std
        text_mask = text_mask.bool()
        emb = self.time_mlp(timestep_embedding(timestep, cfg.channels[0])) + self.text_pool(text, text_mask)

        x = sample
        if cfg.image_conditioning:
            given = torch.zeros(b, device=x.device, dtype=x.dtype) if first_frame_given is None else first_frame_given.to(x.dtype)
            image = torch.zeros_like(sample[:, :, 0]) if first_frame is None else first_frame.to(x.dtype)
            image = image * given[:, None, None, None]
            cond = torch.cat([image, given[:, None, None, None].expand(b, 1, height, width)], dim=1)  # (b, c+1, h, w)
            x = torch.cat([x, cond[:, :, None].expand(-1, -1, f, -1, -1)], dim=1)
        p = cfg.patch_size
        h = self.conv_in(rearrange(x, "b c f (h p1) (w p2) -> b (c p1 p2) f h w", p1=p, p2=p))  # (b, ch0, f, h/p, w/p)

        skips = []
        for level, (blocks, attns) in enumerate(zip(self.down, self.down_attn)):
            h = self._run_level(h, blocks, attns, emb, text, text_mask)
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)

        h = self.mid[0](h, emb)
        h = self.mid_attn(h, text, text_mask)
        h = self.mid[1](h, emb)

        for i, (blocks, attns) in enumerate(zip(self.up, self.up_attn)):
            h = self._run_level(h + skips.pop(), blocks, attns, emb, text, text_mask)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=(1.0, 2.0, 2.0), mode="nearest"))

        h = self.conv_out(F.silu(self.norm_out(h)))  # (b, c*p*p, f, h/p, w/p)
        return rearrange(h, "b (c p1 p2) f h w -> b c f (h p1) (w p2)", p1=p, p2=p)
