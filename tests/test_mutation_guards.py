"""Exact checks for bugs a round of hand-made mutations slipped past the suite (issue 15): each test
compares against an independent computation, so the wrong formula, crop or threshold fails it."""

from __future__ import annotations

import hashlib
import os
import random
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch import nn

from kinema.io import probe, read_video, write_video
from kinema.io.video import VideoReadError

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- pipelines


def record_sampler_steps(monkeypatch, keep) -> list:
    """Spy on every diffusion sampler the pipelines build: ``keep(model_output, sample)`` of each step, in order."""
    from kinema.pipelines import text2video

    seen, make = [], text2video.make_scheduler

    def recording(name, config):
        scheduler = make(name, config)
        step = scheduler.step
        scheduler.step = lambda output, t, x, **kw: seen.append(keep(output, x).clone()) or step(output, t, x, **kw)
        return scheduler

    monkeypatch.setattr(text2video, "make_scheduler", recording)
    return seen


def test_classifier_free_guidance_is_uncond_plus_scale_times_the_difference(text_encoder, monkeypatch):
    from kinema.pipelines.text2video import tiny_pipeline

    pipe = tiny_pipeline(text_encoder)
    cond_value, uncond_value, scale = 0.3, -0.1, 3.0

    class Fixed(nn.Module):
        """The conditional half of a guided batch predicts 0.3 everywhere, the unconditional half -0.1."""

        config = pipe.unet.config

        def __init__(self):
            super().__init__()
            self.anchor = nn.Parameter(torch.zeros(1))

        def forward(self, x, t, tokens, mask, first, given):
            out = torch.full_like(x, uncond_value)
            out[: x.shape[0] // 2 if x.shape[0] > 1 else 1] = cond_value
            return out

    seen = record_sampler_steps(monkeypatch, lambda output, sample: output)
    pipe.unet = Fixed()
    pipe("a small red circle moving left slowly", guidance_scale=scale, num_inference_steps=2, seed=0)
    expected = uncond_value + scale * (cond_value - uncond_value)  # 1.1 (cond + s * (cond - uncond) would give 1.5)
    assert len(seen) == 2 and all(torch.allclose(o, torch.full_like(o, expected)) for o in seen)


# ---------------------------------------------------------------------------- evaluation


def test_fvd_preprocessing_takes_the_first_frames_and_the_centre():
    from kinema.evaluation.fvd import preprocess_for_i3d

    f, h, w = 20, 224, 448  # short side already 224: no resize, only the crop
    video = np.zeros((1, f, h, w, 3), np.uint8)
    video[..., 0] = (np.arange(f) * 10)[:, None, None]  # red: the frame index
    video[..., 1] = (np.arange(w) % 256)[None, None, :]  # green: the column
    x = preprocess_for_i3d(video)
    assert x.shape == (1, 3, 16, 224, 224)
    frames = torch.tensor([i * 10 / 255 * 2 - 1 for i in range(16)])
    assert torch.allclose(x[0, 0, :, 0, 0], frames, atol=1e-6)  # frames 0..15, not 4..19
    columns = torch.tensor([((112 + c) % 256) / 255 * 2 - 1 for c in range(224)])  # columns 112..335, the centre
    assert torch.allclose(x[0, 1, 0, 0, :], columns, atol=1e-6)


def test_the_checker_ignores_specks_below_its_threshold_and_counts_blobs_above():
    from kinema.evaluation.shapes_checker import read_shapes

    def clip(extra: int) -> np.ndarray:
        frames = np.zeros((16, 64, 64, 3), np.uint8)
        for t in range(16):
            frames[t, 10:22, 8 + t : 20 + t] = (255, 0, 0)  # a small square moving right
            if extra:
                frames[t, 50 : 50 + extra, 50 : 50 + extra] = (255, 0, 0)
        return frames

    # the smallest object (a small triangle, 72 px) times 0.15 = 10.8 px: a 3x3 speck is below it, a 5x5 blob above
    assert read_shapes(clip(0)).single_blob_rate == 1.0
    assert read_shapes(clip(3)).single_blob_rate == 1.0
    assert read_shapes(clip(5)).single_blob_rate == 0.0


# ---------------------------------------------------------------------------- io


def test_atomic_writes_fsync_the_file_before_renaming_it(tmp_path, monkeypatch):
    from kinema.io import atomic

    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))) or fsync(fd))
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: events.append(("replace", str(a))) or replace(a, b))
    with atomic.atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("data")
    renamed = next(i for i, e in enumerate(events) if e[0] == "replace")
    assert ("fsync", events[renamed][1]) in events[:renamed], events  # the temp file itself reached the disk first


def test_a_clip_missing_only_its_last_packet_is_reported(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3), dtype=np.uint8)
    write_video(tmp_path / "whole.mp4", frames, fps=8)
    with av.open(str(tmp_path / "whole.mp4")) as container:
        last = [p.pos for p in container.demux(container.streams.video[0]) if p.size][-1]
    (tmp_path / "cut.mp4").write_bytes((tmp_path / "whole.mp4").read_bytes()[:last])
    assert read_video(tmp_path / "whole.mp4").frames.shape[0] == 16
    with pytest.raises(VideoReadError, match="truncated: it states 16 frames but only 15 decode"):
        read_video(tmp_path / "cut.mp4")


def test_ntsc_frame_rates_are_stored_exactly(tmp_path):
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    write_video(tmp_path / "ntsc.mp4", frames, fps=30000 / 1001)
    with av.open(str(tmp_path / "ntsc.mp4")) as container:
        assert container.streams.video[0].average_rate == Fraction(30000, 1001)
    assert probe(tmp_path / "ntsc.mp4").fps == pytest.approx(30000 / 1001, rel=0, abs=1e-9)


# ---------------------------------------------------------------------------- training


def test_a_preview_restores_every_random_stream_it_touched(tmp_path, monkeypatch):
    from kinema.training import train
    from kinema.training.logging import RunLogger
    from kinema.training.objectives.toy import ToyObjective

    entry, after = [], []
    sample = ToyObjective.sample

    def drawing_sample(self, num, generator):
        entry.append((random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()))
        random.random(), np.random.rand(3), torch.rand(3)  # a sampler that draws from all three
        return sample(self, num, generator)

    video = RunLogger.video

    def recording_video(self, step, clips):
        after.append((random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()))
        return video(self, step, clips)

    monkeypatch.setattr(ToyObjective, "sample", drawing_sample)
    monkeypatch.setattr(RunLogger, "video", recording_video)
    train(ROOT / "configs" / "toy" / "tiny.yaml", ["train.max_steps=6", "train.sample_every=3"], out=tmp_path / "run")
    assert len(entry) == len(after) == 2
    for (py0, np0, t0), (py1, np1, t1) in zip(entry, after):
        assert py0 == py1 and np.array_equal(np0, np1) and torch.equal(t0, t1)


def test_a_two_item_option_refuses_three_items():
    from kinema.training import ConfigError, load_config

    tiny = ROOT / "configs" / "diffusion" / "tiny.yaml"
    assert load_config(tiny, ["objective.timestep_range=[0.0, 0.3]"]).objective.timestep_range == (0.0, 0.3)
    for bad in ("[0.0, 0.3, 0.5]", "[0.3]"):
        with pytest.raises(ConfigError, match="timestep_range"):
            load_config(tiny, [f"objective.timestep_range={bad}"])


def test_resuming_past_a_corrupt_checkpoint_keeps_the_one_it_resumed_from(tmp_path):
    from kinema.training import train
    from kinema.training.checkpoint import checkpoint_path

    toy = ROOT / "configs" / "toy" / "tiny.yaml"
    run = tmp_path / "run"
    train(toy, ["train.checkpoint_every=5", "train.keep_checkpoints=3"], out=run, until_step=10)
    ckpts = run / "checkpoints"
    resumed_from, newest = checkpoint_path(ckpts, 5), checkpoint_path(ckpts, 10)
    newest.write_bytes(b"corrupt" * 100)
    digest = hashlib.sha256(resumed_from.read_bytes()).hexdigest()
    train(toy, ["train.checkpoint_every=5", "train.keep_checkpoints=3"], out=run, resume="auto", until_step=7)
    # a second crash now must still find step 5: it stays in place, whole
    assert resumed_from.is_file() and hashlib.sha256(resumed_from.read_bytes()).hexdigest() == digest
    assert newest.with_name(newest.name + ".set-aside").is_file()
    assert checkpoint_path(ckpts, 7).is_file()


def test_ema_follows_its_warmed_up_decay_exactly():
    from kinema.training.trainer import EMA

    net = nn.Linear(3, 2)
    ema = EMA({"net": net}, decay=0.9, device=torch.device("cpu"))
    expected = [p.detach().clone() for p in net.parameters()]
    for n in range(1, 30):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(n)))
        ema.update(n)
        decay = min(0.9, (1 + n) / (10 + n))  # warmed up: 0.18 at the first update, 0.9 from n = 81
        expected = [decay * e + (1 - decay) * p.detach() for e, p in zip(expected, net.parameters())]
        assert all(torch.allclose(c, e, atol=1e-6) for c, e in zip(ema.copies["net"].parameters(), expected)), n


def test_learning_rate_warmup_and_cosine_floor_exactly():
    from types import SimpleNamespace

    from kinema.training.trainer import lr_factor

    t = SimpleNamespace(warmup_steps=4, max_steps=24, min_lr_ratio=0.1, lr_schedule="cosine")
    import math

    for step in range(0, 25):
        if step < 4:
            expected = (step + 1) / 4  # the first step already trains (lr never 0)
        else:
            expected = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - 4) / 20))
        assert lr_factor(step, t) == pytest.approx(expected, abs=1e-12), step
    assert lr_factor(24, t) == pytest.approx(0.1) and lr_factor(100, t) == pytest.approx(0.1)
    assert lr_factor(10, SimpleNamespace(warmup_steps=4, max_steps=24, min_lr_ratio=0.1, lr_schedule="constant")) == 1.0


# ---------------------------------------------------------------------------- data and metrics, against the pixels


def _centroid(frame: np.ndarray) -> tuple[float, float]:
    mass = frame.astype(np.float64).max(axis=-1)
    rows, cols = np.indices(mass.shape)
    return float((cols * mass).sum() / mass.sum()), float((rows * mass).sum() / mass.sum())


@pytest.mark.parametrize("resolution", [64, 32])
def test_captioned_shapes_move_as_their_captions_say_in_pixels(resolution):
    """Read straight off the pixels, without the dataset's own direction table: up is towards row 0."""
    from kinema.data.shapes import CaptionedShapes

    ds = CaptionedShapes("test", num_samples=48, resolution=resolution, seed=5)
    seen = set()
    for i in range(len(ds)):
        labels, frames = ds.labels(i), ds.render(i)
        (x0, y0), (x1, y1) = _centroid(frames[0]), _centroid(frames[-1])
        per_frame = np.array([x1 - x0, y1 - y0]) / (len(frames) - 1) * 64 / resolution  # 64-px units
        want = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[labels.direction]
        speed = {"slowly": 1.0, "quickly": 2.0}[labels.speed]
        assert np.allclose(per_frame, np.array(want) * speed, atol=0.05), (labels, per_frame)
        colour = frames[0][frames[0].max(axis=-1) == frames[0].max()][0]  # a fully covered pixel
        assert tuple(colour) == {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
                                 "cyan": (0, 255, 255), "magenta": (255, 0, 255)}[labels.color]
        coverage = frames.max(axis=-1).astype(np.float64) / 255
        areas = coverage.sum(axis=(1, 2)) * (64 / resolution) ** 2
        side = {"small": 12, "large": 20}[labels.size]
        expected = {"square": side**2, "circle": np.pi * side**2 / 4, "triangle": side**2 / 2}[labels.shape]
        assert np.allclose(areas, expected, rtol=0.06), (labels, areas)  # in every frame: the object never leaves the frame
        seen.add((labels.direction, labels.speed))
    assert len(seen) == 8


def test_acd_is_the_mean_pairwise_colour_distance():
    from kinema.evaluation.metrics import average_content_distance, content_distance

    reds = [200, 210, 230, 200]  # pairwise distances 10, 30, 0, 20, 10, 30: mean 16.67, median 15
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    for t, red in enumerate(reds):
        frames[t, 8:20, 8:20, 0] = red
    assert content_distance(frames) == pytest.approx(100 / 6, abs=1e-9)
    still = np.repeat(frames[:1], 4, axis=0)
    result = average_content_distance([frames, still])
    assert result["acd"] == pytest.approx(100 / 12, abs=1e-9) and result["num_measured"] == 2


# ---------------------------------------------------------------------------- grids, resizing, caches, inversion


def test_grids_place_each_clip_and_frame_exactly():
    from kinema.io.grid import frame_grid, video_grid

    videos = [np.full((5, 3, 4, 3), 10 * (i + 1), np.uint8) for i in range(5)]
    for i, v in enumerate(videos):
        v[:, :, :, 1] = np.arange(5)[:, None, None]  # green: the frame index
    grid = video_grid(videos, num_columns=3, gap=2)  # 2 rows of 3: (2 * 3 + 2) x (3 * 4 + 2 * 2)
    assert grid.shape == (5, 8, 16, 3)
    for i in range(5):
        y, x = (i // 3) * 5, (i % 3) * 6
        assert np.array_equal(grid[:, y : y + 3, x : x + 4], videos[i]), i
    assert (grid[:, 3:5] == 40).all() and (grid[:, :, 4:6] == 40).all() and (grid[:, 5:, 12:] == 40).all()  # gaps and the empty cell
    still = frame_grid(videos[:2], num_columns=3, gap=1)  # frames 0, 2, 4 of each clip across
    assert still.shape == (7, 14, 3)
    for row in range(2):
        for col, t in enumerate((0, 2, 4)):
            assert np.array_equal(still[row * 4 : row * 4 + 3, col * 5 : col * 5 + 4], videos[row][t]), (row, col)
    assert (still[3] == 40).all() and (still[:, 4] == 40).all()


def test_frames_are_resized_bilinearly():
    from kinema.pipelines.common import resize_video

    video = torch.tensor([[0.0, 1.0], [0.0, 1.0]]).expand(1, 3, 2, 2, 2)  # (b, c, f, h, w): a left-to-right step
    out = resize_video(video, (4, 4))
    assert torch.allclose(out[0, 0, 0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]))  # half-pixel centres, not nearest (0, 0, 1, 1)
    assert resize_video(video, (2, 2)) is video


def test_the_text_cache_keeps_the_most_recently_used_prompts(text_encoder):
    from kinema.models.text import MiniLMEncoder

    encoder = MiniLMEncoder(text_encoder.bert, text_encoder.tokenizer, cache_size=2)
    fresh = encoder.encode(["a", "b"]).tokens
    encoder.encode(["a"])  # "a" is now the most recent
    encoder.encode(["c"])  # evicts "b", the least recently used
    assert list(encoder._cache) == ["a", "c"]
    assert torch.allclose(encoder.encode(["a", "b"]).tokens, fresh, atol=1e-5)  # cached or not, the same encodings


def test_image_inversion_keeps_each_clips_closest_start():
    from kinema.pipelines.gan import tiny_pipeline

    pipe = tiny_pipeline()
    with torch.no_grad():
        content, noise = pipe.generator.sample_latents(2, 4, torch.Generator().manual_seed(7))
        target = pipe.generator(content, noise)[:, :, 0]
    image = ((target.permute(0, 2, 3, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    errors = {}
    for restarts in (1, 4):
        pipe.settings.inversion_restarts = restarts
        errors[restarts] = pipe(num_videos=2, image=image, num_inference_steps=5, seed=0).inversion_error
    pipe.settings.inversion_restarts = 2
    # start 0 (the drawn latent) is among the 4, so the best of 4 is never worse than it alone
    assert all(four <= one + 1e-4 for four, one in zip(errors[4], errors[1])), errors
    assert errors[4] != errors[1]


# ---------------------------------------------------------------------------- pairing, digests, references, manifests, samplers


def test_paired_metrics_pair_by_name_whatever_the_order():
    from kinema.evaluation.evaluate import VideoSet, evaluate, pair_videos

    clips = [np.full((4, 16, 16, 3), 40 * (i + 1), np.uint8) for i in range(3)]
    real = VideoSet.from_frames(clips, names=["a", "b", "c"])
    fake = VideoSet.from_frames([clips[2], clips[0], clips[1]], names=["c", "a", "b"])
    assert pair_videos(real, fake) == ([(0, 1), (1, 2), (2, 0)], "name")
    assert evaluate(real, fake, "psnr")["metrics"]["psnr"]["mean"] == float("inf")  # every clip met its twin
    unnamed = VideoSet.from_frames(clips[::-1], names=["x", "y", "z"])
    assert pair_videos(real, unnamed) == ([(0, 0), (1, 1), (2, 2)], "order")


def test_checkpoint_digests_cover_keys_values_dtypes_and_shapes():
    from kinema.training.checkpoint import digest

    base = {"step": 3, "weights": {"a": torch.zeros(2, 3)}}
    assert digest(base) == digest({"step": 3, "weights": {"a": torch.zeros(2, 3)}})
    for other in ({"step": 3, "weights": {"b": torch.zeros(2, 3)}}, {"step": 4, "weights": {"a": torch.zeros(2, 3)}},
                  {"step": 3, "weights": {"a": torch.zeros(3, 2)}}, {"step": 3, "weights": {"a": torch.zeros(2, 3, dtype=torch.float64)}},
                  {"step": 3, "weights": {"a": torch.zeros(2, 3).index_fill_(1, torch.tensor([2]), 1e-30)}}):
        assert digest(other) != digest(base), other


def test_a_component_reference_is_relative_to_the_folder(tiny_model_dir, tmp_path, text_encoder):
    import json
    import shutil

    from kinema.pipelines import load_pipeline

    shutil.copytree(tiny_model_dir, tmp_path / "base")
    (tmp_path / "variant").mkdir()
    index = json.loads((tmp_path / "base" / "model_index.json").read_text())
    index["components"]["denoiser"] = {"model": "../base", "component": "denoiser"}
    (tmp_path / "variant" / "model_index.json").write_text(json.dumps(index))
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)  # "../base" must not be read from the working directory
        out = load_pipeline(tmp_path / "variant", device="cpu", text_encoder=text_encoder)("a red circle", seed=0).frames
    finally:
        os.chdir(cwd)
    assert np.array_equal(out, load_pipeline(tmp_path / "base", device="cpu", text_encoder=text_encoder)("a red circle", seed=0).frames)


def test_a_rendered_manifest_gives_each_clip_its_own_labels(tmp_path):
    import json

    from kinema.data.render import render_dataset
    from kinema.data.shapes import CaptionedShapes, parse_caption

    render_dataset("shapes", tmp_path / "r", split="test", count=6, resolution=32, seed=3)
    rows = [json.loads(line) for line in (tmp_path / "r" / "manifest.jsonl").read_text().splitlines()]
    ds = CaptionedShapes("test", num_samples=6, resolution=32, seed=3)
    assert [row["file"] for row in rows] == [f"{i:04d}.mp4" for i in range(6)]
    for i, row in enumerate(rows):
        assert row["labels"] == ds.labels(i).to_dict() == parse_caption(row["caption"]), i
        assert row["caption"] == ds.caption(i) and probe(tmp_path / "r" / row["file"]).provenance.prompt == row["caption"]
    assert len({row["caption"] for row in rows}) > 1


def test_rendering_onto_a_file_is_not_a_directory_error_and_keeps_the_file(tmp_path):
    """The Python API's exception says what is wrong (a file where the folder goes), not that something exists."""
    from kinema.data.render import render_dataset

    target = tmp_path / "clips.bin"
    target.write_bytes(b"mine")
    with pytest.raises(NotADirectoryError, match="clips.bin is a file"):
        render_dataset("shapes", target, count=1, resolution=32)
    assert target.read_bytes() == b"mine"


def test_the_first_noise_is_scaled_to_the_samplers_starting_sigma(text_encoder, monkeypatch):
    from kinema.pipelines.text2video import make_scheduler, tiny_pipeline

    pipe = tiny_pipeline(text_encoder)
    first_inputs = record_sampler_steps(monkeypatch, lambda output, sample: sample)
    pipe("a red circle", scheduler="euler", num_inference_steps=3, seed=9)
    reference = make_scheduler("euler", pipe.settings.scheduler)
    reference.set_timesteps(3)
    assert reference.init_noise_sigma > 1.5  # Euler starts at sigma_max, not 1
    noise = torch.randn((3, 4, 16, 16), generator=torch.Generator().manual_seed(9))
    assert torch.allclose(first_inputs[0][0], noise * reference.init_noise_sigma, atol=1e-5)


# ---------------------------------------------------------------------------- objectives, against hand-computed losses


def test_gan_loss_formulas():
    import torch.nn.functional as F

    from kinema.training.objectives.gan import d_fake, d_real, g_loss

    logits = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    assert d_real(logits, "hinge").item() == pytest.approx((3 + 1.5 + 1 + 0.5 + 0) / 5)
    assert d_fake(logits, "hinge").item() == pytest.approx((0 + 0.5 + 1 + 1.5 + 3) / 5)
    assert g_loss(logits, "hinge").item() == pytest.approx(0.0)
    assert g_loss(logits + 1, "hinge").item() == pytest.approx(-1.0)
    assert d_real(logits, "non_saturating").item() == pytest.approx(F.softplus(-logits).mean().item())
    assert d_fake(logits, "non_saturating").item() == pytest.approx(np.log1p(np.exp(logits.numpy())).mean())
    assert g_loss(logits, "non_saturating").item() == pytest.approx(np.log1p(np.exp(-logits.numpy())).mean())


class _FixedCritic(nn.Module):
    """Image logits 0.5 on real clips and -0.25 on fakes; video logits 2 * those; ``score`` reads the pixels linearly."""

    def __init__(self, score: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(score))

    def forward(self, videos, frame_index, **cond):
        b = videos.shape[0] // 2
        base = torch.cat([torch.full((b,), 0.5), torch.full((b,), -0.25)]) + self.weight * videos.sum(dim=(1, 2, 3, 4))
        return base, 2 * base


def test_gan_discriminator_and_generator_losses_are_weighted_sums():
    from kinema.training import load_config
    from kinema.training.objectives import get_family

    config = load_config(ROOT / "configs" / "gan" / "tiny.yaml", ["objective.image_weight=0.3", "objective.video_weight=2.0"])
    objective, dataset = get_family("gan").objective(config), get_family("gan").dataset(config)
    objective.modules["discriminator"] = _FixedCritic()
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    out = objective.training_step(batch, 1, "discriminator")
    image = (1 - 0.5) + (1 - 0.25)  # hinge: relu(1 - 0.5) + relu(1 + (-0.25))
    video = max(0, 1 - 1.0) + (1 - 0.5)
    assert out["image"].item() == pytest.approx(image) and out["video"].item() == pytest.approx(video)
    assert out["loss"].item() == pytest.approx(0.3 * image + 2.0 * video)


def test_r1_penalty_is_the_squared_gradient_norm_on_real_clips():
    from kinema.training import load_config
    from kinema.training.objectives import get_family

    overrides = ["objective.r1_gamma=2.0", "objective.r1_every=4", "objective.image_weight=1.0", "objective.video_weight=1.0"]
    config = load_config(ROOT / "configs" / "gan" / "tiny.yaml", overrides)
    objective, dataset = get_family("gan").objective(config), get_family("gan").dataset(config)
    objective.modules["discriminator"] = _FixedCritic(score=0.01)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])

    def step(n):
        torch.manual_seed(0)  # the same fakes in both calls
        return objective.training_step(batch, n, "discriminator")

    out, plain = step(4), step(3)  # step 4: an R1 step; step 3 is not (lazy R1, every 4th)
    numel = batch["video"][0].numel()
    # d(image + video score)/d(real) = 0.01 + 2 * 0.01 everywhere: |grad|^2 = 0.03^2 * numel per clip
    assert out["r1"].item() == pytest.approx(0.03**2 * numel, rel=1e-5) and "r1" not in plain
    # added as gamma / 2 * penalty, times the interval it stands for
    assert out["loss"].item() - plain["loss"].item() == pytest.approx(2.0 / 2 * out["r1"].item() * 4, rel=1e-5)


def test_diffusion_loss_is_the_v_prediction_error_on_replayed_draws(monkeypatch):
    from kinema.training import load_config
    from kinema.training.objectives import get_family

    config = load_config(ROOT / "configs" / "diffusion" / "tiny.yaml", ["objective.text_dropout=0.5", "objective.image_conditioning=0.5"])
    objective, dataset = get_family("diffusion").objective(config), get_family("diffusion").dataset(config)
    seen = {}

    class Recorder(nn.Module):
        def forward(self, xt, t, tokens, mask, first, given):
            seen.update(xt=xt, t=t, first=first, given=given, tokens=tokens)
            return torch.zeros_like(xt)

    objective.modules["model"] = Recorder()
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    torch.manual_seed(11)
    loss = objective.training_step(batch, 0, "model")["loss"]
    # replay the objective's draws in its order: caption dropout, first-frame flags, noise, timesteps
    torch.manual_seed(11)
    dropped = [bool(torch.rand(()) < 0.5) for _ in range(4)]
    given = (torch.rand(4) < 0.5).float()
    x0 = batch["video"]
    noise = torch.randn_like(x0)
    t = torch.randint(0, 1000, (4,))
    alpha = objective.noise_scheduler.alphas_cumprod[t].view(4, 1, 1, 1, 1)
    xt = alpha.sqrt() * x0 + (1 - alpha).sqrt() * noise
    v = alpha.sqrt() * noise - (1 - alpha).sqrt() * x0
    assert torch.equal(seen["t"], t) and torch.equal(seen["given"], given) and torch.equal(seen["first"], x0[:, :, 0])
    assert torch.allclose(seen["xt"], xt, atol=1e-5)
    assert loss.item() == pytest.approx(v.pow(2).mean().item(), rel=1e-5)  # the model predicted 0: the loss is |v|^2
    empty = objective.text_encoder.encode([""]).tokens[0]
    assert any(dropped) and not all(dropped)
    for i, drop in enumerate(dropped):  # dropped captions reach the model as the empty prompt, the others do not
        same = seen["tokens"].shape[1] >= empty.shape[0] and torch.allclose(seen["tokens"][i, : empty.shape[0]], empty, atol=1e-5)
        assert same == drop, (i, drop)


# ---------------------------------------------------------------------------- paths, logs, manifests, text statistics, folders


def test_output_paths_take_the_format_from_the_flag_or_the_suffix():
    from kinema.pipelines.generate import output_path

    cases = {("clip", None): ("clip.mp4", "mp4"), ("clip.gif", None): ("clip.gif", "gif"), ("clip.mp4", "webm"): ("clip.webm", "webm"),
             ("frames", "png"): ("frames", "png"), ("out/v1.2", "gif"): ("out/v1.gif", "gif"), ("clip.MP4", None): ("clip.MP4", "mp4")}
    for (out, fmt), (path, chosen) in cases.items():
        assert output_path(out, fmt) == (Path(path), chosen), (out, fmt)


def test_training_seconds_add_up_logged_intervals_only(tmp_path):
    import json

    from kinema.training.logging import training_seconds

    rows = [{"step": 10, "steps_per_s": 2.0}, {"step": 20, "steps_per_s": 5.0}, {"message": "resumed"}, {"step": 30, "steps_per_s": 10.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert training_seconds(tmp_path / "metrics.jsonl") == pytest.approx(5 + 2 + 1)
    assert training_seconds(tmp_path / "metrics.jsonl", upto_step=20) == pytest.approx(7)


@pytest.mark.parametrize("path_key,caption_key", [("file", "caption"), ("video", "text"), ("path", "prompt")])
def test_video_folder_reads_every_manifest_column_name(tmp_path, path_key, caption_key):
    import json

    from kinema.data.video_folder import VideoFolder

    write_video(tmp_path / "a.mp4", np.zeros((8, 16, 16, 3), np.uint8), fps=8)
    (tmp_path / "manifest.jsonl").write_text(json.dumps({path_key: "a.mp4", caption_key: "a red ball"}) + "\n")
    assert VideoFolder(tmp_path, num_frames=4, size=16)[0]["caption"] == "a red ball"


def test_the_denoiser_standardises_text_with_its_statistics():
    from kinema.models.unet3d import VideoUNet, VideoUNetConfig

    torch.manual_seed(0)
    unet = VideoUNet(VideoUNetConfig(sample_size=16, num_frames=4, channels=(16, 32), blocks_per_level=1, attention_levels=(1,),
                                     attention_head_dim=16, text_queries=2, groups=4)).eval()
    for p in unet.parameters():
        nn.init.normal_(p, std=0.05)
    x, t = torch.randn(1, 3, 4, 16, 16), torch.tensor([500])
    tokens, mask = torch.randn(1, 5, 384), torch.ones(1, 5, dtype=torch.bool)
    mean, std = torch.randn(384), torch.rand(384) + 0.5
    plain = unet(x, t, tokens, mask)
    unet.set_text_statistics(mean, std)
    # tokens moved and scaled by the statistics read the same once standardised
    assert torch.allclose(unet(x, t, tokens * std + mean, mask), plain, atol=1e-5)


def test_format_0_folders_keep_their_fine_tuning_files(tmp_path):
    import json

    from kinema.hub import open_model

    (tmp_path / "config.json").write_text(json.dumps({"model_class": "VideoGenerator"}))
    (tmp_path / "pipeline.json").write_text("{}")
    (tmp_path / "discriminator.safetensors").write_bytes(b"x")
    old = open_model(tmp_path)
    assert old.legacy and old.fine_tuning_file("discriminator") == tmp_path / "discriminator.safetensors"
    assert old.fine_tuning_file("other") is None


def test_a_run_trained_past_its_export_gives_its_newest_checkpoint(tmp_path):
    from kinema.hub import open_model
    from kinema.training import train

    toy = ROOT / "configs" / "toy" / "tiny.yaml"
    run = train(toy, ["train.max_steps=6", "train.checkpoint_every=3"], out=tmp_path / "run")
    assert open_model(run).index.training["step"] == 6 and open_model(run).path == run / "model"
    train(toy, ["train.max_steps=12", "train.checkpoint_every=3"], out=run, resume="auto", until_step=9)
    newer = open_model(run)
    assert newer.index.training["step"] == 9 and newer.path != run / "model"  # the checkpoint, not the stale export


# ---------------------------------------------------------------------------- classes, caption samples, cards, config types


def test_class_prompts_select_their_class_index():
    from kinema.pipelines.gan import tiny_pipeline

    pipe = tiny_pipeline(condition="class")  # classes "left" (0) and "right" (1)
    assert pipe.encode_prompts(["right", "left", " right "])["labels"].tolist() == [1, 0, 1]
    content, noise = pipe.sample_latents(4, [torch.Generator().manual_seed(3)])
    with torch.no_grad():
        expected = pipe.generator(content, noise, labels=torch.tensor([1]))
    frames = pipe("right", seed=3).frames[0]
    from kinema.pipelines.common import resize_video, to_uint8

    assert np.array_equal(frames, to_uint8(resize_video(expected, (32, 32)))[0])


def test_caption_samples_have_the_asked_length():
    from kinema.data.captions import caption_sample
    from kinema.data.shapes import CaptionedShapes

    ds = CaptionedShapes("train", num_samples=50, seed=1)
    assert caption_sample(ds, 7) == [ds.caption(i) for i in range(7)]
    assert len(caption_sample(ds, 500)) == 50 and len(caption_sample(ds, 0)) == 1


def test_a_cards_summary_is_its_first_paragraph_after_the_headings(tmp_path):
    import json

    from kinema.hub import ModelIndex, open_model

    (tmp_path / "m").mkdir()
    ModelIndex(pipeline=None, purpose="evaluation").write(tmp_path / "m")
    (tmp_path / "m" / "MODEL_CARD.md").write_text("# shapes-x\n\nA small model\nthat draws shapes.\n\n## Training\n\nOther text.\n")
    assert open_model(tmp_path / "m").summary == "A small model that draws shapes."
    assert json.loads((tmp_path / "m" / "model_index.json").read_text())["purpose"] == "evaluation"


def test_config_values_keep_their_types():
    from kinema.training import ConfigError, load_config

    toy = ROOT / "configs" / "toy" / "tiny.yaml"
    assert load_config(toy, ["train.max_steps=10"]).train.max_steps == 10
    assert load_config(toy, ["train.lr=1"]).train.lr == 1.0 and isinstance(load_config(toy, ["train.lr=1"]).train.lr, float)
    for bad in ("train.max_steps=10.5", "train.max_steps=true", "train.lr=.nan", "train.lr=.inf", "train.lr=fast"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            load_config(toy, [bad])


def test_flicker_statistics_against_numpy():
    from kinema.models.gan import flicker_statistics

    rng = np.random.default_rng(0)
    video = torch.from_numpy(rng.uniform(-1, 1, (2, 3, 5, 16, 16)).astype(np.float32))
    light = video.numpy().astype(np.float64) + 1
    k = 16 * 16 // 256
    peaks = np.sort(light.reshape(2, 3, 5, -1), axis=-1)[..., -k:].mean(axis=-1)  # (b, c, f)
    means = light.mean(axis=(3, 4))

    def variation(series):
        level = np.maximum(series.mean(axis=2), 1e-3)
        return np.concatenate([series.std(axis=2, ddof=1) / level, np.abs(np.diff(series, axis=2)).mean(axis=2) / level], axis=1)

    expected = np.concatenate([np.log(variation(peaks) + 1e-3), np.log(variation(means) + 0.02)], axis=1)
    assert np.allclose(flicker_statistics(video).numpy(), expected, atol=1e-5)


def test_images_with_alpha_or_one_channel_read_as_rgb(tmp_path):
    from PIL import Image

    from kinema.io.image import read_image

    rgba = np.zeros((6, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 17
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png").shape == (6, 5, 3) and (read_image(tmp_path / "a.png") == (200, 0, 0)).all()
    Image.fromarray(np.full((6, 5), 90, np.uint8), "L").save(tmp_path / "g.png")
    assert (read_image(tmp_path / "g.png") == 90).all() and read_image(tmp_path / "g.png").shape == (6, 5, 3)


# ---------------------------------------------------------------------------- captions, embeddings, report rows


def test_every_caption_phrasing_names_every_attribute_it_was_made_from():
    from kinema.data.shapes import HELDOUT_PAIRS, SEEN_PAIRS, SIZES, SPEEDS, DIRECTIONS, ShapesLabels, canonical_captions, parse_caption, varied_caption

    captions = canonical_captions()
    assert len(captions) == len(set(captions)) == len(SEEN_PAIRS) * len(SIZES) * len(DIRECTIONS) * len(SPEEDS)
    assert not set(canonical_captions(sorted(HELDOUT_PAIRS))) & set(captions)
    rng = np.random.default_rng(0)
    for caption in captions:
        labels = ShapesLabels(**parse_caption(caption))
        assert labels.caption() == caption
        for _ in range(4):  # other wordings of the same clip read back to the same labels
            assert parse_caption(varied_caption(labels, rng)) == labels.to_dict()


def test_timestep_embedding_formula():
    import math

    from kinema.models.unet3d import timestep_embedding

    t = torch.tensor([0.0, 1.0, 500.0])
    emb = timestep_embedding(t, 8)
    freqs = torch.tensor([math.exp(-math.log(10_000) * i / 4) for i in range(4)])
    expected = torch.cat([torch.cos(t[:, None] * freqs), torch.sin(t[:, None] * freqs)], dim=1)
    assert emb.shape == (3, 8) and torch.allclose(emb, expected, atol=1e-5)


def test_report_rows_show_the_values_they_are_given():
    from kinema.evaluation.report import summary_rows

    report = {"metrics": {
        "psnr": {"mean": 31.2345, "identical_frames": 2},
        "ssim": {"mean": 0.912345},
        "flicker": {"fake": 0.98765, "real": 0.99912},
        "acd": {"fake": {"acd": 1.23456, "num_measured": 7, "num_videos": 8}, "real": {"acd": 0.0}},
    }}
    rows = {row[0].split(" (")[0]: row[1:] for row in summary_rows(report)}
    assert rows["PSNR"] == ("31.23", "", "2 identical frames left out of the mean")
    assert rows["SSIM"][0] == "0.9123"
    assert rows["Temporal flicker"][:2] == ("0.9877", "0.9991")
    assert rows["ACD"] == ("1.235", "0.000", "measured on 7/8 generated videos")


def test_a_models_size_counts_the_weights_in_its_component_folders(tiny_model_dir):
    from kinema.hub import open_model

    files = list(Path(tiny_model_dir).rglob("*.safetensors"))
    assert files and all(f.parent != Path(tiny_model_dir) for f in files)  # all inside component subfolders
    assert open_model(tiny_model_dir).size_bytes == sum(f.stat().st_size for f in files) > 0


def test_a_model_without_image_conditioning_needs_a_prompt_and_takes_no_image(text_encoder):
    from kinema.pipelines.text2video import tiny_pipeline

    pipe = tiny_pipeline(text_encoder, image_conditioning=False)
    contract = pipe.contract()
    assert contract.prompt == "required" and not contract.image and contract.tasks == ("text-to-video",)
    with pytest.raises(ValueError, match="is a text-to-video model: give a prompt"):
        pipe("")
    with pytest.raises(ValueError, match="cannot animate an image"):
        pipe("a red circle", image=np.zeros((16, 16, 3), np.uint8))


def test_batch_generation_splits_lines_between_processes(tiny_model_dir, tmp_path, monkeypatch, text_encoder):
    from kinema.pipelines import load_pipeline
    from kinema.pipelines.generate import generate_batch

    pipe = load_pipeline(tiny_model_dir, device="cpu", text_encoder=text_encoder)
    lines = [(i, f"a small red circle moving left slowly {i}") for i in range(5)]
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        done = generate_batch(lines, tmp_path / "out", pipeline=pipe, seed=3, format="png", progress=False)
        assert [r.path.name for r in done] == [f"{i:04d}" for i in range(rank, 5, 2)]
        assert [r.seed for r in done] == [3 + i for i in range(rank, 5, 2)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{i:04d}" for i in range(5)]


def test_shape_motion_labels_keep_only_the_checkers_vocabulary():
    from kinema.evaluation.evaluate import _shapes_labels

    motion = {"shape": "circle", "color": [255, 0, 0], "size": 12.5, "direction": "left-to-right", "speed": "quickly", "path": [[1, 2]]}
    assert _shapes_labels(motion) == {"shape": "circle", "speed": "quickly"}
    assert _shapes_labels("a red circle") == "a red circle" and _shapes_labels(None) is None


# ---------------------------------------------------------------------------- fresh-8: report grids, clip starts, classifier input, pasting, VAE loss, latents


def test_comparison_grid_puts_real_on_the_left_and_generated_on_the_right():
    from kinema.evaluation.report import comparison_grid

    real, fake = [np.full((4, 8, 8, 3), 10, np.uint8)], [np.full((4, 8, 8, 3), 200, np.uint8)]
    grid = comparison_grid(real, fake, columns=4)
    white = np.where((grid == 255).all(axis=(0, 2)))[0]  # the white gap between the two sides
    assert (grid[0, 0] == 10).all() and (grid[0, -1] == 200).all()
    assert not (grid[:, : white[0]] == 200).any() and not (grid[:, white[-1] + 1 :] == 10).any()


def test_video_folder_centre_clips_start_halfway_through_the_slack(tmp_path):
    from kinema.data.video_folder import VideoFolder

    frames = np.stack([np.full((16, 16, 3), 8 * t, np.uint8) for t in range(32)])
    write_video(tmp_path / "ramp.mp4", frames, fps=8, pix_fmt="yuv444p", crf=0)
    clip = VideoFolder(tmp_path, num_frames=16, size=16, clip="center")[0]["video"]  # (c, f, h, w) in [-1, 1]
    levels = ((clip.mean(dim=(0, 2, 3)) + 1) * 127.5 / 8).round().tolist()
    assert levels == list(range(8, 24))  # slack 32 - 16 = 16: start at 8
    first = VideoFolder(tmp_path, num_frames=16, size=16, clip="start")[0]["video"]
    assert ((first.mean(dim=(0, 2, 3)) + 1) * 127.5 / 8).round().tolist() == list(range(16))


def test_the_shapes_classifier_reads_the_first_frames():
    from kinema.evaluation.classifier import ShapesClassifier, ShapesClassifierConfig

    net = ShapesClassifier(ShapesClassifierConfig(resolution=16, num_frames=4, channels=(8, 8), groups=4))
    frames = np.stack([np.full((16, 16, 3), 20 * t, np.uint8) for t in range(7)])[None]
    x = net.prepare(frames)
    assert x.shape == (1, 3, 4, 16, 16)
    assert torch.allclose(x[0, 0, :, 0, 0], torch.tensor([20 * t / 127.5 - 1 for t in range(4)]), atol=1e-6)


def test_pasting_a_larger_image_averages_each_output_pixels_area():
    from kinema.pipelines.common import paste_first_frame

    image = np.zeros((8, 8, 3), np.uint8)
    image[::2, ::2] = 255  # one bright pixel in every 2x2 block
    video = paste_first_frame(torch.zeros(1, 3, 2, 4, 4), image)
    assert torch.allclose(video[0, :, 0], torch.full((3, 4, 4), (255 / 4) / 127.5 - 1), atol=1e-6)  # a quarter of 255
    assert (video[0, :, 1] == 0).all()


def test_the_vae_loss_adds_the_weighted_kl():
    from kinema.training import load_config
    from kinema.training.objectives import get_family

    config = load_config(ROOT / "configs" / "vae" / "tiny.yaml", ["objective.kl_weight=0.5", "objective.l1_weight=2.0", "objective.mse_weight=3.0"])
    objective, dataset = get_family("vae").objective(config), get_family("vae").dataset(config)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(2)])
    out = objective.training_step(batch, 0, "model")
    assert out["kl"].item() > 0
    assert out["loss"].item() == pytest.approx(2.0 * out["l1"].item() + 3.0 * out["mse"].item() + 0.5 * out["kl"].item(), rel=1e-5)


def test_latents_are_scaled_to_unit_std_and_unscaled_before_decoding(tmp_path, text_encoder):
    from kinema.pipelines.autoencoder import save_autoencoder, tiny_autoencoder
    from kinema.pipelines.common import to_uint8
    from kinema.pipelines.text2video import tiny_pipeline
    from kinema.training import load_config
    from kinema.training.objectives import get_family

    vae_dir = save_autoencoder(tiny_autoencoder(resolution=16), tmp_path / "vae")
    overrides = [f"objective.vae={vae_dir}", "objective.latent_scale_clips=8", "model.in_channels=4", "model.sample_size=8",
                 "data.resolution=16", "model.patch_size=1"]
    config = load_config(ROOT / "configs" / "diffusion" / "tiny.yaml", overrides)
    objective, dataset = get_family("diffusion").objective(config), get_family("diffusion").dataset(config)
    clips = torch.stack([dataset[i]["video"] for i in range(8)])
    assert objective.encode(clips).std().item() == pytest.approx(1.0, rel=1e-4)  # the clips the scale was measured on
    pipe = tiny_pipeline(text_encoder, variant="latent")  # latent_scale 1.5, a VAE that doubles 8 -> 16
    z = torch.randn(1, 4, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = to_uint8(pipe.vae.decode(z / 1.5).float())
    assert np.array_equal(pipe._decode(z, (16, 16), None), expected)


# ---------------------------------------------------------------------------- fresh-9: pixel norm, render previews, fill ratio


def test_pixel_norm_gives_each_pixel_unit_rms_over_its_channels():
    from kinema.models.gan import pixel_norm

    x = torch.randn(2, 6, 4, 5) * torch.rand(2, 1, 4, 5) * 10
    assert torch.allclose(pixel_norm(x).pow(2).mean(dim=1), torch.ones(2, 4, 5), atol=1e-5)
    assert torch.allclose(pixel_norm(x) / pixel_norm(x).norm(dim=1, keepdim=True), x / x.norm(dim=1, keepdim=True), atol=1e-6)  # direction kept


def test_render_previews_enlarge_small_frames(tmp_path):
    from PIL import Image

    from kinema.data.render import render_dataset
    from kinema.io.grid import frame_grid

    result = render_dataset("shapes", tmp_path / "r", split="test", count=2, resolution=32)
    preview = np.asarray(Image.open(result.preview))
    grid = frame_grid([read_video(f).frames for f in result.files])  # what the preview tiles, at 1:1
    assert preview.shape == (grid.shape[0] * 4, grid.shape[1] * 4, 3)  # 32-px frames shown 4x (128 px)


def test_fill_ratio_divides_the_area_by_the_height_times_the_width():
    from kinema.evaluation.shapes_checker import read_shapes

    frames = np.zeros((4, 64, 64, 3), np.uint8)
    for t in range(4):
        frames[t, 10:20, 5 + t : 25 + t] = (0, 255, 0)  # a 10 x 20 rectangle: fills its bounding box
    assert read_shapes(frames).fill_ratio == pytest.approx(1.0, abs=0.02)


def test_gradients_are_clipped_to_max_grad_norm_before_the_optimizer_steps(tmp_path, monkeypatch):
    from kinema.training import train

    seen = []
    step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        seen.append(torch.nn.utils.get_total_norm(grads).item())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    toy = ROOT / "configs" / "toy" / "tiny.yaml"
    train(toy, ["train.max_steps=3", "train.max_grad_norm=0.01", "train.sample_every=0"], out=tmp_path / "clipped")
    clipped, seen[:] = list(seen), []
    train(toy, ["train.max_steps=3", "train.max_grad_norm=null", "train.sample_every=0"], out=tmp_path / "free")
    assert len(clipped) == 3 and all(n <= 0.01 * (1 + 1e-4) for n in clipped), clipped
    assert all(n > 0.05 for n in seen), seen  # unclipped, the same steps have larger gradients
