"""A causal video VAE: KL-regularised, factorised (2D spatial + causal 1D temporal) convolutions, first frame on its own.

The encoder maps a clip (b, 3, f, h, w) in [-1, 1] to a diagonal Gaussian over latents
(b, latent_channels, 1 + (f - 1) / t, h / s, w / s), s the spatial and t the temporal compression.
As in CogVideoX and Wan, every temporal convolution is causal (it pads on the past side only, by
repeating the first frame), and time is grouped as [frame 0] [frames 1..t] [t+1..2t] ...: latent frame 0
sees frame 0 alone, so an image is a one-frame video and encodes to the same latent as the first
frame of any clip that starts with it. The decoder is causal too, so it can decode a long clip in
temporal chunks with a cache of the last frames each temporal convolution saw (`decode(z,
chunk_size=...)`): memory stays flat as clips grow and the result equals the full decode.

Cost is what shaped the widths. The speed target is 200 frames/s for encode + decode at 64x64 on
2 CPU threads, about 0.2 GFLOP per frame, so the first and last operations are a 2x2
space-to-depth (pixel unshuffle) rather than convolutions at 64x64, few channels run at 32x32, more
at 16x16, and each residual block is a 3x3 spatial and a 3-tap causal temporal convolution (12 C^2
multiply-adds per position instead of a full 3x3x3's 27 C^2). Norms are per position over
channels (RMS), never over frames, which would break causality and chunked decoding. The defaults
(shapes-vae) have 0.32 M parameters and cost 0.23 GFLOP per 64x64 frame (encode 0.09, decode 0.14):
measured 246 frames/s fp32 and 363 bf16 on one thread of the Zen 4 CPU this was built on.

The network knows nothing of training: the "vae" objective (kinema.training.objectives.vae) trains it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from kinema.models.base import PretrainedMixin

# A causal cache: what each temporal convolution (and the temporal regrouping) saw of the frames
# before the current chunk, keyed by the module. A new dict starts a new clip.
Cache = dict[Any, Any]


@dataclass
class VideoVAEConfig:
    """Shape of the causal video VAE. Defaults: the built-in shapes-vae (64x64 Shapes clips)."""

    in_channels: int = 3  # RGB
    latent_channels: int = 8  # channels of the latent (the mean; the posterior also has a log-variance per channel)
    patch_size: int = 2  # space-to-depth factor applied first (and undone last): no convolution runs at full size
    channels: tuple[int, ...] = (32, 64)  # channels per level after the patchify; each further level halves h and w
    encoder_blocks: int = 1  # residual blocks per encoder level
    decoder_blocks: int = 2  # residual blocks per decoder level (the decoder gains the most from capacity)
    mid_blocks: int = 1  # residual blocks at the latent rate, on each side of the latent
    # width at the latent rate (null: channels[-1]). With temporal compression t one latent frame carries t
    # frames, so it needs more width, and it is cheap there: these layers run on 1/t of the frames.
    mid_channels: Optional[int] = None
    # latent frames: 1 + (f - 1) / t; clips must have 1 + t*k frames (16 frames allow t in {1, 3, 5, 15}). 1 for
    # shapes-vae: in 200-300-step pilots t=3 and t=5 trailed t=1 by 4-5 dB (configs/vae/shapes.yaml)
    temporal_compression: int = 1
    temporal_kernel: int = 3  # taps of each causal temporal convolution (1: frames are coded independently)
    logvar_clamp: tuple[float, float] = (-30.0, 20.0)  # the posterior's log-variance is clamped into this range

    def __post_init__(self) -> None:
        if self.in_channels < 1 or self.latent_channels < 1:
            raise ValueError(f"in_channels and latent_channels must be at least 1, got {self.in_channels} and {self.latent_channels}")
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be at least 1, got {self.patch_size}")
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be a non-empty list of positive widths, got {list(self.channels)}")
        if min(self.encoder_blocks, self.decoder_blocks, self.mid_blocks) < 0:
            raise ValueError("encoder_blocks, decoder_blocks and mid_blocks must be 0 or more")
        if self.temporal_compression < 1:
            raise ValueError(f"temporal_compression must be at least 1, got {self.temporal_compression}")
        if self.mid_channels is not None and self.mid_channels < 1:
            raise ValueError(f"mid_channels must be at least 1 or null, got {self.mid_channels}")
        if self.temporal_kernel < 1:
            raise ValueError(f"temporal_kernel must be at least 1, got {self.temporal_kernel}")

    @property
    def latent_rate_channels(self) -> int:
        return self.mid_channels or self.channels[-1]

    @property
    def spatial_compression(self) -> int:
        return self.patch_size * 2 ** (len(self.channels) - 1)


# ------------------------------------------------------------------------------------------ layers


class ChannelRMSNorm(nn.Module):
    """RMS norm over channels at every (frame, position): nothing mixes across frames, so it stays causal."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps) * self.gain


def spatial_conv(cin: int, cout: int, kernel: int = 3) -> nn.Conv3d:
    """A 2D convolution applied to every frame (kernel 1 x k x k)."""
    return nn.Conv3d(cin, cout, (1, kernel, kernel), padding=(0, kernel // 2, kernel // 2))


class CausalTemporalConv(nn.Module):
    """A k-tap convolution over frames that sees only the present and the past.

    The first chunk of a clip is padded with copies of its first frame; with a cache, later chunks
    are padded with the last k - 1 frames of the chunk before, which makes chunked == whole.
    """

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv3d(cin, cout, (kernel, 1, 1))

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        if self.kernel == 1:
            return self.conv(x)
        past = cache.get(self) if cache is not None else None
        if past is None:
            past = x[:, :, :1].expand(-1, -1, self.kernel - 1, -1, -1)
        padded = torch.cat([past, x], dim=2)  # (b, c, k - 1 + f, h, w)
        if cache is not None:
            cache[self] = padded[:, :, -(self.kernel - 1):].detach()
        return self.conv(padded)


class ResBlock(nn.Module):
    """x + temporal(act(norm(spatial(act(norm(x)))))): a factorised (2+1)D residual block."""

    def __init__(self, channels: int, temporal_kernel: int) -> None:
        super().__init__()
        self.norm1 = ChannelRMSNorm(channels)
        self.spatial = spatial_conv(channels, channels)
        self.norm2 = ChannelRMSNorm(channels)
        self.temporal = CausalTemporalConv(channels, channels, temporal_kernel)
        nn.init.zeros_(self.temporal.conv.weight)  # each block starts as the identity: deep stacks train from step 0
        nn.init.zeros_(self.temporal.conv.bias)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        h = self.spatial(F.silu(self.norm1(x)))
        h = self.temporal(F.silu(self.norm2(h)), cache)
        return x + h


class SpatialDown(nn.Module):
    """Halve h and w: 2x2 space-to-depth, then a 1x1 convolution to the next level's width."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(cin * 4, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(rearrange(x, "b c f (h p) (w q) -> b (c p q) f h w", p=2, q=2))


class SpatialUp(nn.Module):
    """Double h and w: a 1x1 convolution to 4x the next level's width, then depth-to-space."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(cin, cout * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(self.proj(x), "b (c p q) f h w -> b c f (h p) (w q)", p=2, q=2)


class TemporalDown(nn.Module):
    """Frames [0] [1..t] [t+1..2t] ... -> one frame each: time-to-depth, then a 1x1 convolution.

    Frame 0 stands alone, repeated t times to fill its group, so an image is a one-frame video.
    """

    def __init__(self, cin: int, cout: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.proj = nn.Conv3d(cin * factor, cout, 1)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        t = self.factor
        first = cache is None or self not in cache
        if cache is not None:
            cache[self] = True
        if first:
            x = torch.cat([x[:, :, :1].expand(-1, -1, t - 1, -1, -1), x], dim=2)  # (b, c, t*(1 + k), h, w)
        x = rearrange(x, "b c (f t) h w -> b (c t) f h w", t=t)
        return self.proj(x)


class TemporalUp(nn.Module):
    """One frame -> t frames: a 1x1 convolution to t x the width, then depth-to-time; latent frame 0 gives frame 0 only."""

    def __init__(self, cin: int, cout: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.proj = nn.Conv3d(cin, cout * factor, 1)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        first = cache is None or self not in cache
        if cache is not None:
            cache[self] = True
        x = rearrange(self.proj(x), "b (c t) f h w -> b c (f t) h w", t=self.factor)
        return x[:, :, self.factor - 1:] if first else x  # the first group's last slot is frame 0


# ------------------------------------------------------------------------------------------ networks


class DiagonalGaussian:
    """The encoder's posterior: a Gaussian with diagonal covariance over the latent (b, c, f, h, w)."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        self.mean, self.logvar = mean, logvar

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * noise

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per latent element, (b, c, f, h, w); average or sum it as the loss needs."""
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)


class Encoder(nn.Module):
    def __init__(self, config: VideoVAEConfig) -> None:
        super().__init__()
        c, k = config.channels, config.temporal_kernel
        self.patch = config.patch_size
        self.conv_in = spatial_conv(config.in_channels * self.patch**2, c[0])
        self.levels = nn.ModuleList()
        for i, width in enumerate(c):
            level = nn.Module()
            level.blocks = nn.ModuleList(ResBlock(width, k) for _ in range(config.encoder_blocks))
            level.down = SpatialDown(width, c[i + 1]) if i + 1 < len(c) else None
            self.levels.append(level)
        mid, t = config.latent_rate_channels, config.temporal_compression
        if t > 1:
            self.time_down = TemporalDown(c[-1], mid, t)
        else:
            self.time_down = nn.Conv3d(c[-1], mid, 1) if mid != c[-1] else None
        self.mid = nn.ModuleList(ResBlock(mid, k) for _ in range(config.mid_blocks))
        self.norm_out = ChannelRMSNorm(mid)
        self.conv_out = spatial_conv(mid, 2 * config.latent_channels)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        p = self.patch
        h = self.conv_in(rearrange(x, "b c f (h p) (w q) -> b (c p q) f h w", p=p, q=p))  # (b, c0, f, h/p, w/p)
        for level in self.levels:
            for block in level.blocks:
                h = block(h, cache)
            if level.down is not None:
                h = level.down(h)
        if isinstance(self.time_down, TemporalDown):
            h = self.time_down(h, cache)  # (b, mid, 1 + (f - 1) / t, h', w')
        elif self.time_down is not None:
            h = self.time_down(h)
        for block in self.mid:
            h = block(h, cache)
        return self.conv_out(F.silu(self.norm_out(h)))  # (b, 2 * latent, f', h', w')


class Decoder(nn.Module):
    def __init__(self, config: VideoVAEConfig) -> None:
        super().__init__()
        c, k = config.channels, config.temporal_kernel
        self.patch = config.patch_size
        mid, t = config.latent_rate_channels, config.temporal_compression
        self.conv_in = spatial_conv(config.latent_channels, mid)
        self.mid = nn.ModuleList(ResBlock(mid, k) for _ in range(config.mid_blocks))
        if t > 1:
            self.time_up = TemporalUp(mid, c[-1], t)
        else:
            self.time_up = nn.Conv3d(mid, c[-1], 1) if mid != c[-1] else None
        self.levels = nn.ModuleList()
        for i in reversed(range(len(c))):
            level = nn.Module()
            level.blocks = nn.ModuleList(ResBlock(c[i], k) for _ in range(config.decoder_blocks))
            level.up = SpatialUp(c[i], c[i - 1]) if i > 0 else None
            self.levels.append(level)
        self.norm_out = ChannelRMSNorm(c[0])
        self.conv_out = spatial_conv(c[0], config.in_channels * self.patch**2)

    def forward(self, z: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h, cache)
        if isinstance(self.time_up, TemporalUp):
            h = self.time_up(h, cache)  # (b, c, frames, h', w')
        elif self.time_up is not None:
            h = self.time_up(h)
        for level in self.levels:
            for block in level.blocks:
                h = block(h, cache)
            if level.up is not None:
                h = level.up(h)
        h = self.conv_out(F.silu(self.norm_out(h)))  # (b, 3 * p * p, frames, h/p, w/p)
        p = self.patch
        return rearrange(h, "b (c p q) f h w -> b c f (h p) (w q)", p=p, q=p)


def check_clip_size(num_frames: int, height: int, width: int, spatial: int, temporal: int) -> None:
    """The clips a causal autoencoder takes: 1 + temporal*k frames (frame 0 alone, then groups) and sides that are
    positive multiples of its spatial compression; a ValueError saying which rule a clip breaks."""
    s, t = spatial, temporal
    if num_frames < 1 or (num_frames - 1) % t:
        raise ValueError(
            f"num_frames must be 1 + {t}*k (1, {1 + t}, {1 + 2 * t}, ...: frame 0 alone, then groups of {t}), got {num_frames}"
        )
    if height % s or width % s or height < s or width < s:
        raise ValueError(f"height and width must be positive multiples of {s} (the spatial compression), got {height}x{width}")


class VideoVAE(PretrainedMixin, nn.Module):
    """Causal video VAE: `encode(x)` -> DiagonalGaussian, `decode(z)` -> clip; tensors `b c f h w` in [-1, 1].

    Clips must have 1 + t*k frames (t = temporal_compression; any count when t is 1) and a height
    and width divisible by the spatial compression. An image is a clip of one frame.
    """

    config_class = VideoVAEConfig

    def __init__(self, config: VideoVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    # -------------------------------------------------------------------------- shapes

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(channels, frames, height, width) of the latent of a clip of this size; raises ValueError if it has none."""
        self._check_size(num_frames, height, width)
        s, t = self.config.spatial_compression, self.config.temporal_compression
        return (self.config.latent_channels, 1 + (num_frames - 1) // t, height // s, width // s)

    def _check_size(self, num_frames: int, height: int, width: int) -> None:
        check_clip_size(num_frames, height, width, self.config.spatial_compression, self.config.temporal_compression)

    def _check_video(self, x: torch.Tensor) -> None:
        if x.ndim != 5 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected a video (b, {self.config.in_channels}, f, h, w), got shape {tuple(x.shape)}")
        self._check_size(*x.shape[2:])

    def _check_latent(self, z: torch.Tensor) -> None:
        if z.ndim != 5 or z.shape[1] != self.config.latent_channels:
            raise ValueError(f"expected a latent (b, {self.config.latent_channels}, f, h, w), got shape {tuple(z.shape)}")

    # -------------------------------------------------------------------------- encode / decode

    def encode(self, x: torch.Tensor, chunk_size: int | None = None) -> DiagonalGaussian:
        """Posterior over the latent of clip x (b, c, f, h, w). ``chunk_size`` (latent frames) bounds memory on long clips."""
        self._check_video(x)
        if chunk_size is None:
            moments = self.encoder(x)
        else:
            if chunk_size < 1:
                raise ValueError(f"chunk_size must be at least 1 latent frame, got {chunk_size}")
            t, cache = self.config.temporal_compression, {}
            # latent frame 0 comes from frame 0; latent frame j from frames 1 + t*(j-1) .. t*j
            bounds = [0, 1 + t * (chunk_size - 1)]
            while bounds[-1] < x.shape[2]:
                bounds.append(bounds[-1] + t * chunk_size)
            moments = torch.cat([self.encoder(x[:, :, a:b], cache) for a, b in zip(bounds[:-1], bounds[1:])], dim=2)
        mean, logvar = moments.float().chunk(2, dim=1)
        return DiagonalGaussian(mean, logvar.clamp(*self.config.logvar_clamp))

    def decode(self, z: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """Clip (b, c, 1 + t*(f'-1), h*s, w*s) from latent z (b, latent, f', h', w').

        ``chunk_size`` (latent frames) decodes chunk by chunk with a causal cache: memory stays
        flat as clips grow, and the output equals the whole decode (up to float rounding).
        """
        self._check_latent(z)
        if chunk_size is None:
            return self.decoder(z)
        return torch.cat(list(self.decode_chunks(z, chunk_size)), dim=2)

    def decode_chunks(self, z: torch.Tensor, chunk_size: int) -> Iterator[torch.Tensor]:
        """Decode ``chunk_size`` latent frames at a time, yielding each chunk's frames as soon as they are ready.

        A caller that writes the frames out as they come (a long clip to a file) holds one chunk at a time.
        """
        self._check_latent(z)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1 latent frame, got {chunk_size}")
        cache: Cache = {}
        for part in z.split(chunk_size, dim=2):
            yield self.decoder(part, cache)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, sample: bool = True) -> tuple[torch.Tensor, DiagonalGaussian]:
        """Reconstruction of x through a sampled (or, with sample=False, the mean) latent, and the posterior."""
        posterior = self.encode(x)
        z = posterior.sample(generator) if sample else posterior.mode()
        return self.decode(z.to(x.dtype)), posterior
