"""The diffusion family on the shared trainer: tiny config trains, exports, and generates."""

from pathlib import Path

import json

import pytest
import torch
from typer.testing import CliRunner

from kinema.cli import app
from kinema.io import probe
from kinema.training import get_family, load_config

TINY = Path(__file__).parents[1] / "configs" / "diffusion" / "tiny.yaml"
runner = CliRunner()


def test_a_few_steps_lower_the_loss():
    config = load_config(TINY)
    objective = get_family("diffusion").objective(config)
    dataset = get_family("diffusion").dataset(config)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    unet = objective.modules["model"]
    opt = torch.optim.AdamW(unet.parameters(), lr=3e-3)

    def loss_on_fixed_noise():
        torch.manual_seed(0)  # the same timesteps, noise and caption dropout every time
        return objective.training_step(batch, 0, "model")["loss"]

    before = loss_on_fixed_noise().item()
    for _ in range(15):
        opt.zero_grad()
        loss_on_fixed_noise().backward()
        opt.step()
    assert loss_on_fixed_noise().item() < 0.7 * before


def test_the_loss_is_the_batch_mean_of_each_clips_mse_to_the_target():
    """What the logs call the loss: per clip, the MSE of the prediction to v (or the noise), min-SNR weighted if asked, averaged."""
    from dataclasses import replace

    config = load_config(TINY)
    objective = get_family("diffusion").objective(config)
    batch = torch.utils.data.default_collate([get_family("diffusion").dataset(config)[i] for i in range(4)])
    seen = []
    add_noise = objective.noise_scheduler.add_noise
    objective.noise_scheduler.add_noise = lambda x, noise, t: seen.append((x, noise, t)) or add_noise(x, noise, t)
    objective.modules["model"] = lambda xt, *rest: torch.zeros_like(xt)  # a denoiser that predicts 0: the loss is E[target^2]
    for prediction, gamma in [("v_prediction", None), ("epsilon", None), ("v_prediction", 2.0)]:
        objective.config.objective = replace(config.objective, prediction_type=prediction, snr_gamma=gamma)
        loss = objective.training_step(batch, 0, "model")["loss"]
        x0, noise, t = seen[-1]
        a = objective.noise_scheduler.alphas_cumprod[t].double().view(-1, 1, 1, 1, 1)
        target = noise.double() if prediction == "epsilon" else a.sqrt() * noise.double() - (1 - a).sqrt() * x0.double()
        per_clip = target.pow(2).mean(dim=(1, 2, 3, 4))
        if gamma is not None:  # Hang et al.: min(snr, gamma) / (snr + 1) for v-prediction
            snr = (a / (1 - a)).flatten()
            per_clip = per_clip * snr.clamp(max=gamma) / (snr + 1)
        assert loss.item() == pytest.approx(per_clip.mean().item(), rel=1e-5), (prediction, gamma)


def test_tiny_diffusion_trains_exports_and_generates(tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(TINY), "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert len((run / "metrics.jsonl").read_text().splitlines()) >= 3
    assert {p.name for p in (run / "model").iterdir()} == {"model_index.json", "denoiser"}
    assert {p.name for p in (run / "model" / "denoiser").iterdir()} == {"config.json", "model.safetensors"}

    out = tmp_path / "clip.mp4"
    result = runner.invoke(app, ["generate", "a small red circle moving left slowly", "--model", str(run), "-o", str(out), "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert probe(out).num_frames == 4


def test_config_typo_is_named_without_a_traceback(tmp_path):
    result = runner.invoke(app, ["train", str(TINY), "--out", str(tmp_path / "r"), "--set", "train.lerning_rate=1"])
    assert result.exit_code == 2
    assert "train.lerning_rate" in result.output and "train.lr" in result.output


def test_export_a_checkpoint_mid_run(tmp_path):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(TINY), "--out", str(run), "--until-step", "3"])
    assert result.exit_code == 0, result.output
    assert not (run / "model").exists()  # stopped early: no final export yet
    result = runner.invoke(app, ["export", str(run), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    index = json.loads((tmp_path / "m" / "model_index.json").read_text())
    assert index["training"]["step"] == 3 and index["training"]["weights"] == "ema" and index["pipeline"] == "diffusion"
    result = runner.invoke(app, ["generate", "a red circle", "--model", str(tmp_path / "m"), "-o", str(tmp_path / "c.mp4")])
    assert result.exit_code == 0, result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["export", str(tmp_path / "empty"), "--out", str(tmp_path / "m2")])
    assert result.exit_code == 2 and "no usable checkpoint" in result.output
    result = runner.invoke(app, ["export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m2")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_noise_shift_divides_the_snr_and_reaches_the_exported_samplers(tmp_path):
    from kinema.hub import open_model
    from kinema.pipelines.text2video import DiffusionSettings, make_scheduler

    def snr(alphas):
        return alphas / (1 - alphas)

    plain = get_family("diffusion").objective(load_config(TINY))
    shifted = get_family("diffusion").objective(load_config(TINY, overrides=["objective.noise_shift=4"]))
    ratio = snr(plain.noise_scheduler.alphas_cumprod) / snr(shifted.noise_scheduler.alphas_cumprod)
    assert torch.allclose(ratio[:-1], torch.full_like(ratio[:-1], 16.0), rtol=1e-3)
    # the last step is capped as diffusers' squaredcos_cap_v2 caps it: beta 0.999, a sliver of signal left
    betas = shifted.noise_scheduler.betas
    assert betas[-1].item() == pytest.approx(0.999) and betas.max().item() == pytest.approx(0.999)
    assert (betas[:-1] < 0.999).all()

    shifted.pipeline(shifted.modules["model"]).save_pretrained(tmp_path / "m")  # what a generating process rebuilds its sampler from
    config = DiffusionSettings.from_dict(open_model(tmp_path / "m").index.settings)
    for name in ("dpm++", "ddim", "unipc", "euler"):
        sampler = make_scheduler(name, config.scheduler)
        assert torch.allclose(sampler.alphas_cumprod, shifted.noise_scheduler.alphas_cumprod), name


def test_timestep_range_narrows_the_training_noise_levels():
    config = load_config(TINY, overrides=["objective.timestep_range=[0.0, 0.3]"])
    objective = get_family("diffusion").objective(config)
    dataset = get_family("diffusion").dataset(config)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    seen = []
    add_noise = objective.noise_scheduler.add_noise
    objective.noise_scheduler.add_noise = lambda x, noise, t: seen.append(t) or add_noise(x, noise, t)
    for _ in range(20):
        objective.training_step(batch, 0, "model")
    t = torch.cat(seen)
    assert t.min() >= 0 and t.max() < 300 and t.unique().numel() > 20
    with pytest.raises(ValueError, match="timestep_range must be"):
        load_config(TINY, overrides=["objective.timestep_range=[0.5, 0.2]"])


def test_latent_diffusion_trains_on_a_frozen_vae_and_ships_a_copy_of_it(tmp_path, text_encoder):
    from kinema.models.text import sha256_file
    from kinema.pipelines import load_pipeline
    from kinema.pipelines.autoencoder import save_autoencoder, tiny_autoencoder

    vae_dir = save_autoencoder(tiny_autoencoder(resolution=16), tmp_path / "vae")  # 2x spatial, 4 latent channels
    digest = sha256_file(vae_dir / "vae" / "model.safetensors")
    latent = [f"objective.vae={vae_dir}", f"objective.vae_sha256={digest}", "objective.latent_scale_clips=8",
              "model.in_channels=4", "model.sample_size=8", "data.resolution=16", "model.patch_size=1"]
    objective = get_family("diffusion").objective(load_config(TINY, latent))
    assert objective.latent_scale > 0 and not any(p.requires_grad for p in objective.vae.parameters())
    clips = torch.randn(2, 3, 4, 16, 16).clamp(-1, 1)
    assert torch.allclose(objective.encode(clips), objective.vae.encode(clips).mode() * objective.latent_scale)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(TINY), "--out", str(run), *sum((["--set", o] for o in latent), [])])
    assert result.exit_code == 0, result.output
    index = json.loads((run / "model" / "model_index.json").read_text())
    assert set(index["components"]) == {"denoiser", "vae"} and index["settings"]["latent_scale"] == pytest.approx(objective.latent_scale)
    assert sha256_file(run / "model" / "vae" / "model.safetensors") == digest  # the VAE it trained on, frozen
    pipe = load_pipeline(run, device="cpu", text_encoder=text_encoder)
    assert pipe("a small red circle moving left slowly", seed=0, num_inference_steps=2).frames.shape == (1, 4, 16, 16, 3)
    with pytest.raises(ValueError, match="objective.vae_sha256: the VAE of .* has sha256"):
        get_family("diffusion").objective(load_config(TINY, [*latent[:1], "objective.vae_sha256=" + "ab" * 32, *latent[2:]]))
    with pytest.raises(ValueError, match=r"model.sample_size \(16\) must equal data.resolution / the VAE's spatial compression 2 \(8\)"):
        get_family("diffusion").objective(load_config(TINY, [*latent[:4], "model.sample_size=16", *latent[5:]]))


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_text_dropout_and_image_conditioning_decide_what_the_denoiser_is_shown(share):
    """text_dropout trains that share of captions as "" (guidance's unconditional branch); image_conditioning that share of
    clips on their clean first frame: the denoiser gets the noised clip, its timestep, the prompt's tokens and that frame."""
    config = load_config(TINY, [f"objective.text_dropout={share}", f"objective.image_conditioning={share}", "objective.text_statistics_prompts=8"])
    objective = get_family("diffusion").objective(config)
    batch = torch.utils.data.default_collate([get_family("diffusion").dataset(config)[i] for i in range(3)])
    captions, calls, noised = [], [], []
    encode, add_noise = objective.text_encoder.encode, objective.noise_scheduler.add_noise
    objective.text_encoder.encode = lambda prompts: captions.append(list(prompts)) or encode(prompts)
    objective.noise_scheduler.add_noise = lambda x, noise, t: noised.append((x, noise, t)) or add_noise(x, noise, t)
    objective.modules["model"] = lambda *args: calls.append(args) or torch.zeros_like(args[0])
    objective.training_step(batch, 0, "model")
    expected = [""] * 3 if share == 1.0 else list(batch["caption"])
    assert captions == [expected] and all(batch["caption"])
    (xt, t, tokens, mask, first_frame, given), = calls
    x0, noise, t_noised = noised[0]
    assert torch.equal(x0, batch["video"]) and torch.equal(t, t_noised)
    torch.testing.assert_close(xt, add_noise(x0, noise, t))
    text = encode(expected)
    assert torch.equal(tokens, text.tokens) and torch.equal(mask, text.mask)
    assert torch.equal(first_frame, batch["video"][:, :, 0]) and given.tolist() == [share] * 3


@pytest.mark.parametrize("overrides, drawn", [([], (0, 1000)), (["objective.timestep_range=[0.25, 0.5]"], (250, 500))])
def test_training_timesteps_are_drawn_uniformly_from_the_whole_schedule_unless_narrowed(overrides, drawn, monkeypatch):
    """By default every noise level, pure noise included (t = 999 of 1000), is trained; a range keeps [lo * T, hi * T)."""
    config = load_config(TINY, [*overrides, "objective.text_statistics_prompts=8"])
    objective = get_family("diffusion").objective(config)
    batch = torch.utils.data.default_collate([get_family("diffusion").dataset(config)[i] for i in range(2)])
    bounds, randint = [], torch.randint
    monkeypatch.setattr(torch, "randint", lambda lo, hi, *args, **kwargs: bounds.append((lo, hi)) or randint(lo, hi, *args, **kwargs))
    objective.modules["model"] = lambda xt, *rest: torch.zeros_like(xt)
    objective.training_step(batch, 0, "model")
    assert bounds == [drawn]


def test_the_exported_sampling_defaults_are_the_objectives_settings():
    """A trained model generates as its config said: output size, frames, steps, guidance and its cutoff, the training schedule."""
    from kinema.data.shapes import canonical_captions

    config = load_config(TINY, ["objective.output_size=24", "objective.sample_steps=3", "objective.guidance_scale=2.5",
                                "objective.guidance_cutoff=0.6", "objective.text_statistics_prompts=8"])
    settings = get_family("diffusion").objective(config).pipeline_settings()
    assert (settings.output_size, settings.sample_size, settings.num_frames) == (24, 16, 4)
    assert (settings.default_steps, settings.default_guidance, settings.default_guidance_cutoff) == (3, 2.5, 0.6)
    assert settings.latent_scale == 0.0 and settings.reference_prompts == canonical_captions()  # pixel space, Shapes captions
    assert {k: settings.scheduler[k] for k in ("num_train_timesteps", "beta_schedule", "prediction_type")} == {
        "num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction"}


def test_an_unknown_family_is_a_config_error_on_the_family_key_listing_the_known_ones():
    """A misspelt `family:` must point the user at that key and show what they could have written."""
    from kinema.training import ConfigError

    with pytest.raises(ConfigError, match=r"^unknown family 'difusion'; known families: .*\bdiffusion\b.*\bgan\b") as caught:
        get_family("difusion")
    assert caught.value.key == "family"
