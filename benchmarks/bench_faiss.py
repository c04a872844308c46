"""FAISS IVF index vs today's exact ``rank``: build time, memory, query p50 and recall@50.

    nice -n 10 python benchmarks/bench_faiss.py [--quick] [--sizes 100000 1000000]
    nice -n 10 python benchmarks/bench_faiss.py --sizes 1000000 --metrics euclidean \
        --json benchmarks/results/faiss_1e6_euclidean.json    # one case alone, on a quiet machine

The vectors are EfficientNet-Lite0 ``top_conv`` features (1280 dims) of the shipped datasets'
400 real images, plus synthetic ones sampled around them: a real image, plus half of a random
draw from its class's covariance (the spread of that class's real features), plus a little
isotropic noise. So the set keeps the real features' scale, sign and class structure. Queries
are not in the set: half are real images with noise added (an upload of a near-duplicate),
half fresh synthetic draws. Recall@50 is the share of the exact top 50 (float32, every row
scanned) that the index returns. The vectors are kept as float16, as the feature files store
them, so 1e6 x 1280 needs 2.6 GB; ``rank`` runs on that float16 matrix. --quick: 1e5 only.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

import numpy as np  # noqa: E402

from benchmarks.common import Report, parser, report, rss_mib  # noqa: E402
from convenet.data.store import read_feature_file  # noqa: E402
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402
from convenet.search.ranking import rank  # noqa: E402
from convenet.search.vector_index import (  # noqa: E402
    ADD_CHUNK,
    NPROBE,
    VectorIndex,
    build_index,
    prepared,
)

LAYER = "top_conv"
MODEL = "efficientnet_lite0"
K = 50
N_QUERIES = 200
NPROBES = (8, 16, 32, 64)
RANK_CALLS = 3
SIZES = (100_000, 1_000_000)


def real_features() -> tuple[np.ndarray, np.ndarray]:
    """(400, 1280) float32 features of stamps200 and clipart200, and a class id per row."""
    rows, labels = [], []
    for offset, name in enumerate(("stamps200", "clipart200")):
        stored = read_feature_file(PRECOMPUTED_DIR / name / "features" / f"{MODEL}.safetensors")
        rows.append(stored.features[LAYER].astype(np.float32))
        classes = sorted(set(stored.meta["labels"]))
        labels += [offset * 100 + classes.index(c) for c in stored.meta["labels"]]
    return np.concatenate(rows), np.array(labels)


class Synthetic:
    """Draws around the real features (see the module docstring), reproducible by seed."""

    def __init__(self, real: np.ndarray, labels: np.ndarray) -> None:
        self.real = real
        self.labels = labels
        self.deviations = {c: real[labels == c] - real[labels == c].mean(0) for c in set(labels)}
        self.noise = 0.1 * float(real.std(0).mean())

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        centre = rng.integers(0, len(self.real), n)
        out = self.real[centre] + self.noise * rng.standard_normal((n, self.real.shape[1]))
        for c, dev in self.deviations.items():
            rows = np.flatnonzero(self.labels[centre] == c)
            weights = rng.standard_normal((rows.size, len(dev))) / np.sqrt(len(dev))
            out[rows] += 0.5 * weights @ dev
        return out.astype(np.float32)


def dataset(n: int, synth: Synthetic) -> np.ndarray:
    """(n, 1280) float16: the real rows first, then synthetic ones, drawn a chunk at a time."""
    out = np.empty((n, synth.real.shape[1]), np.float16)
    out[: len(synth.real)] = synth.real
    rng = np.random.default_rng(n)
    for start in range(len(synth.real), n, ADD_CHUNK):
        stop = min(start + ADD_CHUNK, n)
        out[start:stop] = synth.draw(stop - start, rng)
    return out


def queries(synth: Synthetic) -> np.ndarray:
    rng = np.random.default_rng(12345)
    near = synth.real[rng.choice(len(synth.real), N_QUERIES // 2, replace=False)]
    near = near + 2 * synth.noise * rng.standard_normal(near.shape)
    return np.concatenate([near, synth.draw(N_QUERIES - len(near), rng)]).astype(np.float32)


def exact_top(data: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """(m, K) exact nearest rows in float32, a chunk of the data at a time."""
    qp = prepared(q, metric)
    best_d = np.full((len(q), 0), np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    for start in range(0, len(data), ADD_CHUNK):
        x = prepared(data[start : start + ADD_CHUNK], metric)
        if metric == "cosine":
            d = 1.0 - qp @ x.T
        else:
            d = (qp**2).sum(1)[:, None] - 2 * qp @ x.T + (x**2).sum(1)[None]
        d_all = np.concatenate([best_d, d], axis=1)
        i_all = np.concatenate(
            [best_i, np.arange(start, start + len(x))[None].repeat(len(q), 0)], 1
        )
        top = np.argpartition(d_all, K - 1, axis=1)[:, :K]
        best_d = np.take_along_axis(d_all, top, 1)
        best_i = np.take_along_axis(i_all, top, 1)
    return best_i


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def chunks_of(data: np.ndarray):
    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, len(data), ADD_CHUNK):
            yield data[start : start + ADD_CHUNK]

    return chunks


def one_query_times(index: VectorIndex, q: np.ndarray) -> tuple[list[float], np.ndarray]:
    samples, found = [], []
    for row in q:
        start = time.perf_counter()
        indices, _ = index.search(row, K)
        samples.append(time.perf_counter() - start)
        found.append(indices[0])
    return samples, np.array(found)


def run_size(run: Report, n: int, synth: Synthetic, metrics: list[str]) -> None:
    print(f"\n== {n:,} vectors x {synth.real.shape[1]} dims (float16: {n * 2560 / 1e9:.2f} GB)")
    t = time.perf_counter()
    data = dataset(n, synth)
    print(f"  generated in {time.perf_counter() - t:.0f} s")
    q = queries(synth)
    for metric in metrics:
        case = f"{n}_{metric}"
        truth = exact_top(data, q, metric)
        samples = []
        for row in q[:RANK_CALLS]:
            start = time.perf_counter()
            rank(row, data, metric, K)
            samples.append(time.perf_counter() - start)
        run.add(f"rank_{case}", f"exact rank (float16 matrix), {case}, one query", samples)
        before = rss_mib(os.getpid())
        start = time.perf_counter()
        index = build_index(chunks_of(data), n, data.shape[1], metric, exact_max=0)
        build_s = time.perf_counter() - start
        grown = rss_mib(os.getpid()) - before
        run.add(f"build_{case}", f"IVF{index.index.nlist},SQ8 build, {case}", [build_s], "s", 1)
        run.add(f"memory_{case}", f"index memory (RSS growth), {case}", [grown], "MiB", 1)
        ivf = index.index  # 8-bit codes and 64-bit ids per vector, float32 cell centroids
        size = ivf.ntotal * (ivf.code_size + 8) + ivf.nlist * ivf.d * 4
        run.add(
            f"size_{case}", f"index size (codes, ids, centroids), {case}", [size / 2**20], "MiB", 1
        )
        for nprobe in NPROBES:
            index.nprobe = nprobe
            times, found = one_query_times(index, q)
            r = recall(found, truth)
            fig = run.add(f"query_{case}_nprobe{nprobe}", f"query, {case}, nprobe {nprobe}", times)
            run.figures[f"recall_{case}_nprobe{nprobe}"] = type(fig)(
                f"recall@{K}, {case}, nprobe {nprobe}", "", r, r, r, len(q)
            )
            print(f"    recall@{K} {r:.3f}  (p50 {fig.median:.2f} ms, p95 {fig.p95:.2f} ms)")
        index.nprobe = NPROBE
        ratio = statistics.median(samples) / statistics.median(one_query_times(index, q)[0])
        print(f"  exact rank / IVF (nprobe {NPROBE}) query time: {ratio:.0f}x")
        del index
    del data


def main() -> None:
    args = parser(__doc__.splitlines()[0])
    args.add_argument(
        "--sizes", type=int, nargs="*", default=None, help="vectors (default: 100000 1000000)"
    )
    args.add_argument("--metrics", nargs="*", default=["cosine", "euclidean"], help="default: both")
    opts = args.parse_args()
    sizes = opts.sizes or (SIZES[:1] if opts.quick else SIZES)
    real, labels = real_features()
    synth = Synthetic(real, labels)
    with report("bench_faiss", opts) as run:
        print(f"top-{K}, {N_QUERIES} one-at-a-time queries; ms unless said; nice {os.nice(0)}")
        for n in sizes:
            run_size(run, n, synth, opts.metrics)
            print(f"  load average now: {os.getloadavg()}")


if __name__ == "__main__":
    main()
