"""The video GAN family: networks, objective on the shared trainer, pipeline, batch generation, configs."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from kinema.io import probe, read_video
from kinema.models.gan import Discriminator, DiscriminatorConfig, GeneratorConfig, VideoGenerator, flicker_statistics
from kinema.pipelines import load_pipeline
from kinema.pipelines.gan import GANPipeline, GANSettings
from kinema.pipelines.generate import generate, generate_batch
from kinema.training import ConfigError, get_family, load_config, train
from kinema.training.checkpoint import list_checkpoints, load_checkpoint
from kinema.training.export import export_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "gan" / "tiny.yaml"
TEXT = ["model.condition=text", "data.dataset=shapes"]
SMALL = dict(resolution=16, num_frames=4, content_dim=8, noise_dim=4, motion_dim=8, base_channels=32, min_channels=8, temporal_levels=2, condition_dim=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread_for_module():
    """conftest's one_thread for the whole module, so the module-scoped training runs below get it too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """The tiny unconditional config trained end to end by the shared trainer (6 steps)."""
    return train(TINY, out=tmp_path_factory.mktemp("gan") / "run")


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    return train(TINY, TEXT, out=tmp_path_factory.mktemp("gan_text") / "run")


def _inputs(config: GeneratorConfig, b: int = 2, frames: int | None = None, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    inputs = {"content": torch.randn(b, config.content_dim, generator=g), "motion_noise": torch.randn(b, frames or config.num_frames, config.noise_dim, generator=g)}
    if config.condition == "class":
        inputs["labels"] = torch.arange(b) % config.num_classes
    if config.condition == "text":
        inputs["text_tokens"] = torch.randn(b, 5, config.text_dim, generator=g)
        inputs["text_mask"] = torch.tensor([[True] * 5, [True] * 3 + [False] * 2] * (b // 2))
    return inputs


# ---------------------------------------------------------------------------- networks


@pytest.mark.parametrize("condition", ["none", "class", "text"])
def test_forward_backward_shapes_and_every_weight_learns(condition):
    config = GeneratorConfig(**SMALL, condition=condition, num_classes=3 if condition == "class" else 0)
    generator, discriminator = VideoGenerator(config), Discriminator(DiscriminatorConfig(image_channels=8, video_channels=8), config)
    inputs = _inputs(config)
    video = generator(**inputs)
    assert video.shape == (2, 3, 4, 16, 16) and video.abs().max() <= 1
    cond = {k: v for k, v in inputs.items() if k not in ("content", "motion_noise")}
    image_logits, video_logits = discriminator(video, frame_index=torch.tensor([[0, 3], [1, 1]]), **cond)
    assert image_logits.shape == (2, 2) and video_logits.shape == (2,)
    (image_logits.mean() + video_logits.mean()).backward()
    for name, module in (("generator", generator), ("discriminator", discriminator)):
        dead = [n for n, p in module.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert not dead, f"{name} parameters without gradient: {dead}"
    # the motion GRU runs any length: 7 frames from a model trained on 4
    longer = generator(**_inputs(config, frames=7))
    assert longer.shape == (2, 3, 7, 16, 16)


def test_motion_and_content_latents_change_the_clip_where_they_should():
    torch.manual_seed(0)
    generator = VideoGenerator(GeneratorConfig(**SMALL)).eval()
    for p in generator.parameters():  # zero-initialised temporal convolutions would hide the coupling
        torch.nn.init.normal_(p, std=0.2)
    inputs = _inputs(generator.config)
    base = generator(**inputs)
    later = dict(inputs, motion_noise=inputs["motion_noise"].clone())
    later["motion_noise"][:, 3] += 1  # noise of the last frame only
    moved = generator(**later)
    # the GRU is causal: the first frame sits outside the temporal convolutions' reach (radius 2)
    assert torch.equal(moved[:, :, 0], base[:, :, 0]) and not torch.equal(moved[:, :, 3], base[:, :, 3])
    other = generator(**dict(inputs, content=inputs["content"] + 1))
    assert not torch.equal(other[:, :, 0], base[:, :, 0])


def test_a_longer_clip_from_the_same_seed_keeps_the_content_and_starts_the_same():
    """Asking for more frames with the same seed should extend the clip, not draw another object."""
    torch.manual_seed(0)
    generator = VideoGenerator(GeneratorConfig(**SMALL)).eval()
    for p in generator.parameters():
        torch.nn.init.normal_(p, std=0.2)
    content4, noise4 = generator.sample_latents(1, 4, torch.Generator().manual_seed(3))
    content8, noise8 = generator.sample_latents(1, 8, torch.Generator().manual_seed(3))
    assert torch.equal(content8, content4) and torch.equal(noise8[:, :4], noise4)
    assert content4.shape == (1, 8) and noise8.shape == (1, 8, 4)
    with torch.no_grad():
        short, long = generator(content4, noise4), generator(content8, noise8)
    assert torch.equal(long[:, :, 0], short[:, :, 0])  # the first frame sits outside the temporal convolutions' reach


def test_a_still_clip_stays_still_through_a_temporal_level_ends_included():
    """The frame convolution pads by repeating the end frames: a still scene must not darken or shift at its first or last frame."""
    from kinema.models.gan import GeneratorLevel

    torch.manual_seed(0)
    level = GeneratorLevel(4, 4, 0, temporal=True, upsample=False).eval()
    for p in level.parameters():  # the temporal convolution starts at zero; give it weights that see the neighbours
        torch.nn.init.normal_(p, std=0.3)
    frame = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        out = level(frame.repeat(5, 1, 1, 1), None, num_frames=5)  # one clip of 5 identical frames
    for t in range(5):
        torch.testing.assert_close(out[t], out[2], rtol=0, atol=1e-6)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="resolution must be a power of two"):
        GeneratorConfig(resolution=48)
    with pytest.raises(ValueError, match="condition 'class' needs num_classes >= 2"):
        GeneratorConfig(condition="class")
    with pytest.raises(ValueError, match="num_classes is only for condition 'class'"):
        GeneratorConfig(num_classes=3)
    config = GeneratorConfig(**SMALL)
    generator = VideoGenerator(config)
    inputs = _inputs(config)
    with pytest.raises(ValueError, match=r"content must be \(b, 8\)"):
        generator(torch.zeros(2, 5), inputs["motion_noise"])
    with pytest.raises(ValueError, match=r"motion_noise must be \(2, frames, 4\)"):
        generator(inputs["content"], torch.zeros(2, 4))
    with pytest.raises(ValueError, match="this model is unconditional"):
        generator(**inputs, labels=torch.tensor([0, 1]))
    text = VideoGenerator(GeneratorConfig(**SMALL, condition="text"))
    with pytest.raises(ValueError, match="this model is text-conditioned"):
        text(**inputs)
    labelled = VideoGenerator(GeneratorConfig(**SMALL, condition="class", num_classes=3))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        labelled(**inputs, labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"video must be \(b, 3, f, 16, 16\)"):
        Discriminator(DiscriminatorConfig(), config)(torch.zeros(2, 3, 4, 32, 32))
    with pytest.raises(ValueError, match="set_text_statistics is for text-conditioned models"):
        generator.set_text_statistics(torch.zeros(384), torch.ones(384))
    with pytest.raises(ValueError, match="video_differences must be >= 0"):
        DiscriminatorConfig(video_differences=-1)
    with pytest.raises(ValueError, match="video_statistics must be >= 0"):
        DiscriminatorConfig(video_statistics=-0.5)


@pytest.mark.parametrize("cls, field, value, message", [
    (GeneratorConfig, "num_frames", 0, "num_frames must be at least 1, got 0"),
    (GeneratorConfig, "temporal_levels", -1, "temporal_levels must be 0 or more, got -1"),
    *[(GeneratorConfig, name, 0, f"{name} must be at least 1, got 0") for name in
      ("out_channels", "content_dim", "noise_dim", "motion_dim", "base_channels", "min_channels", "condition_dim", "text_queries")],
    *[(DiscriminatorConfig, name, 0, f"{name} must be at least 1, got 0") for name in ("image_channels", "video_channels", "max_channels")],
    (DiscriminatorConfig, "video_differences", -0.25, r"video_differences must be >= 0 \(0 turns it off\), got -0.25"),
    (DiscriminatorConfig, "video_statistics", -1.0, r"video_statistics must be >= 0 \(0 turns it off\), got -1.0"),
])
def test_each_impossible_gan_shape_is_refused_naming_the_field_and_its_value(cls, field, value, message):
    """A config with a width, a count or a weight out of range names that very field and the value it got; the limit itself passes."""
    with pytest.raises(ValueError, match=rf"^{message}$"):
        cls(**{field: value})
    limit = 0 if field in ("temporal_levels", "video_differences", "video_statistics") else 1
    assert getattr(cls(**{field: limit}), field) == limit


@pytest.mark.parametrize("condition, num_classes, message", [
    ("label", 0, "condition must be 'none', 'class' or 'text', got 'label'"),
    ("class", 1, "condition 'class' needs num_classes >= 2, got 1"),
    ("text", 4, "num_classes is only for condition 'class' \\(got condition 'text' and num_classes 4\\)"),
    ("none", 2, "num_classes is only for condition 'class' \\(got condition 'none' and num_classes 2\\)"),
    ("none", 1, "num_classes is only for condition 'class' \\(got condition 'none' and num_classes 1\\)"),
])
def test_a_condition_and_class_count_that_do_not_go_together_are_named_with_both(condition, num_classes, message):
    """The condition and num_classes are checked together, and the message shows what the config gave for each."""
    with pytest.raises(ValueError, match=rf"^{message}$"):
        GeneratorConfig(condition=condition, num_classes=num_classes)
    assert GeneratorConfig(condition="class", num_classes=2).num_classes == 2


@pytest.mark.parametrize("resolution", [8, 16, 32, 64, 128, 256])
def test_every_power_of_two_from_8_to_256_is_a_valid_resolution(resolution):
    """The documented range is accepted, its smallest end too: an 8x8 generator builds and makes 8x8 frames."""
    assert GeneratorConfig(**dict(SMALL, resolution=resolution)).resolution == resolution
    if resolution == 8:
        config = GeneratorConfig(**dict(SMALL, resolution=8))
        with torch.no_grad():
            assert VideoGenerator(config)(**_inputs(config)).shape == (2, 3, 4, 8, 8)


@pytest.mark.parametrize("resolution", [4, 12, 48, 512])
def test_a_resolution_outside_the_powers_of_two_from_8_to_256_is_refused_by_value(resolution):
    with pytest.raises(ValueError, match=rf"^resolution must be a power of two from 8 to 256, got {resolution}$"):
        GeneratorConfig(resolution=resolution)


def test_half_a_prompt_or_latents_of_another_batch_size_are_named():
    """A prompt's tokens without its mask (or the reverse), or noise for 3 clips beside content for 2, is a caller's slip: say so."""
    config = GeneratorConfig(**SMALL, condition="text")
    generator = VideoGenerator(config)
    inputs = _inputs(config)
    for missing in ("text_mask", "text_tokens"):
        with pytest.raises(ValueError, match=r"^this model is text-conditioned: give text_tokens \(b, n, d\) and text_mask \(b, n\)$"):
            generator(**dict(inputs, **{missing: None}))
    with pytest.raises(ValueError, match=r"^motion_noise must be \(2, frames, 4\), got \(3, 4, 4\)$"):
        generator(**dict(inputs, motion_noise=torch.zeros(3, 4, 4)))


def test_video_critic_can_be_shown_frame_differences():
    """video_differences: the video critic sees the clip and, scaled, each frame minus the one before."""
    config = GeneratorConfig(**SMALL)
    critic = Discriminator(DiscriminatorConfig(image_channels=8, video_channels=8, video_differences=5.0), config)
    seen = []
    critic.video.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    video = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    _, logits = critic(video)
    logits.sum().backward()
    (given,) = seen
    assert given.shape == (2, 6, 4, 16, 16) and torch.equal(given[:, :3], video)
    assert torch.equal(given[:, 3:, 0], torch.zeros(2, 3, 16, 16))  # nothing before the first frame
    assert torch.allclose(given[:, 3:, 1:], 5 * (video[:, :, 1:] - video[:, :, :-1]))
    assert critic.video.convs[0].parametrizations.weight.original.grad[:, 3:].abs().sum() > 0


def test_flicker_statistics_tell_a_brightening_clip_from_a_steady_one():
    """A square sliding across black keeps its colour and extent; the same square brightening by 5%
    over the clip does not; a disc that swells but keeps its colour reads as steady in colour and not in
    extent. video_statistics hands these to the critic, and their gradient reaches the generator."""
    f = 8
    color = torch.tensor([0.6, -0.2, 0.2])[:, None, None]
    steady = torch.full((1, 3, f, 16, 16), -1.0)
    disc = torch.full((1, 3, f, 16, 16), -1.0)
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    for t in range(f):
        steady[0, :, t, 4:10, t : t + 6] = color
        disc[0, :, t] = torch.where((ys - 8) ** 2 + (xs - 4 - t) ** 2 <= (2 + t / 4) ** 2, color, -1.0)
    gain = torch.linspace(1.0, 1.05, f)[None, None, :, None, None]
    brightening = (steady + 1) * gain - 1
    calm, flicker, swelling = flicker_statistics(steady), flicker_statistics(brightening), flicker_statistics(disc)
    assert calm.shape == (1, 12)  # colour (spread, step) and extent (spread, step), per channel
    assert (flicker[:, :6] > calm[:, :6] + 1.0).all()  # e^1: several times the relative variation, in every channel
    assert torch.equal(swelling[:, :6], calm[:, :6])
    assert (swelling[:, 6:] > calm[:, 6:] + 1.0).all()

    config = GeneratorConfig(**SMALL)
    critic = Discriminator(DiscriminatorConfig(image_channels=8, video_channels=8, video_statistics=1.0), config)
    plain = Discriminator(DiscriminatorConfig(image_channels=8, video_channels=8), config)
    plain.load_state_dict(critic.state_dict(), strict=False)
    critic.eval()  # spectral norm's power iteration stands still
    plain.eval()
    video = brightening.repeat(2, 1, 1, 1, 1).requires_grad_(True)
    _, with_statistics = critic(video)
    _, without = plain(video)
    expected = without + critic.video_statistics(flicker_statistics(video))[:, 0]
    assert torch.allclose(with_statistics, expected, atol=1e-5)
    with_statistics.sum().backward()
    assert video.grad.abs().sum() > 0


def test_spectral_norm_caps_every_weighted_layer_of_both_critics_at_one():
    """Spectral norm (on by default) is what keeps the critic Lipschitz; a layer left out lets it amplify freely."""
    torch.manual_seed(0)
    config = GeneratorConfig(**SMALL)
    critic = Discriminator(DiscriminatorConfig(image_channels=8, video_channels=8, video_statistics=1.0), config).eval()
    layers = {name: m for name, m in critic.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Conv3d))}
    assert {"image_out", "video_out", "image.convs.0", "video.convs.0", "video_statistics.0"} <= set(layers)
    for name, layer in layers.items():
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.05), name  # power iteration: close to 1, not exactly
    plain = Discriminator(DiscriminatorConfig(image_channels=8, video_channels=8, spectral_norm=False), config)
    assert torch.linalg.vector_norm(plain.image_out.weight).item() < 0.9


def test_text_tokens_are_standardised_by_the_statistics_and_untouched_before_any_are_set():
    """The prompt is read as (tokens - mean) / std of the training captions; a model given no statistics reads it as is."""
    torch.manual_seed(0)
    config = GeneratorConfig(**SMALL, condition="text")
    plain = VideoGenerator(config).eval()
    fitted = VideoGenerator(config).eval()
    fitted.load_state_dict(plain.state_dict())
    mean, std = torch.randn(384), torch.rand(384) + 0.5
    fitted.set_text_statistics(mean, std)
    inputs = _inputs(config)
    standardised = dict(inputs, text_tokens=(inputs["text_tokens"] - mean) / std)
    with torch.no_grad():
        torch.testing.assert_close(fitted(**inputs), plain(**standardised), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(fitted(**inputs), plain(**inputs), atol=1e-3)


def test_save_load_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    generator = VideoGenerator(GeneratorConfig(**SMALL, condition="text")).eval()
    generator.set_text_statistics(torch.randn(384), torch.rand(384) + 0.5)
    generator.save_pretrained(tmp_path / "g")
    assert json.loads((tmp_path / "g" / "config.json").read_text())["model_class"] == "VideoGenerator"
    loaded = VideoGenerator.from_pretrained(tmp_path / "g")
    assert loaded.config == generator.config
    inputs = _inputs(generator.config)
    assert torch.equal(loaded(**inputs), generator(**inputs))


# ---------------------------------------------------------------------------- objective and trainer


def test_each_phase_lowers_its_own_loss():
    """The discriminator learns to tell a fixed generator's clips from real ones; then the generator
    learns to fool that (now fixed) discriminator. Latents and frame picks are re-seeded per call."""
    config = load_config(TINY)
    family = get_family("gan")
    objective, dataset = family.objective(config), family.dataset(config)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(8)])

    def loss(phase):
        torch.manual_seed(0)
        return objective.training_step(batch, 1, phase)["loss"]

    for phase in ("discriminator", "generator"):
        module = objective.modules[phase]
        optimizer = torch.optim.Adam(module.parameters(), lr=2e-3, betas=(0.0, 0.99))
        before = loss(phase).item()
        for _ in range(15):
            optimizer.zero_grad()
            loss(phase).backward()
            optimizer.step()
        assert loss(phase).item() < before - 0.3, (phase, before, loss(phase).item())
    # the generator's phase leaves no gradients on the discriminator
    objective.modules["discriminator"].zero_grad(set_to_none=True)
    loss("generator").backward()
    assert all(p.grad is None for p in objective.modules["discriminator"].parameters())


def test_each_critics_logged_loss_is_its_own_hinge_loss_and_the_total_weighs_them():
    """metrics.jsonl's image / video entries are what each critic alone scores; the loss stepped on is their weighted sum."""
    config = load_config(TINY, ["objective.image_weight=0.5", "objective.video_weight=2"])
    family = get_family("gan")
    objective, dataset = family.objective(config), family.dataset(config)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    seen = []
    objective.modules["discriminator"].register_forward_hook(lambda module, args, out: seen.append(out))
    torch.manual_seed(0)
    logs = objective.training_step(batch, 1, "discriminator")
    (image_logits, video_logits), = seen
    for name, logits in (("image", image_logits), ("video", video_logits)):
        real, fake = logits.detach().split(4)
        hinge = torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()
        torch.testing.assert_close(logs[name], hinge)
        torch.testing.assert_close(logs[f"{name}_real"], real.mean())
        torch.testing.assert_close(logs[f"{name}_fake"], fake.mean())
    torch.testing.assert_close(logs["loss"].detach(), 0.5 * logs["image"] + 2 * logs["video"])


def test_a_mismatched_negative_is_a_real_clip_under_another_clips_label_weighed_against_the_fakes():
    """mismatch_weight teaches the critic the condition: real clips under a wrong label are scored as fake, sharing the fakes' weight."""
    config = load_config(TINY, ["model.condition=class", "model.num_classes=2", "data.label=shape", "objective.mismatch_weight=0.25"])
    objective, dataset = get_family("gan").objective(config), get_family("gan").dataset(config)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(3)])
    inputs, outputs = [], []
    critic = objective.modules["discriminator"]
    critic.register_forward_pre_hook(lambda module, args, kwargs: inputs.append((args[0].detach(), kwargs["labels"])), with_kwargs=True)
    critic.register_forward_hook(lambda module, args, out: outputs.append(out))
    torch.manual_seed(0)
    logs = objective.training_step(batch, 1, "discriminator")
    (videos, labels), = inputs
    real, fake, mismatched = videos.split(3)
    assert torch.equal(real, batch["video"]) and torch.equal(mismatched, batch["video"]) and not torch.equal(fake, real)
    assert labels.tolist() == batch["label"].tolist() * 2 + batch["label"].roll(1).tolist()
    for name, logits in zip(("image", "video"), outputs[0]):
        on_real, on_fake, on_mismatched = logits.detach().split(3)
        want = torch.relu(1 - on_real).mean() + 0.75 * torch.relu(1 + on_fake).mean() + 0.25 * torch.relu(1 + on_mismatched).mean()
        torch.testing.assert_close(logs[name], want)


def test_trainer_runs_both_phases_and_exports_the_ema_generator(run):
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 3
    for key in ("discriminator/loss", "generator/loss", "discriminator/video_real", "discriminator/image_fake", "generator/video"):
        values = [m[key] for m in metrics]
        assert all(np.isfinite(values)) and len(set(values)) == 3, (key, values)
    state = load_checkpoint(list_checkpoints(run / "checkpoints")[-1][1])
    assert set(state["optimizers"]) == {"discriminator", "generator"} and set(state["ema"]) == {"generator"}
    assert state["optimizers"]["discriminator"]["param_groups"][0]["lr"] == 4e-4
    assert state["optimizers"]["generator"]["param_groups"][0]["lr"] == 1e-4
    assert {p.name for p in (run / "model").iterdir()} == {"model_index.json", "generator", "discriminator.safetensors"}
    exported = load_file(run / "model" / "generator" / "model.safetensors")
    assert exported.keys() == state["ema"]["generator"].keys()
    assert all(torch.equal(exported[k], v) for k, v in state["ema"]["generator"].items())
    # the discriminator goes beside it for fine-tuning, in float16
    critic = load_file(run / "model" / "discriminator.safetensors")
    assert critic.keys() == state["modules"]["discriminator"].keys()
    assert all(v.dtype == torch.float16 and torch.allclose(v.float(), state["modules"]["discriminator"][k], rtol=1e-3, atol=1e-4) for k, v in critic.items())


def test_fine_tuning_a_gan_starts_from_its_discriminator_too(run, tmp_path, capsys):
    state = load_checkpoint(list_checkpoints(run / "checkpoints")[-1][1])
    tuned = train(TINY, [f"train.init_from={run / 'model'}"], out=tmp_path / "tuned", until_step=0)
    assert "loaded discriminator, generator; optimizer" in capsys.readouterr().out
    start = load_checkpoint(list_checkpoints(tuned / "checkpoints")[-1][1])["modules"]
    for name, reference in (("generator", state["ema"]["generator"]), ("discriminator", state["modules"]["discriminator"])):
        assert all(torch.allclose(start[name][k], v, rtol=1e-3, atol=1e-4) for k, v in reference.items()), name
    # a sampling-only export leaves the discriminator out, and a fine-tune from it says D starts afresh
    lean = export_checkpoint(run, tmp_path / "lean", sampling_only=True)
    assert not (lean / "discriminator.safetensors").exists()
    train(TINY, [f"train.init_from={lean}"], out=tmp_path / "tuned2", until_step=0)
    assert "loaded generator; discriminator start(s) from scratch" in capsys.readouterr().out


def test_compiled_generator_trains_like_the_eager_one(run, tmp_path):
    """train.compile names the modules to compile (shape_motion.yaml compiles the generator): same losses."""
    with pytest.raises(ValueError, match="train.compile names critic; this run trains generator, discriminator"):
        train(TINY, ["train.compile=[critic]"], out=tmp_path / "bad")
    compiled = train(TINY, ["train.compile=[generator]", "train.max_steps=2"], out=tmp_path / "compiled")
    eager = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    fast = [json.loads(line) for line in (compiled / "metrics.jsonl").read_text().splitlines()]
    assert fast[0]["step"] == eager[0]["step"] == 2
    for key in ("discriminator/loss", "generator/loss"):
        assert fast[0][key] == pytest.approx(eager[0][key], rel=1e-3, abs=1e-4), key


def test_r1_and_non_saturating_loss_train(tmp_path):
    overrides = ["objective.loss=non_saturating", "objective.r1_gamma=1.0", "objective.r1_every=2", "train.max_steps=4", "objective.discriminator.spectral_norm=false"]
    done = train(TINY, overrides, out=tmp_path / "run")
    metrics = [json.loads(line) for line in (done / "metrics.jsonl").read_text().splitlines()]
    assert all(m["discriminator/r1"] > 0 and np.isfinite(m["generator/loss"]) for m in metrics)


def test_lazy_r1_penalises_the_critics_gradient_on_real_clips_every_k_steps_scaled_by_k():
    """objective.r1_gamma / r1_every: on every k-th step the critic pays gamma/2 * k * E|grad_x D(real)|^2, on the others nothing."""
    overrides = ["objective.r1_gamma=2", "objective.r1_every=4", "objective.image_weight=0.5", "objective.video_weight=2",
                 "objective.discriminator.spectral_norm=false"]
    objective, dataset = get_family("gan").objective(load_config(TINY, overrides)), get_family("gan").dataset(load_config(TINY, overrides))
    batch = torch.utils.data.default_collate([dataset[i] for i in range(3)])
    critic = objective.modules["discriminator"]
    seen = []
    critic.register_forward_pre_hook(lambda module, args, kwargs: seen.append((args[0].detach(), kwargs["frame_index"])), with_kwargs=True)
    torch.manual_seed(0)
    lazy = objective.training_step(batch, 3, "discriminator")  # not a multiple of 4: no penalty
    assert "r1" not in lazy
    torch.testing.assert_close(lazy["loss"].detach(), 0.5 * lazy["image"] + 2 * lazy["video"])
    torch.manual_seed(0)
    logs = objective.training_step(batch, 8, "discriminator")
    videos, index = seen[-1]
    real = videos[:3].clone().requires_grad_(True)
    assert torch.equal(real, batch["video"])
    image_logits, video_logits = critic(real, frame_index=index[:3])
    (grad,) = torch.autograd.grad(0.5 * image_logits.sum() + 2 * video_logits.sum(), real)
    penalty = sum(float(g.square().sum()) for g in grad) / 3  # per clip |grad|^2, averaged over the clips
    assert float(logs["r1"]) == pytest.approx(penalty, rel=1e-4)
    want = 0.5 * logs["image"] + 2 * logs["video"] + 2 / 2 * penalty * 4
    assert float(logs["loss"].detach()) == pytest.approx(float(want), rel=1e-4)


def test_configs_are_checked_against_each_other():
    family = get_family("gan")
    with pytest.raises(ValueError, match=r"model.resolution \(32\) must equal data.resolution \(16\)"):
        family.objective(load_config(TINY, ["model.resolution=32"]))
    with pytest.raises(ValueError, match="model.condition 'class' and data.label go together"):
        family.objective(load_config(TINY, ["model.condition=class", "model.num_classes=2"]))
    with pytest.raises(ValueError, match=r"data.label 'shape' has 2 classes \(circle, square\); model.num_classes is 3"):
        family.objective(load_config(TINY, ["model.condition=class", "model.num_classes=3", "data.label=shape"]))
    with pytest.raises(ValueError, match="Shape Motion has no captions"):
        family.objective(load_config(TINY, ["model.condition=text"]))
    with pytest.raises(ValueError, match="label 'color' is not an attribute of dataset 'shape_motion'"):
        load_config(TINY, ["data.label=color"])
    with pytest.raises(ValueError, match="cache would hold 98.3 GB of clips"):
        load_config(TINY, ["data.num_samples=2000000", "data.resolution=64", "data.num_frames=4"])


def test_class_labels_come_from_the_dataset():
    config = load_config(TINY, ["model.condition=class", "model.num_classes=2", "data.label=direction"])
    dataset = get_family("gan").dataset(config)
    for i in range(4):
        item = dataset[i]
        assert set(item) == {"video", "label"}
        assert ("left-to-right", "top-to-bottom")[item["label"]] == dataset.source.labels(i)["direction"]


@pytest.mark.parametrize("label, count", [("shape", 3), ("color", 6), ("size", 2), ("direction", 4), ("speed", 2)])
def test_a_shapes_class_label_is_the_index_of_its_name_in_the_exported_class_names(label, count):
    """A class-conditional Shapes GAN is asked for classes by name: each clip's label must index the name the pipeline maps it to."""
    from kinema.data.shapes import DIRECTIONS, SIZES, SPEEDS

    overrides = ["data.dataset=shapes", "model.condition=class", f"model.num_classes={count}", f"data.label={label}", "data.num_samples=24"]
    config = load_config(TINY, overrides)
    objective, dataset = get_family("gan").objective(config), get_family("gan").dataset(config)
    names = objective.pipeline_settings().class_names
    expected = {"shape": {"circle", "square", "triangle"}, "color": {"red", "green", "blue", "yellow", "cyan", "magenta"},
                "size": set(SIZES), "direction": set(DIRECTIONS), "speed": set(SPEEDS)}[label]
    assert len(names) == count and set(names) == expected
    seen = set()
    for i in range(24):
        item = dataset[i]
        assert set(item) == {"video", "label"} and isinstance(item["label"], int)
        value = dataset.source.labels(i)[label] if isinstance(dataset.source.labels(i), dict) else getattr(dataset.source.labels(i), label)
        assert names[item["label"]] == value, (i, value)
        seen.add(value)
    assert len(seen) > 1  # the labels vary, so a wrong order could not pass


def test_shipped_configs_fit_the_size_budget():
    """Built-ins must stay <= 10 MB: <= 2.5 M float32 generator parameters (they ship --sampling-only)."""
    for name in ("shape_motion", "shape_motion_refine", "shapes_text"):
        config = load_config(ROOT / "configs" / "gan" / f"{name}.yaml")
        generator = VideoGenerator(config.model)
        assert sum(p.numel() for p in generator.parameters()) * 4 <= 10e6, name
        Discriminator(config.objective.discriminator, config.model)
    assert load_config(ROOT / "configs" / "gan" / "shape_motion.yaml").model.condition == "none"
    assert load_config(ROOT / "configs" / "gan" / "shapes_text.yaml").model.condition == "text"


# ---------------------------------------------------------------------------- pipeline


def test_sampling_shapes_dtype_and_seeds(run):
    pipe = load_pipeline(run)
    assert isinstance(pipe, GANPipeline)
    out = pipe(num_videos=3, generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (3, 4, 16, 16, 3) and out.frames.dtype == np.uint8 and out.prompts == ["", "", ""]
    assert np.array_equal(out.frames, pipe(num_videos=3, generator=torch.Generator().manual_seed(0)).frames)
    assert not np.array_equal(out.frames, pipe(num_videos=3, generator=torch.Generator().manual_seed(1)).frames)
    assert not np.array_equal(out.frames[0], out.frames[1])
    assert pipe(num_frames=6).frames.shape == (1, 6, 16, 16, 3)


def test_unconditional_model_rejects_prompts_and_diffusion_options(run):
    pipe = load_pipeline(run)
    with pytest.raises(ValueError, match="is unconditional: it takes no prompt"):
        pipe("a red circle")
    # each undeclared option is refused by name, with the list of what the model does take
    for option, value in (("guidance_scale", 4.0), ("guidance_cutoff", 0.5), ("negative_prompt", "blue"), ("scheduler", "ddim")):
        with pytest.raises(ValueError, match=f"does not take {option}; it takes: num_frames .--frames.: >= 1"):
            pipe(**{option: value})
    with pytest.raises(ValueError, match=r"num_inference_steps \(--steps\) applies to image-to-video only"):
        pipe(num_inference_steps=10)
    with pytest.raises(ValueError, match="num_videos must be a whole number >= 1, got 0"):
        pipe(num_videos=0)
    with pytest.raises(ValueError, match=r"num_frames \(--frames\) must be >= 1 and <= 64, got 0"):
        pipe(num_frames=0)
    with pytest.raises(ValueError, match="image must be uint8"):
        pipe(image=np.zeros((16, 16), np.float32))


def test_text_model_needs_a_prompt_and_follows_it(text_run, text_encoder):
    pipe = GANPipeline.from_pretrained(text_run / "model", text_encoder=text_encoder)
    for call in (lambda: pipe(), lambda: pipe(""), lambda: pipe(num_videos=2)):
        with pytest.raises(ValueError, match="is a text-to-video model: give a prompt"):
            call()
    prompts = ["a small red circle moving left slowly", "a large blue square moving up quickly"]
    out = pipe(prompts, num_videos=2, generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (4, 4, 16, 16, 3) and out.prompts == [prompts[0]] * 2 + [prompts[1]] * 2
    # the same latents under another prompt give another clip
    swapped = pipe(prompts[::-1], num_videos=2, generator=torch.Generator().manual_seed(0))
    assert not np.array_equal(out.frames[0], swapped.frames[0])
    assert pipe.contract().prompt == "required"


def test_class_model_takes_class_names(tmp_path):
    torch.manual_seed(0)
    generator = VideoGenerator(GeneratorConfig(**SMALL, condition="class", num_classes=2))
    GANPipeline(generator, GANSettings(output_size=32, num_frames=4, class_names=["circle", "square"])).save_pretrained(tmp_path / "m")
    pipe = load_pipeline(tmp_path / "m")
    out = pipe(["circle", "square"], generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (2, 4, 32, 32, 3)  # upscaled to the pipeline's output size
    with pytest.raises(ValueError, match="'triangle' is not a class of this model; the prompt must be one of: circle, square"):
        pipe("triangle")
    with pytest.raises(ValueError, match="is a class-to-video model: give a prompt, one of: circle, square"):
        pipe()


def test_image_to_video_fits_the_first_frame(run):
    pipe = load_pipeline(run)
    with torch.no_grad():  # a first frame the generator can draw: one of its own
        content, noise = pipe.generator.sample_latents(2, 4, torch.Generator().manual_seed(7))
        target = pipe.generator(content, noise)[:, :, 0]
    image = ((target.permute(0, 2, 3, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    rough = pipe(num_videos=2, image=image, num_inference_steps=1, generator=torch.Generator().manual_seed(0))
    fitted = pipe(num_videos=2, image=image, num_inference_steps=60, generator=torch.Generator().manual_seed(0))
    assert fitted.frames.shape == (2, 4, 16, 16, 3)
    assert max(fitted.inversion_error) < 0.3 * min(rough.inversion_error), (fitted.inversion_error, rough.inversion_error)
    assert np.array_equal(fitted.frames[:, 0], image)  # frame 0 is the given image itself
    assert np.abs(fitted.frames[:, 1].astype(int) - image).mean() < np.abs(rough.frames[:, 1].astype(int) - image).mean()
    # one picture, many continuations: the later motion noise is drawn per seed
    other = pipe(image=image[0], num_inference_steps=60, generator=torch.Generator().manual_seed(1))
    assert np.array_equal(other.frames[0, 0], image[0]) and not np.array_equal(other.frames[0, 1:], fitted.frames[0, 1:])


# ---------------------------------------------------------------------------- generate (files)


def test_generate_and_batch_count_write_videos(run, tmp_path):
    assert load_pipeline(run).contract().prompt == "none"
    single = generate("", tmp_path / "one.mp4", model=run, seed=3)
    assert probe(single.path).num_frames == 4
    results = generate_batch(None, tmp_path / "clips", count=3, model=run, seed=10)
    assert sorted(p.name for p in (tmp_path / "clips").iterdir()) == ["0000.mp4", "0001.mp4", "0002.mp4"]
    assert [r.path.name for r in results] == ["0000.mp4", "0001.mp4", "0002.mp4"]
    assert probe(tmp_path / "clips" / "0002.mp4").provenance.seed == 12
    assert not np.array_equal(results[0].frames, results[1].frames)
    generate_batch(None, tmp_path / "frames", count=2, model=run, format="png")
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["0000", "0001"]
    assert sorted(p.name for p in (tmp_path / "frames" / "0001").glob("*.png")) == ["0000.png", "0001.png", "0002.png", "0003.png"]
    # PNG frames are the pipeline's frames, bit for bit (seed 0 + index 0)
    expected = load_pipeline(run)(seed=0).frames[0]
    assert np.array_equal(read_video(tmp_path / "frames" / "0000").frames, expected)
    with pytest.raises(ValueError, match="give a prompts file or a count, not both"):
        generate_batch(["x"], tmp_path / "bad", count=2, model=run)
    with pytest.raises(ValueError, match="count must be at least 1"):
        generate_batch(None, tmp_path / "bad", count=0, model=run)


def _cli_has_count() -> bool:
    from kinema import cli

    return "count" in inspect.signature(cli.generate).parameters


@pytest.mark.skipif(not _cli_has_count(), reason="`kinema generate --count` is not in the CLI yet")
def test_cli_generates_unconditional_batches_and_asks_conditional_models_for_a_prompt(run, text_run, tmp_path):
    from kinema.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["generate", "--model", str(run), "--count", "3", "--out-dir", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["0000.mp4", "0001.mp4", "0002.mp4"]
    result = runner.invoke(app, ["generate", "--model", str(run), "--count", "2", "--out-dir", str(tmp_path / "p"), "--format", "png"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "p" / "0001").glob("*.png"))) == 4
    result = runner.invoke(app, ["generate", "--model", str(run), "-o", str(tmp_path / "one.mp4")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["generate", "--model", str(text_run), "--count", "2", "--out-dir", str(tmp_path / "t")])
    assert result.exit_code == 2 and "give a prompt" in result.output.replace("\n", " ")


def test_init_partial_grows_a_model_that_starts_as_the_source(run, tmp_path, capsys):
    """train.init_partial: layers the source lacks start fresh; zero-initialised temporal levels keep its clips."""
    grown = ["model.temporal_levels=3", "objective.discriminator.video_differences=4"]
    with pytest.raises(ValueError, match="do not fit this config's generator.*Missing key.*levels.2.temporal"):
        train(TINY, [f"train.init_from={run / 'model'}", *grown], out=tmp_path / "strict", until_step=0)
    tuned = train(TINY, [f"train.init_from={run / 'model'}", "train.init_partial=true", *grown], out=tmp_path / "grown", until_step=0)
    out = capsys.readouterr().out
    assert "generator starts 2 tensors fresh: levels.2.temporal.bias, levels.2.temporal.weight" in out
    # the video critic's first layer now also takes the differences: another shape, so it starts fresh
    assert "discriminator starts 2 tensors fresh: video.convs.0.parametrizations.weight.0._v, video.convs.0.parametrizations.weight.original" in out
    source, start = VideoGenerator.from_pretrained(run / "model"), VideoGenerator(load_config(TINY, grown).model)
    start.load_state_dict(load_checkpoint(list_checkpoints(tuned / "checkpoints")[-1][1])["modules"]["generator"])
    inputs = _inputs(source.config)
    with torch.no_grad():
        assert torch.allclose(start(**inputs), source(**inputs), atol=1e-6)
    # weights the config has no place for still fail: a shrunk model is some other model
    with pytest.raises(ValueError, match="do not fit this config's generator.*Unexpected key.*levels.1.temporal"):
        train(TINY, [f"train.init_from={run / 'model'}", "train.init_partial=true", "model.temporal_levels=1"], out=tmp_path / "shrunk", until_step=0)


@pytest.mark.parametrize("overrides, expected", [
    (TEXT, lambda obj, pipe: [obj.preview_prompts[i % len(obj.preview_prompts)] for i in range(6)]),
    (["model.condition=class", "model.num_classes=2", "data.label=direction"], lambda obj, pipe: [pipe.settings.class_names[i % 2] for i in range(6)]),
    ([], lambda obj, pipe: None),
], ids=["text", "class", "unconditional"])
def test_previews_cycle_through_the_preview_prompts_or_classes(monkeypatch, overrides, expected):
    from kinema.pipelines.gan import GANPipeline

    objective = get_family("gan").objective(load_config(TINY, overrides))
    calls = []
    real_call = GANPipeline.__call__

    def spy(self, prompt=None, **kwargs):
        calls.append((self, prompt, kwargs.get("num_videos")))
        return real_call(self, prompt, **kwargs)

    monkeypatch.setattr(GANPipeline, "__call__", spy)
    clips = objective.sample(6, torch.Generator().manual_seed(0))
    assert clips.shape[0] == 6 and clips.dtype == torch.uint8
    pipe, prompts, count = calls[0]
    want = expected(objective.config.objective, pipe)
    assert prompts == want and (count == 6 if want is None else count in (None, 1))


@pytest.mark.parametrize("overrides", [TEXT, ["model.condition=class", "model.num_classes=2", "data.label=direction"], []],
                         ids=["text", "class", "unconditional"])
def test_previews_follow_the_generator_they_are_given(overrides):
    """Preview GIFs are drawn from the trainer's seeded generator: the same seed redraws them, another seed draws others."""
    objective = get_family("gan").objective(load_config(TINY, overrides))
    first = objective.sample(2, torch.Generator().manual_seed(0))
    assert torch.equal(objective.sample(2, torch.Generator().manual_seed(0)), first)
    assert not torch.equal(objective.sample(2, torch.Generator().manual_seed(1)), first)


def test_both_critics_count_equally_unless_a_config_says_otherwise():
    from kinema.training.objectives.gan import GANObjectiveConfig

    defaults = GANObjectiveConfig()
    assert (defaults.image_weight, defaults.video_weight) == (1.0, 1.0)
    assert load_config(TINY).objective.image_weight == 1.0  # the tiny config leaves it to the default


@pytest.mark.parametrize("weights, shown", [((0, 0), "0.0 and 0.0"), ((-1, 1), "-1.0 and 1.0"), ((1, -0.5), "1.0 and -0.5")])
def test_critic_weights_that_leave_nothing_to_train_on_are_refused(weights, shown):
    """Both critics weighted 0 (or one negative) gives the generator no signal: the config is refused, naming the values."""
    with pytest.raises(ConfigError, match=rf"image_weight and video_weight must be >= 0, not both 0; got {shown}$"):
        load_config(TINY, [f"objective.image_weight={weights[0]}", f"objective.video_weight={weights[1]}"])
    only_video = load_config(TINY, ["objective.image_weight=0"]).objective  # one critic alone is fine
    assert (only_video.image_weight, only_video.video_weight) == (0.0, 1.0)


def test_a_folder_of_videos_gives_one_training_clip_per_video_with_its_caption(tmp_path):
    """Training a GAN on one's own videos must use every clip in the folder, each with its own caption."""
    from kinema.data import CaptionedShapes, VideoFolder
    from kinema.io import write_video

    shapes = CaptionedShapes("test", num_samples=3, resolution=16, num_frames=8)
    for i in range(3):
        write_video(tmp_path / f"clip{i}.mp4", shapes.render(i), fps=8)
        (tmp_path / f"clip{i}.txt").write_text(shapes.caption(i) + "\n")
    config = load_config(TINY, ["data.dataset=folder", f"data.folder={tmp_path}", "model.condition=text"])
    dataset = get_family("gan").dataset(config)
    reference = VideoFolder(tmp_path, num_frames=4, size=16, crop=16, seed=config.data.seed)
    assert len(dataset) == 3
    for i in range(3):
        item = dataset[i]
        assert item["caption"] == shapes.caption(i) and torch.equal(item["video"], reference[i]["video"])
    unconditional = get_family("gan").dataset(load_config(TINY, ["data.dataset=folder", f"data.folder={tmp_path}"]))
    assert set(unconditional[0]) == {"video"}


def test_a_folder_dataset_without_a_folder_is_refused_naming_the_setting():
    """data.dataset folder needs data.folder: forgetting it is named as such, not a crash deep in the video reader."""
    with pytest.raises(ValueError, match=r"^data.folder is required when data.dataset is 'folder'$"):
        get_family("gan").dataset(load_config(TINY, ["data.dataset=folder"]))


def test_the_generator_config_defaults_are_the_shape_motion_model():
    """GeneratorConfig() is documented as the unconditional Shape Motion model: its shipped config must agree."""
    shipped = load_config(ROOT / "configs" / "gan" / "shape_motion.yaml").model
    assert GeneratorConfig() == shipped
    assert (shipped.condition, shipped.num_frames, shipped.resolution) == ("none", 16, 64)


def test_mismatched_pairs_join_the_critics_batch_only_when_there_is_another_clip_to_borrow_a_condition_from():
    """A real clip under another clip's label is a negative only if that label is another clip's: a batch of one has none."""
    config = load_config(TINY, ["model.condition=class", "model.num_classes=2", "data.label=shape", "objective.mismatch_weight=0.5"])
    objective, dataset = get_family("gan").objective(config), get_family("gan").dataset(config)
    seen = []

    class Recording(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.tensor(0.0))

        def forward(self, videos, frame_index, labels):
            seen.append((videos.shape[0], labels.tolist()))
            logits = self.weight + torch.zeros(videos.shape[0])
            return logits, logits

    objective.modules["discriminator"] = Recording()
    for size in (1, 3):
        batch = torch.utils.data.default_collate([dataset[i] for i in range(size)])
        objective.training_step(batch, 1, "discriminator")
    labels = [int(dataset[i]["label"]) for i in range(3)]
    assert seen[0] == (2, [labels[0]] * 2)  # real and fake only
    assert seen[1] == (9, labels + labels + [labels[2], labels[0], labels[1]])  # then real under the next clip's label


def test_the_shipped_gan_draws_what_its_prompts_ask(text_encoder):
    """The built-in shapes-gan, as a user runs it: every attribute of its prompts read back from the clips by the
    Shapes checker (its weights only fit the generator's own layout of content, motion and condition codes)."""
    from kinema.evaluation.shapes_checker import check_videos

    pipe = load_pipeline("shapes-gan", text_encoder=text_encoder)
    prompts = ["a small yellow triangle moving up quickly", "a large blue circle moving left slowly",
               "a large red square moving down quickly", "a small cyan circle moving right slowly"]
    out = pipe(prompts, seed=0)
    report = check_videos(list(out.frames), prompts)
    assert all(acc == 1.0 for acc in report.accuracy.values()), report.accuracy


def test_each_clips_image_fit_is_its_own_whatever_the_batch(one_thread):
    """Clip i of a batch with seed S is the clip made alone with seed S + i, image-to-video too: one clip's fit of its
    first frame never weighs on another's (each restart's error is its own mean, summed)."""
    from kinema.pipelines.gan import tiny_pipeline

    pipe = tiny_pipeline()
    with torch.no_grad():
        content, noise = pipe.generator.sample_latents(2, 4, torch.Generator().manual_seed(7))
        target = pipe.generator(content, noise)[:, :, 0]
    image = ((target.permute(0, 2, 3, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    batch = pipe(num_videos=2, image=image, num_inference_steps=8, seed=0)
    for i in range(2):
        alone = pipe(image=image[i], num_inference_steps=8, seed=i)
        assert alone.inversion_error[0] == pytest.approx(batch.inversion_error[i], rel=1e-4), (alone.inversion_error, batch.inversion_error)
        assert np.abs(alone.frames[0].astype(int) - batch.frames[i]).max() <= 1


@pytest.mark.parametrize("shape", [(2, 3, 4, 8, 16), (2, 3, 4, 16, 8), (2, 1, 4, 16, 16), (3, 4, 16, 16)])
def test_the_critic_names_the_clip_shape_it_expects_and_the_one_it_got(shape):
    """Feeding the critic clips of the wrong height, width, channels or rank must say both shapes, not fail in a conv."""
    critic = Discriminator(DiscriminatorConfig(), GeneratorConfig(**SMALL))
    with pytest.raises(ValueError, match=rf"^video must be \(b, 3, f, 16, 16\), got {re.escape(str(shape))}$"):
        critic(torch.zeros(shape))


def test_r1_left_at_its_default_schedule_is_stylegan2s_lazy_r1_every_16_steps():
    """A config that sets only r1_gamma gets StyleGAN2's lazy R1: a penalty on steps 0, 16, 32, ... weighted by 16, none between."""
    overrides = ["objective.r1_gamma=2", "objective.discriminator.spectral_norm=false"]
    config = load_config(TINY, overrides)
    objective, dataset = get_family("gan").objective(config), get_family("gan").dataset(config)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(2)])
    penalised = [step for step in (0, 4, 8, 15, 16, 24, 32) if "r1" in objective.training_step(batch, step, "discriminator")]
    assert penalised == [0, 16, 32]
    logs = objective.training_step(batch, 16, "discriminator")
    weights = config.objective.image_weight * logs["image"] + config.objective.video_weight * logs["video"]
    assert float(logs["loss"].detach()) == pytest.approx(float(weights + 2 / 2 * logs["r1"] * 16), rel=1e-4)
    with pytest.raises(ValueError, match=r"objective: r1_gamma must be >= 0 and r1_every >= 1, got 2.0 and 0$"):
        load_config(TINY, [*overrides, "objective.r1_every=0"])


@pytest.mark.parametrize("cache", [True, False])
def test_data_cache_renders_each_shapes_clip_once_and_only_when_asked(cache):
    """data.cache trades memory for speed: on, a clip is rendered once and kept; off, nothing is kept and it is rendered again."""
    dataset = get_family("gan").dataset(load_config(TINY, [f"data.cache={str(cache).lower()}"]))
    rendered, render = [], dataset.source.render
    dataset.source.render = lambda index: rendered.append(index) or render(index)
    first, again, other = dataset[2], dataset[2], dataset[3]
    assert rendered == ([2, 3] if cache else [2, 2, 3])
    assert torch.equal(first["video"], again["video"]) and not torch.equal(first["video"], other["video"])
    assert torch.equal(first["video"], get_family("gan").dataset(load_config(TINY))[2]["video"])  # the same clip either way


@pytest.mark.parametrize("label, classes", [("shape", 3), ("color", 6), ("direction", 4)])
def test_a_class_model_must_have_exactly_as_many_classes_as_its_label(label, classes):
    """Too few classes would leave labels without an embedding, too many would train classes no clip has: both are named."""
    family = get_family("gan")
    base = ["model.condition=class", "data.dataset=shapes", f"data.label={label}"]
    for wrong in (classes - 1, classes + 1):
        with pytest.raises(ValueError, match=rf"^data.label '{label}' has {classes} classes \(.*\); model.num_classes is {wrong}$"):
            family.objective(load_config(TINY, [*base, f"model.num_classes={wrong}"]))
    assert family.objective(load_config(TINY, [*base, f"model.num_classes={classes}"])).modules["generator"].config.num_classes == classes


def test_the_image_critic_scores_every_frame_unless_told_which():
    """Without frame_index the image critic gives one logit per frame, frame k's being the logit it gives when shown frame k alone."""
    torch.manual_seed(0)
    critic = Discriminator(DiscriminatorConfig(image_channels=8, video_channels=8, max_channels=16), GeneratorConfig(**SMALL)).eval()
    video = torch.rand(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        image_logits, video_logits = critic(video)
        assert image_logits.shape == (2, 4) and video_logits.shape == (2,)
        for k in range(4):
            picked, same_video = critic(video, frame_index=torch.tensor([[k], [k]]))
            torch.testing.assert_close(picked[:, 0], image_logits[:, k], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(same_video, video_logits)
