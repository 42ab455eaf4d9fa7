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
