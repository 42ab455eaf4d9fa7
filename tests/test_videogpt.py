"""The VideoGPT family: the prior's masks and KV cache, top-k / top-p sampling, the pipeline (seeds, image-to-video,
unconditional), and a tiny VQ-VAE + prior trained on the shared trainer, exported and generated from the CLI."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kinema.models.gpt import VideoGPT, VideoGPTConfig, filter_logits, sample_tokens

CONFIGS = Path(__file__).parents[1] / "configs"
TINY_VQVAE, TINY_GPT = CONFIGS / "vqvae" / "tiny.yaml", CONFIGS / "videogpt" / "tiny.yaml"
SMALL = VideoGPTConfig(vocab_size=24, latent_frames=3, latent_height=2, latent_width=3, width=32, layers=2, heads=4)
PROMPT = "a small red circle moving left slowly"


def random_gpt(config: VideoGPTConfig = SMALL, seed: int = 0) -> VideoGPT:
    torch.manual_seed(seed)
    gpt = VideoGPT(config)
    with torch.no_grad():
        for p in gpt.parameters():  # larger than GPT-2's init, so that every input visibly moves the logits
            p.normal_(std=0.3)
    return gpt.eval()


def inputs(batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(SMALL.vocab_size, (batch, SMALL.max_tokens), generator=g)
    text = torch.randn(batch, 5, 384, generator=g)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])[:batch]  # the first prompt is padded
    return codes, text, mask


def test_forward_backward_shapes(one_thread):
    gpt = random_gpt().train()
    codes, text, mask = inputs()
    logits = gpt(codes, text, mask)
    assert logits.shape == (2, SMALL.max_tokens, SMALL.vocab_size)
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), codes.flatten()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in gpt.parameters())


def test_codes_see_only_the_past_and_the_whole_prompt(one_thread):
    gpt = random_gpt()
    codes, text, mask = inputs()
    with torch.no_grad():
        logits = gpt(codes, text, mask)
        changed = codes.clone()
        changed[:, 7] = (changed[:, 7] + 1) % SMALL.vocab_size
        logits_changed = gpt(changed, text, mask)
        # row j predicts code j from codes before it: rows up to 7 stay, rows after move
        assert torch.equal(logits[:, :8], logits_changed[:, :8]) and not torch.allclose(logits[:, 8:], logits_changed[:, 8:])
        # the prompt reaches the first code already; padding (masked) changes nothing
        other = text.clone()
        other[:, 0] += 1.0
        assert not torch.allclose(gpt(codes, other, mask)[:, 0], logits[:, 0])
        padded_text = torch.cat([text, torch.randn(2, 3, 384)], dim=1)
        padded_mask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], dim=1)
        torch.testing.assert_close(gpt(codes, padded_text, padded_mask), logits, rtol=1e-5, atol=1e-5)
        garbage = text.clone()
        garbage[0, 3:] = 100.0  # behind the first prompt's mask
        torch.testing.assert_close(gpt(codes, garbage, mask), logits, rtol=1e-5, atol=1e-5)


def test_training_on_a_cpu_attends_as_inference_does(one_thread):
    """Training on a CPU takes the two-matmul attention (faster there than flash attention's backward): the same
    logits and gradients as scaled_dot_product_attention, padded prompt positions included."""
    from kinema.models.gpt import matmul_attention

    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 4, 9, 8, generator=g) for _ in range(3))
    mask = torch.rand(2, 1, 9, 9, generator=g) > 0.4
    mask |= torch.eye(9, dtype=torch.bool)  # every query sees itself
    torch.testing.assert_close(matmul_attention(q, k, v, mask), torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    codes, text, mask = inputs()
    grads = []
    for train in (True, False):
        gpt = random_gpt().train(train)
        logits = gpt(codes, text, mask)
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), codes.flatten()).backward()
        grads.append((logits.detach(), [p.grad for p in gpt.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("known", [0, 6], ids=["from-scratch", "first-frame-given"])
def test_kv_cache_gives_the_full_forward_logits(known, one_thread):
    gpt = random_gpt()
    codes, text, mask = inputs()
    with torch.no_grad():
        full = gpt(codes, text, mask)
        logits, cache = gpt.prefill(text, mask, codes[:, :known])
        cached = [logits]
        for j in range(known, SMALL.max_tokens - 1):
            cached.append(gpt.step(codes[:, j], cache))
    torch.testing.assert_close(torch.stack(cached, dim=1), full[:, known:], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="cache is full"):
        gpt.step(codes[:, -1], cache)


def test_save_and_load_give_identical_logits(tmp_path, one_thread):
    gpt = random_gpt()
    gpt.save_pretrained(tmp_path / "prior")
    loaded = VideoGPT.from_pretrained(tmp_path / "prior")
    assert loaded.config == gpt.config
    codes, text, mask = inputs()
    with torch.no_grad():
        assert torch.equal(loaded(codes, text, mask), gpt(codes, text, mask))


@pytest.mark.parametrize("code_rows, text_rows", [(1, 2), (2, 1)])
def test_codes_and_prompts_of_different_batch_sizes_are_refused_by_count(code_rows, text_rows):
    """One prompt per clip: a spare prompt or a spare clip is the caller's slip, named with both counts, never broadcast."""
    codes, text, mask = inputs()
    with pytest.raises(ValueError, match=rf"^codes and text disagree on the batch: {code_rows} and {text_rows}$"):
        random_gpt()(codes[:code_rows], text[:text_rows], mask[:text_rows])


def kept_by_hand(row: list[float], top_k: int, top_p: float) -> set[int]:
    """The tokens top-k then top-p keep, by plain Python on one row of logits."""
    order = sorted(range(len(row)), key=lambda i: -row[i])
    keep = order if top_k == 0 else [i for i in order if row[i] >= row[order[min(top_k, len(row)) - 1]]]
    weights = [np.exp(row[i] - row[keep[0]]) for i in keep]
    total, mass, nucleus = sum(weights), 0.0, []
    for i, w in zip(keep, weights):
        nucleus.append(i)
        mass += w / total
        if mass >= top_p:
            break
    return set(nucleus)


@pytest.mark.parametrize("top_k, top_p", [(0, 1.0), (3, 1.0), (1, 1.0), (0, 0.5), (0, 0.9), (4, 0.7), (0, 1e-6),
                                          (10, 1.0), (11, 1.0), (50, 0.9)])  # of 11 tokens: all but one, all, more than all
def test_top_k_and_top_p_keep_what_a_hand_computation_keeps(top_k, top_p):
    logits = torch.randn(16, 11, generator=torch.Generator().manual_seed(top_k + int(100 * top_p)))
    filtered = filter_logits(logits, top_k, top_p)
    for row, out in zip(logits.tolist(), filtered):
        kept = set(torch.isfinite(out).nonzero().flatten().tolist())
        assert kept == kept_by_hand(row, top_k, top_p)
        assert torch.equal(out[list(kept)], torch.tensor(row)[list(kept)])  # what stays is not rescaled


def test_top_p_on_a_hand_made_distribution():
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    assert torch.isfinite(filter_logits(logits, top_p=0.5)).tolist() == [[True, False, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.79)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(filter_logits(logits, top_k=2, top_p=0.9)).tolist() == [[True, True, False, False]]


@pytest.mark.parametrize("top_k, top_p", [(-1, 1.0), (0, 0.0), (0, 1.5)])
def test_an_impossible_top_k_or_top_p_is_a_value_error_naming_both(top_k, top_p):
    """A caller catching ValueError for bad sampling options (as the CLI does) must get one, with both values shown."""
    with pytest.raises(ValueError, match=rf"^top_k must be 0 or more and top_p in \(0, 1\], got {top_k} and {top_p}$"):
        filter_logits(torch.zeros(1, 5), top_k, top_p)


def test_a_fresh_prior_has_gpt2_initialisation():
    """Training recipes assume GPT-2's init: N(0, 0.02) weights, zero biases, residual projections 0.02 / sqrt(2 * layers)."""
    torch.manual_seed(0)
    gpt = VideoGPT(VideoGPTConfig(vocab_size=512, latent_frames=2, latent_height=4, latent_width=4, width=128, layers=4, heads=4))
    residual = 0.02 / (2 * 4) ** 0.5
    assert gpt.token_embedding.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert gpt.head.weight.std().item() == pytest.approx(0.02, rel=0.05)
    for block in gpt.blocks:
        assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert block.mlp[0].weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert block.attn.proj.weight.std().item() == pytest.approx(residual, rel=0.05)
        assert block.mlp[2].weight.std().item() == pytest.approx(residual, rel=0.05)
        assert not block.attn.qkv.bias.any() and not block.mlp[0].bias.any()


def test_sampling_follows_each_rows_generator_and_never_draws_a_filtered_token():
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    batch = sample_tokens(logits, [torch.Generator().manual_seed(10 + i) for i in range(3)])
    single = [sample_tokens(logits[i : i + 1], [torch.Generator().manual_seed(10 + i)]).item() for i in range(3)]
    assert batch.tolist() == single
    g = [torch.Generator().manual_seed(1)]
    draws = torch.stack([sample_tokens(logits[:1], g, top_k=3) for _ in range(200)]).flatten()
    assert set(draws.tolist()) <= set(logits[0].topk(3).indices.tolist())
    assert set(sample_tokens(logits, [torch.Generator().manual_seed(i) for i in range(3)], top_k=1).tolist()) <= set(logits.argmax(1).tolist())
    # a low temperature concentrates on the argmax
    cold = torch.stack([sample_tokens(logits[:1], g, temperature=1e-3) for _ in range(20)])
    assert (cold == logits[0].argmax()).all()


def test_guided_generation_keeps_the_known_codes_and_follows_the_seed(one_thread):
    gpt = random_gpt()
    codes, text, mask = inputs()
    null, null_mask = text[:, :2], mask[:, :2]
    known = codes[:, :6]

    def run(seed):
        return gpt.generate(text, mask, SMALL.max_tokens, [torch.Generator().manual_seed(seed + i) for i in range(2)], known=known,
                            guidance_scale=3.0, null_tokens=null, null_mask=null_mask, top_p=0.9)

    out = run(0)
    assert out.shape == (2, SMALL.max_tokens) and torch.equal(out[:, :6], known)
    assert torch.equal(run(0), out) and not torch.equal(run(5), out)
    with pytest.raises(ValueError, match="null_tokens"):
        gpt.generate(text, mask, 10, [torch.Generator()] * 2, guidance_scale=2.0)


def test_guidance_below_one_is_applied_and_zero_samples_the_null_prompt(one_thread):
    """log p_null + s (log p_prompt - log p_null): at s = 0 the prompt drops out, so sampling with the prompt at
    guidance 0 is sampling the null prompt unguided; at 0.5 it is neither (guidance is on for any s != 1)."""
    gpt = random_gpt()
    codes, text, mask = inputs()
    null, null_mask = text[:, :2], mask[:, :2]

    def run(scale, tokens, tokens_mask, **null_prompt):
        return gpt.generate(tokens, tokens_mask, SMALL.max_tokens, [torch.Generator().manual_seed(i) for i in range(2)],
                            guidance_scale=scale, **null_prompt)

    zero = run(0.0, text, mask, null_tokens=null, null_mask=null_mask)
    assert torch.equal(zero, run(1.0, null, null_mask))
    assert not torch.equal(zero, run(1.0, text, mask))
    half = run(0.5, text, mask, null_tokens=null, null_mask=null_mask)
    assert not torch.equal(half, run(1.0, text, mask)) and not torch.equal(half, zero)


def test_a_null_prompt_longer_than_the_prompt_is_used_whole(one_thread):
    """The unconditional prompt may be the longer one (a short prompt, a long negative one): none of it may be cut."""
    gpt = random_gpt()
    codes, text, _ = inputs()
    short, short_mask = text[:, :2], torch.ones(2, 2, dtype=torch.bool)
    long, long_mask = text, torch.ones(2, 5, dtype=torch.bool)

    def run(scale, tokens, tokens_mask, **null_prompt):
        return gpt.generate(tokens, tokens_mask, SMALL.max_tokens, [torch.Generator().manual_seed(i) for i in range(2)],
                            guidance_scale=scale, **null_prompt)

    # guidance 0 samples the null prompt alone, so it must match the long prompt sampled unguided
    assert torch.equal(run(0.0, short, short_mask, null_tokens=long, null_mask=long_mask), run(1.0, long, long_mask))
    assert not torch.equal(run(1.0, long, long_mask), run(1.0, long[:, :2], long_mask[:, :2]))


def test_generate_samples_only_the_codes_after_the_known_ones_and_reports_each(one_thread):
    """known codes come back as given; the callback sees every sampled code; a clip whose codes are all known draws nothing."""
    gpt = random_gpt()
    codes, text, mask = inputs()
    known = codes[:, :4]
    seen = []
    out = gpt.generate(text, mask, 9, [torch.Generator().manual_seed(i) for i in range(2)], known=known,
                       callback=lambda done, total, so_far: seen.append((done, total, so_far.clone())))
    assert out.shape == (2, 9) and torch.equal(out[:, :4], known)
    assert [(done, total) for done, total, _ in seen] == [(i, 5) for i in range(1, 6)]
    assert all(torch.equal(so_far, out[:, : 4 + done]) for done, _, so_far in seen)
    # every code known (image-to-video of one latent frame): the known codes, no draw from any generator
    generators = [torch.Generator().manual_seed(i) for i in range(2)]
    states = [g.get_state() for g in generators]
    whole = gpt.generate(text, mask, 6, generators, known=codes[:, :6], callback=lambda *a: seen.append(a))
    assert torch.equal(whole, codes[:, :6]) and len(seen) == 5
    assert all(torch.equal(g.get_state(), state) for g, state in zip(generators, states))
    one_left = gpt.generate(text, mask, 7, generators, known=codes[:, :6])  # one code left: it is drawn
    assert one_left.shape == (2, 7) and torch.equal(one_left[:, :6], codes[:, :6])
    for num_tokens in (3, SMALL.max_tokens + 1):
        with pytest.raises(ValueError, match=rf"^num_tokens must be from 4 \(the known codes\) to {SMALL.max_tokens}, got {num_tokens}$"):
            gpt.generate(text, mask, num_tokens, generators, known=known)


def test_the_config_defaults_are_the_code_grid_of_the_shapes_vqvae_and_its_training_clips():
    """VideoGPTConfig() is documented as the prior over configs/vqvae/shapes.yaml's codes; the family's data defaults
    (17 frames at 64x64) are the clips whose code grid that is."""
    from kinema.models.vqvae import VideoVQVAE
    from kinema.training import load_config
    from kinema.training.objectives.videogpt import VideoGPTDataConfig

    vqvae = VideoVQVAE(load_config(CONFIGS / "vqvae" / "shapes.yaml").model)
    data, prior = VideoGPTDataConfig(), VideoGPTConfig()
    grid = vqvae.latent_shape(data.num_frames, data.resolution, data.resolution)
    assert (prior.latent_frames, prior.latent_height, prior.latent_width) == grid == (5, 8, 8)
    assert prior.vocab_size == vqvae.config.codebook_size == 1024 and prior.max_tokens == 320


def test_the_built_in_prior_and_tokenizer_load_into_the_architectures_their_configs_describe():
    """shapes-videogpt ships weights for VideoGPT and VideoVQVAE: every tensor must have a place of the same shape."""
    from safetensors.torch import load_file

    from kinema.hub import open_model
    from kinema.models.vqvae import VideoVQVAE

    model = open_model("shapes-videogpt")
    for name, cls in (("prior", VideoGPT), ("vqvae", VideoVQVAE)):
        folder = model.component(name)
        network = cls.from_pretrained(folder)
        stored, own = load_file(str(folder / "model.safetensors")), network.state_dict()
        assert set(stored) == set(own) and all(stored[k].shape == own[k].shape for k in own), name
    prior = VideoGPT.from_pretrained(model.component("prior"))
    assert len(prior.blocks) == prior.config.layers == 6


# ------------------------------------------------------------------------------------------ the pipeline


@pytest.fixture(scope="module")
def pipe(text_encoder):
    from kinema.pipelines.videogpt import tiny_pipeline

    torch.set_num_threads(1)
    return tiny_pipeline(text_encoder)


def test_the_same_seed_gives_the_same_clip_and_clip_i_uses_seed_plus_i(pipe):
    a = pipe(PROMPT, seed=7, num_videos=3)
    assert a.frames.shape == (3, 5, 32, 32, 3) and a.seeds == [7, 8, 9]
    assert np.array_equal(pipe(PROMPT, seed=7, num_videos=3).frames, a.frames)
    for i in range(3):
        assert np.abs(pipe(PROMPT, seed=7 + i).frames[0].astype(int) - a.frames[i]).max() <= 1
    assert not np.array_equal(a.frames[0], a.frames[1])


def test_unconditional_generation_takes_no_prompt(pipe):
    out = pipe(seed=0, num_videos=2)
    assert out.prompts == ["", ""] and out.frames.shape == (2, 5, 32, 32, 3)
    assert pipe.contract().describe().endswith("or neither (unconditional)")


def test_image_to_video_fixes_the_images_codes_and_frame_0(pipe, monkeypatch):
    yy, xx = np.mgrid[0:32, 0:32]
    image = np.stack([xx * 8, yy * 8, (xx + yy) * 4], axis=-1).astype(np.uint8)
    seen = {}
    generate = pipe.prior.generate

    def spy(*args, **kwargs):
        seen["known"] = kwargs["known"]
        seen["codes"] = generate(*args, **kwargs)
        return seen["codes"]

    monkeypatch.setattr(pipe.prior, "generate", spy)
    out = pipe(PROMPT, image=image, seed=0, num_videos=2)
    assert np.array_equal(out.frames[0, 0], image) and np.array_equal(out.frames[1, 0], image)
    # the image, resized to the VQ-VAE's 16x16 and coded as a one-frame video, is the first latent frame
    small = torch.from_numpy(image).permute(2, 0, 1).float().div(127.5).sub(1)
    small = torch.nn.functional.interpolate(small[None], size=(16, 16), mode="area")[:, :, None]
    expected = pipe.vqvae.encode(small).flatten(1)
    assert torch.equal(seen["known"], expected.expand(2, -1)) and torch.equal(seen["codes"][:, :16], seen["known"])


def test_shorter_clips_are_prefixes_of_the_code_grid(pipe):
    out = pipe(PROMPT, seed=3, num_frames=2, temperature=0.7, top_k=5, top_p=0.8, guidance_scale=1.0)
    assert out.frames.shape == (1, 2, 32, 32, 3)
    assert out.options["top_k"] == 5 and out.options["guidance_scale"] == 1.0
    image = np.full((32, 32, 3), 200, np.uint8)
    assert np.array_equal(pipe(PROMPT, image=image, seed=0, num_frames=1).frames[0], image[None])  # nothing left to sample
    with pytest.raises(ValueError, match=r"num_frames \(--frames\) must be >= 1 and <= 5"):
        pipe(PROMPT, num_frames=6)
    with pytest.raises(ValueError, match=r"top_p \(--top-p\) must be > 0 and <= 1"):
        pipe(PROMPT, top_p=0)


# ------------------------------------------------------------------------------------------ training and the CLI


@pytest.fixture(scope="module")
def vqvae_run(tmp_path_factory):
    from kinema.training import train

    torch.set_num_threads(1)
    return train(TINY_VQVAE, ["train.max_steps=20"], out=tmp_path_factory.mktemp("vqvae") / "run")


def test_the_prior_trains_exports_and_generates_from_the_cli(vqvae_run, tmp_path, text_encoder, one_thread):
    from kinema import load_pipeline
    from kinema.cli import app
    from kinema.io import probe
    from kinema.pipelines.videogpt import VideoGPTPipeline
    from kinema.training import train

    run = train(TINY_GPT, [f"objective.vqvae={vqvae_run}", "train.max_steps=30", "train.log_every=5"], out=tmp_path / "run")
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 6 and losses[-1] < 0.75 * losses[0]
    model = run / "model"
    index = json.loads((model / "model_index.json").read_text())
    assert index["pipeline"] == "videogpt" and set(index["components"]) == {"prior", "vqvae"}
    # the export carries a copy of the frozen VQ-VAE, byte for byte
    assert (model / "vqvae" / "model.safetensors").read_bytes() == (vqvae_run / "model" / "vqvae" / "model.safetensors").read_bytes()
    pipe = load_pipeline(model, device="cpu", text_encoder=text_encoder)
    assert isinstance(pipe, VideoGPTPipeline) and pipe(PROMPT, seed=0).frames.shape == (1, 5, 16, 16, 3)

    runner = CliRunner()
    for args, name in [([PROMPT, "--guidance", "1.5"], "text.mp4"), ([], "unconditional.mp4")]:
        result = runner.invoke(app, ["generate", *args, "--model", str(model), "-o", str(tmp_path / name), "--seed", "1"])
        assert result.exit_code == 0, result.output
        assert probe(tmp_path / name).num_frames == 5
    # the sampling flags reach the sampler: top-k 1 is greedy, so two seeds give the same clip
    greedy = []
    for seed in ("1", "2"):
        out = tmp_path / f"greedy{seed}.png"
        result = runner.invoke(app, ["generate", PROMPT, "--model", str(model), "-o", str(out), "--format", "png", "--seed", seed,
                                     "--top-k", "1", "--temperature", "0.5", "--top-p", "0.9"])
        assert result.exit_code == 0, result.output
        greedy.append([f.read_bytes() for f in sorted(out.glob("*.png"))])
    assert greedy[0] == greedy[1]
    result = runner.invoke(app, ["generate", PROMPT, "--model", str(model), "-o", str(tmp_path / "x.mp4"), "--temperature", "0"])
    assert result.exit_code == 2 and "temperature (--temperature)" in result.output and not (tmp_path / "x.mp4").exists()


def test_the_vqvae_pin_and_the_code_grid_are_checked(vqvae_run, tmp_path):
    from kinema.training import get_family, load_config

    family = get_family("videogpt")
    with pytest.raises(ValueError, match="objective.vqvae_sha256: the VQ-VAE of .* has sha256"):
        family.objective(load_config(TINY_GPT, [f"objective.vqvae={vqvae_run}", "objective.vqvae_sha256=" + "f" * 64]))
    with pytest.raises(ValueError, match=r"must be the VQ-VAE's code grid of 5 frames at 16x16: \(3, 4, 4\)"):
        family.objective(load_config(TINY_GPT, [f"objective.vqvae={vqvae_run}", "model.latent_height=5"]))
    with pytest.raises(ValueError, match="model.vocab_size"):
        family.objective(load_config(TINY_GPT, [f"objective.vqvae={vqvae_run}", "model.vocab_size=64"]))
    with pytest.raises(ValueError, match="objective.vqvae is required"):
        load_config(TINY_GPT, ["objective.vqvae=null"])


def test_the_vqvae_pin_is_the_sha256_of_its_weights_and_a_mismatch_names_both(vqvae_run):
    """A run pinned to its VQ-VAE's weights resumes; another VQ-VAE is refused naming the sha256 it found and the pinned one."""
    import hashlib

    from kinema.training import get_family, load_config

    weights = vqvae_run / "model" / "vqvae" / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    family = get_family("videogpt")
    objective = family.objective(load_config(TINY_GPT, [f"objective.vqvae={vqvae_run}", f"objective.vqvae_sha256={digest}"]))
    assert not objective.vqvae.training and not any(p.requires_grad for p in objective.vqvae.parameters())  # frozen
    wrong = "ab" * 32
    with pytest.raises(ValueError) as info:
        family.objective(load_config(TINY_GPT, [f"objective.vqvae={vqvae_run}", f"objective.vqvae_sha256={wrong}"]))
    assert f"has sha256 {digest}, not the {wrong} this run trains on" in str(info.value)


@pytest.mark.parametrize("captions", ["canonical", "varied"])
def test_the_prior_trains_on_the_captions_its_config_names(captions):
    from kinema.data.shapes import CaptionedShapes, canonical_captions
    from kinema.training import load_config
    from kinema.training.objectives.videogpt import build_dataset

    config = load_config(TINY_GPT, ["objective.vqvae=runs/unused", f"data.captions={captions}", "data.num_samples=64"])
    dataset = build_dataset(config)
    d = config.data
    reference = CaptionedShapes(d.split, num_samples=64, resolution=d.resolution, num_frames=d.num_frames, captions=captions, seed=d.seed)
    assert [dataset.caption(i) for i in range(64)] == [reference.caption(i) for i in range(64)]
    plain = set(canonical_captions())
    assert (sum(dataset.caption(i) not in plain for i in range(64)) > 16) == (captions == "varied")


def test_a_folder_dataset_without_a_folder_is_refused_naming_the_setting():
    """data.dataset folder needs data.folder: forgetting it is named as such, not a crash deep in the video reader."""
    from kinema.training import load_config
    from kinema.training.objectives.videogpt import build_dataset

    with pytest.raises(ValueError, match=r"^data.folder is required when data.dataset is 'folder'$"):
        build_dataset(load_config(TINY_GPT, ["objective.vqvae=runs/unused", "data.dataset=folder"]))


def test_attention_dropout_is_its_own_setting_and_off_by_default():
    """Residual dropout leaves attention on the flash path; attention dropout is asked for separately."""
    from kinema.models.gpt import VideoGPT, VideoGPTConfig

    config = VideoGPTConfig(vocab_size=16, latent_frames=2, latent_height=2, latent_width=2, width=16, layers=1, heads=2, dropout=0.1)
    assert config.attention_dropout == 0.0 and VideoGPT(config).blocks[0].attn.dropout == 0.0
    with_attention = VideoGPTConfig(**{**config.__dict__, "attention_dropout": 0.2})
    assert VideoGPT(with_attention).blocks[0].attn.dropout == 0.2
    with pytest.raises(ValueError, match="attention_dropout"):
        VideoGPTConfig(attention_dropout=1.0)


@pytest.fixture(scope="module")
def untrained_vqvae(tmp_path_factory):
    """A tiny VQ-VAE model folder, written untrained: enough for a prior's objective to code clips with."""
    from kinema.training import get_family, load_config
    from kinema.training.export import write_model_folder

    target = tmp_path_factory.mktemp("untrained_vqvae") / "vq"
    write_model_folder(get_family("vqvae").objective(load_config(TINY_VQVAE)), target, {"family": "vqvae"})
    return target


@pytest.mark.parametrize("dropout", [0.0, 1.0])
def test_text_dropout_replaces_captions_by_the_empty_prompt_and_the_loss_is_the_code_cross_entropy(dropout, untrained_vqvae, one_thread):
    """objective.text_dropout is the share of captions trained as "" (the unconditional branch guidance needs)."""
    from kinema.training import get_family, load_config

    config = load_config(TINY_GPT, [f"objective.vqvae={untrained_vqvae}", f"objective.text_dropout={dropout}"])
    family = get_family("videogpt")
    objective, dataset = family.objective(config), family.dataset(config)
    batch = {"video": torch.stack([dataset[i]["video"] for i in range(3)]), "caption": [dataset[i]["caption"] for i in range(3)]}
    seen, encode = [], objective.text_encoder.encode
    objective.text_encoder.encode = lambda captions: seen.append(list(captions)) or encode(captions)
    out = objective.training_step(batch, 1, "model")
    expected = [""] * 3 if dropout == 1.0 else batch["caption"]
    assert seen == [expected] and all(batch["caption"])
    with torch.no_grad():
        codes = objective.vqvae.encode(batch["video"]).flatten(1)
        text = encode(expected)
        logits = objective.modules["model"](codes, text.tokens, text.mask)
    torch.testing.assert_close(out["loss"].detach(), torch.nn.functional.cross_entropy(logits.flatten(0, 1), codes.flatten()))
    torch.testing.assert_close(out["accuracy"], (logits.argmax(-1) == codes).float().mean())


def test_each_code_gets_the_position_of_its_frame_row_and_column():
    """Shorter clips and image-to-video rely on code i of the raster order getting pos_t[frame] + pos_h[row] + pos_w[col]."""
    gpt = random_gpt()  # 3 frames of 2 rows x 3 columns: rows and columns differ, so a swapped axis shows
    expected = torch.stack([gpt.pos_t[t] + gpt.pos_h[h] + gpt.pos_w[w]
                            for t in range(3) for h in range(2) for w in range(3)])  # raster order, by hand
    with torch.no_grad():
        torch.testing.assert_close(gpt.positions(0, SMALL.max_tokens), expected)
        torch.testing.assert_close(gpt.positions(7, 5), expected[7:12])


def test_a_block_is_prenorm_attention_then_a_gelu_mlp_of_width_times_mlp_ratio(one_thread):
    """A prior's block must compute what its docstring (and any exported checkpoint's reader) assumes, hidden width included."""
    from kinema.models.gpt import Block

    config = VideoGPTConfig(vocab_size=8, latent_frames=1, latent_height=2, latent_width=2, width=8, layers=1, heads=2, mlp_ratio=1.5)
    torch.manual_seed(0)
    block = Block(config).eval()
    assert block.mlp[0].out_features == 12 and block.mlp[2].in_features == 12  # int(8 * 1.5)
    x = torch.randn(2, 4, 8)
    mask = torch.tril(torch.ones(4, 4, dtype=torch.bool))[None, None].expand(2, 1, 4, 4)

    def attention(h):
        q, k, v = (h @ block.attn.qkv.weight.T + block.attn.qkv.bias).split(8, dim=-1)
        heads = [(q[..., i:i + 4] @ k[..., i:i + 4].transpose(1, 2) / 2.0).masked_fill(~mask[:, 0], -torch.inf).softmax(-1) @ v[..., i:i + 4]
                 for i in (0, 4)]
        return torch.cat(heads, dim=-1) @ block.attn.proj.weight.T + block.attn.proj.bias

    def mlp(h):
        first = h @ block.mlp[0].weight.T + block.mlp[0].bias
        return (0.5 * first * (1 + torch.erf(first / 2 ** 0.5))) @ block.mlp[2].weight.T + block.mlp[2].bias  # exact GELU

    ln = torch.nn.functional.layer_norm
    y = x + attention(ln(x, (8,), block.norm1.weight, block.norm1.bias))
    y = y + mlp(ln(y, (8,), block.norm2.weight, block.norm2.bias))
    with torch.no_grad():
        torch.testing.assert_close(block(x, mask), y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("change, message", [
    ({"vocab_size": 1}, "vocab_size must be at least 2, got 1"),
    ({"latent_frames": 0}, "latent_frames, latent_height and latent_width must be at least 1"),
    ({"latent_height": 0}, "latent_frames, latent_height and latent_width must be at least 1"),
    ({"latent_width": 0}, "latent_frames, latent_height and latent_width must be at least 1"),
    ({"width": 30}, "width must be a positive multiple of heads and layers at least 1, got width 30, heads 4, layers 2"),
    ({"layers": 0}, "width must be a positive multiple of heads and layers at least 1, got width 32, heads 4, layers 0"),
    ({"heads": 0}, "width must be a positive multiple of heads"),
    ({"mlp_ratio": 0.0}, "mlp_ratio must be positive"),
    ({"dropout": 1.0}, "mlp_ratio must be positive, dropout and attention_dropout in"),
    ({"dropout": -0.1}, "mlp_ratio must be positive, dropout and attention_dropout in"),
    ({"text_dim": 0}, "text_dim at least 1"),
])
def test_an_impossible_prior_config_is_refused_naming_the_setting(change, message):
    """A typo in a prior's YAML must fail at once with the rule it broke, not deep inside the first training step."""
    with pytest.raises(ValueError, match=re.escape(message)):
        VideoGPTConfig(**{**SMALL.__dict__, **change})


def test_the_smallest_possible_prior_config_is_accepted():
    """The boundaries are inclusive: two codes, a 1 x 1 x 1 grid, one layer of one head."""
    config = VideoGPTConfig(vocab_size=2, latent_frames=1, latent_height=1, latent_width=1, width=1, layers=1, heads=1, text_dim=1)
    assert config.max_tokens == 1


def test_a_temperature_of_zero_or_less_is_a_value_error_naming_it():
    """Temperature 0 would divide the logits by zero: the caller must get a clear error instead of NaN codes."""
    for temperature in (0.0, -1.0):
        with pytest.raises(ValueError, match=rf"^temperature must be positive, got {temperature}$"):
            sample_tokens(torch.zeros(1, 5), [torch.Generator()], temperature=temperature)
    with pytest.raises(ValueError, match=r"^give one generator per row \(2\), got 1$"):
        sample_tokens(torch.zeros(2, 5), [torch.Generator()])


def test_the_shipped_priors_run_never_sees_a_training_clip_twice():
    """configs/videogpt/shapes.yaml leaves data.num_samples out: the default epoch must cover its whole run with fresh clips."""
    from kinema.training import load_config
    from kinema.training.objectives.videogpt import build_dataset

    config = load_config(CONFIGS / "videogpt" / "shapes.yaml")
    assert len(build_dataset(config)) >= config.train.max_steps * config.train.batch_size  # 3000 steps of 16 clips
