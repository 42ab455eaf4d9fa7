"""How many CPU threads a command computes with: --threads, else $KINEMA_THREADS, else $OMP_NUM_THREADS,
else the idle cores.

PyTorch's default (one thread per core) stalls when another process keeps a core busy: every parallel
region waits for the thread that is not scheduled (issue 15 saw 35 s of sampling against 1.7 s with one
thread). So the default counts the cores that are idle right now and uses that many (at least one).
benchmarks/busy_machine.py, 2 cores (AMD EPYC), one kept busy: 1.3x the quiet time with this default,
2.1x with one thread per core.
"""

from __future__ import annotations

import os

import torch

ENV = "KINEMA_THREADS"
BUSY = 50.0  # a core above this utilisation (percent) over the probe counts as taken


def idle_cores(probe_seconds: float = 0.1) -> int:
    """Cores below BUSY% utilisation over ``probe_seconds`` (this process is not yet computing)."""
    import psutil

    usage = psutil.cpu_percent(interval=probe_seconds, percpu=True)
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else len(usage)
    return max(1, min(allowed, sum(u < BUSY for u in usage)))


def parse_threads(value: str | int, where: str) -> int:
    try:
        threads = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a whole number of threads >= 1, got {value!r}") from None
    if threads < 1 or threads > 4096:
        raise ValueError(f"{where} must be a whole number of threads from 1 to 4096, got {threads}")
    return threads


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads for this process and return how many: ``threads`` (--threads) when
    given, else $KINEMA_THREADS, else $OMP_NUM_THREADS, else the idle cores (shared among the processes
    of a distributed launch on this machine)."""
    if threads is not None:
        chosen = parse_threads(threads, "--threads")
    elif os.environ.get(ENV):
        chosen = parse_threads(os.environ[ENV], f"${ENV}")
    elif os.environ.get("OMP_NUM_THREADS"):
        chosen = parse_threads(os.environ["OMP_NUM_THREADS"], "$OMP_NUM_THREADS")
    else:
        chosen = max(1, idle_cores() // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    torch.set_num_threads(chosen)
    return chosen
