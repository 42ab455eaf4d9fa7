"""Saving and loading models as config.json + model.safetensors: what every family's network shares."""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from kinema.io.atomic import atomic_dir

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def _from_json(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from JSON, turning lists back into tuples where the field says tuple."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    if unknown := set(data) - known:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}; known: {sorted(known)}")
    values = {}
    for name, value in data.items():
        origin = typing.get_origin(hints[name]) or hints[name]
        values[name] = tuple(value) if origin is tuple and isinstance(value, list) else value
    return cls(**values)


class PretrainedMixin:
    """`save_pretrained(dir)` / `from_pretrained(dir)` for an nn.Module built from one config dataclass.

    The folder holds config.json (the config plus "model_class", so a folder says what it is) and
    model.safetensors. Loading rebuilds the network from the config alone; nothing is pickled.
    """

    config_class: ClassVar[type]
    config: Any

    def save_pretrained(self, folder: str | os.PathLike, overwrite: bool = True, extra: dict[str, Any] | None = None) -> Path:
        """Write the model folder atomically; ``extra`` keys (e.g. training notes) go into config.json."""
        assert isinstance(self, nn.Module)
        config = {"model_class": type(self).__name__, **dataclasses.asdict(self.config), **(extra or {})}
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        with atomic_dir(folder, overwrite=overwrite) as tmp:
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
            save_file(state, str(tmp / WEIGHTS_NAME))
        return Path(folder)

    @classmethod
    def read_config(cls, folder: str | os.PathLike) -> Any:
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{folder} is not a model folder: {CONFIG_NAME} is missing")
        data = json.loads(path.read_text())
        found = data.pop("model_class", cls.__name__)
        if found != cls.__name__:
            raise ValueError(f"{folder} holds a {found}, not a {cls.__name__}")
        fields = {f.name for f in dataclasses.fields(cls.config_class)}
        return _from_json(cls.config_class, {k: v for k, v in data.items() if k in fields})

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
        config = cls.read_config(folder)
        weights = Path(folder) / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{folder} is not a model folder: {WEIGHTS_NAME} is missing")
        model = cls(config)
        missing, unexpected = model.load_state_dict(load_file(str(weights)), strict=False)
        if missing or unexpected:
            raise ValueError(f"{weights} does not fit {cls.__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        return model.to(device=device, dtype=dtype).eval()
