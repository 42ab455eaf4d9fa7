"""Pixel metrics and the Frechet distance against independent computations."""

import numpy as np
import pytest
import scipy.linalg
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from kinema.data.shapes import CaptionedShapes, ShapeMotion
from kinema.evaluation.fvd import frechet_distance
from kinema.evaluation.metrics import (
    average_content_distance,
    color_diversity,
    content_distance,
    object_colors,
    psnr_frames,
    ssim_frames,
    temporal_flicker,
)


@pytest.fixture(scope="module")
def pair():
    real = CaptionedShapes("test", num_samples=1, seed=3).render(0)
    rng = np.random.default_rng(0)
    fake = np.clip(real + rng.normal(0, 25, real.shape), 0, 255).astype(np.uint8)
    return real, fake


def test_psnr_and_ssim_match_scikit_image_per_frame(pair):
    real, fake = pair
    fake[5] = real[5]  # one identical frame: PSNR inf, SSIM 1
    psnr, ssim = psnr_frames(real, fake), ssim_frames(real, fake)
    with np.errstate(divide="ignore"):
        want_psnr = [peak_signal_noise_ratio(r, f, data_range=255) for r, f in zip(real, fake)]
    want_ssim = [structural_similarity(r, f, channel_axis=-1, data_range=255) for r, f in zip(real, fake)]
    assert psnr.shape == ssim.shape == (16,)
    assert np.isinf(psnr[5]) and np.isinf(want_psnr[5]) and ssim[5] == pytest.approx(1.0)
    finite = np.isfinite(want_psnr)
    np.testing.assert_allclose(psnr[finite], np.asarray(want_psnr)[finite], atol=1e-4)
    np.testing.assert_allclose(ssim, want_ssim, atol=1e-4)
    assert 10 < psnr[finite].mean() < 30 and 0.05 < ssim.mean() < 0.9


def test_paired_metrics_name_the_mismatch(pair):
    real, fake = pair
    with pytest.raises(ValueError, match="same number of frames: real 16, fake 8"):
        psnr_frames(real, fake[:8])
    with pytest.raises(ValueError, match="same frame size"):
        ssim_frames(real, fake[:, :32])


def test_flicker_follows_vbench():
    static = np.full((8, 16, 16, 3), 100, np.uint8)
    assert temporal_flicker(static) == 1.0
    strobe = np.zeros((8, 16, 16, 3), np.uint8)
    strobe[::2] = 255  # every frame differs from the last by 255 everywhere
    assert temporal_flicker(strobe) == 0.0
    video = np.random.default_rng(1).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    mad = np.mean([np.abs(video[t + 1].astype(float) - video[t]).mean() for t in range(4)])
    assert temporal_flicker(video) == pytest.approx((255 - mad) / 255)


def test_acd_is_zero_on_shape_motion_and_large_when_colour_drifts():
    ds = ShapeMotion("test", num_samples=16)
    result = average_content_distance(ds.render(i) for i in range(16))
    assert result["num_measured"] == 16 and result["acd"] < 0.5
    video = ds.render(0).astype(np.float64)
    fading = (video * np.linspace(1.0, 0.4, 16)[:, None, None, None]).astype(np.uint8)  # colour drifts over time
    assert content_distance(fading) > 30
    assert np.isnan(content_distance(np.zeros((16, 64, 64, 3), np.uint8)))  # no object: not measured


def test_the_object_colour_is_the_mean_of_the_blob_eroded_by_exactly_one_pixel():
    # a 9x9 object in rings: its 1-pixel edge (a), the ring inside it (b), a 5x5 core (c), all brighter than half
    # the peak; eroding by one pixel leaves the 7x7 of b and c: (24 b + 25 c) / 49, computed here by hand
    a, b, c = np.array([130.0, 0, 0]), np.array([0.0, 200, 0]), np.array([0.0, 0, 250])
    frame = np.zeros((1, 32, 32, 3), np.uint8)
    frame[0, 10:19, 10:19] = a
    frame[0, 11:18, 11:18] = b
    frame[0, 12:17, 12:17] = c
    expected = (24 * b + 25 * c) / 49
    np.testing.assert_allclose(object_colors(frame)[0], expected, atol=1e-9)
    # a blob too thin to erode (a 2-pixel bar) falls back to its brightest pixels
    bar = np.zeros((1, 16, 16, 3), np.uint8)
    bar[0, 4:6, 2:12] = (90, 90, 90)
    bar[0, 4:6, 12:14] = (200, 10, 10)
    np.testing.assert_allclose(object_colors(bar)[0], [200, 10, 10])


def test_color_diversity_tells_a_varied_set_from_a_collapsed_one():
    from kinema.evaluation.shapes_checker import read_shapes

    def colours(split, seed):
        ds = CaptionedShapes(split, num_samples=48, resolution=32, seed=seed)
        return np.array([read_shapes(ds.render(i)).mean_color for i in range(48)])

    training, other = colours("train", 0), colours("test", 1)
    varied = color_diversity(other, training)
    assert 0.8 < varied["color_diversity_ratio"] < 1.25 and varied["color_coverage"] > 0.95
    collapsed = color_diversity(other[other[:, 0] > 200][:1].repeat(48, axis=0) + np.random.default_rng(0).normal(0, 3, (48, 3)), training)
    assert collapsed["color_diversity_ratio"] < 0.1 and collapsed["color_coverage"] < 0.5
    with pytest.raises(ValueError, match="at least two"):
        color_diversity(other, training[:1])


def _frechet_scipy(a, b):
    """The usual pytorch-fid / StyleGAN-V computation: scipy's sqrtm of the covariance product."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)


def test_frechet_distance_matches_scipy_and_the_diagonal_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12))
    b = rng.normal(loc=0.5, size=(150, 12)) @ rng.normal(size=(12, 12))
    assert frechet_distance(a, b) == pytest.approx(_frechet_scipy(a, b), rel=1e-8)

    # sample covariances made exactly diagonal: d^2 = |mu1 - mu2|^2 + sum_i (sigma1_i - sigma2_i)^2
    def whitened(n, sigma, mu):
        z = rng.normal(size=(n, len(sigma)))
        z -= z.mean(0)
        z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # sample covariance = I
        return z * sigma + mu

    s1, s2 = np.array([1, 2, 3, 4, 5.0]), np.array([2, 2, 1, 1, 1.0])
    x, y = whitened(400, s1, 0.0), whitened(300, s2, 3.0)
    assert frechet_distance(x, y) == pytest.approx(5 * 9 + np.sum((s1 - s2) ** 2), rel=1e-9)


def test_frechet_distance_of_a_set_with_itself_is_zero_even_when_rank_deficient():
    rng = np.random.default_rng(1)
    few = rng.normal(size=(6, 40))  # fewer samples than dimensions, as in a small FVD
    assert frechet_distance(few, few) < 1e-9
    assert frechet_distance(few, few + 0.1) == pytest.approx(40 * 0.01, rel=1e-6)  # a shift moves only the mean
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(few[:1], few)


def test_flicker_of_a_single_frame_is_refused():
    """Flicker compares consecutive frames; one frame has none, and the message says how many were given."""
    with pytest.raises(ValueError, match=r"^flicker needs at least 2 frames, got 1$"):
        temporal_flicker(np.zeros((1, 8, 8, 3), np.uint8))


def test_acd_of_a_set_without_any_object_is_nan_not_zero():
    """Black videos have no content to compare; reporting ACD 0 would read as perfect consistency."""
    dark = np.zeros((4, 16, 16, 3), np.uint8)
    one_lit = dark.copy()
    one_lit[2, 4:12, 4:12] = 200  # an object in one frame only: still nothing to compare
    assert np.isnan(content_distance(one_lit))
    result = average_content_distance([dark, one_lit])
    assert np.isnan(result["acd"]) and result["num_videos"] == 2 and result["num_measured"] == 0


def test_color_coverage_counts_a_colour_exactly_at_the_radius():
    """Coverage is 'within radius', inclusive: a generated colour 48 away covers a reference colour."""
    reference = np.array([[0.0, 0, 0], [100, 0, 0], [0, 0, 200]])
    result = color_diversity(np.array([[48.0, 0, 0], [0, 0, 120]]), reference)
    assert result["color_coverage"] == pytest.approx(1 / 3)  # 48 and 52 from the first two, 80 from the third
    assert result["color_diversity_ratio"] == pytest.approx(np.hypot(48, 120) / np.mean([100, 200, np.hypot(100, 200)]))


def test_a_single_generated_colour_has_zero_diversity():
    """One video (or a set collapsed to one) has no spread: the ratio is 0, not NaN."""
    reference = np.array([[0.0, 0, 0], [100, 0, 0]])
    result = color_diversity(np.array([[100.0, 0, 0]]), reference)
    assert result == {"color_diversity_ratio": 0.0, "color_coverage": 0.5}
    assert color_diversity(np.zeros((0, 3)), reference) == {"color_diversity_ratio": 0.0, "color_coverage": 0.0}


def test_every_pixel_metric_refuses_a_single_image_naming_the_expected_layout():
    """An (H, W, 3) image passed for a video would otherwise be read as H one-row frames and give a number."""
    image = np.zeros((8, 8, 3), np.uint8)
    video = np.zeros((2, 8, 8, 3), np.uint8)
    for metric in (temporal_flicker, object_colors, content_distance):
        with pytest.raises(ValueError, match=r"^frames must be uint8 \(F, H, W, 3\), got shape \(8, 8, 3\)$"):
            metric(image)
    with pytest.raises(ValueError, match=r"^frames must be uint8 \(F, H, W, 3\), got shape \(2, 8, 8, 4\)$"):
        temporal_flicker(np.zeros((2, 8, 8, 4), np.uint8))
    for metric in (psnr_frames, ssim_frames):
        with pytest.raises(ValueError, match=r"^real must be uint8 \(F, H, W, 3\), got shape \(8, 8, 3\)$"):
            metric(image, video)
        with pytest.raises(ValueError, match=r"^fake must be uint8 \(F, H, W, 3\), got shape \(2, 8, 8\)$"):
            metric(video, video[..., 0])


def test_the_object_is_the_largest_blob_at_least_half_as_bright_as_the_peak():
    """A big dim glow under half the peak is background, not the object whose colour ACD follows; half counts."""
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    frames[:, 2:10, 2:10] = (200, 0, 0)  # the object: 8x8, its 6x6 interior pure red
    frames[0, 12:30, 12:30] = (0, 0, 99)  # a larger glow just under half the peak: ignored
    frames[1, 12:30, 12:30] = (0, 0, 100)  # exactly half: a blob, and the larger one
    frames[2, 12:30, 12:30] = (0, 90, 100)  # brightness is the brightest channel, not the sum
    frames[3] = 0
    frames[3, 2:10, 2:10] = 31  # under the 32 a frame needs to hold an object at all
    colors = object_colors(frames)
    np.testing.assert_array_equal(colors[:3], [[200, 0, 0], [0, 0, 100], [0, 90, 100]])
    assert np.isnan(colors[3]).all()
    assert content_distance(frames) == pytest.approx(np.mean([np.hypot(200, 100), np.hypot(200, np.hypot(90, 100)), 90]))
