"""Videos through a video autoencoder (inference only): `kinema reconstruct` and `kinema interpolate`.

reconstruct: any video or PNG folder -> encode -> decode, at the autoencoder's training size (other
sizes are resized first, and the result says so). interpolate: the last frame of A and the first frame
of B (a video or an image each) -> their latents -> N frames along the straight line between them ->
decoded one by one: transition frames through the latent space.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from kinema.device import resolve_device, resolve_dtype
from kinema.hub import ModelFolder, open_model
from kinema.io import Provenance, read_video, write_video
from kinema.io.image import read_image
from kinema.models.vae import VideoVAE
from kinema.pipelines.common import PipelineSettings, to_uint8
from kinema.pipelines.generate import output_target

DEFAULT_AUTOENCODER = "shapes-vae"
CHUNK_FRAMES = 16  # latent frames decoded at a time: memory stays flat however long the video


@dataclass
class AutoencoderSettings(PipelineSettings):
    """model_index.json's "settings" of an autoencoder folder."""

    resolution: int = 64  # frames are resized to this square size before encoding (what it was trained at)
    fps: float = 8.0  # frame rate of interpolated clips unless --fps says otherwise


@dataclass
class AutoencodeResult:
    frames: np.ndarray  # uint8 (f, h, w, 3)
    model: str
    path: Path | None = None
    notes: list[str] = field(default_factory=list)  # e.g. the input was resized
    psnr: float | None = None  # reconstruct: against the (resized) input, dB
    seconds: float = 0.0

    def __repr__(self) -> str:
        f, h, w, _ = self.frames.shape
        quality = f", PSNR {self.psnr:.2f} dB" if self.psnr is not None else ""
        return f"AutoencodeResult({f} frames at {w}x{h}, model={self.model!r}{quality}, path={str(self.path) if self.path else None!r})"


class AutoencoderPipeline:
    """A VideoVAE driven on whole videos: uint8 frames in, uint8 frames out, at its training size."""

    def __init__(self, vae: VideoVAE, resolution: int, fps: float = 8.0, source: str = DEFAULT_AUTOENCODER) -> None:
        self.vae, self.resolution, self.fps, self.source = vae.eval(), resolution, fps, source

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike | ModelFolder = DEFAULT_AUTOENCODER, device: str = "auto",
                        dtype: str | None = None) -> AutoencoderPipeline:
        folder = model if isinstance(model, ModelFolder) else open_model(model)
        if folder.index.purpose != "autoencoder":
            raise ValueError(f"{folder.name} is a {folder.index.purpose} model, not an autoencoder (try --model {DEFAULT_AUTOENCODER})")
        device_ = resolve_device(device)
        vae = VideoVAE.from_pretrained(folder.component("vae"), device=device_, dtype=resolve_dtype(dtype, device_))
        settings = AutoencoderSettings.from_dict(folder.index.settings, f"{folder.where} settings")
        return cls(vae, settings.resolution, settings.fps, source=folder.name)

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    def _to_tensor(self, frames: np.ndarray) -> tuple[torch.Tensor, list[str]]:
        """uint8 (f, h, w, 3) -> (1, 3, f, s, s) in [-1, 1] at the training size; a note when resized."""
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not frames.shape[0]:
            raise ValueError(f"frames must be uint8 (frames, height, width, 3), got {frames.dtype} {frames.shape}")
        x = rearrange(torch.from_numpy(frames.copy()), "f h w c -> f c h w").float().div(127.5).sub(1)
        notes = []
        s = self.resolution
        if x.shape[-2:] != (s, s):
            notes.append(f"resized from {x.shape[-1]}x{x.shape[-2]} to {s}x{s}, the size {self.source} was trained at")
            x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        return rearrange(x, "f c h w -> 1 c f h w").to(self.device, next(self.vae.parameters()).dtype), notes

    @torch.no_grad()
    def reconstruct(self, frames: np.ndarray) -> AutoencodeResult:
        # 1. check and resize the input
        x, notes = self._to_tensor(frames)
        t = self.vae.config.temporal_compression
        usable = 1 + (x.shape[2] - 1) // t * t
        if usable < x.shape[2]:
            notes.append(f"the last {x.shape[2] - usable} frame(s) dropped: this autoencoder takes 1 + {t}k frames")
            x = x[:, :, :usable]
        # 2. encode to the posterior mean, 3. decode chunk by chunk
        z = self.vae.encode(x, chunk_size=CHUNK_FRAMES).mode().to(x.dtype)
        video = self.vae.decode(z, chunk_size=CHUNK_FRAMES).float().clamp(-1, 1)
        out = to_uint8(video)[0]
        reference = to_uint8(x.float())[0]
        mse = np.mean((out.astype(np.float64) - reference) ** 2)
        return AutoencodeResult(out, self.source, notes=notes, psnr=float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse)))

    @torch.no_grad()
    def interpolate(self, first: np.ndarray, last: np.ndarray, num_frames: int) -> AutoencodeResult:
        """``num_frames`` frames from image ``first`` to image ``last`` (both uint8 (h, w, 3)), both ends included."""
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or not 2 <= num_frames <= 10_000:
            raise ValueError(f"frames (--frames) must be a whole number from 2 to 10000 (both ends included), got {num_frames!r}")
        # 1. each end as a one-frame video (frame 0 is encoded on its own: an image is a video of one frame)
        a, notes = self._to_tensor(np.asarray(first)[None])
        b, more = self._to_tensor(np.asarray(last)[None])
        za, zb = (self.vae.encode(v).mode() for v in (a, b))  # (1, latent, 1, h', w')
        # 2. the straight line between the two latents, 3. each point decoded as an image
        weights = torch.linspace(0, 1, num_frames, device=za.device).view(-1, 1, 1, 1, 1)
        path = (1 - weights) * za + weights * zb  # (n, latent, 1, h', w')
        frames = torch.cat([self.vae.decode(p[None].to(a.dtype)) for p in path], dim=2).float().clamp(-1, 1)
        return AutoencodeResult(to_uint8(frames)[0], self.source, notes=list(dict.fromkeys(notes + more)))


def _frames_of(path: str | os.PathLike) -> np.ndarray:
    """A video or PNG folder as uint8 (f, h, w, 3); an image file as one frame."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
        return read_image(path)[None]
    return read_video(path).frames


def reconstruct(
    video: str | os.PathLike, out: str | os.PathLike, *, model: str | os.PathLike = DEFAULT_AUTOENCODER,
    format: Literal["mp4", "webm", "gif", "png"] | None = None, overwrite: bool = False, device: str = "auto",
    dtype: str | None = None, pipeline: AutoencoderPipeline | None = None,
) -> AutoencodeResult:
    """Encode and decode VIDEO (any video file or PNG folder) through the autoencoder; write the result to OUT."""
    target, fmt = output_target(out, format, overwrite)
    frames = read_video(video)
    pipe = pipeline or AutoencoderPipeline.from_pretrained(model, device=device, dtype=dtype)
    start = time.perf_counter()
    result = pipe.reconstruct(frames.frames)
    result.seconds = time.perf_counter() - start
    provenance = Provenance(model=pipe.source, extra={"operation": "reconstruct", "source": str(video), "notes": result.notes,
                                                      "psnr_db": round(result.psnr, 3)})
    result.path = write_video(target, result.frames, fps=frames.fps or pipe.fps, provenance=provenance, overwrite=overwrite, format=fmt)
    return result


def interpolate(
    a: str | os.PathLike, b: str | os.PathLike, out: str | os.PathLike, *, frames: int = 16,
    model: str | os.PathLike = DEFAULT_AUTOENCODER, fps: float | None = None, format: Literal["mp4", "webm", "gif", "png"] | None = None,
    overwrite: bool = False, device: str = "auto", dtype: str | None = None, pipeline: AutoencoderPipeline | None = None,
) -> AutoencodeResult:
    """Transition frames from the last frame of A to the first frame of B (videos, PNG folders or images)."""
    target, fmt = output_target(out, format, overwrite)
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps (--fps) must be a finite number > 0, got {fps}")
    first, last = _frames_of(a)[-1], _frames_of(b)[0]
    pipe = pipeline or AutoencoderPipeline.from_pretrained(model, device=device, dtype=dtype)
    start = time.perf_counter()
    result = pipe.interpolate(first, last, frames)
    result.seconds = time.perf_counter() - start
    provenance = Provenance(model=pipe.source, extra={"operation": "interpolate", "from": str(a), "to": str(b), "frames": frames,
                                                      "notes": result.notes})
    result.path = write_video(target, result.frames, fps=fps or pipe.fps, provenance=provenance, overwrite=overwrite, format=fmt)
    return result


def tiny_autoencoder(resolution: int = 16) -> AutoencoderPipeline:
    """A random one-level VideoVAE, for tests."""
    from kinema.models.vae import VideoVAEConfig

    torch.manual_seed(0)
    vae = VideoVAE(VideoVAEConfig(latent_channels=4, patch_size=2, channels=(8,), encoder_blocks=1, decoder_blocks=1, mid_blocks=0))
    return AutoencoderPipeline(vae, resolution, source="tiny-vae")


def save_autoencoder(pipe: AutoencoderPipeline, folder: str | os.PathLike) -> Path:
    """Write an autoencoder as a model folder: component "vae", purpose "autoencoder"."""
    from kinema.hub import ModelIndex
    from kinema.io.atomic import atomic_dir

    with atomic_dir(folder) as tmp:
        pipe.vae.save_pretrained(tmp / "vae")
        settings = AutoencoderSettings(resolution=pipe.resolution, fps=pipe.fps).to_dict()
        ModelIndex(pipeline=None, purpose="autoencoder", components={"vae": "vae"}, settings=settings).write(tmp)
    return Path(folder)
