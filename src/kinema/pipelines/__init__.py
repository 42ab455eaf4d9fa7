"""Inference pipelines (a model folder in, video frames out) and the registry that finds the one a model needs.

A family plugs in with one module, `kinema/pipelines/<name>.py`, that defines a `VideoPipeline` subclass
and calls `register(Registration(...))` at import. `load_pipeline` reads a model folder's
model_index.json and builds the registered pipeline it names; nothing outside this registry dispatches
on class names.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from kinema.device import resolve_device, resolve_dtype

if TYPE_CHECKING:
    from kinema.hub import ModelFolder
    from kinema.pipelines.common import VideoPipeline


@dataclass(frozen=True)
class Registration:
    """A pipeline as the registry sees it."""

    name: str  # what model_index.json's "pipeline" says
    pipeline: type[VideoPipeline]
    # format-0 folders (one network beside pipeline.json) whose config.json names this class load with this pipeline
    legacy_model_class: str | None = None
    # a tiny random pipeline (seconds on a CPU): the conformance suite runs every registered pipeline through it,
    # once per variant (tiny(text_encoder=..., variant=...)): e.g. pixel-space and latent diffusion
    tiny: Callable[..., VideoPipeline] | None = None
    variants: tuple[str, ...] = ()


_PIPELINES: dict[str, Registration] = {}
_SKIP = {"common", "generate", "autoencoder", "preview", "quantize"}  # modules of this package that register no generation pipeline


def register(registration: Registration) -> Registration:
    if registration.name in _PIPELINES and _PIPELINES[registration.name] != registration:
        raise ValueError(f"pipeline {registration.name!r} is already registered")
    _PIPELINES[registration.name] = registration
    return registration


def registered() -> dict[str, Registration]:
    """Every pipeline there is (the modules of this package are imported on first use)."""
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _SKIP and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return dict(_PIPELINES)


def registration_for(folder: ModelFolder) -> Registration:
    """The registered pipeline that drives an opened model folder; an error saying why when none does."""
    pipelines = registered()
    index = folder.index
    if folder.legacy:
        cls = folder.component_class("model")
        match = [r for r in pipelines.values() if r.legacy_model_class == cls]
        if not match:
            raise ValueError(f"{folder.path} holds a {cls or 'model of unknown class'}, which no Kinema pipeline drives")
        return match[0]
    if index.purpose != "generation":
        use = {"autoencoder": "; use it with kinema reconstruct or kinema interpolate",
               "evaluation": "; kinema evaluate uses it"}.get(index.purpose, "")
        raise ValueError(f"{folder.name} is an {index.purpose}-only model: it does not generate video{use}")
    if index.pipeline not in pipelines:
        raise ValueError(f"{folder.where} names pipeline {index.pipeline!r}, which this Kinema does not have "
                         f"(it has {', '.join(sorted(pipelines))}); a newer Kinema may")
    return pipelines[index.pipeline]


def contract_of(folder: ModelFolder):
    """What an opened model folder's pipeline takes, read from its configs and settings (no weights loaded)."""
    return registration_for(folder).pipeline.folder_contract(folder)


def describe_model(folder: ModelFolder) -> tuple[str, str, list[str]]:
    """(kind, what it takes, one line per option) of an opened model, for `kinema models` and the studio."""
    if not folder.legacy and folder.index.purpose == "autoencoder":
        return "autoencoder", "a video (kinema reconstruct) or two frames (kinema interpolate)", []
    if not folder.legacy and folder.index.purpose != "generation":
        return f"{folder.index.purpose}-only", "not for generation", []
    contract = contract_of(folder)
    return " + ".join(contract.tasks), contract.describe(), [o.describe() for o in contract.options]


def load_pipeline(
    model: str | os.PathLike | ModelFolder | None = None, device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = None, memory=None, lora=None, cache: str | None = None, quantize: str | None = None,
    **components,
) -> VideoPipeline:
    """The pipeline for a built-in name (default shapes-t2v), a model folder, a training run folder, or a
    diffusers pipeline (a folder diffusers saved, or a Hugging Face hub id such as org/name).

    ``device``: auto (an accelerator when there is one), cpu, cuda, cuda:N or mps. ``dtype``: auto
    (float32 on a CPU, bfloat16 on a GPU), float32, bfloat16 or float16. ``memory``: diffusers pipelines
    only, how they fit the device (kinema.pipelines.diffusers_backend.MemorySettings: offloading, VAE
    tiling, decode chunk). ``lora``: diffusers pipelines only, LoRAs to load, each a path, 'PATH:scale' or a
    (path, scale) pair. ``cache``: diffusers transformer pipelines only, a step cache (first-block, pab, faster
    or taylorseer; kinema.pipelines.diffusers_backend.cache_config). ``quantize``: every pipeline, ``"int8"`` stores the
    Linear weights of its networks (a diffusers pipeline's denoiser) in int8 (kinema.pipelines.quantize; needs torchao).
    ``components``: objects to share instead of loading them again, e.g. ``text_encoder=`` an already loaded MiniLMEncoder.
    """
    from kinema.hub import ModelFolder, open_model
    from kinema.pipelines.quantize import check_offload, check_quantize

    folder = model if isinstance(model, ModelFolder) else open_model(model)
    registration = registration_for(folder)
    if memory is not None:
        if not registration.pipeline.takes_memory_settings:
            raise ValueError(f"--offload, --vae-tiling and --decode-chunk are only for diffusers pipelines; {folder.name} is a Kinema model")
        components["memory"] = memory
    for value, flag, takes in ((lora, "--lora", "takes_lora"), (cache, "--cache", "takes_cache")):
        if value is not None and value != [] and not getattr(registration.pipeline, takes, False):
            raise ValueError(f"{flag} is only for diffusers pipelines; {folder.name} is a Kinema model, whose pipelines take no "
                             f"{'LoRAs' if flag == '--lora' else 'step cache'}")
        if value is not None and value != []:
            components[flag.strip("-")] = value
    check_quantize(quantize, need_package=True)
    check_offload(quantize, getattr(memory, "offload", None))
    device = resolve_device(device)
    pipe = registration.pipeline.from_folder(folder, device=device, dtype=resolve_dtype(dtype, device), **components)
    pipe.source = folder.name
    pipe.vocabulary = folder.vocabulary
    if quantize is not None:
        pipe.quantize(quantize)  # after LoRAs and a step cache: the LoRAs load into float weights, and their own layers stay float
    return pipe
