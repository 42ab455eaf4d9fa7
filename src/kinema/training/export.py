"""Export a model folder (docs/model_format.md) from any checkpoint of a run."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from kinema.hub import ModelIndex
from kinema.io.atomic import atomic_dir
from kinema.models.base import CONFIG_NAME, WEIGHTS_NAME
from kinema.training.checkpoint import CorruptCheckpoint, load_checkpoint, load_latest
from kinema.training.config import build_run_config
from kinema.training.objectives import Objective, get_family


def export_checkpoint(
    source: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False, ema: bool = True, sampling_only: bool = False,
    half: bool = False,
) -> Path:
    """Write the model of ``source`` (a run folder: its newest valid checkpoint; or a checkpoint file) to ``out``.

    Uses the EMA weights when the run keeps them (``ema=False`` takes the raw ones), exactly as
    the trainer's own export at the end of a run does, so a run can be sampled mid-way.
    ``sampling_only`` leaves out what only fine-tuning needs (a GAN's discriminator). ``half``: store the weights
    in float16 (half the bytes; they load into float32 models, and frames differ from float32 storage by rounding).
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist: give a run folder or a checkpoint file")
    if source.is_dir():
        found = load_latest(source / "checkpoints", warn=lambda message: warnings.warn(message, stacklevel=2))
        if found is None:
            raise FileNotFoundError(f"{source} has no usable checkpoint in {source / 'checkpoints'}")
        _, state = found
    else:
        try:
            state = load_checkpoint(source)
        except CorruptCheckpoint as err:
            raise ValueError(f"checkpoint {source} {err}") from None
    config = build_run_config(state["config"])
    objective = get_family(config.family).objective(config)
    use_ema = ema and bool(state.get("ema"))
    # every module's raw weights, then the EMA copies over those that have one (a GAN's generator)
    for weights in (state["modules"], state["ema"] if use_ema else {}):
        for name, module_state in weights.items():
            objective.modules[name].load_state_dict(module_state)
    training = {"family": config.family, "step": state["step"], "weights": "ema" if use_ema else "raw"}
    if half:
        training["stored_as"] = "float16"
    return write_model_folder(objective, out, training, overwrite=overwrite, sampling_only=sampling_only, half=half)


def write_model_folder(
    objective: Objective, target: str | os.PathLike, training: dict[str, Any], overwrite: bool = True, sampling_only: bool = False,
    half: bool = False,
) -> Path:
    """The objective's model as a model folder (docs/model_format.md), written whole: one subfolder per
    component (config.json + model.safetensors) and model_index.json naming the pipeline and its settings.

    ``training`` is recorded under model_index.json's "training"; the objective's vocabulary (a Shapes text
    model's) under "vocabulary". Unless ``sampling_only``, the modules a
    fine-tune starts from go beside them as NAME.safetensors in float16 (half the bytes; train.init_from
    loads them).
    """
    components = objective.export_components()
    pipeline = objective.export_pipeline()
    fine_tuning = {} if sampling_only else objective.fine_tuning_modules()
    vocabulary = objective.export_vocabulary()
    with atomic_dir(target, overwrite=overwrite) as tmp:
        for name, module in components.items():
            module.save_pretrained(tmp / name, **({"dtype": torch.float16} if half else {}))
            files = {p.name for p in (tmp / name).iterdir()}
            if not {CONFIG_NAME, WEIGHTS_NAME} <= files:
                raise RuntimeError(f"{type(module).__name__}.save_pretrained must write {CONFIG_NAME} and {WEIGHTS_NAME}, wrote {sorted(files)}")
        for name, module in fine_tuning.items():
            save_file({k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}, str(tmp / f"{name}.safetensors"))
        ModelIndex(
            pipeline=pipeline[0] if pipeline else None,
            purpose=objective.purpose or ("generation" if pipeline and pipeline[0] else "test"),
            components={name: name for name in components},
            settings=pipeline[1].to_dict() if pipeline else {},
            training=training,
            fine_tuning={name: f"{name}.safetensors" for name in fine_tuning},
            vocabulary=vocabulary.to_json() if vocabulary is not None else None,
        ).write(tmp)
    return Path(target)
