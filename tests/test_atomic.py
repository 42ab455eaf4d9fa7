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


@pytest.mark.parametrize("name", ["clip.mp4", "README", "frames"])
def test_work_in_progress_is_hidden_beside_the_target_and_nothing_else_is_left(tmp_path, name):
    """While writing, the partial file or folder is a dot-file next to the target (so `ls` and globs for the real
    name never see it), keeping the suffix for format-sniffing writers; afterwards only the target remains."""
    file_target, dir_target = tmp_path / "files" / name, tmp_path / "dirs" / name
    with atomic_path(file_target) as tmp:
        assert tmp.parent == file_target.parent and tmp.exists()
        assert tmp.name.startswith(f".{file_target.stem}.") and tmp.name.endswith(f".tmp{file_target.suffix}")
        tmp.write_text("done")
    with atomic_dir(dir_target) as tmp:
        assert tmp.parent == dir_target.parent and tmp.is_dir()
        assert tmp.name.startswith(f".{name}.") and tmp.name.endswith(".tmp")
        (tmp / "0000.png").write_bytes(b"1")
    assert os.listdir(tmp_path / "files") == [name] and file_target.read_text() == "done"
    assert os.listdir(tmp_path / "dirs") == [name] and os.listdir(dir_target) == ["0000.png"]


def test_fsync_dir_is_a_no_op_where_the_os_cannot_flush_a_folder(tmp_path, monkeypatch):
    """Some filesystems refuse to open or fsync a directory; a finished write must not fail because of it."""
    from kinema.io import atomic

    def refuse(error):
        def call(*args):
            raise error
        return call

    closed = []
    real_close = os.close
    with monkeypatch.context() as patch:
        patch.setattr(atomic.os, "fsync", refuse(OSError(22, "Invalid argument")))
        patch.setattr(atomic.os, "close", lambda fd: (closed.append(fd), real_close(fd)))
        assert atomic.fsync_dir(tmp_path) is None
    assert len(closed) == 1  # the folder's descriptor is closed even so
    with monkeypatch.context() as patch:
        patch.setattr(atomic.os, "open", refuse(PermissionError(13, "Permission denied")))
        assert atomic.fsync_dir(tmp_path) is None


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads open descriptors from /proc")
def test_every_file_is_flushed_before_the_rename_and_the_folder_after_it(tmp_path, monkeypatch):
    """A power cut just after a write returns must not leave an empty file or a lost rename behind."""
    from kinema.io import atomic

    flushed = []  # (what was flushed, whether the target existed yet)
    real_fsync = os.fsync

    def recording_fsync(fd):
        flushed.append((os.path.basename(os.readlink(f"/proc/self/fd/{fd}")), current.exists()))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", recording_fsync)
    current = tmp_path / "out.bin"
    with atomic_path(current) as tmp:
        tmp.write_bytes(b"data")
    assert flushed == [(tmp.name, False), (tmp_path.name, True)]
    flushed.clear()
    current = tmp_path / "model"
    with atomic_dir(current) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "a.bin").write_bytes(b"1")
        (tmp / "sub" / "b.bin").write_bytes(b"2")
    assert sorted(flushed[:2]) == [("a.bin", False), ("b.bin", False)]
    assert flushed[2:] == [(tmp.name, False), (tmp_path.name, True)]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads open descriptors from /proc")
def test_atomic_writes_leave_no_file_descriptor_open(tmp_path):
    """A batch of thousands of clips must not run out of file descriptors, whether each write succeeds or fails."""
    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    for i in range(20):
        with atomic_path(tmp_path / f"{i}.bin") as tmp:
            tmp.write_bytes(b"x")
        with pytest.raises(RuntimeError):
            with atomic_path(tmp_path / f"failed{i}.bin") as tmp:
                raise RuntimeError("encoder died")
        with atomic_dir(tmp_path / f"dir{i}") as tmp:
            (tmp / "a").write_bytes(b"x")
    assert open_fds() == before
    assert len(os.listdir(tmp_path)) == 40
