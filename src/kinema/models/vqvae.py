"""A causal video VQ-VAE (VideoGPT's tokenizer): 3D-conv encoder and decoder around an EMA vector quantizer.

The encoder maps a clip (b, 3, f, h, w) in [-1, 1] to a grid of discrete codes (b, 1 + (f - 1) / t,
h / s, w / s), s the spatial (4 or 8) and t the temporal (1, 2 or 4) compression; the decoder maps
codes back to a clip. Time is grouped as in VideoVAE (kinema.models.vae): every temporal
convolution is causal (padded on the past side with copies of the first frame), and frames go
[frame 0] [1..t] [t+1..2t] ..., so latent frame 0 sees frame 0 alone. An image is therefore a
one-frame video, and its codes are the first latent frame of any clip that starts with it: a prior
over the codes does image-to-video by taking those codes as given (VideoGPT).

The quantizer follows VQ-VAE-2 (Razavi et al. 2019) and VideoGPT (Yan et al. 2021): the codebook is
not trained by gradients but is an exponential moving average of the encoder outputs assigned to
each code (Laplace-smoothed counts, so a rarely used code never divides by zero); the encoder gets
a commitment loss and the decoder's gradient through the straight-through estimator. Codes whose
moving-average usage falls below ``restart_threshold`` are dead: each is moved onto a random
encoder output of the current batch (training mode only; drawn from torch's global generator, so a
seeded run restarts the same codes the same way). The codebook starts with usage 1 everywhere, so
the first training batch moves every code it does not use onto its own outputs: the codebook is
initialised from data, as VideoGPT does explicitly.

The network knows nothing of training: the "vqvae" objective (kinema.training.objectives.vqvae)
trains it, and the "videogpt" objective freezes it under a transformer prior (kinema.models.gpt).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from kinema.models.base import PretrainedMixin
from kinema.models.vae import ChannelRMSNorm, SpatialDown, SpatialUp, TemporalDown, TemporalUp, check_clip_size


@dataclass
class VQVAEConfig:
    """Shape of the video VQ-VAE and its quantizer. Defaults: 64x64 Shapes clips of 17 frames -> 5 x 8 x 8 codes."""

    in_channels: int = 3  # RGB
    # channels per level. The first level runs after a 2x2 space-to-depth and each further one halves h and w
    # again, so the spatial compression is 2 ** len(channels): 2 levels -> 4, 3 levels -> 8
    channels: tuple[int, ...] = (16, 64, 128)
    encoder_blocks: int = 1  # residual blocks per encoder level
    decoder_blocks: int = 2  # residual blocks per decoder level (the decoder gains the most from capacity)
    mid_blocks: int = 1  # residual blocks at the latent rate, on each side of the quantizer
    # width at the latent rate (null: channels[-1]); with temporal compression one latent frame carries t frames
    mid_channels: int | None = 128
    temporal_compression: int = 4  # 1, 2 or 4: clips must have 1 + t*k frames (an image: 1)
    codebook_size: int = 1024  # codes; the vocabulary of the prior
    embed_dim: int = 64  # width of a code vector
    ema_decay: float = 0.99  # codebook moving average: new = decay * old + (1 - decay) * batch
    laplace_eps: float = 1e-5  # add-eps smoothing of the codes' moving-average counts
    # a code whose moving-average count of assigned encoder outputs (per batch, per process) falls below this is
    # restarted on a random encoder output of the batch; 0: never. 1.0 is VideoGPT's rule.
    restart_threshold: float = 1.0

    def __post_init__(self) -> None:
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {self.in_channels}")
        if len(self.channels) not in (2, 3) or min(self.channels) < 1:
            raise ValueError(f"channels must list 2 (spatial compression 4) or 3 (compression 8) positive widths, got {list(self.channels)}")
        if min(self.encoder_blocks, self.decoder_blocks, self.mid_blocks) < 0:
            raise ValueError("encoder_blocks, decoder_blocks and mid_blocks must be 0 or more")
        if self.mid_channels is not None and self.mid_channels < 1:
            raise ValueError(f"mid_channels must be at least 1 or null, got {self.mid_channels}")
        if self.temporal_compression not in (1, 2, 4):
            raise ValueError(f"temporal_compression must be 1, 2 or 4, got {self.temporal_compression}")
        if self.codebook_size < 2 or self.embed_dim < 1:
            raise ValueError(f"codebook_size must be at least 2 and embed_dim at least 1, got {self.codebook_size} and {self.embed_dim}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.laplace_eps <= 0 or self.restart_threshold < 0:
            raise ValueError(f"laplace_eps must be positive and restart_threshold 0 or more, got {self.laplace_eps} and {self.restart_threshold}")

    @property
    def spatial_compression(self) -> int:
        return 2 ** len(self.channels)

    @property
    def latent_rate_channels(self) -> int:
        return self.mid_channels or self.channels[-1]


# ------------------------------------------------------------------------------------------ layers


class CausalConv3d(nn.Module):
    """A k x k x k convolution that sees only the present and past frames (the first frame repeated before the clip)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv3d(cin, cout, kernel, padding=(0, kernel // 2, kernel // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        past = x[:, :, :1].expand(-1, -1, self.kernel - 1, -1, -1)
        return self.conv(torch.cat([past, x], dim=2))  # (b, cout, f, h, w)


class ResBlock(nn.Module):
    """x + conv(act(norm(conv(act(norm(x)))))), both convolutions causal 3x3x3; it starts as the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = ChannelRMSNorm(channels), CausalConv3d(channels, channels)
        self.norm2, self.conv2 = ChannelRMSNorm(channels), CausalConv3d(channels, channels)
        nn.init.zeros_(self.conv2.conv.weight)
        nn.init.zeros_(self.conv2.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class Encoder(nn.Module):
    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        c = config.channels
        self.conv_in = CausalConv3d(config.in_channels * 4, c[0])
        self.levels = nn.ModuleList()
        for i, width in enumerate(c):
            level = nn.Module()
            level.blocks = nn.ModuleList(ResBlock(width) for _ in range(config.encoder_blocks))
            level.down = SpatialDown(width, c[i + 1]) if i + 1 < len(c) else None
            self.levels.append(level)
        mid, t = config.latent_rate_channels, config.temporal_compression
        self.time_down = TemporalDown(c[-1], mid, t) if t > 1 else nn.Conv3d(c[-1], mid, 1)
        self.mid = nn.ModuleList(ResBlock(mid) for _ in range(config.mid_blocks))
        self.norm_out = ChannelRMSNorm(mid)
        self.conv_out = nn.Conv3d(mid, config.embed_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(rearrange(x, "b c f (h p) (w q) -> b (c p q) f h w", p=2, q=2))  # (b, c0, f, h/2, w/2)
        for level in self.levels:
            for block in level.blocks:
                h = block(h)
            if level.down is not None:
                h = level.down(h)
        h = self.time_down(h)  # (b, mid, 1 + (f - 1) / t, h / s, w / s)
        for block in self.mid:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))  # (b, embed_dim, f', h', w')


class Decoder(nn.Module):
    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        c = config.channels
        mid, t = config.latent_rate_channels, config.temporal_compression
        self.conv_in = CausalConv3d(config.embed_dim, mid)
        self.mid = nn.ModuleList(ResBlock(mid) for _ in range(config.mid_blocks))
        self.time_up = TemporalUp(mid, c[-1], t) if t > 1 else nn.Conv3d(mid, c[-1], 1)
        self.levels = nn.ModuleList()
        for i in reversed(range(len(c))):
            level = nn.Module()
            level.blocks = nn.ModuleList(ResBlock(c[i]) for _ in range(config.decoder_blocks))
            level.up = SpatialUp(c[i], c[i - 1]) if i > 0 else None
            self.levels.append(level)
        self.norm_out = ChannelRMSNorm(c[0])
        self.conv_out = CausalConv3d(c[0], config.in_channels * 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        h = self.time_up(h)  # (b, c, 1 + t * (f' - 1), h', w')
        for level in self.levels:
            for block in level.blocks:
                h = block(h)
            if level.up is not None:
                h = level.up(h)
        h = self.conv_out(F.silu(self.norm_out(h)))  # (b, 3 * 4, frames, h/2, w/2)
        return rearrange(h, "b (c p q) f h w -> b c f (h p) (w q)", p=2, q=2)


# ------------------------------------------------------------------------------------------ quantizer


@dataclass
class Quantized:
    """What the quantizer returns for a batch of encoder outputs."""

    vectors: torch.Tensor  # (b, d, f, h, w): the codes' vectors forward, the identity backward (straight-through)
    codes: torch.Tensor  # (b, f, h, w) long
    commitment: torch.Tensor  # mean ||z_e - sg(e)||^2: pulls the encoder towards its codes (weight it by beta)
    perplexity: torch.Tensor  # exp(entropy) of this batch's code histogram: how many codes it effectively used
    used: torch.Tensor  # fraction of the codebook used by this batch
    restarted: torch.Tensor  # codes restarted by this call (0 outside training)


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantization onto an EMA codebook, with dead-code restarts in training mode.

    The buffers are the codebook state (saved with the weights): ``embedding`` (K, d) the code vectors,
    ``cluster_size`` (K,) the moving-average count of encoder outputs assigned to each code per batch,
    and ``embed_sum`` (K, d) the moving-average sum of those outputs; embedding = embed_sum / smoothed count.
    """

    def __init__(self, codebook_size: int, dim: int, decay: float, eps: float, restart_threshold: float) -> None:
        super().__init__()
        self.codebook_size, self.dim = codebook_size, dim
        self.decay, self.eps, self.restart_threshold = decay, eps, restart_threshold
        embedding = torch.randn(codebook_size, dim)
        self.register_buffer("embedding", embedding)
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("embed_sum", embedding.clone())

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index (n,) of the closest code to each row of flat (n, d) in float32; ties go to the lower index."""
        codebook = self.embedding.float()
        distances = codebook.pow(2).sum(1) - 2 * flat.float() @ codebook.t()  # ||x||^2 is the same for every code
        return distances.argmin(dim=1)

    def forward(self, z: torch.Tensor) -> Quantized:
        b, _, f, h, w = z.shape
        with torch.autocast(z.device.type, enabled=False):  # distances and moving averages in float32
            flat = rearrange(z.float(), "b d f h w -> (b f h w) d")
            codes = self.nearest(flat.detach())
            vectors = self.embedding.float()[codes]  # the codebook before this batch's update
            commitment = F.mse_loss(flat, vectors)  # the codebook is a buffer: only the encoder gets this gradient
            counts = torch.bincount(codes, minlength=self.codebook_size).float()
            restarted = self._update(flat.detach(), codes) if self.training else torch.zeros((), device=z.device)
            straight = flat + (vectors - flat).detach()
            probs = counts / counts.sum()
            perplexity = torch.exp(-(probs * torch.log(probs.clamp_min(1e-12))).sum())
        return Quantized(
            vectors=rearrange(straight, "(b f h w) d -> b d f h w", b=b, f=f, h=h, w=w).to(z.dtype),
            codes=codes.view(b, f, h, w),
            commitment=commitment,
            perplexity=perplexity,
            used=(counts > 0).float().mean(),
            restarted=restarted,
        )

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """One moving-average step of the codebook towards the batch, then the dead-code restarts."""
        onehot = F.one_hot(codes, self.codebook_size).type_as(flat)  # (n, K); a matmul, not index_add: deterministic on GPUs
        counts, sums = onehot.sum(0), onehot.t() @ flat  # (K,), (K, d)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(counts)  # every process's batch counts (DDP then broadcasts rank 0's restarts)
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.codebook_size * self.eps) * n
        self.embedding.copy_(self.embed_sum / smoothed[:, None])
        if self.restart_threshold <= 0:
            return torch.zeros((), device=flat.device)
        dead = (self.cluster_size < self.restart_threshold).nonzero().squeeze(1)
        if len(dead):
            fresh = flat[self._restart_picks(flat, codes, len(dead))]
            # a restarted code counts as just alive: it must win outputs in the next batches to stay where it is
            self.embedding[dead] = fresh
            self.embed_sum[dead] = fresh * self.restart_threshold
            self.cluster_size[dead] = self.restart_threshold
        return torch.tensor(float(len(dead)), device=flat.device)

    def _restart_picks(self, flat: torch.Tensor, codes: torch.Tensor, count: int) -> torch.Tensor:
        """Which ``count`` outputs of the batch dead codes restart on: drawn in proportion to each output's squared
        distance to the code it got (k-means++'s rule), so restarts go where the codebook fits worst. Uniform picks
        land mostly on the commonest content (a Shapes frame is mostly black background), where the codes already
        fit and a restarted code dies again. Distinct outputs where enough are badly fitted; from torch's global
        generator (seeded runs repeat)."""
        error = (flat - self.embedding[codes]).pow(2).sum(1)  # against the codebook after this batch's moving average
        if not error.sum() > 0:  # every output sits on its code: nothing to prefer
            error = torch.ones_like(error)
        return torch.multinomial(error, count, replacement=int((error > 0).sum()) < count)

    def usage(self) -> dict[str, float]:
        """Codebook health from the moving-average counts: the fraction of codes alive (at or above the restart
        threshold; with restarts off, any use) and the perplexity of the usage distribution."""
        size = self.cluster_size.float()
        alive = size >= self.restart_threshold if self.restart_threshold > 0 else size > 0
        probs = size / size.sum().clamp_min(1e-12)
        perplexity = torch.exp(-(probs * torch.log(probs.clamp_min(1e-12))).sum())
        return {"fraction_used": alive.float().mean().item(), "perplexity": perplexity.item()}


# ------------------------------------------------------------------------------------------ the model


class VideoVQVAE(PretrainedMixin, nn.Module):
    """Causal video VQ-VAE: `encode(x)` -> codes (b, f', h', w') long, `decode(codes)` -> clip in [-1, 1].

    Clips are (b, c, f, h, w) in [-1, 1] with 1 + t*k frames (t = temporal_compression) and a height and
    width divisible by the spatial compression. An image is a clip of one frame.
    """

    config_class = VQVAEConfig

    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quantizer = VectorQuantizer(config.codebook_size, config.embed_dim, config.ema_decay, config.laplace_eps,
                                         config.restart_threshold)
        self.decoder = Decoder(config)

    # -------------------------------------------------------------------------- shapes

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """(frames, height, width) of the code grid of a clip of this size; raises ValueError if it has none."""
        s, t = self.config.spatial_compression, self.config.temporal_compression
        check_clip_size(num_frames, height, width, s, t)
        return (1 + (num_frames - 1) // t, height // s, width // s)

    def _check_video(self, x: torch.Tensor) -> None:
        if x.ndim != 5 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected a video (b, {self.config.in_channels}, f, h, w), got shape {tuple(x.shape)}")
        self.latent_shape(*x.shape[2:])

    # -------------------------------------------------------------------------- encode / decode

    def quantize(self, x: torch.Tensor) -> Quantized:
        """Encode clip x and quantize it (in training mode this also updates the codebook)."""
        self._check_video(x)
        return self.quantizer(self.encoder(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (b, f', h', w') long of clip x (b, c, f, h, w)."""
        return self.quantize(x).codes

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """The code vectors (b, embed_dim, f', h', w') of codes (b, f', h', w')."""
        if codes.ndim != 4 or codes.dtype != torch.long:
            raise ValueError(f"expected codes (b, f, h, w) of dtype long, got {codes.dtype} {tuple(codes.shape)}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.config.codebook_size):
            raise ValueError(f"codes must be in [0, {self.config.codebook_size}), got values from {codes.min()} to {codes.max()}")
        vectors = self.quantizer.embedding[codes]  # (b, f, h, w, d)
        return rearrange(vectors, "b f h w d -> b d f h w").to(self.quantizer.embedding.dtype)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Clip (b, c, 1 + t*(f'-1), h'*s, w'*s) in [-1, 1] from codes (b, f', h', w')."""
        vectors = self.embed(codes)
        return self.decoder(vectors.to(next(self.decoder.parameters()).dtype)).clamp(-1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        """Reconstruction of x (not clipped to [-1, 1], for the loss) and the quantizer's output."""
        quantized = self.quantize(x)
        return self.decoder(quantized.vectors), quantized

    def codebook_usage(self) -> dict[str, float]:
        """{"fraction_used", "perplexity"} of the codebook's moving-average usage (see VectorQuantizer.usage)."""
        return self.quantizer.usage()
