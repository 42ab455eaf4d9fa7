"""The video VQ-VAE family: shapes, causality, the EMA codebook and its restarts, straight-through gradients,
save/load, input checks, training on the shared trainer."""

import json
from pathlib import Path

import pytest
import torch

from kinema.models.vqvae import VectorQuantizer, VideoVQVAE, VQVAEConfig

TINY = Path(__file__).parents[1] / "configs" / "vqvae" / "tiny.yaml"
# spatial 4 / temporal 2, and spatial 8 / temporal 4
S4T2 = VQVAEConfig(channels=(8, 16), mid_channels=24, mid_blocks=1, temporal_compression=2, codebook_size=16, embed_dim=4)
S8T4 = VQVAEConfig(channels=(8, 8, 16), mid_channels=None, mid_blocks=1, temporal_compression=4, codebook_size=16, embed_dim=4)


def random_vqvae(config: VQVAEConfig = S4T2, seed: int = 0) -> VideoVQVAE:
    """Every weight random: a zero-initialised layer would hide what leaks between frames."""
    torch.manual_seed(seed)
    vqvae = VideoVQVAE(config)
    with torch.no_grad():
        for p in vqvae.parameters():
            p.normal_(std=0.2)
    return vqvae.eval()


def clip(frames: int = 5, size: int = 16, batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("config, frames, size, grid", [(S4T2, 7, 16, (4, 4, 4)), (S8T4, 9, 32, (3, 4, 4))], ids=["s4t2", "s8t4"])
def test_forward_backward_shapes(config, frames, size, grid, one_thread):
    vqvae = random_vqvae(config).train()
    x = clip(frames=frames, size=size)
    assert vqvae.latent_shape(frames, size, size) == grid
    reconstruction, quantized = vqvae(x)
    assert reconstruction.shape == x.shape
    assert quantized.codes.shape == (2, *grid) and quantized.codes.dtype == torch.long
    assert quantized.vectors.shape == (2, config.embed_dim, *grid)
    (reconstruction - x).pow(2).mean().add(0.25 * quantized.commitment).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vqvae.parameters())
    vqvae.eval()
    with torch.no_grad():
        codes = vqvae.encode(x)
        video = vqvae.decode(codes)
    assert codes.shape == (2, *grid) and video.shape == x.shape
    assert video.min() >= -1 and video.max() <= 1


def test_an_image_is_a_one_frame_video_and_encoding_is_causal(one_thread):
    vqvae = random_vqvae()
    x = clip(frames=7)
    changed = x.clone()
    changed[:, :, 3:] = clip(frames=4, seed=9)  # frames 3..6: latent frames 2 and 3 (groups [0] [1,2] [3,4] [5,6])
    with torch.no_grad():
        codes, codes_changed = vqvae.encode(x), vqvae.encode(changed)
        image_codes = vqvae.encode(x[:, :, :1])
        assert image_codes.shape == (2, 1, 4, 4) and torch.equal(image_codes, codes[:, :1])
        assert torch.equal(codes[:, :2], codes_changed[:, :2]) and not torch.equal(codes[:, 2:], codes_changed[:, 2:])
        later = codes.clone()
        later[:, 1:] = (later[:, 1:] + 1) % vqvae.config.codebook_size
        out, out_later = vqvae.decode(codes), vqvae.decode(later)
    assert torch.equal(out[:, :, :1], out_later[:, :, :1])  # frame 0 is decoded from latent frame 0 alone
    assert not torch.equal(out[:, :, 1:], out_later[:, :, 1:])


def hand_made_quantizer(restart_threshold: float) -> VectorQuantizer:
    quantizer = VectorQuantizer(codebook_size=3, dim=2, decay=0.5, eps=0.1, restart_threshold=restart_threshold)
    codebook = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    quantizer.embedding.copy_(codebook)
    quantizer.embed_sum.copy_(codebook)
    quantizer.cluster_size.fill_(1.0)
    return quantizer


# four encoder outputs (b=1, d=2, f=1, h=2, w=2): [1, 0] and [0, 1] are nearest code 0, [9, 1] and [11, 1] code 1
HAND_MADE = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 1.0], [11.0, 1.0]]).t().reshape(1, 2, 1, 2, 2)


def test_ema_codebook_update_equals_a_hand_computation():
    quantizer = hand_made_quantizer(restart_threshold=0.0).train()
    out = quantizer(HAND_MADE)
    assert out.codes.flatten().tolist() == [0, 0, 1, 1]
    # the vectors handed on are the codebook before the update
    assert out.vectors.reshape(2, 4).t().tolist() == [[0, 0], [0, 0], [10, 0], [10, 0]]
    assert out.commitment.item() == pytest.approx(6 / 8)  # squared distances 1, 1, 2, 2 over 4 x 2 elements
    assert out.perplexity.item() == pytest.approx(2.0) and out.used.item() == pytest.approx(2 / 3)
    # counts [2, 2, 0], sums [[1, 1], [20, 2], [0, 0]]; decay 0.5
    torch.testing.assert_close(quantizer.cluster_size, torch.tensor([1.5, 1.5, 0.5]), rtol=0, atol=1e-6)
    torch.testing.assert_close(quantizer.embed_sum, torch.tensor([[0.5, 0.5], [15.0, 1.0], [0.0, 5.0]]), rtol=0, atol=1e-6)
    # Laplace smoothing: (count + 0.1) / (3.5 + 3 * 0.1) * 3.5 = [5.6, 5.6, 2.1] / 3.8
    expected = torch.tensor([[0.5, 0.5], [15.0, 1.0], [0.0, 5.0]]) * 3.8 / torch.tensor([[5.6], [5.6], [2.1]])
    torch.testing.assert_close(quantizer.embedding, expected, rtol=1e-6, atol=1e-6)
    assert out.restarted.item() == 0


def test_processes_pool_their_batches_counts_and_sums_into_one_codebook_update(monkeypatch):
    """Under DDP every process must move the codebook as one process seeing the whole global batch would."""
    import kinema.models.vqvae as vqvae_module

    other = torch.tensor([[0.0, 9.0], [1.0, 11.0], [9.0, 0.0], [0.0, 0.0]]).t().reshape(1, 2, 1, 2, 2)  # the other process's half
    # what the other process contributes, by hand: codes [2, 2, 1, 0]
    from_other = [torch.tensor([1.0, 1.0, 2.0]), torch.tensor([[0.0, 0.0], [9.0, 0.0], [1.0, 20.0]])]
    reduced = []
    monkeypatch.setattr(vqvae_module.dist, "is_available", lambda: True)
    monkeypatch.setattr(vqvae_module.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(vqvae_module.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(vqvae_module.dist, "all_reduce", lambda t: reduced.append(t.shape) or t.add_(from_other[len(reduced) - 1]))
    pooled = hand_made_quantizer(restart_threshold=0.0).train()
    pooled(HAND_MADE)
    assert len(reduced) == 2
    monkeypatch.setattr(vqvae_module.dist, "is_initialized", lambda: False)
    whole = hand_made_quantizer(restart_threshold=0.0).train()
    whole(torch.cat([HAND_MADE, other]))
    for name in ("cluster_size", "embed_sum", "embedding"):
        torch.testing.assert_close(getattr(pooled, name), getattr(whole, name), rtol=0, atol=1e-6)


def test_eval_mode_leaves_the_codebook_alone():
    quantizer = hand_made_quantizer(restart_threshold=1.0).eval()
    before = {k: v.clone() for k, v in quantizer.state_dict().items()}
    quantizer(HAND_MADE)
    assert all(torch.equal(before[k], v) for k, v in quantizer.state_dict().items())


def test_a_dead_code_is_restarted_on_an_encoder_output_of_the_batch():
    flat = HAND_MADE.reshape(2, 4).t()
    runs = []
    for _ in range(2):
        quantizer = hand_made_quantizer(restart_threshold=1.0).train()
        torch.manual_seed(5)
        out = quantizer(HAND_MADE)
        runs.append(quantizer.embedding.clone())
        # code 2's moving count fell to 0.5 < 1: it now sits on one of the four outputs, counted as just alive
        assert out.restarted.item() == 1
        assert any(torch.equal(quantizer.embedding[2], row) for row in flat)
        assert quantizer.cluster_size[2].item() == 1.0 and torch.equal(quantizer.embed_sum[2], quantizer.embedding[2])
        # the living codes move by the moving average only
        torch.testing.assert_close(quantizer.embedding[:2], torch.tensor([[0.5, 0.5], [15.0, 1.0]]) * 3.8 / 5.6)
    # the pick is drawn in proportion to each output's squared distance to its (updated) code
    living = torch.tensor([[0.5, 0.5], [15.0, 1.0]]) * 3.8 / 5.6
    error = (flat - living[[0, 0, 1, 1]]).pow(2).sum(1)
    torch.manual_seed(5)
    pick = torch.multinomial(error, 1)
    assert torch.equal(runs[0][2], flat[pick[0]]) and torch.equal(runs[0], runs[1])  # deterministic given torch's RNG


@pytest.mark.parametrize("seed", range(8))
def test_restarts_go_to_the_outputs_the_codebook_fits_worst(seed):
    # 98 outputs on code 0 exactly (the black background of a Shapes frame) and two far from every code: dead
    # codes 1 and 2 restart on those two; a uniform pick would land on the background 98 times in 100
    quantizer = VectorQuantizer(codebook_size=3, dim=2, decay=1.0, eps=0.0, restart_threshold=1.0).train()  # decay 1: a fixed codebook
    quantizer.embedding.copy_(torch.tensor([[0.0, 0.0], [50.0, 50.0], [-50.0, 50.0]]))
    quantizer.embed_sum.zero_()
    quantizer.cluster_size.copy_(torch.tensor([1.0, 0.0, 0.0]))
    outputs = torch.zeros(100, 2)
    outputs[37], outputs[80] = torch.tensor([3.0, -4.0]), torch.tensor([-4.0, 3.0])
    torch.manual_seed(seed)
    out = quantizer(outputs.t().reshape(1, 2, 1, 10, 10))
    assert out.restarted.item() == 2
    assert sorted(quantizer.embedding[1:].tolist()) == [[-4.0, 3.0], [3.0, -4.0]]


def test_a_dead_code_restarts_even_when_every_output_sits_exactly_on_its_code():
    """A batch the codebook fits perfectly (an all-black clip) has no error to weigh picks by: restarts fall back to uniform."""
    quantizer = VectorQuantizer(codebook_size=2, dim=2, decay=1.0, eps=0.0, restart_threshold=1.0).train()  # a fixed codebook
    quantizer.embedding.copy_(torch.tensor([[0.0, 0.0], [50.0, 50.0]]))
    quantizer.embed_sum.zero_()
    quantizer.cluster_size.copy_(torch.tensor([1.0, 0.0]))
    torch.manual_seed(0)
    out = quantizer(torch.zeros(1, 2, 1, 4, 4))
    assert out.restarted.item() == 1 and quantizer.embedding[1].tolist() == [0.0, 0.0]


def test_straight_through_gradient_reaches_the_encoder(one_thread):
    quantizer = hand_made_quantizer(restart_threshold=0.0).eval()
    z = HAND_MADE.clone().requires_grad_(True)
    weight = torch.randn(HAND_MADE.shape, generator=torch.Generator().manual_seed(0))
    (quantizer(z).vectors * weight).sum().backward()
    assert torch.equal(z.grad, weight)  # the quantizer is the identity backwards
    vqvae = random_vqvae().train()
    x = clip()
    reconstruction, _ = vqvae(x)
    (reconstruction - x).pow(2).mean().backward()  # the reconstruction alone, no commitment term
    grad = vqvae.encoder.conv_in.conv.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_save_and_load_give_identical_outputs(tmp_path, one_thread):
    vqvae = random_vqvae().train()
    vqvae(clip(seed=3))  # move the codebook away from its initial state: the buffers must be saved
    vqvae.eval()
    vqvae.save_pretrained(tmp_path / "vqvae")
    assert json.loads((tmp_path / "vqvae" / "config.json").read_text())["model_class"] == "VideoVQVAE"
    loaded = VideoVQVAE.from_pretrained(tmp_path / "vqvae")
    assert loaded.config == vqvae.config
    x = clip()
    with torch.no_grad():
        codes = vqvae.encode(x)
        assert torch.equal(loaded.encode(x), codes)
        assert torch.equal(loaded.decode(codes), vqvae.decode(codes))
    assert loaded.codebook_usage() == vqvae.codebook_usage()


def test_bad_input_is_named(one_thread):
    vqvae = random_vqvae()
    with pytest.raises(ValueError, match=r"num_frames must be 1 \+ 2\*k.*got 4"):
        vqvae.encode(clip(frames=4))
    with pytest.raises(ValueError, match=r"num_frames must be 1 \+ 2\*k.*got 4"):
        vqvae(clip(frames=4))  # the training forward checks too
    with pytest.raises(ValueError, match="multiples of 4.*got 18x18"):
        vqvae.encode(clip(size=18))
    with pytest.raises(ValueError, match=r"expected a video \(b, 3, f, h, w\)"):
        vqvae.encode(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match=r"codes must be in \[0, 16\)"):
        vqvae.decode(torch.full((1, 1, 4, 4), 16))
    with pytest.raises(ValueError, match="temporal_compression must be 1, 2 or 4"):
        VQVAEConfig(temporal_compression=3)
    with pytest.raises(ValueError, match="channels must list 2"):
        VQVAEConfig(channels=(8, 8, 8, 8))


@pytest.mark.parametrize("override, message", [("data.num_frames=4", r"num_frames must be 1 \+ 2\*k .*got 4$"),
                                               ("data.resolution=18", "multiples of 4 .*got 18x18$")], ids=["frames", "size"])
def test_a_run_whose_clips_the_model_cannot_code_is_refused_before_training(override, message, tmp_path):
    """A clip length or size the VQ-VAE cannot take is named when the run starts, before any folder is written."""
    from kinema.training import get_family, load_config, train

    with pytest.raises(ValueError, match=message):
        get_family("vqvae").objective(load_config(TINY, [override]))
    with pytest.raises(ValueError, match=message):
        train(TINY, [override], out=tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_training_lowers_the_loss_logs_the_codebook_and_exports(tmp_path, one_thread):
    from kinema import load_pipeline
    from kinema.hub import open_model
    from kinema.training import load_config, train

    run = train(TINY, ["train.max_steps=30", "train.log_every=5", "train.sample_every=30", "train.num_samples=2"], out=tmp_path / "run")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0]
    assert all({"codebook_used", "perplexity", "codes_restarted", "commitment", "psnr"} <= set(row) for row in rows)
    assert rows[-1]["perplexity"] > 1 and 0 < rows[-1]["codebook_used"] <= 1
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    folder = open_model(run / "model")
    assert folder.index.purpose == "autoencoder" and list(folder.index.components) == ["vqvae"]
    vqvae = VideoVQVAE.from_pretrained(run / "model")
    assert vqvae.config == load_config(TINY).model
    assert 0 < vqvae.codebook_usage()["fraction_used"] <= 1
    with pytest.raises(ValueError, match="does not generate video"):
        load_pipeline(run / "model", device="cpu")
    assert list((run / "samples").glob("*")), "the run wrote no preview of inputs beside reconstructions"


def test_a_residual_block_starts_as_the_identity_and_learns(one_thread):
    """Its second convolution starts at zero, so a deep stack trains from the identity; the first one is random,
    so the gradient reaches both at the first step."""
    from kinema.models.vqvae import ResBlock

    torch.manual_seed(0)
    block = ResBlock(8)
    x = clip(frames=3, size=8).repeat(1, 3, 1, 1, 1)[:, :8]
    assert torch.equal(block(x), x)
    assert block.conv1.conv.weight.abs().min() > 0
    target = torch.roll(x, 1, dims=-1)
    torch.nn.functional.mse_loss(block(x), target).backward()
    assert block.conv2.conv.weight.grad.abs().sum() > 0
    with torch.no_grad():
        for p in block.parameters():
            p -= 0.1 * p.grad
    assert torch.nn.functional.mse_loss(block(x), target) < torch.nn.functional.mse_loss(x, target)


def test_a_model_grown_by_fresh_blocks_computes_what_it_grew_from(one_thread):
    """Growing a trained VQ-VAE with more (identity-initialised) blocks for fine-tuning keeps its codes and reconstructions."""
    from dataclasses import replace

    source = random_vqvae()
    grown = VideoVQVAE(replace(S4T2, mid_blocks=3, decoder_blocks=3)).eval()
    missing, unexpected = grown.load_state_dict(source.state_dict(), strict=False)
    assert not unexpected and {k.split(".")[1] for k in missing} == {"mid", "levels"}
    x = clip(frames=5)
    with torch.no_grad():
        (want, want_q), (got, got_q) = source(x), grown(x)
    assert torch.equal(got_q.codes, want_q.codes)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("clip_aware", [True, False])
def test_the_training_loss_is_the_weighted_reconstruction_error_and_commitment(clip_aware, one_thread):
    """The loss weighs MSE, L1 and commitment as the config says; with clip_aware an overshoot past -1 or 1 is free."""
    from kinema.training import get_family, load_config

    config = load_config(TINY, ["objective.l1_weight=0.5", "objective.mse_weight=2.0", "objective.commitment_weight=0.3",
                                f"objective.clip_aware={str(clip_aware).lower()}"])
    objective = get_family("vqvae").objective(config)
    vqvae = objective.modules["model"].eval()  # eval: the codebook stands still, so a second forward gives the same codes
    with torch.no_grad():
        for p in vqvae.parameters():
            p.normal_(std=0.2, generator=torch.Generator().manual_seed(0))
    x = clip(frames=config.data.num_frames, size=config.data.resolution).clamp(-0.9, 0.9)
    x[:, :, :, :4] = -1.0  # black rows and white columns: pixels at the ends of the range
    x[:, :, :, :, :3] = 1.0
    with torch.no_grad():
        out = objective.training_step({"video": x}, 1, "model")
        reconstruction, quantized = vqvae(x)
    error = reconstruction - x
    if clip_aware:
        error = torch.where(x.abs() >= 1, reconstruction.clamp(-1, 1) - x, error)
    mse, l1 = error.pow(2).mean(), error.abs().mean()
    assert (reconstruction.abs() > 1).any()  # some pixels overshoot, so clip_aware changes the error
    torch.testing.assert_close(out["mse"], mse)
    torch.testing.assert_close(out["l1"], l1)
    torch.testing.assert_close(out["loss"], 2.0 * mse + 0.5 * l1 + 0.3 * quantized.commitment)


def test_a_preview_puts_test_clips_beside_their_reconstruction_through_the_codes(one_thread):
    """The preview shows the input on the left and what the codes give back on the right, as uint8 (b, f, h, 2w, c)."""
    from einops import rearrange

    from kinema.training import get_family, load_config
    from kinema.training.objectives.vae import VAEClips

    config = load_config(TINY)
    objective = get_family("vqvae").objective(config)
    vqvae = objective.modules["model"].eval()
    previews = objective.sample(3, torch.Generator().manual_seed(2))
    clips = VAEClips(config.data, split="test")
    picks = torch.randint(len(clips), (3,), generator=torch.Generator().manual_seed(2)).tolist()
    x = torch.stack([clips[i]["video"] for i in picks])
    with torch.no_grad():
        reconstruction = vqvae.decode(vqvae.encode(x))

    def to_uint8(video):
        return rearrange(((video + 1) * 127.5).round().to(torch.uint8), "b c f h w -> b f h w c")

    f, size = config.data.num_frames, config.data.resolution
    assert previews.dtype == torch.uint8 and previews.shape == (3, f, size, 2 * size, 3)
    assert torch.equal(previews[:, :, :, :size], to_uint8(x)) and torch.equal(previews[:, :, :, size:], to_uint8(reconstruction))


def test_decoding_the_codes_gives_what_the_quantized_vectors_give(one_thread):
    """Generation decodes codes (the prior's output), training decodes the quantizer's vectors: they must be one
    picture, every code at its own place in the grid (a square grid hides a transposed one from the shapes)."""
    vqvae = random_vqvae()
    x = clip(frames=5, size=16)
    with torch.no_grad():
        quantized = vqvae.quantize(x)
        codes = quantized.codes
        vectors = vqvae.embed(codes)
        b, f, h, w = 1, 2, 0, 3
        assert torch.equal(vectors[b, :, f, h, w], vqvae.quantizer.embedding[codes[b, f, h, w]])
        assert torch.allclose(vectors, quantized.vectors, atol=1e-6)
        assert torch.allclose(vqvae.decode(codes), vqvae(x)[0].clamp(-1, 1), atol=1e-5)


def test_the_config_defaults_code_17_frames_of_64x64_into_5x8x8_codes_of_the_shipped_shape():
    """VQVAEConfig() is documented as 17-frame 64x64 clips -> 5 x 8 x 8 codes of 1024; leaving out a block count or a
    codebook setting gives the shipped shapes-videogpt tokenizer's (only its widths are set in its config)."""
    import dataclasses

    from kinema.hub import open_model

    default = VQVAEConfig()
    vqvae = VideoVQVAE(default)
    assert vqvae.latent_shape(17, 64, 64) == (5, 8, 8) and default.codebook_size == 1024
    assert [len(level.blocks) for level in vqvae.encoder.levels] == [default.encoder_blocks] * len(default.channels)
    shipped = VideoVQVAE.read_config(open_model("shapes-videogpt").component("vqvae"))
    assert dataclasses.replace(default, channels=shipped.channels, mid_channels=shipped.mid_channels) == shipped
    # and the shipped widths are the ones configs/vqvae/shapes.yaml trains
    from kinema.training import load_config

    trained = load_config(Path(__file__).parents[1] / "configs" / "vqvae" / "shapes.yaml").model
    assert (tuple(trained.channels), trained.mid_channels) == (tuple(shipped.channels), shipped.mid_channels)


_BAD_CONFIGS = [
    (dict(in_channels=0), "in_channels must be at least 1, got 0"),
    (dict(channels=(8,)), r"channels must list 2 \(spatial compression 4\) or 3 \(compression 8\) positive widths, got \[8\]"),
    (dict(channels=(8, 0)), r"channels must list 2 \(spatial compression 4\) or 3 \(compression 8\) positive widths, got \[8, 0\]"),
    (dict(mid_blocks=-1), "encoder_blocks, decoder_blocks and mid_blocks must be 0 or more"),
    (dict(mid_channels=0), "mid_channels must be at least 1 or null, got 0"),
    (dict(temporal_compression=3), "temporal_compression must be 1, 2 or 4, got 3"),
    (dict(codebook_size=1), "codebook_size must be at least 2 and embed_dim at least 1, got 1 and 64"),
    (dict(embed_dim=0), "codebook_size must be at least 2 and embed_dim at least 1, got 1024 and 0"),
    (dict(ema_decay=1.0), r"ema_decay must be in \[0, 1\), got 1.0"),
    (dict(laplace_eps=0.0), "laplace_eps must be positive and restart_threshold 0 or more, got 0.0 and 1.0"),
    (dict(restart_threshold=-1.0), "laplace_eps must be positive and restart_threshold 0 or more, got 1e-05 and -1.0"),
]


@pytest.mark.parametrize("fields, message", _BAD_CONFIGS, ids=[next(iter(f)) + "=" + str(next(iter(f.values()))) for f, _ in _BAD_CONFIGS])
def test_each_impossible_vqvae_shape_is_refused_by_name(fields, message):
    """A config.yaml slip like codebook_size: 1 must fail at once naming the field and its value, not deep in training."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        VQVAEConfig(**fields)
    limits = VQVAEConfig(channels=(8, 8), mid_channels=1, mid_blocks=0, temporal_compression=1, codebook_size=2, embed_dim=1,
                         ema_decay=0.0, restart_threshold=0.0)  # the limits themselves pass
    assert (limits.codebook_size, limits.ema_decay, limits.restart_threshold) == (2, 0.0, 0.0)
