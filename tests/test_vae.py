"""The video VAE family: shapes, causality, images, chunked decoding, save/load, input checks, training."""

import json
from pathlib import Path

import pytest
import torch

from kinema.models.vae import VideoVAE, VideoVAEConfig
from kinema.training import load_config, train
from kinema.training.export import export_checkpoint

TINY = Path(__file__).parents[1] / "configs" / "vae" / "tiny.yaml"
# 2x temporal, 4x spatial compression; two blocks per side so causality and caching span several layers
SMALL = VideoVAEConfig(
    latent_channels=4, channels=(8, 16), encoder_blocks=2, decoder_blocks=2, mid_blocks=2, mid_channels=24, temporal_compression=2
)
# no temporal compression, as the built-in shapes-vae
FRAMEWISE = VideoVAEConfig(latent_channels=4, channels=(8, 16), encoder_blocks=2, decoder_blocks=2, mid_blocks=2)


def random_vae(config: VideoVAEConfig = SMALL, seed: int = 0) -> VideoVAE:
    """A VAE with every weight random: a zero-initialised layer would hide what leaks between frames."""
    torch.manual_seed(seed)
    vae = VideoVAE(config)
    for p in vae.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return vae.eval()


def clip(frames: int = 5, size: int = 16, batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_forward_backward_shapes(one_thread):
    vae = random_vae().train()
    x = clip(frames=7)
    assert vae.latent_shape(7, 16, 16) == (4, 4, 4, 4)
    reconstruction, posterior = vae(x)
    assert posterior.mean.shape == posterior.logvar.shape == (2, 4, 4, 4, 4)
    assert reconstruction.shape == x.shape
    (reconstruction - x).pow(2).mean().add(posterior.kl().mean()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vae.parameters())


def test_posterior_sample_follows_the_generator(one_thread):
    posterior = random_vae().encode(clip())
    a = posterior.sample(torch.Generator().manual_seed(3))
    b = posterior.sample(torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, posterior.mode())
    assert posterior.kl().shape == posterior.mean.shape and (posterior.kl() >= 0).all()


def test_encoder_and_decoder_are_causal(one_thread):
    vae = random_vae()
    x = clip(frames=7)
    changed = x.clone()
    changed[:, :, 3:] = clip(frames=4, seed=9)  # frames 3..6: latent frames 2 and 3 (groups [0] [1,2] [3,4] [5,6])
    with torch.no_grad():
        z, z_changed = vae.encode(x).mode(), vae.encode(changed).mode()
        assert torch.equal(z[:, :, :2], z_changed[:, :, :2])  # the first frame's latent and the group before stay
        assert not torch.allclose(z[:, :, 2:], z_changed[:, :, 2:])
        later = z.clone()
        later[:, :, 1:] += 1.0
        out, out_later = vae.decode(z), vae.decode(later)
    assert torch.equal(out[:, :, :1], out_later[:, :, :1])  # frame 0 is decoded from latent frame 0 alone
    assert not torch.allclose(out[:, :, 1:], out_later[:, :, 1:])


def test_framewise_vae_is_causal_frame_by_frame(one_thread):
    vae = random_vae(FRAMEWISE)
    x = clip(frames=6)
    changed = x.clone()
    changed[:, :, 4:] = -x[:, :, 4:]
    with torch.no_grad():
        z, z_changed = vae.encode(x).mode(), vae.encode(changed).mode()
    assert torch.equal(z[:, :, :4], z_changed[:, :, :4]) and not torch.allclose(z[:, :, 4:], z_changed[:, :, 4:])


@pytest.mark.parametrize("config", [SMALL, FRAMEWISE], ids=["t2", "t1"])
def test_an_image_is_a_one_frame_video(config, one_thread):
    vae = random_vae(config)
    x = clip(frames=5)
    with torch.no_grad():
        image_latent = vae.encode(x[:, :, :1]).mode()
        assert image_latent.shape == (2, 4, 1, 4, 4) == (2, *vae.latent_shape(1, 16, 16))
        torch.testing.assert_close(image_latent, vae.encode(x).mode()[:, :, :1], rtol=1e-5, atol=1e-5)
        image = vae.decode(image_latent)
    assert image.shape == (2, 3, 1, 16, 16)


@pytest.mark.parametrize("config", [SMALL, FRAMEWISE], ids=["t2", "t1"])
def test_chunked_decode_and_encode_equal_the_whole(config, one_thread):
    vae = random_vae(config)
    x = clip(frames=13)  # 7 latent frames at t=2, 13 at t=1
    with torch.no_grad():
        z = vae.encode(x).mode()
        whole = vae.decode(z)
        for chunk in (1, 2, 3):
            torch.testing.assert_close(vae.decode(z, chunk_size=chunk), whole, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(vae.encode(x, chunk_size=chunk).mode(), z, rtol=1e-5, atol=1e-5)


def test_save_and_load_give_identical_outputs(tmp_path, one_thread):
    vae = random_vae()
    vae.save_pretrained(tmp_path / "vae")
    assert json.loads((tmp_path / "vae" / "config.json").read_text())["model_class"] == "VideoVAE"
    loaded = VideoVAE.from_pretrained(tmp_path / "vae")
    assert loaded.config == vae.config
    x = clip()
    with torch.no_grad():
        assert torch.equal(loaded.decode(loaded.encode(x).mode()), vae.decode(vae.encode(x).mode()))


def test_bad_input_is_named(one_thread):
    vae = random_vae()
    with pytest.raises(ValueError, match=r"num_frames must be 1 \+ 2\*k.*got 4"):
        vae.encode(clip(frames=4))
    with pytest.raises(ValueError, match="multiples of 4.*got 18x18"):
        vae.encode(clip(size=18))
    with pytest.raises(ValueError, match=r"expected a video \(b, 3, f, h, w\)"):
        vae.encode(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"expected a latent \(b, 4, f, h, w\)"):
        vae.decode(torch.zeros(1, 3, 2, 4, 4))
    with pytest.raises(ValueError, match="num_frames must be"):
        vae.latent_shape(6, 16, 16)
    with pytest.raises(ValueError, match="temporal_compression must be at least 1"):
        VideoVAEConfig(temporal_compression=0)


def test_a_config_whose_clips_the_model_cannot_take_is_refused(tmp_path):
    with pytest.raises(ValueError, match="num_frames must be 1 \\+ 2\\*k"):
        train(TINY, ["data.num_frames=4"], out=tmp_path / "bad")


def test_training_lowers_the_loss_and_exports_a_vae(tmp_path, one_thread):
    run = train(TINY, ["train.max_steps=30", "train.log_every=5", "train.sample_every=30", "train.num_samples=2"], out=tmp_path / "run")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]
    assert len(losses) >= 6 and losses[-1] < 0.6 * losses[0]
    vae = VideoVAE.from_pretrained(run / "model")
    config = load_config(TINY)
    assert vae.config == config.model
    # a mid-run checkpoint exports the same way (the benchmark loads runs like this)
    exported = export_checkpoint(run, tmp_path / "exported")
    assert VideoVAE.from_pretrained(exported).config == config.model
    previews = list((run / "samples").glob("*")) if (run / "samples").exists() else []
    assert previews, "the run wrote no preview of inputs beside reconstructions"


def test_clip_aware_error_forgives_only_overshoot_at_the_ends_of_the_range():
    from kinema.training.objectives.vae import reconstruction_error

    target = torch.tensor([-1.0, -1.0, 1.0, 1.0, 0.5, 0.5])
    output = torch.tensor([-3.0, -0.8, 1.4, 0.9, 0.7, 0.3])
    expected = torch.tensor([0.0, 0.2, 0.0, -0.1, 0.2, -0.2])
    torch.testing.assert_close(reconstruction_error(output, target, clip_aware=True), expected)
    torch.testing.assert_close(reconstruction_error(output, target, clip_aware=False), output - target)


def test_preview_puts_input_and_reconstruction_side_by_side():
    from kinema.training import get_family

    config = load_config(TINY)
    objective = get_family("vae").objective(config)
    clips = objective.sample(3, torch.Generator().manual_seed(0))
    assert clips.dtype == torch.uint8 and clips.shape == (3, 5, 16, 32, 3)  # (b, f, h, 2w, c)
