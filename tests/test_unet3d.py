"""The video denoiser: shapes, save/load, learning, bad input."""

import pytest
import torch

from kinema.models.unet3d import VideoUNet, VideoUNetConfig

from conftest import TINY_UNET


def inputs(b=2, f=4, size=16, n=5):
    g = torch.Generator().manual_seed(1)
    return dict(
        sample=torch.randn(b, 3, f, size, size, generator=g),
        timestep=torch.randint(0, 1000, (b,), generator=g),
        text_tokens=torch.randn(b, n, 384, generator=g),
        text_mask=torch.ones(b, n, dtype=torch.bool),
        first_frame=torch.rand(b, 3, size, size, generator=g) * 2 - 1,
        first_frame_given=torch.tensor([1.0, 0.0])[:b],
    )


def random_unet():
    torch.manual_seed(0)
    unet = VideoUNet(VideoUNetConfig(**TINY_UNET))
    for p in unet.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return unet


def test_forward_backward_shapes():
    unet = random_unet()
    x = inputs()
    out = unet(**x)
    assert out.shape == x["sample"].shape
    out.square().mean().backward()
    assert all(p.grad is not None for p in unet.parameters() if p.requires_grad)


def test_text_and_first_frame_change_the_output():
    unet = random_unet().eval()
    x = inputs()
    base = unet(**x)
    other_text = dict(x, text_tokens=x["text_tokens"].flip(0))
    assert not torch.allclose(unet(**other_text), base)
    other_image = dict(x, first_frame=-x["first_frame"])
    changed = (unet(**other_image) - base).abs().flatten(1).amax(dim=1)
    assert changed[0] > 0 and changed[1] == 0  # only the clip whose first frame is given sees it
    masked = dict(x, text_mask=torch.tensor([[True] * 3 + [False] * 2] * 2))
    assert torch.allclose(unet(**masked), unet(**dict(masked, text_tokens=torch.cat([x["text_tokens"][:, :3], torch.zeros(2, 2, 384)], 1))), atol=1e-5)


def test_save_load_gives_identical_outputs(tmp_path):
    unet = random_unet().eval()
    unet.set_text_statistics(torch.rand(384), torch.rand(384) + 0.5)
    unet.save_pretrained(tmp_path / "m")
    loaded = VideoUNet.from_pretrained(tmp_path / "m")
    assert loaded.config == unet.config
    x = inputs()
    assert torch.equal(loaded(**x), unet(**x))


def test_a_few_steps_lower_the_loss():
    unet = random_unet()
    opt = torch.optim.AdamW(unet.parameters(), lr=2e-3)
    x = inputs()
    target = torch.zeros_like(x["sample"])
    losses = []
    for _ in range(8):
        loss = (unet(**x) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bad_configs_and_inputs_are_named():
    with pytest.raises(ValueError, match="sample_size"):
        VideoUNetConfig(sample_size=30)
    with pytest.raises(ValueError, match="attention_levels"):
        VideoUNetConfig(attention_levels=(5,))
    unet = random_unet()
    with pytest.raises(ValueError, match="at most 4 frames"):
        unet(**inputs(f=6))
    with pytest.raises(ValueError, match="channels"):
        unet(**dict(inputs(), sample=torch.randn(2, 4, 4, 16, 16)))


@pytest.mark.parametrize("channels", [(32, 36), (36, 32), (36, 44)])
def test_a_channel_count_that_groupnorm_cannot_split_is_refused_at_config_time(channels):
    """GroupNorm needs every level's width divisible by groups: one odd level is named before any network is built."""
    with pytest.raises(ValueError, match=rf"^every channel count \({channels[0]}, {channels[1]}\) must be divisible by groups=8$"):
        VideoUNetConfig(channels=channels, groups=8, attention_levels=())
    assert VideoUNetConfig(channels=(36, 44), groups=4, attention_levels=()).groups == 4


def test_output_channels_unpack_as_channel_then_row_then_column():
    """With conv_out's weights zero its bias is the output: channel k = c*p*p + p1*p + p2 lands on colour c at
    sub-pixel (p1, p2) of every packed cell, the layout the input packing uses and the shipped weights expect."""
    config = VideoUNetConfig(**{**TINY_UNET, "patch_size": 2})
    unet = VideoUNet(config).eval()
    torch.nn.init.zeros_(unet.conv_out.weight)
    bias = torch.arange(3 * 2 * 2, dtype=torch.float32)
    with torch.no_grad():
        unet.conv_out.bias.copy_(bias)
        out = unet(**inputs(b=1, size=16))  # (1, 3, f, 16, 16)
    for c in range(3):
        for p1 in range(2):
            for p2 in range(2):
                assert (out[0, c, :, p1::2, p2::2] == bias[c * 4 + p1 * 2 + p2]).all(), (c, p1, p2)


def test_text_pooling_queries_start_distinct_and_attend_by_content():
    """Each learned query starts as its own random direction (std 1/sqrt(d)), so at initialisation the queries already
    weigh the prompt's tokens differently; zero queries would make every one the masked mean (plain mean pooling)."""
    from kinema.models.unet3d import TextPooling

    torch.manual_seed(0)
    d, n = 384, 12
    pooling = TextPooling(d, 4, 32)
    q = pooling.queries.detach()
    assert abs(q.std().item() * d**0.5 - 1.0) < 0.1 and torch.linalg.matrix_rank(q) == 4
    tokens, mask = torch.randn(2, n, d) * 4, torch.ones(2, n, dtype=torch.bool)
    mask[1, 7:] = False  # padding is never attended
    captured = {}
    pooling.proj.register_forward_hook(lambda module, args, out: captured.update(pooled=args[0].view(2, 4, d)))
    pooling(tokens, mask)
    for b in range(2):
        keep = tokens[b][mask[b]]
        weights = torch.softmax(q @ keep.T / d**0.5, dim=-1)  # (queries, kept tokens): computed here by hand
        torch.testing.assert_close(captured["pooled"][b], weights @ keep, rtol=1e-4, atol=1e-4)
        assert (captured["pooled"][b] - keep.mean(0)).abs().max() > 0.1  # not the mean of the tokens


def test_every_attention_splits_into_heads_of_attention_head_dim():
    """attention_head_dim sets the head count (width / head_dim) of the temporal and the text attention alike."""
    from kinema.models.unet3d import AttentionBlock

    unet = random_unet()
    blocks = [m for m in unet.modules() if isinstance(m, AttentionBlock)]
    assert blocks
    g = torch.Generator().manual_seed(2)
    for block in blocks:
        dim = block.frame_pos.shape[1]
        heads = dim // TINY_UNET["attention_head_dim"]
        x = torch.randn(2, 6, dim, generator=g)
        text = torch.randn(2, 5, 384, generator=g)
        mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
        for attention, context, keep in ((block.temporal, None, None), (block.cross, text, mask)):
            h = torch.nn.functional.layer_norm(x, (dim,), attention.norm.weight, attention.norm.bias)
            kv = (h if context is None else context) @ attention.kv.weight.T
            split = lambda t: t.unflatten(-1, (heads, -1)).transpose(1, 2)  # (b, heads, n, head_dim)
            q, k, v = split(h @ attention.q.weight.T), split(kv[..., :dim]), split(kv[..., dim:])
            want = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=None if keep is None else keep[:, None, None, :])
            want = x + torch.nn.functional.linear(want.transpose(1, 2).flatten(2), attention.out.weight, attention.out.bias)
            torch.testing.assert_close(attention(x, context, keep), want, rtol=1e-4, atol=1e-5)


def test_dropout_drops_in_training_only_and_only_when_configured():
    """model.dropout regularises training (two passes differ) and never touches sampling (eval passes agree)."""
    def unet_with(dropout):
        torch.manual_seed(0)
        unet = VideoUNet(VideoUNetConfig(**TINY_UNET, dropout=dropout))
        for p in unet.parameters():
            torch.nn.init.normal_(p, std=0.05)
        return unet

    x = inputs()
    with torch.no_grad():
        dropped = unet_with(0.5).train()
        assert not torch.allclose(dropped(**x), dropped(**x))
        assert torch.equal(dropped.eval()(**x), dropped(**x))
        plain = unet_with(0.0).train()
        assert torch.equal(plain(**x), plain(**x))


def test_the_built_in_denoisers_load_into_the_architecture_their_configs_describe():
    """shapes-t2v and shapes-ldm ship weights for VideoUNet: every tensor must have a place of the same shape."""
    from safetensors.torch import load_file

    from kinema.hub import open_model

    for name in ("shapes-t2v", "shapes-ldm"):
        folder = open_model(name).component("denoiser")
        unet = VideoUNet.from_pretrained(folder)
        stored = load_file(str(folder / "model.safetensors"))
        own = unet.state_dict()
        assert set(stored) == set(own), name
        assert all(stored[k].shape == own[k].shape for k in own), name


def test_a_single_timestep_applies_to_every_clip_of_the_batch():
    """Samplers pass one scalar timestep for the whole batch: it must mean that step for every clip."""
    unet = random_unet()
    x = inputs()
    with torch.no_grad():
        each = unet(**dict(x, timestep=torch.tensor([500, 500])))
        scalar = unet(**dict(x, timestep=torch.tensor(500)))
    assert scalar.shape == x["sample"].shape
    torch.testing.assert_close(scalar, each, rtol=0, atol=1e-6)


def test_a_component_folder_names_its_class_and_a_wrong_class_or_missing_file_is_named(tmp_path):
    """A model folder says which network it holds: loading it as another class, or without one of its files, names the problem."""
    import json
    import re

    from kinema.models.base import load_component, model_class_named, read_model_class
    from kinema.models.vae import VideoVAE

    unet = random_unet().eval()
    folder = unet.save_pretrained(tmp_path / "m", extra={"_note": "trained for a test"})
    config = json.loads((folder / "config.json").read_text())
    assert config["model_class"] == "VideoUNet" and config["_note"] == "trained for a test" and config["sample_size"] == 16
    assert read_model_class(folder) == "VideoUNet" and model_class_named("VideoUNet") is VideoUNet
    loaded = load_component(folder)
    assert type(loaded) is VideoUNet and not loaded.training and loaded.config == unet.config
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in unet.state_dict().items())
    with pytest.raises(ValueError, match=rf"^{re.escape(str(folder))} holds a VideoUNet, not a VideoVAE$"):
        VideoVAE.from_pretrained(folder)
    with pytest.raises(ValueError, match=r"^no Kinema network class 'VideoUnet'; known: .*VideoGPT, VideoGenerator, VideoUNet, VideoVAE, VideoVQVAE"):
        model_class_named("VideoUnet")
    # a diffusers-written config names its class as _class_name; one naming none reads as ""
    diffusers = dict(config)
    del diffusers["model_class"]
    (folder / "config.json").write_text(json.dumps({**diffusers, "_class_name": "VideoUNet"}))
    assert read_model_class(folder) == "VideoUNet"
    (folder / "config.json").write_text(json.dumps(diffusers))
    assert read_model_class(folder) == "" and VideoUNet.from_pretrained(folder).config == unet.config
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=rf"^{re.escape(str(folder))} is not a model folder: model.safetensors is missing$"):
        VideoUNet.from_pretrained(folder)
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=rf"^{re.escape(str(folder))} is not a model component: config.json is missing$"):
        read_model_class(folder)


def test_weights_that_do_not_fit_the_config_are_refused_naming_the_keys(tmp_path):
    """A folder whose weights lack a tensor the config needs (or hold one it does not) is refused, not half-loaded."""
    from safetensors.torch import load_file, save_file

    folder = random_unet().save_pretrained(tmp_path / "m")
    state = load_file(str(folder / "model.safetensors"))
    dropped = sorted(state)[0]
    state["extra.weight"] = state.pop(dropped)
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match=rf"model.safetensors does not fit VideoUNet: missing \['{dropped}'\], unexpected \['extra.weight'\]$"):
        VideoUNet.from_pretrained(folder)


def test_the_timestep_embedding_is_cosines_then_sines_of_geometric_frequencies():
    """The shipped denoisers were trained on this exact embedding: cos(t f_i) then sin(t f_i), f_i = 10000^(-i/half)."""
    import math

    from kinema.models.unet3d import timestep_embedding

    t = torch.tensor([0, 1, 37, 999])
    out = timestep_embedding(t, 8)
    assert out.shape == (4, 8) and out.dtype == torch.float32
    for row, step in zip(out.tolist(), t.tolist()):
        freqs = [10_000 ** (-i / 4) for i in range(4)]
        want = [math.cos(step * f) for f in freqs] + [math.sin(step * f) for f in freqs]
        assert row == pytest.approx(want, abs=1e-4)
    assert timestep_embedding(torch.tensor([3.0]), 4, max_period=100.0)[0].tolist() == pytest.approx(
        [math.cos(3.0), math.cos(0.3), math.sin(3.0), math.sin(0.3)], abs=1e-5)


def test_a_residual_block_is_norm_conv_film_then_a_temporal_conv_over_a_skip():
    """ResBlock by hand: silu(GN(conv3x3(silu(GN(x)))) * (1 + scale) + shift), plus a 3-tap conv over frames, plus the 1x1 skip."""
    from kinema.models.unet3d import ResBlock

    torch.manual_seed(0)
    block = ResBlock(8, 12, 6, groups=4, dropout=0.0)
    assert torch.equal(block.temporal.weight, torch.zeros_like(block.temporal.weight))  # starts as an image block
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.3)
    g = torch.Generator().manual_seed(3)
    x, emb = torch.randn(2, 8, 5, 4, 4, generator=g), torch.randn(2, 6, generator=g)
    F = torch.nn.functional

    def by_hand(x):
        h = F.group_norm(x, 4, block.norm1.weight, block.norm1.bias, eps=1e-5)  # PyTorch's default eps, as trained
        h = F.conv3d(F.silu(h), block.spatial.weight, block.spatial.bias, padding=(0, 1, 1))
        film = emb @ block.film.weight.T + block.film.bias
        scale, shift = film[:, :12, None, None, None], film[:, 12:, None, None, None]
        h = F.silu(F.group_norm(h, 4, block.norm2.weight, block.norm2.bias, eps=1e-5) * (1 + scale) + shift)
        h = h + F.conv3d(h, block.temporal.weight, block.temporal.bias, padding=(1, 0, 0))
        return F.conv3d(x, block.skip.weight, block.skip.bias) + h

    torch.testing.assert_close(block(x, emb), by_hand(x), rtol=1e-4, atol=1e-5)
    faint = x * 1e-3  # nearly flat input (a blank frame): the normalisation's eps decides the output
    torch.testing.assert_close(block(faint, emb), by_hand(faint), rtol=1e-4, atol=1e-5)
    assert isinstance(ResBlock(8, 8, 6, groups=4, dropout=0.0).skip, torch.nn.Identity)  # same width: the input itself


def test_every_block_of_every_level_runs_in_order_and_learns():
    """With two blocks per level (the shipped models' shape) each level runs block, attention, block, attention, down then up."""
    from kinema.models.unet3d import AttentionBlock, ResBlock

    config = VideoUNetConfig(**{**TINY_UNET, "blocks_per_level": 2})
    torch.manual_seed(0)
    unet = VideoUNet(config)
    for p in unet.parameters():
        torch.nn.init.normal_(p, std=0.05)
    calls = []
    for name, module in unet.named_modules():
        if isinstance(module, (ResBlock, AttentionBlock)):
            module.register_forward_hook(lambda module, args, out, name=name: calls.append(name))
    unet(**inputs()).square().mean().backward()
    levels, attention = len(config.channels), set(config.attention_levels)
    want = []
    for level in range(levels):  # down: level 0 first
        for j in range(2):
            want += [f"down.{level}.{j}"] + ([f"down_attn.{level}.{j}"] if level in attention else [])
    want += ["mid.0", "mid_attn", "mid.1"]
    for i, level in enumerate(reversed(range(levels))):  # up: the coarsest level first
        for j in range(2):
            want += [f"up.{i}.{j}"] + ([f"up_attn.{i}.{j}"] if level in attention else [])
    assert calls == want
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in unet.parameters()), "a weight that never learns"


@pytest.mark.parametrize("size", [(16, 8), (8, 16), (18, 18)])
def test_frames_that_are_not_square_or_not_divisible_by_the_downsampling_are_refused_by_size(size):
    """A 16x8 clip would be silently squashed by the square position tables: both sides are named in the error instead."""
    height, width = size
    with pytest.raises(ValueError, match=rf"^frames must be square with sides divisible by 4, got {height}x{width}$"):
        random_unet()(**dict(inputs(), sample=torch.randn(2, 3, 4, height, width)))


def test_within_a_level_each_block_takes_exactly_what_the_one_before_it_gave():
    """Blocks and attention blocks carry their own residuals: a level chains them, adding nothing between, and the up path
    adds the matching down level's output once."""
    from kinema.models.unet3d import AttentionBlock, ResBlock

    config = VideoUNetConfig(**{**TINY_UNET, "blocks_per_level": 2})
    torch.manual_seed(0)
    unet = VideoUNet(config)
    for p in unet.parameters():
        torch.nn.init.normal_(p, std=0.05)
    seen = {}
    for name, module in unet.named_modules():
        if isinstance(module, (ResBlock, AttentionBlock)):
            module.register_forward_hook(lambda module, args, out, name=name: seen.__setitem__(name, (args[0], out)))
    with torch.no_grad():
        unet(**inputs())
    chain = ["down.1.0", "down_attn.1.0", "down.1.1", "down_attn.1.1", "mid.0", "mid_attn", "mid.1"]
    for before, after in zip(chain, chain[1:]):
        assert torch.equal(seen[after][0], seen[before][1]), (before, after)
    assert torch.equal(seen["down.0.1"][0], seen["down.0.0"][1])  # level 0 has no attention
    torch.testing.assert_close(seen["up.0.0"][0], seen["mid.1"][1] + seen["down_attn.1.1"][1])  # the skip, added once
    for before, after in [("up.0.0", "up_attn.0.0"), ("up_attn.0.0", "up.0.1"), ("up.0.1", "up_attn.0.1"), ("up.1.0", "up.1.1")]:
        assert torch.equal(seen[after][0], seen[before][1]), (before, after)


def test_save_pretrained_returns_the_folder_it_wrote_and_refuses_to_overwrite_when_told(tmp_path):
    """Callers chain on the returned Path (e.g. `unet.save_pretrained(str(dir)) / "config.json"`); overwrite=False keeps a folder."""
    import json

    from safetensors.torch import load_file

    unet = random_unet()
    out = unet.save_pretrained(str(tmp_path / "m"), extra={"notes": "step 7"})
    assert isinstance(out, type(tmp_path)) and out == tmp_path / "m"
    config = json.loads((out / "config.json").read_text())
    assert config["model_class"] == "VideoUNet" and config["notes"] == "step 7" and config["channels"] == [16, 32]
    assert load_file(out / "model.safetensors").keys() == unet.state_dict().keys()
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match=r"already exists \(pass overwrite=True to replace it\)$"):
        random_unet().save_pretrained(out, overwrite=False, extra={"notes": "other"})
    assert (out / "model.safetensors").read_bytes() == before and json.loads((out / "config.json").read_text())["notes"] == "step 7"
