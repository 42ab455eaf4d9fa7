"""Atomic writes leave either the whole new file or the old state, never a part."""

import os
import stat

import pytest

from kinema.io.atomic import atomic_dir, atomic_path


def test_file_appears_only_on_success_with_ordinary_permissions(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("hello")
        assert not target.exists()
    assert target.read_text() == "hello"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["out.txt"]


def test_failure_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, overwrite=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("encoder died")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
    with pytest.raises(FileExistsError, match="overwrite"):
        with atomic_path(target):
            pass


def test_folder_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "frames"
    with atomic_dir(target) as tmp:
        (tmp / "a.png").write_bytes(b"1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target, overwrite=True) as tmp:
            (tmp / "b.png").write_bytes(b"2")
            raise RuntimeError("interrupted")
    assert sorted(os.listdir(target)) == ["a.png"] and os.listdir(tmp_path) == ["frames"]
    with atomic_dir(target, overwrite=True) as tmp:
        (tmp / "b.png").write_bytes(b"2")
    assert sorted(os.listdir(target)) == ["b.png"] and os.listdir(tmp_path) == ["frames"]
    assert stat.S_IMODE(target.stat().st_mode) & 0o055  # readable by others, like any folder


def test_folder_files_a_writer_made_private_come_out_ordinary(tmp_path):
    from safetensors.torch import save_file
    import torch

    umask = os.umask(0)
    os.umask(umask)
    with atomic_dir(tmp_path / "model") as tmp:
        save_file({"w": torch.zeros(2)}, str(tmp / "model.safetensors"))
    assert stat.S_IMODE((tmp_path / "model" / "model.safetensors").stat().st_mode) == 0o666 & ~umask


def test_a_plain_string_target_is_accepted(tmp_path):
    """Callers pass str paths as often as Path objects; both must write the file."""
    with atomic_path(str(tmp_path / "out.txt")) as tmp:
        tmp.write_text("from a str")
    with atomic_dir(str(tmp_path / "frames")) as tmp:
        (tmp / "a.png").write_bytes(b"1")
    assert (tmp_path / "out.txt").read_text() == "from a str"
    assert os.listdir(tmp_path / "frames") == ["a.png"]


def test_a_file_that_appears_while_writing_is_kept_not_replaced(tmp_path):
    """Another process's output that shows up mid-write must survive, with an error saying what happened."""
    target = tmp_path / "out.txt"
    with pytest.raises(FileExistsError, match="appeared while writing"):
        with atomic_path(target) as tmp:
            tmp.write_text("ours")
            target.write_text("theirs")
    assert target.read_text() == "theirs" and os.listdir(tmp_path) == ["out.txt"]
    folder = tmp_path / "frames"
    with pytest.raises(FileExistsError, match="appeared while writing"):
        with atomic_dir(folder) as tmp:
            (tmp / "ours.png").write_bytes(b"1")
            folder.mkdir()
            (folder / "theirs.png").write_bytes(b"2")
    assert os.listdir(folder) == ["theirs.png"] and sorted(os.listdir(tmp_path)) == ["frames", "out.txt"]


def test_an_existing_folder_is_refused_before_anything_is_written(tmp_path):
    """Without overwrite, an existing target fails at once, so no slow write is wasted and nothing is left over."""
    (tmp_path / "frames").mkdir()
    ran = []
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        with atomic_dir(tmp_path / "frames") as tmp:
            ran.append(tmp)
    assert ran == [] and os.listdir(tmp_path) == ["frames"]
