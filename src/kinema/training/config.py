"""Run configs: typed dataclasses with documented defaults, loaded from YAML with named errors."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml


class ConfigError(ValueError):
    """A config value or key is wrong; the message names the key and what is allowed."""


@dataclass
class TrainConfig:
    """The `train:` section, shared by every family. All defaults are here and nowhere else."""

    max_steps: int = 1000  # optimizer steps in the whole run; the LR schedule is defined over these
    batch_size: int = 32  # global batch per step, split over processes and accumulation micro-batches
    gradient_accumulation_steps: int = 1  # micro-batches per process per step
    lr: float = field(default=1e-4, metadata={"aliases": ("learning_rate", "lr_max")})  # peak learning rate
    lr_schedule: Literal["cosine", "constant"] = "cosine"  # shape after warmup
    warmup_steps: int = 0  # linear warmup from 0 to lr over these steps
    min_lr_ratio: float = 0.1  # cosine ends at lr * min_lr_ratio at max_steps
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW betas
    eps: float = 1e-8  # AdamW epsilon
    max_grad_norm: float | None = 1.0  # clip the global grad norm to this; null disables clipping
    ema_decay: float | None = 0.999  # EMA of the weights (exported when on); null disables EMA
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"  # bf16 autocast on CPU or GPU; fp16 + scaler on GPU only
    compile: bool | list[str] = False  # torch.compile the trained modules (true), or the ones named, e.g. [generator]
    fsdp: bool = False  # shard with FSDP2 instead of DDP when launched on several processes (GPU only)
    cpu: bool = False  # train on the CPU even when a GPU is present
    find_unused_parameters: bool = False  # DDP option for objectives whose phases leave parameters unused
    seed: int = 0  # seeds weights, data order and every RNG
    # fine-tuning: a new run starts from these weights (a built-in model's name, a model folder, a run folder or a
    # checkpoint file; EMA weights where the checkpoint has them) with a fresh optimizer and LR schedule
    init_from: str | None = None
    # grow a model while fine-tuning: tensors the source lacks or holds in another shape (layers this config
    # adds or widens, e.g. more temporal levels) keep their fresh initialisation, named in the log, instead
    # of failing the load; weights this config has no place for still fail
    init_partial: bool = False
    num_workers: int = 0  # DataLoader worker processes per training process
    checkpoint_every: int = 500  # steps between checkpoints (also written on stop and at the end)
    keep_checkpoints: int = 3  # newest checkpoints kept in run/checkpoints
    log_every: int = 10  # steps between metrics.jsonl / TensorBoard scalar entries
    sample_every: int = 0  # steps between preview samples (GIF + TensorBoard image); 0 disables
    num_samples: int = 4  # clips per preview

    def __post_init__(self) -> None:
        positive = ("max_steps", "batch_size", "gradient_accumulation_steps", "checkpoint_every", "keep_checkpoints", "log_every", "num_samples")
        for name in positive:
            if getattr(self, name) < 1:
                raise _error(f"train.{name}", f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "sample_every", "num_workers"):
            if getattr(self, name) < 0:
                raise _error(f"train.{name}", f"train.{name} must be 0 or more, got {getattr(self, name)}")
        if not 0 <= self.seed < 2**32:
            raise _error("train.seed", f"train.seed must be in [0, 2**32), got {self.seed}")
        if not self.lr > 0:
            raise _error("train.lr", f"train.lr must be positive, got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise _error("train.min_lr_ratio", f"train.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise _error("train.ema_decay", f"train.ema_decay must be in (0, 1) or null, got {self.ema_decay}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise _error("train.max_grad_norm", f"train.max_grad_norm must be positive or null, got {self.max_grad_norm}")
        if self.fsdp and self.ema_decay is not None:
            raise _error("train.fsdp", "train.fsdp does not support EMA yet: set train.ema_decay: null")


@dataclass
class RunConfig:
    """A whole run: the family picks the classes of `model`, `data` and `objective` (see objectives.register_family)."""

    family: str  # registered family name, e.g. "toy", "diffusion", "gan"
    model: Any  # the family's model config dataclass (saved with the exported weights)
    data: Any  # the family's data config dataclass
    train: TrainConfig = field(default_factory=TrainConfig)
    objective: Any = None  # the family's objective config dataclass, or None when it has none

    def to_dict(self) -> dict:
        return to_dict(self)


# ---------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """YAML 1.2 scalars: only true/false are booleans (`no` stays a string), and 1e-4 is a float."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


# ---------------------------------------------------------------------------- loading


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a run config from YAML, apply `key.sub=value` overrides, and validate it against the family's schema."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text: is it a YAML config?") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(error).split())}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections (family, model, data, train, objective), got {type(raw).__name__}")
    override_keys = []
    for item in overrides:
        override_keys.append(apply_override(raw, item))
    try:
        return build_run_config(raw)
    except ConfigError as error:
        key = getattr(error, "key", None)
        source = f"--set {key}" if key is not None and key in override_keys else str(path)
        raise ConfigError(f"{source}: {error}") from None


def apply_override(raw: dict, item: str) -> str:
    """Set `a.b.c=value` in a raw config dict, the value parsed as YAML (so `1e-4`, `null`, `[1, 2]` work)."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: expected key.sub=value, e.g. train.max_steps=100")
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {item!r}: {'.'.join(parts[: depth + 1])} is a value, not a section")
        node = child
    node[parts[-1]] = parse_yaml(value) if value.strip() else ""
    return key


_SECTIONS = ("family", "model", "data", "train", "objective")


def build_run_config(raw: dict) -> RunConfig:
    """Validate a raw dict (as read from YAML) into a RunConfig; the family decides the section classes."""
    from kinema.training.objectives import get_family

    for key in raw:
        if key not in _SECTIONS:
            raise _unknown_key(str(key), "", {name: () for name in _SECTIONS})
    name = raw.get("family")
    if not isinstance(name, str):
        raise _error("family", f"family is required and must be a string naming a registered family, got {name!r}")
    family = get_family(name)

    def section(key: str, cls: type | None) -> Any:
        value = raw.get(key)
        if cls is None:
            if value:
                raise _error(key, f"family {name!r} takes no {key}: section")
            return None
        return from_dict(cls, {} if value is None else value, key)

    return RunConfig(
        family=name,
        model=section("model", family.model_config),
        data=section("data", family.data_config),
        train=section("train", TrainConfig),
        objective=section("objective", family.objective_config),
    )


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass `cls` from a plain dict, checking every key and type; `prefix` names the section in errors."""
    if not isinstance(data, dict):
        raise _error(prefix, f"{prefix or 'config'} must be a mapping of keys for {cls.__name__}, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    aliases = {f.name: tuple(f.metadata.get("aliases", ())) for f in fields.values()}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key(str(key), prefix, aliases)
        kwargs[key] = _convert(hints[key], value, _join(prefix, key))
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _error(_join(prefix, name), f"missing key '{_join(prefix, name)}' ({_describe(hints[name])}, no default)")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:
        raise _error(prefix, f"{prefix or cls.__name__}: {error}") from None


def to_dict(obj: Any) -> Any:
    """A dataclass config as plain YAML/JSON-safe values (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def dump_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{'train': {'lr': 1}} -> {'train.lr': 1}; used to report what changed between two configs."""
    if not isinstance(d, dict):
        return {prefix: d}
    out = {}
    for key, value in d.items():
        out.update(flatten(value, _join(prefix, str(key))))
    return out


# ---------------------------------------------------------------------------- type checks


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, {} if value is None else value, key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        for option in options:
            try:
                return _convert(option, value, key)
            except ConfigError:
                continue
        raise _wrong_type(tp, value, key)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise _error(key, f"{key} must be one of {', '.join(repr(a) for a in args)}, got {_show(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _wrong_type(tp, value, key)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _wrong_type(tp, value, key)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _error(key, f"{key} must be a finite number, got {value}")
            return float(value)
        raise _wrong_type(tp, value, key)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _wrong_type(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _wrong_type(tp, value, key)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise _error(key, f"{key} must have {len(args)} items ({_describe(tp)}), got {_show(value)}")
            return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _wrong_type(tp, value, key)
        value_type = args[1] if args else Any
        return {str(k): _convert(value_type, v, f"{key}.{k}") for k, v in value.items()}
    raise TypeError(f"config field {key} has a type the loader does not know: {tp!r}")


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return f"a mapping for {tp.__name__}"
    if origin in (Union, types.UnionType):
        options = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(options) + (" or null" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return "a list [" + ", ".join(_describe(a) for a in args) + "]"
        if not args or args[0] in _PLURALS:
            return f"a list of {_PLURALS[args[0]] if args else 'values'}"
        return f"a list, each item {_describe(args[0])}"
    if origin is dict:
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


_PLURALS = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}


def _wrong_type(tp: Any, value: Any, key: str) -> ConfigError:
    return _error(key, f"{key} must be {_describe(tp)}, got {_show(value)}")


def _unknown_key(key: str, prefix: str, aliases: dict[str, tuple[str, ...]]) -> ConfigError:
    """Name the unknown key, suggest the closest allowed one (or one whose alias is close), list what is allowed."""
    candidates = {name: name for name in aliases}
    for name, names in aliases.items():
        candidates.update({alias: name for alias in names})
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    hint = f"; did you mean '{_join(prefix, candidates[close[0]])}'?" if close else ""
    full = _join(prefix, key)
    return _error(full, f"unknown key '{full}'{hint} allowed{' in ' + prefix if prefix else ''}: {', '.join(aliases)}")


def _error(key: str, message: str) -> ConfigError:
    error = ConfigError(message)
    error.key = key  # lets load_config say whether the key came from the file or from --set
    return error


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _show(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"
