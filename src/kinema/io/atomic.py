"""Atomic writes: a failed or interrupted write never leaves a partial file or folder at the target."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush a directory entry (a rename) to disk; a no-op where the OS cannot."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_target(target: Path, overwrite: bool) -> None:
    if os.path.lexists(target) and not overwrite:  # a dangling symlink is something the user made too
        raise FileExistsError(f"{target} already exists (pass overwrite=True to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename it onto ``target``.

    The temporary name keeps the target's suffix, so writers that pick a format
    from the extension (FFmpeg, Pillow) still do. On any exception the temporary
    file is removed and the target is untouched. With ``overwrite=False`` an
    existing target raises ``FileExistsError`` before anything is written.
    """
    target = Path(target)
    _check_target(target, overwrite)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the user expects an ordinary file
        if not overwrite and os.path.lexists(target):
            raise FileExistsError(f"{target} appeared while writing; not replacing it")
        os.replace(tmp, target)  # a symlink at target is replaced itself: never written through
        fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Like ``atomic_path`` for a folder: fill a temporary folder beside ``target``, then rename it."""
    target = Path(target)
    _check_target(target, overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                with open(file, "rb+") as f:
                    os.fsync(f.fileno())
                if not file.stat().st_mode & 0o044:  # a writer that made it private (safetensors: 0600)
                    os.chmod(file, 0o666 & ~_umask())
        fsync_dir(tmp)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        _replace_dir(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_dir(tmp: Path, target: Path, overwrite: bool) -> None:
    if not os.path.lexists(target):
        os.replace(tmp, target)
    elif not overwrite:
        raise FileExistsError(f"{target} appeared while writing; not replacing it")
    else:
        # A folder cannot be renamed over a non-empty one: move the old one aside first.
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    fsync_dir(target.parent)
