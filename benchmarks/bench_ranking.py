"""Ranking time for one query: convenet.search.ranking.rank vs scipy cdist + a full argsort.

    python benchmarks/bench_ranking.py [--quick]

Random non-negative 1280-d vectors (the width of EfficientNet-Lite's top_conv after pooling),
top-50 by cosine and euclidean, stored as float16 (the feature files) and float32 (what the
app keeps in memory). --quick stops at 1e5 vectors; 1e6 also runs only when memory allows.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

import numpy as np  # noqa: E402
from scipy.spatial.distance import cdist  # noqa: E402

from benchmarks.common import Figure, Report, parser, report  # noqa: E402
from convenet.search.ranking import rank  # noqa: E402

DIM = 1280
K = 50
SIZES = (200, 1_000, 10_000, 100_000, 1_000_000)
METRICS = ("cosine", "euclidean")
BUDGET_S = 0.1
TIME_PER_CASE_S = 0.6  # repeat a call until this much time is spent (at least 3 calls) ...
SLOW_CALL_S = 1.0  # ... unless one call takes longer than this: then that one call is the time


def random_features(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, DIM) float32 in [0, 1): pooled ReLU features are non-negative too."""
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, 65_536):
        stop = min(start + 65_536, n)
        out[start:stop] = rng.random((stop - start, DIM), dtype=np.float32)
    return out


def ours(query: np.ndarray, feats: np.ndarray, metric: str) -> np.ndarray:
    return rank(query, feats, metric, K).indices


def baseline(query: np.ndarray, feats: np.ndarray, metric: str) -> np.ndarray:
    """What a first implementation does: every distance in float64, then sort them all."""
    return np.argsort(cdist(query[None], feats, metric)[0], kind="stable")[:K]


Ranker = Callable[[np.ndarray, np.ndarray, str], np.ndarray]


def timed(
    fn: Ranker, query: np.ndarray, feats: np.ndarray, metric: str
) -> tuple[list[float], np.ndarray]:
    """(seconds of each repeated call, the indices returned)."""
    samples: list[float] = []
    while True:
        start = time.perf_counter()
        indices = fn(query, feats, metric)
        samples.append(time.perf_counter() - start)
        if samples[0] > SLOW_CALL_S or (len(samples) >= 3 and sum(samples) >= TIME_PER_CASE_S):
            return samples, indices


def spread(samples: list[float]) -> str:
    """Median and range in milliseconds, compact enough for a table cell."""
    ms = sorted(s * 1000 for s in samples)
    if len(ms) == 1:
        return f"{ms[0]:.2f} (1 call)"
    return f"{statistics.median(ms):.2f} ({ms[0]:.2f}-{ms[-1]:.2f})"


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (what can be allocated without swapping)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/meminfo has no MemAvailable line")


def baseline_bytes(n: int) -> int:
    """cdist copies the data to float64 and returns n float64 distances."""
    return 8 * n * DIM + 8 * n


def peak_extra_bytes(fn: Ranker, query: np.ndarray, feats: np.ndarray, metric: str) -> int:
    """Peak memory allocated during one call beyond what existed before (numpy is traced)."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn(query, feats, metric)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"


def run_size(
    run: Report,
    n: int,
    rng: np.random.Generator,
    query: np.ndarray,
    timings: dict[tuple[str, str], dict],
) -> None:
    """Time both rankers on n vectors, float32 then float16 (the same values, rounded)."""
    if available_bytes() < 1.3 * 6 * n * DIM:
        print(f"{n:>9,} skipped: float32 + float16 copies need {mb(6 * n * DIM)} free")
        return
    x32 = random_features(n, rng)
    for dtype in ("float32", "float16"):
        feats = x32 if dtype == "float32" else x32.astype(np.float16)
        if dtype == "float16":
            del x32
        fits = available_bytes() > 1.3 * baseline_bytes(n)
        for metric in METRICS:
            case = f"{n}_{dtype}_{metric}"
            s_ours, mine = timed(ours, query, feats, metric)
            t_ours = record(run, f"rank_{case}", f"rank, {case}", s_ours).median
            timings[dtype, metric][n] = t_ours / 1000
            if fits:
                s_base, theirs = timed(baseline, query, feats, metric)
                t_base = record(run, f"cdist_{case}", f"cdist + argsort, {case}", s_base).median
                run.ratios[case] = {
                    "label": f"cdist + argsort / rank, {case}",
                    "baseline": f"cdist_{case}",
                    "ours": f"rank_{case}",
                    "value": t_base / t_ours,
                }
                same = len(set(mine) & set(theirs))
                versus = f"{spread(s_base):>24}  {t_base / t_ours:6.1f}x   {same}/{K}"
            else:
                versus = f"{'skipped':>24}  (needs {mb(baseline_bytes(n))} free)"
            print(
                f"{n:>9,} {dtype:>8} {metric:>10} {mb(feats.nbytes):>12} "
                f"{spread(s_ours):>24} {versus}"
            )
        del feats


def record(run: Report, key: str, label: str, samples: list[float]) -> Figure:
    """Keep a case's figures for the JSON without printing a line per case."""
    ms = [s * 1000 for s in samples]
    figure = Figure(label, "ms", statistics.median(ms), min(ms), max(ms), len(ms))
    run.figures[key] = figure
    return figure


def report_memory(n: int, rng: np.random.Generator, query: np.ndarray) -> None:
    print(f"\npeak extra allocation during one cosine query on {n:,} vectors (tracemalloc):")
    x32 = random_features(n, rng)
    for feats in (x32, x32.astype(np.float16)):
        mine = peak_extra_bytes(ours, query, feats, "cosine")
        theirs = peak_extra_bytes(baseline, query, feats, "cosine")
        print(
            f"  {str(feats.dtype):>8}: matrix {mb(feats.nbytes)}; rank {mb(mine)} "
            f"({mine / feats.nbytes:.1%} of it); cdist+argsort {mb(theirs)} "
            f"({theirs / feats.nbytes:.0%} of it)"
        )


def report_growth(timings: dict[tuple[str, str], dict]) -> None:
    print(f"\ngrowth of rank (ours) and the largest n within a {BUDGET_S * 1000:.0f} ms budget:")
    for (dtype, metric), by_n in timings.items():
        sizes = sorted(by_n)
        small, big = sizes[-3] if len(sizes) >= 3 else sizes[0], sizes[-1]
        exponent = math.log(by_n[big] / by_n[small]) / math.log(big / small)
        per_vector = by_n[big] / big
        print(
            f"  {dtype:>8} {metric:>10}: time ~ n^{exponent:.2f} from {small:,} to {big:,}; "
            f"{per_vector * 1e9:.0f} ns per vector at {big:,} -> about "
            f"{BUDGET_S / per_vector:,.0f} vectors in {BUDGET_S * 1000:.0f} ms"
        )
    print(
        "  exact search is a linear scan (one pass over the matrix per query), so past that n an\n"
        "  approximate index (FAISS IVF/HNSW) that visits a small fraction of the vectors would\n"
        "  take over; at 1280 dims float16 one million vectors is already "
        f"{mb(1_000_000 * DIM * 2)} of RAM."
    )


def main() -> None:
    opts = parser(__doc__.splitlines()[0]).parse_args()
    sizes = SIZES[:4] if opts.quick else SIZES
    rng = np.random.default_rng(0)
    query = rng.random(DIM, dtype=np.float32)
    with report("bench_ranking", opts) as run:
        print(
            f"one query, top-{K}, {DIM} dims; ms: median (range) of repeated calls "
            f"(one call when it takes over {SLOW_CALL_S:.0f} s); ratio of medians"
        )
        print(
            f"{'n':>9} {'dtype':>8} {'metric':>10} {'matrix':>12} {'rank (ours), ms':>24} "
            f"{'cdist+argsort, ms':>24}  {'ratio':>6}   overlap"
        )
        timings: dict[tuple[str, str], dict] = {
            (dtype, metric): {} for dtype in ("float32", "float16") for metric in METRICS
        }
        for n in sizes:
            run_size(run, n, rng, query, timings)
        report_memory(10_000 if opts.quick else 100_000, rng, query)
        report_growth(timings)


if __name__ == "__main__":
    main()
