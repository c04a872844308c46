"""Helpers shared by the benchmark scripts: timing statistics, sample uploads, app memory.

Benchmarks print numbers and ratios measured in the same run; they never assert on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from convenet.paths import PRECOMPUTED_DIR, cache_dir

DATASET = "stamps200"
MODEL = "efficientnet_lite0"
OFFLINE_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the --quick flag every benchmark accepts."""
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--quick", action="store_true", help="fewer repetitions and sizes")
    return args


def time_calls(fn: Callable[[int], object], repeats: int) -> list[float]:
    """Wall-clock seconds of each of ``repeats`` calls fn(0), fn(1), ... (to vary the query)."""
    samples = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return samples


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q))


def latency_line(name: str, samples: list[float]) -> str:
    """One aligned line: p50, p95 and mean in milliseconds, and how many calls were timed."""
    ms = [s * 1000 for s in samples]
    return (
        f"  {name:<44} p50 {percentile(ms, 50):9.1f} ms   p95 {percentile(ms, 95):9.1f} ms   "
        f"mean {statistics.fmean(ms):9.1f} ms   (n={len(ms)})"
    )


def stamps_images() -> list[Path]:
    """The 200 images of the shipped stamps200 dataset, in the dataset's order."""
    from convenet.datasets import scan_image_folder

    return list(scan_image_folder(PRECOMPUTED_DIR / DATASET / "images").paths)


def upload_images(folder: Path) -> list[Path]:
    """Photos a user might upload: scikit-learn's two sample JPEGs (427x640), written once."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    paths = []
    for name in ("china.jpg", "flower.jpg"):
        path = folder / name
        Image.fromarray(load_sample_image(name)).save(path, quality=90)
        paths.append(path)
    return paths


@contextmanager
def app_cache() -> Iterator[Path]:
    """A throw-away CONVENET_CACHE for the app that reuses already converted Lite weights.

    Without the link every run would convert the PyTorch weights again, which measures the
    one-time conversion instead of the app.
    """
    with tempfile.TemporaryDirectory(prefix="convenet-bench-") as tmp:
        weights = cache_dir() / "weights"
        if weights.is_dir():
            os.symlink(weights, Path(tmp) / "weights")
        yield Path(tmp)  # the directory removal unlinks the link, never the weights


def rss_mib(pid: int) -> float:
    """Resident memory of a process (VmRSS in /proc/<pid>/status), in MiB."""
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """Largest resident memory the process has had (VmHWM), in MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise ValueError(f"/proc/{pid}/status has no {field} line")


def machine_line() -> str:
    """CPU model, cores and current load (other jobs skew timings), atop every benchmark."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"machine: {model}, {os.cpu_count()} logical CPUs; load average now {load} (shared)"
