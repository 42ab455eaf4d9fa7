"""Training checkpoints: one self-verifying file per step, written atomically, the newest K kept.

A checkpoint is `run/checkpoints/step_000123.pt`: a torch.save of tensors and plain Python
values only (loaded with weights_only=True), holding a sha256 of its own content so that a
truncated or bit-flipped file is recognised and the previous checkpoint used instead.
Exported models never use this format (they are config.json + model.safetensors).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kinema.io.atomic import atomic_path

FORMAT = "kinema-checkpoint-1"
_NAME = re.compile(r"^step_(\d+)\.pt$")


class CorruptCheckpoint(Exception):
    """The file is not a complete, unmodified kinema checkpoint."""


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step_{step:06d}.pt"


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint file in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name)) and p.is_file()]
    return sorted(found)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` (tensors and plain values) to `path` with its digest: temp file, fsync, rename."""
    state = {**to_cpu(state), "format": FORMAT}
    state["digest"] = digest(state)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load and verify a checkpoint; raise CorruptCheckpoint saying why it cannot be used."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, garbage bytes, unpickling errors: all mean "unusable"
        raise CorruptCheckpoint(f"cannot be read ({type(error).__name__}: {str(error).splitlines()[0][:120]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "digest" not in state:
        raise CorruptCheckpoint("is not a kinema checkpoint")
    expected = state.pop("digest")
    if digest(state) != expected:
        raise CorruptCheckpoint("does not match its digest (the file was modified or damaged)")
    return state


def load_latest(directory: Path, warn: Callable[[str], None]) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in `directory` that verifies, warning about each newer one that does not."""
    for step, path in reversed(list_checkpoints(directory)):
        try:
            return path, load_checkpoint(path)
        except CorruptCheckpoint as error:
            warn(f"checkpoint {path} {error}; falling back to the previous one")
    return None


def prune_checkpoints(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` checkpoints; return what was deleted."""
    old = [path for _, path in list_checkpoints(directory)[:-keep]]
    for path in old:
        path.unlink(missing_ok=True)
    return old


def remove_partial_writes(directory: Path) -> None:
    """Temporary files left by a process killed mid-write (atomic_path names them .step_*.tmp.pt)."""
    if directory.is_dir():
        for path in directory.glob(".step_*.tmp*"):
            path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- content


def digest(obj: Any) -> str:
    """sha256 over a nested structure of tensors and plain values, in order."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h: hashlib._Hash, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(b"{")
        for key, value in obj.items():
            _feed(h, key)
            _feed(h, value)
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[" if isinstance(obj, list) else b"(")
        for value in obj:
            _feed(h, value)
        h.update(b"]")
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def to_cpu(obj: Any) -> Any:
    """Tensors moved to the CPU (and numpy arrays turned into tensors) throughout a nested structure."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, dict):
        return {key: to_cpu(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [to_cpu(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(to_cpu(value) for value in obj)
    return obj


# ---------------------------------------------------------------------------- RNG


def capture_rng() -> dict[str, Any]:
    """Every RNG this process draws from: Python, NumPy, torch CPU and each CUDA device."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(_as_tuples(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


def _as_tuples(obj: Any) -> Any:
    return tuple(_as_tuples(v) for v in obj) if isinstance(obj, (list, tuple)) else obj
