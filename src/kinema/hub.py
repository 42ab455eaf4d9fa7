"""Model folders: the one format every Kinema model is saved in, the built-in models, and resolving --model.

A model folder (format 1, docs/model_format.md)::

    model_index.json             what the folder is: pipeline, components, sampling settings, training
    MODEL_CARD.md                what the model does, how it was made and measured
    denoiser/                    one subfolder per component: config.json (with "model_class") + model.safetensors
    discriminator.safetensors    optional: modules only fine-tuning needs (a GAN's critic), named in "fine_tuning"

model_index.json, in the spirit of diffusers' file of the same name::

    {
      "_kinema_version": "0.2.0",
      "format": 1,
      "pipeline": "diffusion",                     # the registered pipeline that drives it; null: not a generator
      "purpose": "generation",                     # or "autoencoder" (reconstruct, interpolate; a latent model's
                                                   # frozen component) or "evaluation" (a judge, e.g. the Shapes classifier)
      "components": {
        "denoiser": "denoiser",                    # a subfolder of this folder
        "vae": {"model": "shapes-vae", "component": "vae"}   # or a frozen component of another model (built-in or path)
      },
      "settings": {...},                           # the pipeline's sampling settings (its dataclass, strictly checked)
      "training": {"family": "diffusion", "step": 10000, "weights": "ema"},
      "fine_tuning": {"discriminator": "discriminator.safetensors"},
      "vocabulary": {...}                          # optional: the closed vocabulary a text model was trained on
    }                                              # (kinema.text.Vocabulary), which prompts are mapped onto

Older folders (config.json + model.safetensors + pipeline.json side by side) and training run folders
(their newest checkpoint, EMA weights where kept) still load. A key this module does not know is an
error naming the key and the file, never silently dropped.

A folder saved by diffusers (its model_index.json names "_diffusers_version") or a Hugging Face hub id
(org/name) opens as a "diffusers" model, which kinema.pipelines.diffusers_backend drives.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kinema.io.atomic import atomic_path
from kinema.models.base import CONFIG_NAME, WEIGHTS_NAME, check_keys, read_model_class

BUILTIN_DIR = Path(__file__).parent / "builtin"
DEFAULT_MODEL = "shapes-t2v"
CARD_NAME = "MODEL_CARD.md"
INDEX_NAME = "model_index.json"
LEGACY_SETTINGS_NAME = "pipeline.json"  # format 0: the settings beside a single network
FORMAT_VERSION = 1
PURPOSES = ("generation", "autoencoder", "evaluation", "test")
LEGACY_COMPONENT = "model"  # the one component of a format-0 folder, before the registry names it
DIFFUSERS_SETTINGS_NAME = "kinema.json"  # optional, beside a diffusers model_index.json: Kinema's call defaults
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # org/name on the Hugging Face hub


class ModelFormatError(ValueError):
    """A model folder that cannot be read as one: missing files, unknown keys, broken references."""


@dataclass
class ModelIndex:
    """model_index.json as data."""

    pipeline: str | None = None
    purpose: str = "generation"
    components: dict[str, str | dict[str, str]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    fine_tuning: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT_VERSION
    kinema_version: str = ""  # "_kinema_version" in the file: who wrote it
    vocabulary: dict[str, Any] | None = None  # kinema.text.Vocabulary.to_json(); None: the model takes any wording

    def to_json(self) -> dict[str, Any]:
        from kinema import __version__

        data = asdict(self)
        data.pop("kinema_version")
        if data["vocabulary"] is None:
            data.pop("vocabulary")  # folders without one read as before
        return {"_kinema_version": __version__, **data}

    @classmethod
    def read(cls, path: Path) -> ModelIndex:
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelFormatError(f"{path} cannot be read as JSON ({error})") from None
        if not isinstance(data, dict):
            raise ModelFormatError(f"{path} must hold a JSON object, got {type(data).__name__}")
        check_keys(data, [k for k in cls.__dataclass_fields__ if k != "kinema_version"], str(path))
        index = cls(**{k: v for k, v in data.items() if not k.startswith("_")}, kinema_version=str(data.get("_kinema_version", "")))
        if index.format != FORMAT_VERSION:
            raise ModelFormatError(f"{path} is model format {index.format!r}; this Kinema reads format {FORMAT_VERSION} (upgrade Kinema)")
        if index.purpose not in PURPOSES:
            raise ModelFormatError(f"{path}: purpose must be one of {', '.join(PURPOSES)}, got {index.purpose!r}")
        if index.purpose == "generation" and not index.pipeline:
            raise ModelFormatError(f"{path}: a generation model must name its pipeline")
        for name, ref in index.components.items():
            if isinstance(ref, dict):
                check_keys(ref, ["model", "component"], f"{path} components.{name}")
                if set(ref) != {"model", "component"}:
                    raise ModelFormatError(f"{path} components.{name} must give both 'model' and 'component', got {sorted(ref)}")
            elif not isinstance(ref, str):
                raise ModelFormatError(f"{path} components.{name} must be a subfolder name or {{'model': ..., 'component': ...}}")
        if index.vocabulary is not None:
            from kinema.text.vocabulary import Vocabulary, VocabularyError

            try:
                Vocabulary.from_json(index.vocabulary, f"{path} vocabulary")
            except VocabularyError as error:
                raise ModelFormatError(str(error)) from None
        return index

    def write(self, folder: Path) -> None:
        with atomic_path(folder / INDEX_NAME, overwrite=True) as tmp:
            tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")


@dataclass
class ModelFolder:
    """An opened model: where it is, its index, and how the user named it."""

    path: Path
    index: ModelIndex
    name: str  # the built-in name or the path as given
    legacy: bool = False  # format 0 (one network, pipeline.json beside it)
    run: Path | None = None  # set when the model came from a training run's newest checkpoint
    _tmp: Any = None  # keeps a run's temporary export alive while the model is open
    hub_id: str | None = None  # a diffusers pipeline named by its hub id: path is its local snapshot (configs at least)
    hub_offline: bool = False  # the hub could not be reached when it was opened: load from the cache only

    def component(self, name: str, _depth: int = 0) -> Path:
        """The folder holding component NAME's config.json + model.safetensors (references followed)."""
        if name not in self.index.components:
            raise ModelFormatError(f"{self.where}: no component {name!r}; it has {', '.join(self.index.components) or 'none'}")
        ref = self.index.components[name]
        if isinstance(ref, dict):
            if _depth > 8:
                raise ModelFormatError(f"{self.where}: components.{name} references go round in a circle")
            base = ref["model"]
            other = open_model(self.path / base if (self.path / base).is_dir() else base)
            return other.component(ref["component"], _depth + 1)
        folder = (self.path / ref).resolve()
        if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
            raise ModelFormatError(f"{self.where}: component {name!r} needs {folder / CONFIG_NAME} and {folder / WEIGHTS_NAME}")
        return folder

    def component_class(self, name: str) -> str:
        return read_model_class(self.component(name))

    def fine_tuning_file(self, name: str) -> Path | None:
        """Module NAME's weights kept for fine-tuning (a GAN's discriminator), or None."""
        if name in self.index.fine_tuning:
            return self.path / self.index.fine_tuning[name]
        legacy = self.path / f"{name}.safetensors"
        return legacy if self.legacy and legacy.is_file() else None

    @property
    def vocabulary(self):
        """The closed vocabulary the model declares (a kinema.text.Vocabulary), or None."""
        from kinema.text.vocabulary import Vocabulary

        return None if self.index.vocabulary is None else Vocabulary.from_json(self.index.vocabulary, f"{self.where} vocabulary")

    @property
    def diffusers(self) -> bool:
        """A pipeline saved by diffusers (driven by kinema.pipelines.diffusers_backend)."""
        return self.index.pipeline == "diffusers"

    @property
    def where(self) -> str:
        return str(self.path / (LEGACY_SETTINGS_NAME if self.legacy else INDEX_NAME))

    @property
    def card(self) -> str:
        card = self.path / CARD_NAME
        return card.read_text() if card.is_file() else ""

    @property
    def summary(self) -> str:
        """The card's first paragraph that is not a heading."""
        paragraphs = [p.strip() for p in self.card.split("\n\n") if p.strip() and not p.lstrip().startswith("#")]
        return " ".join(paragraphs[0].split()) if paragraphs else ""

    @property
    def size_bytes(self) -> int:
        """Bytes of the weights this folder holds itself (referenced components not counted)."""
        return sum(p.stat().st_size for p in self.path.rglob("*.safetensors"))


def is_model_folder(path: Path) -> bool:
    return (path / INDEX_NAME).is_file() or (path / CONFIG_NAME).is_file()


def is_diffusers_folder(path: Path) -> bool:
    """A folder saved by diffusers' save_pretrained (its model_index.json names "_diffusers_version")."""
    try:
        return "_diffusers_version" in json.loads((path / INDEX_NAME).read_text())
    except (OSError, ValueError):
        return False


def names_diffusers(model: str | os.PathLike | None) -> bool:
    """Whether ``model`` names a diffusers pipeline (a folder diffusers saved, or a hub id), without opening it."""
    if model is None:
        return False
    path = Path(model)
    if path.exists():
        return path.is_dir() and is_diffusers_folder(path)
    return HUB_ID.fullmatch(str(model)) is not None


def open_model(model: str | os.PathLike | None = None) -> ModelFolder:
    """A built-in name, a model folder (format 1 or 0) or a training run folder -> the opened model.

    A run folder gives its newest valid checkpoint (EMA weights where the run keeps them), exported
    to a temporary folder that lives as long as the returned object; its finished export (run/model)
    is used instead when it is as new.
    """
    model = DEFAULT_MODEL if model is None else model
    path = Path(model)
    if path.is_dir():
        if is_diffusers_folder(path):
            return _open_diffusers(path, str(model))
        if (path / "checkpoints").is_dir() or (not is_model_folder(path) and is_model_folder(path / "model")):
            return _open_run(path)
        if is_model_folder(path):
            return _open_folder(path, str(model))
        raise FileNotFoundError(f"{path} is neither a model folder ({INDEX_NAME}) nor a training run folder (checkpoints/ or model/)")
    if path.exists():
        raise FileNotFoundError(f"{path} is a file; --model takes a built-in name, a model folder or a training run folder")
    builtin = BUILTIN_DIR / str(model)
    if str(model) and "/" not in str(model) and is_model_folder(builtin):
        return _open_folder(builtin, str(model))
    if HUB_ID.fullmatch(str(model)):
        return _open_hub(str(model))
    names = ", ".join(m.name for m in builtin_models()) or "none shipped yet"
    raise FileNotFoundError(f"no model {str(model)!r}: not a folder and not a built-in model (built-ins: {names})")


def _open_folder(path: Path, name: str) -> ModelFolder:
    if (path / INDEX_NAME).is_file():
        return ModelFolder(path, ModelIndex.read(path / INDEX_NAME), name)
    # format 0: config.json + model.safetensors (+ pipeline.json) of one network; the registry names its pipeline
    config = json.loads((path / CONFIG_NAME).read_text())
    settings_file = path / LEGACY_SETTINGS_NAME
    settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    index = ModelIndex(
        pipeline=None, purpose="generation" if settings_file.is_file() else "evaluation",
        components={LEGACY_COMPONENT: "."}, settings=settings, training=config.get("_kinema_training", {}),
    )
    return ModelFolder(path, index, name, legacy=True)


def _open_diffusers(path: Path, name: str, hub_id: str | None = None, offline: bool = False) -> ModelFolder:
    """A folder diffusers saved, as a model for the "diffusers" pipeline; its kinema.json (optional) gives
    the call defaults Kinema uses instead of the pipeline's own."""
    settings: dict[str, Any] = {}
    if (path / DIFFUSERS_SETTINGS_NAME).is_file():
        try:
            settings = json.loads((path / DIFFUSERS_SETTINGS_NAME).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelFormatError(f"{path / DIFFUSERS_SETTINGS_NAME} cannot be read as JSON ({error})") from None
        if not isinstance(settings, dict):
            raise ModelFormatError(f"{path / DIFFUSERS_SETTINGS_NAME} must hold a JSON object, got {type(settings).__name__}")
    index = ModelIndex(pipeline="diffusers", settings=settings, kinema_version=str(settings.get("_kinema_version", "")))
    return ModelFolder(path, index, name, hub_id=hub_id, hub_offline=offline)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within ``timeout`` seconds (False when
    HF_HUB_OFFLINE is set). Runs in a thread, so a resolver that hangs cannot hang Kinema."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    answer: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((url.hostname or "", url.port or (443 if url.scheme == "https" else 80)), timeout=timeout).close()
            answer.append(True)
        except (OSError, ValueError):
            answer.append(False)

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout + 0.5)
    return bool(answer and answer[0])


def _open_hub(repo_id: str) -> ModelFolder:
    """A diffusers pipeline by hub id: its configs from the local cache (offline) or the hub; the weights
    are left for diffusers to fetch when the pipeline loads."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    offline = not hub_reachable()
    local = f"./{repo_id.split('/')[-1]}"
    try:
        path = Path(snapshot_download(repo_id, local_files_only=offline, allow_patterns=["*.json", "*.txt", "*.model"]))
    except LocalEntryNotFoundError:
        raise FileNotFoundError(
            f"no model {repo_id!r} here: not a folder or a built-in model, and as a Hugging Face hub id it is not in the local "
            f"cache while the hub cannot be reached (offline); download it where there is a network and pass the folder, "
            f"e.g. --model {local}") from None
    except RepositoryNotFoundError:
        raise FileNotFoundError(f"no model {repo_id!r}: not a folder, not a built-in model, and no repository of the Hugging Face hub") from None
    if not is_diffusers_folder(path):
        raise ModelFormatError(f"{repo_id} on the Hugging Face hub is not a diffusers pipeline (no model_index.json naming _diffusers_version)")
    return _open_diffusers(path, repo_id, hub_id=repo_id, offline=offline)


def _open_run(run: Path) -> ModelFolder:
    from kinema.training.checkpoint import list_checkpoints

    exported = run / "model"
    checkpoints = list_checkpoints(run / "checkpoints")
    if is_model_folder(exported):
        folder = _open_folder(exported, str(run))
        if not checkpoints or folder.index.training.get("step", -1) >= checkpoints[-1][0]:
            folder.run = run
            return folder
    if not checkpoints:
        raise FileNotFoundError(f"{run} is a training run folder without checkpoints or an exported model yet")
    from kinema.training.export import export_checkpoint

    tmp = tempfile.TemporaryDirectory(prefix="kinema-run-")
    export_checkpoint(run, Path(tmp.name) / "model", sampling_only=True)
    folder = _open_folder(Path(tmp.name) / "model", str(run))
    folder.run, folder._tmp = run, tmp
    return folder


def builtin_models() -> list[ModelFolder]:
    """The models shipped inside the package."""
    if not BUILTIN_DIR.is_dir():
        return []
    return [_open_folder(p, p.name) for p in sorted(BUILTIN_DIR.iterdir()) if is_model_folder(p)]
