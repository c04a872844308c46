"""Run every benchmark, write its JSON to ``benchmarks/results/``, then rewrite the README table.

    python benchmarks/run_all.py [--quick] [--wait-quiet S] [--only NAME ...]

Each benchmark runs in its own interpreter (so one's imports and caches do not speed up or slow
down the next), waits on its own for a quiet machine (bounded by --wait-quiet, default 180 s)
and records the load it got. A benchmark's old result file is deleted before it runs, so a
benchmark that fails leaves no figure behind: the table then lacks its rows, and this command
ends with an error that names it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

# (script, result file, options it always gets): the README's table is built from these.
BENCHMARKS = (
    ("bench_ui_search.py", "ui_search.json", ()),
    ("bench_browser_click.py", "browser_click.json", ()),
    ("bench_startup_memory.py", "startup_memory.json", ()),
    ("bench_query_latency.py", "query_latency.json", ()),
    ("bench_extraction.py", "extraction.json", ()),
    ("bench_ranking.py", "ranking.json", ("--quick",)),  # 1e6 vectors take minutes of cdist
    ("bench_load.py", "load.json", ("--priority-baseline", "--synchronized-baseline")),
    ("bench_why_match.py", "why_match.json", ()),
    ("bench_cold_start.py", "cold_start.json", ()),
    ("bench_lessons.py", "lessons.json", ()),
)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--quick", action="store_true", help="every benchmark with --quick")
    args.add_argument("--wait-quiet", type=float, default=180.0, metavar="S")
    names = [script.removesuffix(".py") for script, _, _ in BENCHMARKS]
    args.add_argument("--only", nargs="+", choices=names, help="run these only")
    opts = args.parse_args()
    failed = []
    for script, result, always in BENCHMARKS:
        if opts.only and script.removesuffix(".py") not in opts.only:
            continue
        path = RESULTS / result
        path.unlink(missing_ok=True)
        command = [sys.executable, str(HERE / script), "--json", str(path)]
        command += ["--wait-quiet", str(opts.wait_quiet), *always]
        if opts.quick and "--quick" not in always:
            command.append("--quick")
        print(f"\n=== {' '.join(command[1:])}", flush=True)
        start = time.monotonic()
        done = subprocess.run(command, cwd=HERE.parent, check=False)
        print(f"=== {script}: exit {done.returncode} after {time.monotonic() - start:.0f} s")
        if done.returncode != 0 or not path.is_file():
            failed.append(script)
    subprocess.run([sys.executable, str(HERE / "readme_table.py")], cwd=HERE.parent, check=True)
    if failed:
        raise SystemExit(f"failed, so not in the table: {', '.join(failed)}")


if __name__ == "__main__":
    main()
