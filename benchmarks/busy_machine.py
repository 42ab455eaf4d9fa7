"""Does generation stall when another process keeps a core busy? (issue 15)

Times the sampling of one clip by `kinema generate` (a fresh process each time, so the default thread
count is chosen anew) on a quiet machine and beside competing CPU-bound processes, with Kinema's
default threads (the idle cores) and with one thread per core (PyTorch's default, what Kinema did
before). Target: busy <= 2.5x quiet with the default.

    python benchmarks/busy_machine.py [--model shapes-t2v] [--repeats 3]

Prints a table and writes benchmarks/results/busy_machine.json. Run it with nothing else computing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
PROMPT = "a small red circle moving left slowly"


def spin() -> None:
    while True:
        pass


def sampling_seconds(model: str, threads: int | None, repeats: int) -> float:
    """Best sampling time of `kinema generate` (as it reports it) over ``repeats`` fresh processes."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "KINEMA_THREADS")}
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            argv = [sys.executable, "-m", "kinema.cli", "generate", PROMPT, "--model", model, "-o", str(Path(tmp) / f"{i}.mp4"), "--device", "cpu"]
            if threads is not None:
                argv += ["--threads", str(threads)]
            out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
            times.append(float(re.search(r"sampling ([0-9.]+) s", out).group(1)))
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shapes-t2v")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=1, help="competing CPU-bound processes")
    parser.add_argument("--out", type=Path, default=RESULTS / "busy_machine.json")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    r = {"cores": cores, "busy_processes": args.busy, "model": args.model}
    r["quiet_default_s"] = sampling_seconds(args.model, None, args.repeats)
    r["quiet_all_cores_s"] = sampling_seconds(args.model, cores, args.repeats)
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    time.sleep(1.0)
    try:
        r["busy_default_s"] = sampling_seconds(args.model, None, args.repeats)
        r["busy_all_cores_s"] = sampling_seconds(args.model, cores, args.repeats)
    finally:
        for p in spinners:
            p.terminate()
    r["slowdown_default"] = r["busy_default_s"] / r["quiet_default_s"]
    r["slowdown_all_cores"] = r["busy_all_cores_s"] / r["quiet_default_s"]
    print(f"{'threads':22}{'quiet (s)':>10}{'busy (s)':>10}{'busy / quiet':>14}")
    print(f"{'default (idle cores)':22}{r['quiet_default_s']:10.2f}{r['busy_default_s']:10.2f}{r['slowdown_default']:13.1f}x   (target <= 2.5x)")
    print(f"{f'{cores} (one per core)':22}{r['quiet_all_cores_s']:10.2f}{r['busy_all_cores_s']:10.2f}{r['slowdown_all_cores']:13.1f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
