"""Export a model folder (config.json + model.safetensors + extras) from any checkpoint of a run."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from kinema.io.atomic import atomic_dir
from kinema.training.checkpoint import CorruptCheckpoint, load_checkpoint, load_latest
from kinema.training.config import build_run_config
from kinema.training.objectives import Objective, get_family


def export_checkpoint(
    source: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False, ema: bool = True, sampling_only: bool = False
) -> Path:
    """Write the model of ``source`` (a run folder: its newest valid checkpoint; or a checkpoint file) to ``out``.

    Uses the EMA weights when the run keeps them (``ema=False`` takes the raw ones), exactly as
    the trainer's own export at the end of a run does, so a run can be sampled mid-way.
    ``sampling_only`` leaves out what only fine-tuning needs (a GAN's discriminator).
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
    return write_model_folder(objective, out, training, overwrite=overwrite, sampling_only=sampling_only)


def fine_tuning_file(folder: Path, name: str) -> Path:
    """Where a model folder keeps module NAME for fine-tuning (written by write_model_folder, read by train.init_from)."""
    return folder / f"{name}.safetensors"


def write_model_folder(
    objective: Objective, target: str | os.PathLike, training: dict[str, Any], overwrite: bool = True, sampling_only: bool = False
) -> Path:
    """The objective's export model as TARGET/config.json + model.safetensors + its extras, written whole.

    ``training`` is recorded under config.json's "_kinema_training" (keys starting with "_" are
    metadata that from_pretrained ignores). Unless ``sampling_only``, the modules a fine-tune starts
    from go beside it as NAME.safetensors in float16 (half the bytes; train.init_from loads them).
    """
    with atomic_dir(target, overwrite=overwrite) as tmp:
        model = objective.export_model()
        model.save_pretrained(tmp)
        files = {p.name for p in tmp.iterdir()}
        if not {"config.json", "model.safetensors"} <= files:
            raise RuntimeError(f"{type(model).__name__}.save_pretrained must write config.json and model.safetensors, wrote {sorted(files)}")
        objective.export_extras(tmp)
        if not sampling_only:
            for name, module in objective.fine_tuning_modules().items():
                save_file({k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}, str(fine_tuning_file(tmp, name)))
        meta = json.loads((tmp / "config.json").read_text())
        meta["_kinema_training"] = training
        (tmp / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    return Path(target)
