"""Built-in models (names -> folders shipped inside the package) and resolving --model arguments."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

BUILTIN_DIR = Path(__file__).parent / "builtin"
DEFAULT_MODEL = "shapes-t2v"
CARD_NAME = "MODEL_CARD.md"


@dataclass
class ModelInfo:
    name: str
    path: Path
    summary: str  # the card's first paragraph

    @property
    def card(self) -> str:
        card = self.path / CARD_NAME
        return card.read_text() if card.exists() else ""


def builtin_models() -> list[ModelInfo]:
    """The models shipped inside the package, with the first paragraph of each card."""
    models = []
    if BUILTIN_DIR.is_dir():
        for folder in sorted(p for p in BUILTIN_DIR.iterdir() if (p / "config.json").is_file()):
            card = folder / CARD_NAME
            text = card.read_text() if card.exists() else ""
            paragraphs = [p.strip() for p in text.split("\n\n") if p.strip() and not p.lstrip().startswith("#")]
            models.append(ModelInfo(folder.name, folder, " ".join(paragraphs[0].split()) if paragraphs else ""))
    return models


def resolve_model(model: str | os.PathLike | None) -> Path:
    """A built-in name, a model folder, or a training run folder (its model/) -> the model folder."""
    if model is None:
        model = DEFAULT_MODEL
    path = Path(model)
    if path.is_dir():
        if (path / "config.json").is_file():
            return path
        if (path / "model" / "config.json").is_file():  # a run folder
            return path / "model"
        raise FileNotFoundError(f"{path} is neither a model folder (config.json + model.safetensors) nor a training run folder (model/)")
    builtin = BUILTIN_DIR / str(model)
    if (builtin / "config.json").is_file():
        return builtin
    names = ", ".join(m.name for m in builtin_models()) or "none shipped yet"
    raise FileNotFoundError(f"no model {str(model)!r}: not a folder and not a built-in model (built-ins: {names})")


def model_class(folder: Path) -> str:
    """The network class a model folder holds (config.json's model_class, or diffusers' _class_name)."""
    config = json.loads((folder / "config.json").read_text())
    return config.get("model_class") or config.get("_class_name", "")
