"""Cheap previews while sampling: a linear map from a VAE's latent channels to RGB, fitted once per VAE on a
few of its own decodes and cached, instead of a full decode at every preview.

Image UIs do the same with hand-fitted factors per model family (ComfyUI's "latent2rgb"); here the factors are
fitted for whatever VAE a pipeline has: a few synthetic clips (random colour shapes) are encoded and decoded by
the VAE itself, the decoded frames are area-pooled to the latent grid, and a least-squares fit gives
RGB = W z + b per latent pixel, z being the latent as the sampler holds it (after the pipeline's scaling).
The preview is that RGB, upsampled to the output size.

Time: a video VAE that compresses t frames into one latent frame decodes latent frame 0 to frame 0 alone
(causal VAEs: CogVideoX, Wan, Kinema's) and latent frame j to the t frames after. The fit pairs a latent frame
with every frame of its group (equivalently their mean: the least-squares answer for one preview frame that
stands for all t), and the preview repeats each latent frame's picture over its group, so it has the output's
frame count and plays at its rate.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

FIT_VERSION = 1  # part of the cache key: a change to how the map is fitted must not reuse old fits
CACHE_ENV = "KINEMA_PREVIEW_CACHE"  # a folder for fitted maps; "" keeps them in memory only

Decode = Callable[[torch.Tensor], torch.Tensor]  # raw VAE latent (b, c, f, h, w) -> video (b, 3, F, H, W) in [-1, 1]
Encode = Callable[[torch.Tensor], torch.Tensor]  # video (b, 3, F, H, W) in [-1, 1] -> raw VAE latent (b, c, f, h, w)


@dataclass(frozen=True)
class LinearPreview:
    """A fitted latent -> RGB map: ``frames(latents)`` is the preview of latents as the sampler holds them."""

    weight: torch.Tensor  # (3, c): latent channels -> RGB in [-1, 1]
    bias: torch.Tensor  # (3,)
    spatial: int  # output pixels per latent pixel, each side
    temporal: int  # output frames per latent frame
    causal: bool  # latent frame 0 stands for frame 0 alone: 1 + t * (f - 1) frames (else t * f)
    psnr: float = math.nan  # dB, the preview against the real decode, on latents like the fit's that it did not see
    fit_seconds: float = math.nan

    def rgb(self, latents: torch.Tensor) -> torch.Tensor:
        """(b, c, f, h, w) latents -> (b, 3, f, h, w) RGB in [-1, 1], at the latent grid."""
        if latents.ndim != 5 or latents.shape[1] != self.weight.shape[1]:
            raise ValueError(f"expected latents (b, {self.weight.shape[1]}, f, h, w), got shape {tuple(latents.shape)}")
        weight = self.weight.to(latents.device, torch.float32)
        rgb = torch.einsum("rc,bcfhw->brfhw", weight, latents.float()) + self.bias.to(latents.device, torch.float32).view(1, 3, 1, 1, 1)
        return rgb.clamp(-1, 1)

    def num_frames(self, latent_frames: int) -> int:
        """How many frames the VAE decodes ``latent_frames`` latent frames to."""
        return 1 + self.temporal * (latent_frames - 1) if self.causal else self.temporal * latent_frames

    def video(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """(b, c, f, h, w) latents -> (b, 3, F, H, W) in [-1, 1]: F frames as the VAE decodes, bilinear to ``size``
        (default: the decoded size, the latent grid times ``spatial``)."""
        rgb = self.rgb(latents)  # (b, 3, f, h, w)
        if self.temporal > 1:
            repeats = torch.full((rgb.shape[2],), self.temporal, device=rgb.device)
            if self.causal:
                repeats[0] = 1
            rgb = rgb.repeat_interleave(repeats, dim=2)  # (b, 3, F, h, w)
        size = size or (latents.shape[-2] * self.spatial, latents.shape[-1] * self.spatial)
        frames = F.interpolate(rearrange(rgb, "b c f h w -> (b f) c h w"), size=tuple(size), mode="bilinear", align_corners=False)
        return rearrange(frames, "(b f) c h w -> b c f h w", b=rgb.shape[0]).clamp(-1, 1)

    def frames(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> np.ndarray:
        """(b, c, f, h, w) latents -> uint8 (b, F, H, W, 3) preview frames."""
        video = self.video(latents, size).add(1).mul(127.5).round().to(torch.uint8)
        return rearrange(video, "b c f h w -> b f h w c").cpu().numpy()

    # -------------------------------------------------------------------------- cache files

    def save(self, path: str | os.PathLike) -> None:
        """One safetensors file: the weights, and the rest as its metadata (written atomically)."""
        from safetensors.torch import save_file

        from kinema.io.atomic import atomic_path

        meta = {"spatial": self.spatial, "temporal": self.temporal, "causal": self.causal, "psnr": self.psnr,
                "fit_seconds": self.fit_seconds, "fit_version": FIT_VERSION}
        with atomic_path(path, overwrite=True) as tmp:
            save_file({"weight": self.weight.float().cpu().contiguous(), "bias": self.bias.float().cpu().contiguous()}, str(tmp),
                      metadata={"preview": json.dumps(meta)})

    @classmethod
    def load(cls, path: str | os.PathLike) -> LinearPreview:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["preview"])
            weight, bias = f.get_tensor("weight"), f.get_tensor("bias")
        if meta.get("fit_version") != FIT_VERSION or weight.ndim != 2 or weight.shape[0] != 3 or bias.shape != (3,):
            raise ValueError(f"{path} is not a preview map of this Kinema")
        return cls(weight, bias, int(meta["spatial"]), int(meta["temporal"]), bool(meta["causal"]), float(meta["psnr"]), float(meta["fit_seconds"]))


# ---------------------------------------------------------------------------------------------- fitting


def _grouping(latent_frames: int, frames: int) -> tuple[int, bool]:
    """(frames per latent frame, causal) from how many frames a decode of ``latent_frames`` gave."""
    if frames == latent_frames:
        return 1, False
    if latent_frames > 1 and (frames - 1) % (latent_frames - 1) == 0 and frames > latent_frames:
        return (frames - 1) // (latent_frames - 1), True
    if frames % latent_frames == 0:
        return frames // latent_frames, False
    raise ValueError(f"a decode of {latent_frames} latent frames gave {frames} frames: no grouping of frames per latent frame fits")


def _targets(video: torch.Tensor, temporal: int, causal: bool, spatial: int) -> torch.Tensor:
    """Decoded (b, 3, F, H, W) -> (b, 3, f, h, w): each latent pixel's area and frame group, averaged."""
    b, frames = video.shape[0], video.shape[2]
    pooled = F.avg_pool2d(rearrange(video.float(), "b c f h w -> (b f) c h w"), spatial)
    pooled = rearrange(pooled, "(b f) c h w -> b c f h w", b=b)
    if temporal == 1:
        return pooled
    groups = [pooled[:, :, :1]] if causal else []
    start = 1 if causal else 0
    groups += [pooled[:, :, i : i + temporal].mean(dim=2, keepdim=True) for i in range(start, frames, temporal)]
    return torch.cat(groups, dim=2)


def video_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two videos in [-1, 1], on the 0..255 scale the frames are written in."""
    mse = ((a.float().clamp(-1, 1) - b.float().clamp(-1, 1)) * 127.5).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def dead_leaves(count: int, frames: int, height: int, width: int, shapes: int = 10, seed: int = 0) -> torch.Tensor:
    """(count, 3, frames, height, width) in [-1, 1]: still clips of random-colour discs and squares occluding each
    other on a random background ("dead leaves", a classic model of natural images' statistics), sizes
    skewed small. What the fit encodes to get latents like the ones a sampler ends on."""
    generator = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(height).float(), torch.arange(width).float(), indexing="ij")
    clips = torch.empty(count, 3, frames, height, width)
    for i in range(count):
        image = (torch.rand(3, 1, 1, generator=generator) * 2 - 1).expand(3, height, width).clone()
        for k in range(shapes):
            colour = torch.rand(3, generator=generator) * 2 - 1
            cy, cx = (torch.rand(2, generator=generator) * torch.tensor([height, width])).tolist()
            r = min(height, width) / 2 * torch.rand(1, generator=generator).item() ** 2 + 1
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r if k % 2 else ((xx - cx).abs() < r) & ((yy - cy).abs() < r)
            image[:, mask] = colour[:, None]
        clips[i] = image[:, None].expand(3, frames, height, width)
    return clips


@torch.no_grad()
def fit_linear_preview(decode: Decode, channels: int, *, encode: Encode | None = None, clip: tuple[int, int, int] | None = None,
                       scale: torch.Tensor | float = 1.0, shift: torch.Tensor | float = 0.0, samples: int = 4, held_out: int = 2,
                       grid: tuple[int, int, int] = (3, 16, 16), latents: torch.Tensor | None = None, seed: int = 0) -> LinearPreview:
    """Fit the map on ``samples`` decodes and measure it on ``held_out`` more.

    The latents: the given ``latents`` ((n, c, f, h, w), as the sampler holds them); else, with ``encode``, the
    VAE's encodings of dead-leaves clips of size ``clip`` (frames, height, width); else standard normal ones of
    size ``grid``. Encoded clips fit much better than random latents, which decode off the images a model
    ends on (shapes-vae on real Shapes latents: 23.2 dB against 19.0; benchmarks/latent_preview.py).

    The sampler's latent z reaches the VAE as ``z * scale + shift`` (per channel, or one number): the map is
    fitted on the sampler's side, so it applies to what a step callback sees. ``decode`` takes that raw
    latent and returns the video in [-1, 1]; it runs once per latent, to keep a large VAE's memory down.
    """
    if samples < 1 or held_out < 0:
        raise ValueError(f"samples must be >= 1 and held_out >= 0, got {samples} and {held_out}")
    start = time.perf_counter()
    scale = torch.as_tensor(scale, dtype=torch.float32).reshape(-1, 1, 1, 1)
    shift = torch.as_tensor(shift, dtype=torch.float32).reshape(-1, 1, 1, 1)
    if latents is None and encode is not None:
        if clip is None:
            raise ValueError("encode needs the size of the clips to encode (clip=(frames, height, width))")
        pixels = dead_leaves(samples + held_out, *clip, seed=seed)
        latents = torch.cat([(encode(x[None]).float().cpu() - shift) / scale for x in pixels])
    elif latents is None:
        latents = torch.randn((samples + held_out, channels, *grid), generator=torch.Generator().manual_seed(seed))
    if latents.ndim != 5 or latents.shape[1] != channels or latents.shape[0] <= held_out:
        raise ValueError(f"latents must be (n > {held_out}, {channels}, f, h, w), got shape {tuple(latents.shape)}")
    latents = latents.float().cpu()
    videos = [decode(z[None] * scale + shift).float().cpu() for z in latents]  # each (1, 3, F, H, W)
    f, h, w = latents.shape[2:]
    frames, height, width = videos[0].shape[2:]
    if height % h or width % w or height // h != width // w:
        raise ValueError(f"a {h}x{w} latent decoded to {height}x{width} frames: not a whole scale factor")
    spatial = height // h
    temporal, causal = _grouping(f, frames)
    fit = latents[: len(latents) - held_out]
    targets = torch.cat([_targets(v, temporal, causal, spatial) for v in videos[: len(fit)]])  # (n, 3, f, h, w)
    x = rearrange(fit, "n c f h w -> (n f h w) c").double()
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)  # the bias column
    y = rearrange(targets, "n c f h w -> (n f h w) c").double()
    solution = torch.linalg.lstsq(x, y).solution  # (c + 1, 3)
    preview = LinearPreview(solution[:-1].T.float().contiguous(), solution[-1].float().contiguous(), spatial, temporal, causal)
    psnr = math.nan
    if held_out:
        rest = latents[len(fit):]
        psnr = sum(video_psnr(preview.video(rest[i : i + 1], (height, width)), videos[len(fit) + i]) for i in range(len(rest))) / len(rest)
    return LinearPreview(preview.weight, preview.bias, spatial, temporal, causal, psnr, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------- per-VAE cache


def fingerprint(module: torch.nn.Module, *extra: Any) -> str:
    """A key that changes with the network's class, config and weights (and ``extra``): its tensors' names,
    shapes, types and a few statistics of their values, which any change to the weights moves. Cheaper than
    hashing every byte of a large VAE, and exact enough for a cache of previews."""
    digest = hashlib.sha256()
    config = getattr(module, "config", None)
    if is_dataclass(config):
        config = asdict(config)
    elif config is not None and hasattr(config, "items"):
        config = dict(config.items())
    digest.update(json.dumps([type(module).__name__, config, FIT_VERSION, [repr(e) for e in extra]], sort_keys=True, default=repr).encode())
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_meta:
                raise ValueError(f"{name} holds no weights (meta device): nothing to fit a preview on")
            values = tensor.detach().flatten().double()
            stats = [values.sum(), values.abs().sum(), values.pow(2).sum()] if values.numel() else []
            head = torch.cat([values[:4], values[-4:]]) if values.numel() else values
            digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            digest.update(np.asarray(torch.stack(stats).tolist() if stats else [], np.float64).tobytes())
            digest.update(np.asarray(head.cpu().tolist(), np.float64).tobytes())
    return digest.hexdigest()[:32]


def cache_dir() -> Path | None:
    """Where fitted maps are kept between runs: $KINEMA_PREVIEW_CACHE ("" : memory only), else
    $XDG_CACHE_HOME/kinema/previews (~/.cache/kinema/previews)."""
    folder = os.environ.get(CACHE_ENV)
    if folder is not None:
        return Path(folder).expanduser() if folder else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kinema" / "previews"


_MEMORY: dict[str, LinearPreview] = {}
_LOCK = threading.Lock()


class LatentPreviewer:
    """A VAE's linear preview: fitted on first use, then taken from memory or the cache folder by the VAE's
    fingerprint (weights, config, the latent scaling and how it is fitted), so a VAE is fitted once per machine.

    ``decode`` turns a raw latent (b, c, f, h, w) into a video (b, 3, F, H, W) in [-1, 1], ``encode`` (optional,
    better fits) the reverse for clips of size ``clip``; the sampler's latent reaches the VAE as
    ``z * scale + shift``. ``fit`` passes on to ``fit_linear_preview`` (samples, grid, seed, ...). ``folder``:
    the cache folder (True: ``cache_dir()``; None: memory only).
    """

    def __init__(self, vae: torch.nn.Module, decode: Decode, channels: int, *, encode: Encode | None = None,
                 clip: tuple[int, int, int] | None = None, scale: torch.Tensor | float = 1.0, shift: torch.Tensor | float = 0.0,
                 folder: str | os.PathLike | None | bool = True, **fit: Any) -> None:
        self.vae, self.decode, self.encode, self.channels = vae, decode, encode, channels
        self.scale, self.shift, self.clip, self.fit = scale, shift, clip, fit
        self.folder = cache_dir() if folder is True else (Path(folder) if folder else None)
        self._map: LinearPreview | None = None

    @property
    def key(self) -> str:
        scale = torch.as_tensor(self.scale, dtype=torch.float64).flatten().tolist()
        shift = torch.as_tensor(self.shift, dtype=torch.float64).flatten().tolist()
        how = ["encoded" if self.encode else "random", self.clip, sorted(self.fit.items())]
        return fingerprint(self.vae, self.channels, scale, shift, how)

    def map(self) -> LinearPreview:
        """The fitted map: from this previewer, memory, the cache folder, or a fit now (then kept in both)."""
        if self._map is not None:
            return self._map
        with _LOCK:
            key = self.key
            preview = _MEMORY.get(key)
            path = self.folder / f"{key}.safetensors" if self.folder is not None else None
            if preview is None and path is not None and path.is_file():
                try:
                    preview = LinearPreview.load(path)
                except Exception:  # noqa: BLE001 - a damaged or foreign cache file is refitted and replaced
                    preview = None
            if preview is None:
                preview = fit_linear_preview(self.decode, self.channels, encode=self.encode, clip=self.clip, scale=self.scale,
                                             shift=self.shift, **self.fit)
                if path is not None:
                    try:
                        preview.save(path)
                    except OSError:  # a read-only cache folder: the map stays in memory
                        pass
            _MEMORY[key] = preview
        self._map = preview
        return preview

    def frames(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> np.ndarray:
        """(b, c, f, h, w) latents as the sampler holds them -> uint8 (b, F, H, W, 3)."""
        return self.map().frames(latents, size)

    def video(self, latents: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """(b, c, f, h, w) latents -> (b, 3, F, H, W) in [-1, 1]."""
        return self.map().video(latents, size)


def forget_cached_maps() -> None:
    """Empty the in-memory cache (tests; the cache folder is left as it is)."""
    with _LOCK:
        _MEMORY.clear()
