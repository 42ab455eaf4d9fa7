"""Objectives (what a family trains: losses, optimizers, previews) and the registry of families.

A family plugs in with one module, `kinema/training/objectives/<family>.py`, that calls
`register_family(Family(...))` at import; `get_family("<family>")` imports it on first use.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from kinema.training.config import RunConfig


class Objective:
    """What the trainer needs from a family; it owns the networks and computes losses, nothing else.

    - `modules`: the networks by name ("model" for single-network families, "generator" and
      "discriminator" for a GAN). The trainer replaces these entries with their prepared (DDP,
      compiled) versions while training and with the raw or EMA modules while sampling and
      exporting, so always call them through `self.modules[name]`.
    - `optimizer_groups()`: optimizer name -> torch param groups. One AdamW per name; a group may
      set its own "lr", "betas", "weight_decay" (else train.* applies).
    - `phases(step)`: the optimizer names to update at this step, in order. Each phase is a full
      update: the trainer zeroes that optimizer's grads, runs `training_step(batch, step, phase)`
      on every micro-batch, clips, and steps it. A GAN returns ["discriminator", "generator"]; a
      phase must not backpropagate into another network's graph it does not own (detach it or
      run it under torch.no_grad()).
    - `training_step(...)` returns a dict of scalar tensors; "loss" is backpropagated, all are logged.
    - `sample(num, generator)` (optional) returns uint8 clips (b, f, h, w, c) for previews.
    - `export_components()` names the networks of the exported model folder (docs/model_format.md),
      each written by its `save_pretrained(dir)` as dir/config.json + model.safetensors at the end of
      the run (from EMA weights when EMA is on); `export_pipeline()` gives the registered pipeline
      that drives them and its settings (the name None for a folder no generation pipeline drives,
      e.g. an autoencoder; None altogether for neither);
      `export_vocabulary()` (optional) gives the closed vocabulary a text model was trained on
      (a kinema.text.Vocabulary), declared in model_index.json so that prompts in other words reach it;
      `fine_tuning_modules()` (optional) names the other modules a fine-tune should start from (a
      GAN's discriminator): exported as NAME.safetensors (float16) and loaded by train.init_from.
    """

    modules: dict[str, nn.Module]
    # what the exported folder is for (model_index.json "purpose"); None: "generation" with a pipeline, else "test"
    purpose: str | None = None
    # modules whose weights get an EMA copy; None means every module that an optimizer trains
    ema_modules: tuple[str, ...] | None = None

    def optimizer_groups(self) -> dict[str, list[dict[str, Any]]]:
        params = [p for module in self.modules.values() for p in module.parameters() if p.requires_grad]
        return {"model": [{"params": params}]}

    def phases(self, step: int) -> list[str]:
        return list(self._optimizer_names)

    def training_step(self, batch: Any, step: int, phase: str) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must define training_step(batch, step, phase)")

    def sample(self, num: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def export_components(self) -> dict[str, nn.Module]:
        """The networks of the exported model folder by component name (a subfolder each)."""
        return {"model": self.modules["model"]}

    def export_pipeline(self) -> tuple[str | None, Any] | None:
        """(registered pipeline name or None, its settings dataclass) for model_index.json; None: neither."""
        return None

    def export_vocabulary(self):
        """The kinema.text.Vocabulary of the captions a text model trains on, or None (any wording, or no text)."""
        return None

    def fine_tuning_modules(self) -> dict[str, nn.Module]:
        """Modules beyond the exported model that fine-tuning should not start from scratch."""
        return {}

    @property
    def can_sample(self) -> bool:
        return type(self).sample is not Objective.sample

    # set by the trainer once it has built the optimizers, so the default phases() needs no second call
    _optimizer_names: tuple[str, ...] = ("model",)


@dataclass(frozen=True)
class Family:
    """A model family as the trainer sees it: its config classes and how to build objective and data."""

    name: str
    model_config: type  # dataclass for the `model:` section (the exported config.json)
    data_config: type  # dataclass for the `data:` section
    objective: Callable[[RunConfig], Objective]  # builds the objective (and its networks) from the run config
    dataset: Callable[[RunConfig], torch.utils.data.Dataset]  # a map-style dataset, deterministic per index
    objective_config: type | None = None  # dataclass for the `objective:` section, if the family has one


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    if family.name in _FAMILIES and _FAMILIES[family.name] != family:
        raise ValueError(f"family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    """The registered family `name`, importing kinema.training.objectives.<name> on first use."""
    from kinema.training.config import ConfigError

    if name not in _FAMILIES and name in available_families():
        importlib.import_module(f"{__name__}.{name}")
    if name not in _FAMILIES:
        error = ConfigError(f"unknown family {name!r}; known families: {', '.join(sorted(available_families())) or 'none'}")
        error.key = "family"
        raise error
    return _FAMILIES[name]


def available_families() -> set[str]:
    return set(_FAMILIES) | {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
