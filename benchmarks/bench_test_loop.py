"""What a test selection costs with every app on an empty cache (as before the session's warm
cache) and with the warm cache: ``python benchmarks/bench_test_loop.py [PYTEST ARGS]``.

Each run is a fresh pytest process on a private CONVENET_CACHE; wall time, the CPU time of the
run and its children (apps, exports, Chromium) and the load average before each run are printed,
with the warm run's ratios against the cold one. CPU time is the figure to compare on a machine
others share: wall time grows with their load, CPU time hardly.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float
    load: float
    exit_code: int


def run_pytest(args: list[str], cold: bool) -> Run:
    """One pytest process; CONVENET_TEST_COLD=1 keeps the suite's warm cache off."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "CONVENET_CACHE": cache, "CONVENET_TEST_COLD": "1" if cold else "0"}
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print((done.stdout.strip().splitlines() or ["no output"])[-1])
    return Run(wall, cpu, load, done.returncode)


def main(args: list[str]) -> int:
    cold = run_pytest(args, cold=True)
    warm = run_pytest(args, cold=False)
    print(f"selection: pytest {' '.join(args)}")
    for name, run in (("cold", cold), ("warm", warm)):
        print(
            f"{name}: {run.wall_s:6.1f} s wall, {run.cpu_s:6.1f} s CPU, "
            f"load {run.load:.1f} before, exit {run.exit_code}"
        )
    print(
        f"warm / cold: wall {warm.wall_s / cold.wall_s:.2f}x, CPU {warm.cpu_s / cold.cpu_s:.2f}x; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    return max(cold.exit_code, warm.exit_code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
