"""--device and --dtype resolve the same way on every machine: GPUs faked here, so a CPU runner checks the GPU rules."""

from __future__ import annotations

import pytest
import torch

from kinema.device import resolve_device, resolve_dtype


@pytest.fixture
def machine(monkeypatch):
    """Pretend the machine has `cuda` GPUs (bf16 or not) and MPS or not."""

    def fake(cuda: int = 0, bf16: bool = True, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return fake


@pytest.mark.parametrize(
    "cuda, mps, expected",
    [(0, False, "cpu"), (1, False, "cuda"), (2, True, "cuda"), (0, True, "mps")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(machine, cuda, mps, expected):
    machine(cuda=cuda, mps=mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device(None) == torch.device(expected)


def test_a_named_gpu_must_exist(machine):
    machine(cuda=2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device(torch.device("cuda")) == torch.device("cuda")
    with pytest.raises(ValueError, match=r"device cuda:2 asked for, but this machine has 2 CUDA GPU\(s\)"):
        resolve_device("cuda:2")
    machine(cuda=0)
    with pytest.raises(ValueError, match="device cuda asked for, but this machine has no CUDA GPU"):
        resolve_device("cuda")


def test_mps_only_where_it_is_available(machine):
    machine(mps=True)
    assert resolve_device("mps") == torch.device("mps")
    machine(mps=False)
    with pytest.raises(ValueError, match="device mps asked for, but MPS is not available here"):
        resolve_device("mps")


@pytest.mark.parametrize("name", ["gpu", "meta", "xla", 3.5, "xla:1", "meta:0"])
def test_unknown_devices_are_named(name):
    """The error quotes the device as the user wrote it, index and all ("xla:1", not "xla")."""
    with pytest.raises(ValueError, match=r"device must be auto, cpu, cuda, cuda:N or mps, got") as error:
        resolve_device(name)
    assert str(error.value).endswith(f"got {name!r}"), str(error.value)


@pytest.mark.parametrize(
    "device, bf16, expected",
    [("cpu", True, torch.float32), ("cuda", True, torch.bfloat16), ("cuda", False, torch.float16), ("mps", True, torch.float32)],
)
def test_auto_dtype_per_device(machine, device, bf16, expected):
    machine(cuda=1, bf16=bf16)
    assert resolve_dtype("auto", torch.device(device)) == expected
    assert resolve_dtype(None, torch.device(device)) == expected


def test_explicit_dtypes_pass_and_others_are_refused():
    cpu = torch.device("cpu")
    for name, dtype in [("float32", torch.float32), ("bfloat16", torch.bfloat16), ("float16", torch.float16)]:
        assert resolve_dtype(name, cpu) == dtype and resolve_dtype(dtype, cpu) == dtype
    with pytest.raises(ValueError, match="dtype must be one of float32, bfloat16, float16, got torch.float64"):
        resolve_dtype(torch.float64, cpu)
    with pytest.raises(ValueError, match="dtype must be auto or one of float32, bfloat16, float16, got 'half'"):
        resolve_dtype("half", cpu)


@pytest.mark.parametrize("idle, local_world_size, expected", [(8, None, 8), (8, "2", 4), (7, "2", 3), (3, "4", 1), (1, "1", 1)])
def test_idle_cores_are_shared_among_the_processes_of_a_launch(monkeypatch, idle, local_world_size, expected):
    """Four processes of `accelerate launch` on an 8-core box must take 2 threads each, not 8 each (32 threads fighting)."""
    from kinema import threads

    before = torch.get_num_threads()
    for name in ("KINEMA_THREADS", "OMP_NUM_THREADS", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    if local_world_size is not None:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local_world_size)
    monkeypatch.setattr(threads, "idle_cores", lambda probe_seconds=0.1: idle)
    try:
        assert threads.configure_threads() == expected and torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("value, message", [
    (0, "--threads must be a whole number of threads from 1 to 4096, got 0"),
    (4097, "--threads must be a whole number of threads from 1 to 4096, got 4097"),
    ("two", "--threads must be a whole number of threads >= 1, got 'two'"),
])
def test_a_thread_count_out_of_range_is_refused_with_the_range(value, message):
    """--threads 0 or a typo is refused before any work, saying what is allowed."""
    from kinema.threads import parse_threads

    with pytest.raises(ValueError) as error:
        parse_threads(value, "--threads")
    assert str(error.value) == message
    assert parse_threads(1, "--threads") == 1 and parse_threads("4096", "--threads") == 4096
