"""Saving and loading models as config.json + model.safetensors: what every family's network shares."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import json
import os
import pkgutil
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from kinema.io.atomic import atomic_dir

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class UnknownKeyError(ValueError):
    """A saved file holds a key that its reader does not know (a misspelling, or a newer format)."""


def check_keys(data: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """Refuse the first key of ``data`` that is not ``known``, naming it, ``where`` it was and the closest known key.

    Keys starting with "_" are metadata (who wrote the file, training notes) and always pass.
    """
    known = list(known)
    for key in data:
        if key.startswith("_") or key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UnknownKeyError(f"{where}: unknown key '{key}'{hint} known keys: {', '.join(known)}")


def _from_json(cls: type, data: dict[str, Any], where: str | None = None) -> Any:
    """Rebuild a config dataclass from JSON (metadata keys starting with "_" skipped), turning lists back
    into tuples where the field says tuple; an unknown key is an error naming ``where`` it was."""
    hints = typing.get_type_hints(cls)
    check_keys(data, [f.name for f in dataclasses.fields(cls)], where or cls.__name__)
    values = {}
    for name, value in data.items():
        if name.startswith("_"):
            continue
        origin = typing.get_origin(hints[name]) or hints[name]
        values[name] = tuple(value) if origin is tuple and isinstance(value, list) else value
    return cls(**values)


_MODEL_CLASSES: dict[str, type] = {}


def model_class_named(name: str) -> type:
    """The network class a component's config.json names ("model_class"), from every class that
    subclasses PretrainedMixin (kinema.models is imported on first use, so its families register)."""
    if name not in _MODEL_CLASSES:
        import kinema.models

        for module in pkgutil.iter_modules(kinema.models.__path__):
            importlib.import_module(f"kinema.models.{module.name}")
    if name not in _MODEL_CLASSES:
        raise ValueError(f"no Kinema network class {name!r}; known: {', '.join(sorted(_MODEL_CLASSES))}")
    return _MODEL_CLASSES[name]


def read_model_class(folder: str | os.PathLike) -> str:
    """The network class a component folder's config.json names ("" when it names none)."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a model component: {CONFIG_NAME} is missing")
    config = json.loads(path.read_text())
    return str(config.get("model_class") or config.get("_class_name", ""))  # diffusers writes _class_name


def load_component(folder: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> nn.Module:
    """Rebuild whichever network a component folder holds (config.json's "model_class") and load its weights."""
    return model_class_named(read_model_class(folder)).from_pretrained(folder, device=device, dtype=dtype)


class PretrainedMixin:
    """`save_pretrained(dir)` / `from_pretrained(dir)` for an nn.Module built from one config dataclass.

    The folder holds config.json (the config plus "model_class", so a folder says what it is) and
    model.safetensors. Loading rebuilds the network from the config alone; nothing is pickled.
    Every subclass is registered by its class name, which is how a model folder's components are
    rebuilt (``load_component``).
    """

    config_class: ClassVar[type]
    config: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _MODEL_CLASSES[cls.__name__] = cls

    def save_pretrained(self, folder: str | os.PathLike, overwrite: bool = True, extra: dict[str, Any] | None = None,
                        dtype: torch.dtype | None = None) -> Path:
        """Write the model folder atomically; ``extra`` keys (e.g. training notes) go into config.json. ``dtype``
        (e.g. torch.float16): store the floating-point tensors in it (from_pretrained loads them into the model's own)."""
        assert isinstance(self, nn.Module)
        config = {"model_class": type(self).__name__, **dataclasses.asdict(self.config), **(extra or {})}
        state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().contiguous().cpu()
                 for k, v in self.state_dict().items()}
        with atomic_dir(folder, overwrite=overwrite) as tmp:
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
            save_file(state, str(tmp / WEIGHTS_NAME))
        return Path(folder)

    @classmethod
    def component_folder(cls, folder: str | os.PathLike) -> Path:
        """A component folder as is; for a model folder, built-in name or run folder, its component of this class."""
        if (Path(folder) / CONFIG_NAME).is_file():
            return Path(folder)
        from kinema.hub import open_model

        model = open_model(folder)
        found = [n for n in model.index.components if model.component_class(n) == cls.__name__]
        if len(found) != 1:
            raise ValueError(f"{folder} holds {len(found)} {cls.__name__} components ({', '.join(model.index.components)}); give the component's folder")
        return model.component(found[0])

    @classmethod
    def read_config(cls, folder: str | os.PathLike) -> Any:
        folder = cls.component_folder(folder)
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{folder} is not a model folder: {CONFIG_NAME} is missing")
        data = json.loads(path.read_text())
        found = data.pop("model_class", cls.__name__)
        if found != cls.__name__:
            raise ValueError(f"{folder} holds a {found}, not a {cls.__name__}")
        return _from_json(cls.config_class, data, str(path))

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
        folder = cls.component_folder(folder)
        config = cls.read_config(folder)
        weights = Path(folder) / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{folder} is not a model folder: {WEIGHTS_NAME} is missing")
        model = cls(config)
        missing, unexpected = model.load_state_dict(load_file(str(weights)), strict=False)
        if missing or unexpected:
            raise ValueError(f"{weights} does not fit {cls.__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        return model.to(device=device, dtype=dtype).eval()
