"""Pixel metrics of videos: PSNR and SSIM of paired frames, temporal flicker (VBench) and ACD (MoCoGAN).

Every function takes uint8 (F, H, W, 3) frames, the edge format of kinema.io. PSNR and SSIM are
computed here with numpy/scipy (scikit-image is only a test dependency) and match
``skimage.metrics.peak_signal_noise_ratio`` and ``structural_similarity(channel_axis=-1,
data_range=255)`` to 1e-6; the tests check that.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import ndimage
from scipy.spatial.distance import cdist, pdist

DATA_RANGE = 255.0
# SSIM constants of Wang et al. 2004 and skimage's defaults: 7x7 uniform window, sample covariance.
_SSIM_WIN, _SSIM_K1, _SSIM_K2 = 7, 0.01, 0.03


def _check_video(frames: np.ndarray, name: str = "frames") -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{name} must be uint8 (F, H, W, 3), got shape {frames.shape}")
    return frames


def check_pair(real: np.ndarray, fake: np.ndarray) -> None:
    """Paired metrics need videos of one shape; say which dimension differs."""
    real, fake = _check_video(real, "real"), _check_video(fake, "fake")
    if real.shape[0] != fake.shape[0]:
        raise ValueError(f"paired videos must have the same number of frames: real {real.shape[0]}, fake {fake.shape[0]}")
    if real.shape != fake.shape:
        raise ValueError(f"paired videos must have the same frame size: real {real.shape[2]}x{real.shape[1]}, "
                         f"fake {fake.shape[2]}x{fake.shape[1]} (width x height)")  # fmt: skip


def psnr_frames(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """PSNR in dB of each frame pair (F,), over all pixels and channels; inf where frames are identical."""
    check_pair(real, fake)
    diff = np.asarray(real, np.float64) - np.asarray(fake, np.float64)
    mse = np.mean(diff**2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(DATA_RANGE**2 / mse)


def ssim_frames(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """SSIM of each frame pair (F,): per channel on a 7x7 uniform window, averaged over channels.

    The same computation as skimage's structural_similarity(channel_axis=-1, data_range=255):
    sample covariances (N - 1), and the (win - 1) / 2 border left out of the mean.
    """
    check_pair(real, fake)
    if min(real.shape[1:3]) < _SSIM_WIN:
        raise ValueError(f"SSIM needs frames of at least {_SSIM_WIN}x{_SSIM_WIN} pixels, got {real.shape[2]}x{real.shape[1]}")
    x, y = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    size = (1, _SSIM_WIN, _SSIM_WIN, 1)  # filter each frame and channel on its own

    def mean(image: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(image, size=size)

    n = _SSIM_WIN**2
    cov_norm = n / (n - 1)
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (_SSIM_K1 * DATA_RANGE) ** 2, (_SSIM_K2 * DATA_RANGE) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (_SSIM_WIN - 1) // 2
    return s[:, pad:-pad, pad:-pad, :].mean(axis=(1, 2, 3))


def temporal_flicker(frames: np.ndarray) -> float:
    """VBench's temporal_flickering score of one video: (255 - mean |frame t+1 - frame t|) / 255.

    As in Vchitect/VBench vbench/temporal_flickering.py (cal_score, mae_seq): the mean absolute
    difference over all pixels and channels of each pair of consecutive frames, averaged over the
    pairs, then mapped so that 1.0 is a static video and lower values flicker more. VBench meant
    it for static-scene prompts; on moving content it also counts motion.
    """
    frames = _check_video(frames)
    if len(frames) < 2:
        raise ValueError(f"flicker needs at least 2 frames, got {len(frames)}")
    x = frames.astype(np.float32)
    mad = np.abs(x[1:] - x[:-1]).mean(axis=(1, 2, 3))  # (F - 1,)
    return float((255.0 - mad.mean()) / 255.0)


# ACD: the object is the largest blob of pixels at least half as bright as the frame's peak (on
# black, a pixel's brightest channel over the object's is its coverage), and its interior the blob
# eroded by one pixel: a pixel whose eight neighbours are all at least half covered is fully inside
# a shape of the Shapes sizes, so anti-aliased edges never mix black into the colour.
_MIN_PEAK = 32.0  # a frame darker than this (of 255) holds no object (as in the Shapes checker)
_BLOB_LEVEL = 0.5


def object_colors(frames: np.ndarray) -> np.ndarray:
    """Mean RGB (0..255) of the object's interior in each frame, (F, 3); NaN rows where no object is found."""
    frames = _check_video(frames)
    rgb = frames.astype(np.float64)
    brightness = rgb.max(axis=-1)
    colors = np.full((len(frames), 3), np.nan)
    for t in range(len(frames)):
        peak = brightness[t].max()
        if peak < _MIN_PEAK:
            continue
        labels, count = ndimage.label(brightness[t] >= _BLOB_LEVEL * peak)
        sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
        blob = labels == 1 + int(np.argmax(sizes))
        interior = ndimage.binary_erosion(blob, structure=np.ones((3, 3), bool))
        if not interior.any():  # a blob too thin to erode: use its brightest pixels instead
            interior = blob & (brightness[t] >= 0.9 * brightness[t][blob].max())
        colors[t] = rgb[t][interior].mean(axis=0)
    return colors


def content_distance(frames: np.ndarray) -> float:
    """ACD of one video: mean pairwise L2 distance between the per-frame object colours (RGB 0..255).

    Frames without an object are left out; NaN when fewer than two frames have one.
    """
    colors = object_colors(frames)
    colors = colors[~np.isnan(colors).any(axis=1)]
    if len(colors) < 2:
        return float("nan")
    return float(pdist(colors).mean())


def average_content_distance(videos: Iterable[np.ndarray]) -> dict[str, float | int]:
    """ACD of a set (MoCoGAN, Table 1): the mean of content_distance over videos where it is defined.

    Returns ``acd`` and ``num_videos`` / ``num_measured`` (videos with an object in two frames or more).
    """
    values = [content_distance(v) for v in videos]
    measured = [v for v in values if not np.isnan(v)]
    return {
        "acd": float(np.mean(measured)) if measured else float("nan"),
        "num_videos": len(values),
        "num_measured": len(measured),
    }


def color_diversity(colors: np.ndarray, reference: np.ndarray, radius: float = 48.0) -> dict[str, float]:
    """A collapse detector: how varied a set's object colours are, against a reference (training) set.

    colors, reference: (n, 3) per-video mean object colours, RGB 0..255.
    ``color_diversity_ratio``: mean pairwise distance of ``colors`` over that of ``reference`` (~1
    for a matching spread, << 1 when generation collapses onto few colours);
    ``color_coverage``: share of reference colours with a generated colour within ``radius``.
    """
    colors, reference = np.asarray(colors, float).reshape(-1, 3), np.asarray(reference, float).reshape(-1, 3)
    if len(reference) < 2:
        raise ValueError("the reference needs at least two colours")
    ratio = float(pdist(colors).mean() / pdist(reference).mean()) if len(colors) > 1 else 0.0
    coverage = float((cdist(reference, colors).min(axis=1) <= radius).mean()) if len(colors) else 0.0
    return {"color_diversity_ratio": ratio, "color_coverage": coverage}
