"""Where ``import gradio`` spends its time: ``python -X importtime`` in a fresh interpreter,
summed up.

    python benchmarks/import_breakdown.py [--top 10] [--runs 3]

Prints the modules with the largest cumulative import time (each with the module that first
imported it), and the self time summed by top-level package, as medians over ``--runs``
fresh interpreters, with the 1-minute load average at start and end. Share of the whole
import, so a figure from a busy machine still says what the parts weigh.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass

LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


@dataclass(frozen=True)
class Imported:
    name: str
    self_us: int
    cumulative_us: int
    parent: str | None


def parse(text: str) -> list[Imported]:
    """``-X importtime`` lines (a module's children come before it) with each one's importer."""
    rows = [
        (m.group(4), int(m.group(1)), int(m.group(2)), len(m.group(3)))
        for m in map(LINE.match, text.splitlines())
        if m
    ]
    parents: dict[int, str | None] = {}
    open_rows: list[tuple[int, int]] = []  # (indent, row), walking backwards
    for i in range(len(rows) - 1, -1, -1):
        indent = rows[i][3]
        while open_rows and open_rows[-1][0] >= indent:
            open_rows.pop()
        parents[i] = rows[open_rows[-1][1]][0] if open_rows else None
        open_rows.append((indent, i))
    return [Imported(name, s, c, parents[i]) for i, (name, s, c, _) in enumerate(rows)]


def measure(module: str) -> list[Imported]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return parse(done.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", default="gradio")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()
    load_start = os.getloadavg()[0]
    cumulative: dict[str, list[int]] = defaultdict(list)
    packages: dict[str, list[int]] = defaultdict(list)
    importer: dict[str, str | None] = {}
    totals = []
    for _ in range(opts.runs):
        rows = measure(opts.module)
        by_package: Counter[str] = Counter()
        for row in rows:
            cumulative[row.name].append(row.cumulative_us)
            importer.setdefault(row.name, row.parent)
            by_package[row.name.split(".")[0]] += row.self_us
        for name, us in by_package.items():
            packages[name].append(us)
        totals.append(next(r.cumulative_us for r in rows if r.name == opts.module))
    load_end = os.getloadavg()[0]
    total = statistics.median(totals)
    print(
        f"import {opts.module}: median {total / 1e6:.2f} s over {opts.runs} fresh interpreters "
        f"(range {min(totals) / 1e6:.2f}-{max(totals) / 1e6:.2f}); load {load_start:.1f} -> "
        f"{load_end:.1f}"
    )
    print(f"\nTop {opts.top} modules by cumulative time (a module includes what it imports):")
    ranked = sorted(
        ((statistics.median(v), k) for k, v in cumulative.items() if k != opts.module),
        reverse=True,
    )
    for us, name in ranked[: opts.top]:
        share = f"{100 * us / total:4.0f} %"
        print(f"  {us / 1e3:7.0f} ms  {share}  {name}  (imported by {importer[name]})")
    print(f"\nWhat {opts.module} imports itself, by cumulative time (these do not overlap):")
    direct = [(us, name) for us, name in ranked if importer[name] == opts.module]
    for us, name in direct[: opts.top]:
        print(f"  {us / 1e3:7.0f} ms  {100 * us / total:4.0f} %  {name}")
    print(f"\nTop {opts.top} packages by self time (summed over their modules):")
    own = sorted(((statistics.median(v), k) for k, v in packages.items()), reverse=True)
    for us, name in own[: opts.top]:
        print(f"  {us / 1e3:7.0f} ms  {100 * us / total:4.0f} %  {name}")


if __name__ == "__main__":
    main()
