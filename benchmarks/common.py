"""Helpers shared by the benchmark scripts: the run report, timing statistics, sample uploads.

Benchmarks print numbers and ratios measured in the same run; they never assert on time. This
machine is shared, so every run records the CPU and the load average at its start and end, waits
(bounded) for a quiet machine and says plainly when it did not get one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from convenet.paths import PRECOMPUTED_DIR, cache_dir
from convenet.settings import quiet_tensorflow

DATASET = "stamps200"
MODEL = "efficientnet_lite0"
OFFLINE_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
LAYER = "top_conv"
METRIC = "cosine"
K = 50


QUIET_LOAD_PER_CPU = 0.5  # 1-minute load average per logical CPU below which we call it quiet
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark accepts (and a quiet TensorFlow)."""
    quiet_tensorflow()
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--quick", action="store_true", help="fewer repetitions and sizes")
    args.add_argument(
        "--wait-quiet",
        type=float,
        default=180.0,
        metavar="S",
        help="wait at most S seconds for a quiet machine before starting (0: do not wait)",
    )
    args.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"also write the figures as JSON (the README table is built from {RESULTS_DIR.name}/)",
    )
    return args


def time_calls(fn: Callable[[int], object], repeats: int, first: int = 0) -> list[float]:
    """Wall-clock seconds of each of ``repeats`` calls fn(first), fn(first + 1), ... (to vary
    the query)."""
    samples = []
    for i in range(first, first + repeats):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return samples


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q))


def stamps_images() -> list[Path]:
    """The 200 images of the shipped stamps200 dataset, in the dataset's order."""
    from convenet.data.datasets import scan_image_folder

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
    """A throw-away CONVENET_CACHE for the app that reuses the converted Lite weights and the
    exported ONNX graphs of the user's cache.

    Without the links every run would convert the PyTorch weights and export the graphs again,
    which measures one-time work instead of the app.
    """
    with tempfile.TemporaryDirectory(prefix="convenet-bench-") as tmp:
        for name in ("weights", "onnx"):
            if (cache_dir() / name).is_dir():
                os.symlink(cache_dir() / name, Path(tmp) / name)
        yield Path(tmp)  # the directory removal unlinks the links, never their targets


@contextmanager
def keras_only() -> Iterator[None]:
    """Features through Keras instead of ONNX Runtime while inside (the app's switch)."""
    os.environ["CONVENET_ONNX"] = "0"
    try:
        yield
    finally:
        del os.environ["CONVENET_ONNX"]


def ensure_onnx_graph(model: str = MODEL) -> None:
    """Export the model's ONNX graph into the user's cache unless it is there (imports Keras)."""
    from convenet.features import onnx_runtime
    from convenet.models.loading import get_model_spec

    spec = get_model_spec(model)
    weights = onnx_runtime.weights_id(spec)
    if weights is None or not onnx_runtime.graph_path(spec, weights).is_file():
        print(f"exporting the ONNX graph of {spec.title} once (not timed)")
        onnx_runtime.onnx_extractor(model, "avg", "imagenet")


def plain_http_search(url: str, query_index: int) -> str:
    """/search over plain HTTP (submit, then read the event stream): no gradio_client."""
    from tests.app_server import call_http

    body = call_http(url, "search", [DATASET, MODEL, LAYER, METRIC, query_index, None, K, "plain"])
    if "event: complete" not in body:
        raise RuntimeError(f"/search failed over HTTP: {body[:300]}")
    return body


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


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def load_1min() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(max_wait_s: float, threshold: float, poll_s: float = 5.0) -> float:
    """Seconds waited until the 1-minute load average fell to ``threshold`` (or gave up)."""
    start = time.monotonic()
    while load_1min() > threshold and time.monotonic() - start < max_wait_s:
        time.sleep(min(poll_s, max(0.0, max_wait_s - (time.monotonic() - start))))
    return time.monotonic() - start


@dataclass
class Figure:
    """One measured quantity: median and range over its samples."""

    label: str
    unit: str
    median: float
    low: float
    high: float
    n: int
    p95: float | None = None

    def text(self) -> str:
        p95 = f", p95 {self.p95:,.4g}" if self.p95 is not None else ""
        return (
            f"{self.median:,.4g} {self.unit} (range {self.low:,.4g} to {self.high:,.4g}{p95}, "
            f"n={self.n})"
        )


@dataclass
class Report:
    """A benchmark run: the machine, its load, the figures and their same-run ratios.

    ``with Report(name, opts) as report:`` waits for a quiet machine, prints the header, and at
    the end prints the load again and writes the JSON that ``readme_table.py`` turns into the
    README's table.
    """

    name: str
    quick: bool
    wait_quiet_s: float
    json_path: Path | None
    machine: dict = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    ratios: dict[str, dict] = field(default_factory=dict)

    def __enter__(self) -> Report:
        cpus = os.cpu_count() or 1
        threshold = QUIET_LOAD_PER_CPU * cpus
        before = load_1min()
        waited = wait_for_quiet(self.wait_quiet_s, threshold) if before > threshold else 0.0
        start = load_1min()
        self.machine = {
            "cpu": cpu_model(),
            "logical_cpus": cpus,
            "python": platform.python_version(),
            "quiet_threshold": threshold,
            "waited_s": round(waited, 1),
            "quiet": start <= threshold,
            "load_start": round(start, 2),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        verdict = "quiet" if start <= threshold else "NOT quiet: other jobs ran; figures are slower"
        print(f"{self.name}: {self.machine['cpu']}, {cpus} logical CPUs")
        print(
            f"load average (1 min) at start {start:.2f} after waiting {waited:.0f} s "
            f"for <= {threshold:.2f}: {verdict}"
        )
        self._began = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.machine["load_end"] = round(load_1min(), 2)
        self.machine["wall_s"] = round(time.perf_counter() - self._began, 1)
        print(
            f"\nload average (1 min) at end {self.machine['load_end']:.2f} "
            f"(start {self.machine['load_start']:.2f}); run took {self.machine['wall_s']:.0f} s"
        )
        if self.json_path is not None and exc[0] is None:
            self.json_path.parent.mkdir(parents=True, exist_ok=True)
            record = {
                "bench": self.name,
                "quick": self.quick,
                "machine": self.machine,
                "figures": {key: asdict(f) for key, f in self.figures.items()},
                "ratios": self.ratios,
            }
            self.json_path.write_text(json.dumps(record, indent=1) + "\n")
            print(f"figures written to {self.json_path}")

    def add(
        self, key: str, label: str, samples: list[float], unit: str = "ms", scale: float = 1e3
    ) -> Figure:
        """Record samples (seconds, or any unit with scale=1) and print their median and range."""
        values = [v * scale for v in samples]
        figure = Figure(
            label,
            unit,
            statistics.median(values),
            min(values),
            max(values),
            len(values),
            percentile(values, 95) if len(values) >= 20 else None,
        )
        self.figures[key] = figure
        print(f"  {label}: {figure.text()}")
        return figure

    def ratio(
        self, key: str, label: str, baseline: str, ours: str, higher_is_better: bool
    ) -> float:
        """Print and record how much better ``ours`` is than ``baseline`` (medians, same run)."""
        base, mine = self.figures[baseline].median, self.figures[ours].median
        value = mine / base if higher_is_better else base / mine
        self.ratios[key] = {"label": label, "baseline": baseline, "ours": ours, "value": value}
        print(f"  RATIO {label} = {value:.2f}x (median / median, same run)")
        return value


def report(name: str, opts: argparse.Namespace) -> Report:
    """The Report for a benchmark's parsed options; use it as ``with report(...) as run:``."""
    return Report(name, opts.quick, opts.wait_quiet, opts.json)
