"""`--quantize int8` on Kinema's own pipelines: each family's tiny random pipeline with its Linear weights stored in
int8 by torchao (tests/test_diffusers_backend.py has the diffusers side)."""

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kinema.cli import app
from kinema.io import probe
from kinema.pipelines import load_pipeline, registered
from kinema.pipelines.quantize import check_offload, check_quantize, weight_bytes

torchao = pytest.importorskip("torchao")
from torchao.quantization import Int8Tensor  # noqa: E402

KINEMA = sorted((name, variant) for name, r in registered().items() if name != "diffusers" for variant in r.variants or (None,))
SEEDS = range(4)
# the lowest PSNR (dB) of int8 frames against float32 frames over seeds 0-3, measured on the tiny pipelines (diffusion
# pixels 69.2, latent 83.0, gan 57.2; videogpt: identical frames for three seeds, 42.4 where one sampled code changed),
# less a margin
PSNR_FLOOR = {"diffusion": 60.0, "gan": 50.0, "videogpt": 35.0}


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny tensors: a second thread only adds synchronisation on a shared CPU."""


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def frames(pipe, seed: int) -> np.ndarray:
    prompt = None if pipe.contract().prompt == "none" else "a small red circle moving left slowly"
    return pipe(prompt, seed=seed).frames


@pytest.mark.parametrize("name, variant", KINEMA, ids=[f"{n}-{v}" if v else n for n, v in KINEMA])
def test_int8_stores_every_linear_weight_in_int8_and_keeps_the_frames_close(name, variant, text_encoder):
    pipe = registered()[name].tiny(text_encoder=text_encoder, **({"variant": variant} if variant else {}))
    expected = [frames(pipe, seed) for seed in SEEDS]
    networks = pipe.modules()
    linears = {f"{n}.{k}": m for n, net in networks.items() for k, m in net.named_modules() if isinstance(m, torch.nn.Linear)}
    convs = [m for net in networks.values() for m in net.modules() if isinstance(m, torch.nn.modules.conv._ConvNd)]
    float_bytes = sum(weight_bytes(net) for net in networks.values())

    assert pipe.quantize("int8") == len(linears) > 0
    for where, layer in linears.items():
        weight = layer.weight
        assert isinstance(weight, Int8Tensor), where
        assert weight.qdata.dtype == torch.int8 and weight.qdata.shape == (layer.out_features, layer.in_features), where
        assert weight.scale.numel() == layer.out_features, where  # one scale per output channel
    assert all(type(conv.weight) is torch.nn.Parameter for conv in convs)  # torchao's int8 has no convolution: they stay float
    assert all(p.dtype == torch.float32 and not isinstance(p, Int8Tensor) for p in text_encoder.parameters())  # shared: untouched
    assert sum(weight_bytes(net) for net in networks.values()) < float_bytes

    got = [frames(pipe, seed) for seed in SEEDS]
    worst = min(psnr(a, b) for a, b in zip(expected, got))
    assert worst >= PSNR_FLOOR[name], f"{name}: int8 frames {worst:.1f} dB from float32"
    assert any(not np.array_equal(a, b) for a, b in zip(expected, got)) or name == "videogpt"  # the weights did change
    assert np.array_equal(frames(pipe, 2), got[2])  # the same seed, the same frames
    assert pipe.load_record() == {"quantize": "int8"}


def test_generate_records_int8_in_the_provenance_and_the_flag_matches_the_api(tiny_model_dir, tmp_path):
    import kinema

    runner = CliRunner()
    result = runner.invoke(app, ["generate", "a red circle moving left", "--model", str(tiny_model_dir), "--quantize", "int8", "--seed", "4",
                                 "--format", "png", "-o", str(tmp_path / "clip")])
    assert result.exit_code == 0, result.output
    assert probe(tmp_path / "clip").provenance.extra["quantize"] == "int8"
    api = kinema.generate("a red circle moving left", model=tiny_model_dir, quantize="int8", seed=4, device="cpu")
    plain = kinema.generate("a red circle moving left", model=tiny_model_dir, seed=4, device="cpu")
    assert api.provenance.extra["quantize"] == "int8" and "quantize" not in plain.provenance.extra
    from kinema.io import read_video

    assert np.array_equal(read_video(tmp_path / "clip").frames, api.frames)
    assert 50 < psnr(api.frames, plain.frames) < math.inf


def test_a_quantized_pipeline_is_loaded_once_and_never_saved(tiny_model_dir, tmp_path):
    pipe = load_pipeline(tiny_model_dir, device="cpu", quantize="int8")
    assert pipe.quantized == "int8"
    with pytest.raises(ValueError, match="quantized at load .* is not saved"):
        pipe.save_pretrained(tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
    with pytest.raises(ValueError, match="already quantized"):
        pipe.quantize("int8")
    with pytest.raises(ValueError, match="applied when the model loads"):
        __import__("kinema").generate("a red circle", pipeline=pipe, quantize="int8")


def test_an_unknown_mode_and_a_missing_torchao_are_one_clear_error(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="quantize \\(--quantize\\) must be one of int8, got 'int4'"):
        check_quantize("int4")
    with pytest.raises(ValueError, match="--quantize int8 with --offload model was never measured"):
        check_offload("int8", "model")
    check_offload("int8", "none")
    check_offload(None, "model")
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchao" else find_spec(name, *a))
    with pytest.raises(ValueError, match="needs the torchao package, which is not installed: pip install torchao"):
        load_pipeline("shapes-t2v", device="cpu", quantize="int8")
    result = CliRunner().invoke(app, ["generate", "a red circle", "--quantize", "int8", "-o", str(tmp_path / "x.mp4")])
    assert result.exit_code == 2 and "needs the torchao package" in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "x.mp4").exists()


def test_int8_runs_beside_bfloat16_weights_under_autocast(tiny_model_dir):
    """An int8 Linear returns float32 where autocast's Linear returns bfloat16; the next bfloat16 LayerNorm then failed
    (the default on a GPU: --dtype auto is bfloat16 there)."""
    bf16 = load_pipeline(tiny_model_dir, device="cpu", dtype="bfloat16")
    both = load_pipeline(tiny_model_dir, device="cpu", dtype="bfloat16", quantize="int8")
    linears = [m for m in both.unet.modules() if isinstance(m, torch.nn.Linear)]
    assert both.dtype == torch.bfloat16 and all(isinstance(m.weight, Int8Tensor) for m in linears)
    # measured 62.6-63.0 dB over seeds 0-3, against the bfloat16 frames; less a margin
    assert psnr(frames(bf16, 1), frames(both, 1)) >= 50.0


def test_the_missing_torchao_hint_installs_a_pinned_version_the_package_declares(monkeypatch):
    """The command the error hands a user must install one exact torchao release that kinema[quantize] accepts."""
    import importlib.util
    import re
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchao" else find_spec(name, *a))
    with pytest.raises(ValueError) as error:
        check_quantize("int8", need_package=True)
    found = re.fullmatch(r"--quantize int8 needs the torchao package, which is not installed: pip install torchao==(\S+) "
                         r"\(or pip install 'kinema\[quantize\]'\)", str(error.value))
    assert found, str(error.value)
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    declared = Requirement(pyproject["project"]["optional-dependencies"]["quantize"][0])
    assert declared.name == "torchao" and declared.specifier.contains(found.group(1))
    check_quantize("int8", need_package=False)  # the mode alone is fine without the package
    check_quantize(None, need_package=True)  # no quantization asks for nothing
