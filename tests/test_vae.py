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


@pytest.mark.parametrize("config, width", [(SMALL, 24), (FRAMEWISE, 16), (VideoVAEConfig(**{**FRAMEWISE.__dict__, "mid_channels": 24}), 24)],
                         ids=["mid_channels=24", "mid_channels=null", "framewise mid_channels=24"])
def test_the_latent_rate_layers_of_both_sides_take_mid_channels(config, width):
    """mid_channels widens the layers at the latent rate of the encoder and the decoder alike (null: the last level's width)."""
    vae = VideoVAE(config)
    for side in (vae.encoder, vae.decoder):
        gains = [block.norm1.gain for block in side.mid]
        assert len(gains) == config.mid_blocks and all(g.shape == (width, 1, 1, 1) for g in gains)
    assert vae.decoder.conv_in.weight.shape[:2] == (width, config.latent_channels)
    assert vae.encoder.conv_out.weight.shape[:2] == (2 * config.latent_channels, width)
    x = clip(frames=5)  # a clip goes through: the width changes where the frame rate would (a 1x1 conv when t is 1)
    reconstruction, posterior = random_vae(config)(x)
    assert reconstruction.shape == x.shape and posterior.mean.shape == (2, 4, *vae.latent_shape(5, 16, 16)[1:])


def test_spatial_down_and_up_are_pixel_unshuffle_and_pixel_shuffle_of_each_frame():
    """Built-in VAE weights assume torch's pixel (un)shuffle channel order: (channel, row offset, column offset)."""
    from kinema.models.vae import SpatialDown, SpatialUp

    x = torch.randn(2, 3, 4, 6, 8)
    frames = x.transpose(1, 2).flatten(0, 1)  # (b f, c, h, w)
    down, up = SpatialDown(3, 12), SpatialUp(12, 3)
    with torch.no_grad():
        for layer in (down, up):
            layer.proj.weight.copy_(torch.eye(12).view(12, 12, 1, 1, 1))
            layer.proj.bias.zero_()
        shrunk = down(x)
        expected = torch.nn.functional.pixel_unshuffle(frames, 2).view(2, 4, 12, 3, 4).transpose(1, 2)
        assert torch.equal(shrunk, expected)
        grown = up(shrunk)
    assert torch.equal(grown, torch.nn.functional.pixel_shuffle(expected.transpose(1, 2).flatten(0, 1), 2).view(2, 4, 3, 6, 8).transpose(1, 2))
    assert torch.equal(grown, x)


def test_posterior_sample_follows_the_generator(one_thread):
    posterior = random_vae().encode(clip())
    a = posterior.sample(torch.Generator().manual_seed(3))
    b = posterior.sample(torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, posterior.mode())
    assert posterior.kl().shape == posterior.mean.shape and (posterior.kl() >= 0).all()


def test_forward_decodes_a_posterior_sample_by_default_and_the_mean_with_sample_false(one_thread):
    """Training decodes a sample of q(z|x) (objective.sample_posterior); sample=False must decode its mean instead."""
    vae = random_vae()
    x = clip()
    with torch.no_grad():
        posterior = vae.encode(x)
        sampled, _ = vae(x, generator=torch.Generator().manual_seed(3))
        mean, _ = vae(x, generator=torch.Generator().manual_seed(3), sample=False)
        torch.testing.assert_close(sampled, vae.decode(posterior.sample(torch.Generator().manual_seed(3))), rtol=0, atol=1e-6)
        torch.testing.assert_close(mean, vae.decode(posterior.mode()), rtol=0, atol=1e-6)
    assert not torch.allclose(sampled, mean)


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


def test_temporal_kernel_1_codes_and_decodes_each_frame_on_its_own(one_thread):
    """temporal_kernel: 1 is documented as coding frames independently: a change to one frame touches only its own latent."""
    vae = random_vae(VideoVAEConfig(**{**FRAMEWISE.__dict__, "temporal_kernel": 1}))
    x = clip(frames=5)
    changed = x.clone()
    changed[:, :, 2] = -x[:, :, 2]
    with torch.no_grad():
        z, z_changed = vae.encode(x).mode(), vae.encode(changed).mode()
        kept = [0, 1, 3, 4]
        assert torch.equal(z[:, :, kept], z_changed[:, :, kept]) and not torch.allclose(z[:, :, 2], z_changed[:, :, 2])
        out, out_changed = vae.decode(z), vae.decode(z_changed)
    assert torch.equal(out[:, :, kept], out_changed[:, :, kept]) and not torch.allclose(out[:, :, 2], out_changed[:, :, 2])


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


@pytest.mark.parametrize("chunk_size", [0, -2])
def test_a_chunk_size_below_one_is_refused_by_name(chunk_size, one_thread):
    """A chunk of no latent frames is a usage error, said plainly, not a torch error from deep inside."""
    vae = random_vae()
    x = clip()
    z = vae.encode(x).mode()
    for call in (lambda: vae.encode(x, chunk_size=chunk_size), lambda: vae.decode(z, chunk_size=chunk_size),
                 lambda: next(vae.decode_chunks(z, chunk_size))):
        with pytest.raises(ValueError, match=f"^chunk_size must be at least 1 latent frame, got {chunk_size}$"):
            call()


def test_save_and_load_give_identical_outputs(tmp_path, one_thread):
    vae = random_vae()
    vae.save_pretrained(tmp_path / "vae")
    assert json.loads((tmp_path / "vae" / "config.json").read_text())["model_class"] == "VideoVAE"
    loaded = VideoVAE.from_pretrained(tmp_path / "vae")
    assert loaded.config == vae.config
    x = clip()
    with torch.no_grad():
        assert torch.equal(loaded.decode(loaded.encode(x).mode()), vae.decode(vae.encode(x).mode()))


def test_an_unknown_key_in_config_json_names_the_file_and_the_closest_key(tmp_path):
    """A hand-edited config.json with a typo is refused, pointing at the very file to fix and the key meant."""
    from kinema.models.base import UnknownKeyError

    random_vae().save_pretrained(tmp_path / "vae")
    path = tmp_path / "vae" / "config.json"
    data = json.loads(path.read_text())
    data["latent_chanels"] = data.pop("latent_channels")
    path.write_text(json.dumps(data))
    with pytest.raises(UnknownKeyError) as info:
        VideoVAE.from_pretrained(tmp_path / "vae")
    assert str(info.value).startswith(f"{path}: unknown key 'latent_chanels'; did you mean 'latent_channels'?")


def test_bad_input_is_named(one_thread):
    vae = random_vae()
    with pytest.raises(ValueError, match=r"num_frames must be 1 \+ 2\*k.*got 4"):
        vae.encode(clip(frames=4))
    with pytest.raises(ValueError, match="multiples of 4.*got 18x18"):
        vae.encode(clip(size=18))
    with pytest.raises(ValueError, match=r"expected a video \(b, 3, f, h, w\)"):
        vae.encode(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"expected a video \(b, 3, f, h, w\), got shape \(1, 4, 5, 16, 16\)"):
        vae.encode(torch.zeros(1, 4, 5, 16, 16))  # RGBA frames: named, not a convolution's shape error
    with pytest.raises(ValueError, match=r"expected a latent \(b, 4, f, h, w\)"):
        vae.decode(torch.zeros(1, 3, 2, 4, 4))
    with pytest.raises(ValueError, match="num_frames must be"):
        vae.latent_shape(6, 16, 16)
    with pytest.raises(ValueError, match="temporal_compression must be at least 1"):
        VideoVAEConfig(temporal_compression=0)


_BAD_CONFIGS = [
    (dict(in_channels=0), "in_channels and latent_channels must be at least 1, got 0 and 8"),
    (dict(latent_channels=0), "in_channels and latent_channels must be at least 1, got 3 and 0"),
    (dict(patch_size=0), "patch_size must be at least 1, got 0"),
    (dict(channels=()), r"channels must be a non-empty list of positive widths, got \[\]"),
    (dict(channels=(8, 0)), r"channels must be a non-empty list of positive widths, got \[8, 0\]"),
    (dict(decoder_blocks=-1), "encoder_blocks, decoder_blocks and mid_blocks must be 0 or more"),
    (dict(mid_channels=0), "mid_channels must be at least 1 or null, got 0"),
    (dict(temporal_kernel=0), "temporal_kernel must be at least 1, got 0"),
]


@pytest.mark.parametrize("fields, message", _BAD_CONFIGS, ids=[next(iter(f)) + "=" + str(next(iter(f.values()))) for f, _ in _BAD_CONFIGS])
def test_each_impossible_vae_shape_is_refused_by_name(fields, message):
    """A config.yaml typo like patch_size: 0 must fail at once with the field named, not deep inside a convolution."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        VideoVAEConfig(**fields)
    assert VideoVAEConfig(patch_size=1, temporal_kernel=1, mid_channels=1, decoder_blocks=0).patch_size == 1  # the limits themselves pass


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


def test_a_folder_dataset_cuts_its_clips_where_data_seed_says(tmp_path):
    """data.seed picks where each clip starts in a user's videos: another seed must give other clips, and the same seed the same."""
    import numpy as np

    from kinema.data import CaptionedShapes, VideoFolder
    from kinema.io import write_video
    from kinema.training import get_family

    shapes = CaptionedShapes("test", num_samples=2, resolution=16, num_frames=16)
    for i in range(2):
        write_video(tmp_path / f"clip{i}.mp4", np.ascontiguousarray(shapes.render(i)), fps=8)
    clips = {}
    for seed in (0, 5):
        dataset = get_family("vae").dataset(load_config(TINY, ["data.dataset=folder", f"data.folder={tmp_path}", f"data.seed={seed}"]))
        reference = VideoFolder(tmp_path, num_frames=5, size=16, crop=16, seed=seed)
        assert len(dataset) == 2
        clips[seed] = [dataset[i]["video"] for i in range(2)]
        assert all(torch.equal(clip, reference[i]["video"]) for i, clip in enumerate(clips[seed]))
    assert not all(torch.equal(a, b) for a, b in zip(clips[0], clips[5]))


def test_the_config_defaults_are_the_built_in_shapes_vae():
    """VideoVAEConfig() is documented as the built-in shapes-vae: code that builds one without a config gets that model."""
    shipped = load_config(Path(__file__).parents[1] / "configs" / "vae" / "shapes.yaml").model
    assert VideoVAEConfig() == shipped
    # the config's header: a 16-frame 64x64 clip -> 8 x 16 x 16 x 16
    assert VideoVAE(VideoVAEConfig()).latent_shape(16, 64, 64) == (8, 16, 16, 16)


def test_a_config_that_leaves_out_the_loss_weights_trains_with_the_built_in_shapes_vaes_loss():
    """Fine-tuning configs omit objective: their loss must be the one shapes-vae's shipped recipe spells out."""
    from kinema.training.config import parse_yaml
    from kinema.training.objectives.vae import VAEObjectiveConfig

    recipe = parse_yaml((Path(__file__).parents[1] / "configs" / "vae" / "shapes.yaml").read_text())["objective"]
    defaults = VAEObjectiveConfig()
    assert {"l1_weight", "mse_weight", "kl_weight", "clip_aware"} <= set(recipe)
    assert {key: getattr(defaults, key) for key in recipe} == recipe


def test_a_config_that_leaves_out_the_data_trains_on_the_built_in_shapes_vaes_clips():
    """A config without a data section must train on what shapes-vae's recipe spells out (16-frame 64x64 clips of both sets)."""
    from kinema.training.config import parse_yaml
    from kinema.training.objectives.vae import VAEDataConfig

    recipe = parse_yaml((Path(__file__).parents[1] / "configs" / "vae" / "shapes.yaml").read_text())["data"]
    defaults = VAEDataConfig()
    assert {"dataset", "split", "resolution", "num_frames"} <= set(recipe)
    assert {key: getattr(defaults, key) for key in recipe} == recipe
    assert VideoVAE(VideoVAEConfig()).latent_shape(defaults.num_frames, defaults.resolution, defaults.resolution) == (8, 16, 16, 16)


def test_the_training_loss_weighs_l1_mse_and_kl_of_the_posterior_mean_when_told_not_to_sample(one_thread):
    """objective.sample_posterior=false trains on the decoded mean; the loss is l1_weight*L1 + mse_weight*MSE + kl_weight*KL."""
    from kinema.training import get_family
    from kinema.training.objectives.vae import reconstruction_error

    config = load_config(TINY, ["objective.sample_posterior=false", "objective.l1_weight=0.5", "objective.mse_weight=2.0",
                                "objective.kl_weight=0.01"])
    objective = get_family("vae").objective(config)
    vae = objective.modules["model"]
    with torch.no_grad():
        for p in vae.parameters():
            p.normal_(std=0.2, generator=torch.Generator().manual_seed(0))
    x = clip(frames=5)
    with torch.no_grad():
        out = objective.training_step({"video": x}, 1, "model")
        posterior = vae.encode(x)
        error = reconstruction_error(vae.decode(posterior.mode()), x, config.objective.clip_aware)
    l1, mse, kl = error.abs().mean(), error.pow(2).mean(), posterior.kl().mean()
    torch.testing.assert_close(out["l1"], l1)
    torch.testing.assert_close(out["mse"], mse)
    torch.testing.assert_close(out["kl"], kl)
    torch.testing.assert_close(out["loss"], 0.5 * l1 + 2.0 * mse + 0.01 * kl)


@pytest.mark.parametrize("split", ["train", "test"])
def test_the_mixed_dataset_alternates_the_two_shapes_sets_of_the_split_asked_for(split):
    """Even clips come from Captioned Shapes, odd ones from Shape Motion, of the split asked for (previews use 'test')."""
    from kinema.data.shapes import CaptionedShapes, ShapeMotion, frames_to_tensor
    from kinema.training.objectives.vae import VAEClips

    data = load_config(TINY, ["data.num_samples=6"]).data
    assert data.dataset == "mixed" and data.split == "train"
    clips = VAEClips(data, split=split)
    common = dict(resolution=16, num_frames=5, seed=data.seed)
    shapes, motion = CaptionedShapes(split, num_samples=3, **common), ShapeMotion(split, num_samples=3, **common)
    assert len(clips) == 6
    for i in range(3):
        assert torch.equal(clips[2 * i]["video"], frames_to_tensor(shapes.render(i)))
        assert torch.equal(clips[2 * i + 1]["video"], frames_to_tensor(motion.render(i)))
    with pytest.raises(IndexError, match="index 6 out of range for 6 clips"):
        clips[6]


@pytest.mark.parametrize("dataset", ["shapes", "shape_motion", "mixed"])
def test_each_dataset_gives_its_own_clips_and_num_samples_of_them(dataset):
    """data.dataset shapes / shape_motion train on that set alone, clip i its clip i; mixed alternates them (an odd count too)."""
    from kinema.data.shapes import CaptionedShapes, ShapeMotion, frames_to_tensor
    from kinema.training.objectives.vae import VAEClips

    data = load_config(TINY, [f"data.dataset={dataset}", "data.num_samples=5"]).data
    clips = VAEClips(data)
    common = dict(resolution=16, num_frames=5, seed=data.seed)
    shapes, motion = CaptionedShapes("train", num_samples=5, **common), ShapeMotion("train", num_samples=5, **common)
    want = {"shapes": [shapes.render(i) for i in range(5)], "shape_motion": [motion.render(i) for i in range(5)],
            "mixed": [shapes.render(0), motion.render(0), shapes.render(1), motion.render(1), shapes.render(2)]}[dataset]
    assert len(clips) == 5
    for i, frames in enumerate(want):
        assert torch.equal(clips[i]["video"], frames_to_tensor(frames)), i
    with pytest.raises(IndexError, match="^index 5 out of range for 5 clips$"):
        clips[5]
    with pytest.raises(IndexError, match="^index -1 out of range for 5 clips$"):
        clips[-1]


@pytest.mark.parametrize("name", ["l1_weight", "mse_weight", "kl_weight"])
def test_a_negative_loss_weight_is_refused_by_name_and_zero_turns_that_term_off(name):
    """A loss weight below 0 would reward the error: refused naming it; 0 is a valid way to drop a term (not both pixel terms)."""
    from kinema.training.objectives.vae import VAEDataConfig, VAEObjectiveConfig

    with pytest.raises(ValueError, match=rf"^{name} must be 0 or more, got -0.5$"):
        VAEObjectiveConfig(**{name: -0.5})
    assert getattr(VAEObjectiveConfig(**{name: 0.0}), name) == 0.0
    with pytest.raises(ValueError, match="^l1_weight and mse_weight cannot both be 0: nothing would teach reconstruction$"):
        VAEObjectiveConfig(l1_weight=0.0, mse_weight=0.0)
    with pytest.raises(ValueError, match="^data.folder is required when data.dataset is 'folder'$"):
        VAEDataConfig(dataset="folder")


@pytest.mark.parametrize("kernel", [1, 2, 3])
def test_a_causal_temporal_conv_weighs_the_last_k_frames_with_the_first_frame_repeated_before_the_clip(kernel):
    """Frame j of the output is sum_i w_i x[j - (k-1) + i] + b, frames before 0 being frame 0; a cached chunk continues it exactly."""
    from kinema.models.vae import CausalTemporalConv

    torch.manual_seed(0)
    conv = CausalTemporalConv(2, 3, kernel)
    torch.nn.init.normal_(conv.conv.weight)
    x = torch.randn(1, 2, 6, 2, 2, generator=torch.Generator().manual_seed(1))
    w, b = conv.conv.weight[:, :, :, 0, 0], conv.conv.bias  # (cout, cin, k), (cout,)
    want = torch.stack([
        sum(torch.einsum("oc,bchw->bohw", w[:, :, i], x[:, :, max(0, j - (kernel - 1) + i)]) for i in range(kernel)) + b[:, None, None]
        for j in range(6)
    ], dim=2)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), want, rtol=1e-5, atol=1e-5)
        cache = {}
        chunked = torch.cat([conv(x[:, :, :1], cache), conv(x[:, :, 1:4], cache), conv(x[:, :, 4:], cache)], dim=2)
    torch.testing.assert_close(chunked, want, rtol=1e-5, atol=1e-5)


# 7 latent frames in chunks of 2: [0, 1] [2, 3] [4, 5] [6]; at t=2 latent frame 0 decodes to 1 frame, every other to 2
@pytest.mark.parametrize("config, frames", [(SMALL, [3, 4, 4, 2]), (FRAMEWISE, [2, 2, 2, 1])], ids=["t2", "t1"])
def test_decode_chunks_yields_chunk_size_latent_frames_at_a_time(config, frames, one_thread):
    """A caller streaming a long clip to a file gets each chunk of chunk_size latent frames as its own frames, in order."""
    vae = random_vae(config)
    z = torch.randn(1, 4, 7, 2, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        parts = list(vae.decode_chunks(z, 2))
        whole = vae.decode(z)
    assert [p.shape[2] for p in parts] == frames
    torch.testing.assert_close(torch.cat(parts, dim=2), whole, rtol=1e-5, atol=1e-5)


def test_a_fresh_residual_block_is_the_identity():
    """Deep stacks train from step 0 because every untrained residual block passes its input through unchanged."""
    from kinema.models.vae import ResBlock

    torch.manual_seed(0)
    block = ResBlock(6, 3)
    x = torch.randn(2, 6, 4, 3, 3)
    with torch.no_grad():
        assert torch.equal(block(x), x)
    assert not block.temporal.conv.weight.any() and not block.temporal.conv.bias.any()


def test_preview_shows_test_clips_drawn_from_the_whole_split_beside_their_mean_reconstruction(one_thread):
    """Previews must show the held-out split (any of its clips) next to what the model makes of it, in uint8 pixels."""
    from kinema.training import get_family
    from kinema.training.objectives.vae import VAEClips

    config = load_config(TINY, ["data.num_samples=2"])  # "mixed": test clip 0 from Captioned Shapes, clip 1 from Shape Motion
    objective = get_family("vae").objective(config)
    vae = objective.modules["model"].eval()
    test, train = VAEClips(config.data, split="test"), VAEClips(config.data, split="train")
    to_pixels = lambda x: ((x + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0)  # (c, f, h, w) -> (f, h, w, c)
    previews = objective.sample(12, torch.Generator().manual_seed(0))
    shown = []
    for preview in previews:
        left, right = preview[:, :, :16], preview[:, :, 16:]
        matches = [i for i in range(2) if torch.equal(left, to_pixels(test[i]["video"]))]
        assert len(matches) == 1 and not torch.equal(left, to_pixels(train[matches[0]]["video"]))
        shown.append(matches[0])
        with torch.no_grad():
            x = test[matches[0]]["video"][None]
            expected = to_pixels(vae.decode(vae.encode(x).mean).clamp(-1, 1)[0])
        assert (right.int() - expected.int()).abs().max() <= 1
    assert set(shown) == {0, 1}  # the last clip of the split can be drawn too
