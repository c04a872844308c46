"""Search that scales: a FAISS index over a layer's features, exact when small, IVF when large.

Below ``EXACT_MAX`` vectors an exact flat index (inner product on L2-normalised vectors for
cosine, L2 for euclidean) answers; above it an inverted file (IVF) with 8-bit scalar-quantised
vectors visits only the ``nprobe`` closest of its ``nlist`` cells, a few percent of the data,
and keeps a quarter of float32's memory. ``benchmarks/bench_faiss.py`` measures both against
``convenet.search.ranking.rank`` and is where ``EXACT_MAX`` and ``NPROBE`` come from.

FAISS (``faiss-cpu``) is an optional dependency (requirements-scale.txt): without it, or for
the other metrics, the app ranks with its exact linear scan as before.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convenet.search.metrics import REGISTRY

INDEX_METRICS = tuple(name for name, m in REGISTRY.items() if m.index)  # the shipped ones
EXACT_MAX = 50_000
"""Vectors up to which the app ranks exactly. bench_faiss.py: the exact scan of 1e5 x 1280 took
0.5-0.65 s (float16) and bench_ranking.py 0.16 s (float32), linear in n, so about 50,000 fit
the 100 ms a click may take; the IVF index answered 1e5 in about 1 ms at recall@50 0.99."""
NPROBE = 16
"""IVF cells visited per query. bench_faiss.py: recall@50 was the same from 8 to 64 cells
(0.99 at 1e6: the 8-bit codes, not the cells, set it), so 16 keeps a margin for data whose
neighbours straddle more cells at a small cost in time."""
TRAIN_PER_CELL = 40  # k-means training rows per IVF cell (FAISS warns below 39)
ADD_CHUNK = 65_536  # rows converted to float32 at a time while adding
INDEX_DIR = "index"

Chunks = Callable[[], Iterable[np.ndarray]]
"""Yields the database's rows in order, in chunks; called once per pass over the data."""


def faiss_available() -> bool:
    """Whether faiss-cpu is installed (requirements-scale.txt)."""
    return importlib.util.find_spec("faiss") is not None


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise ValueError("FAISS is not installed: pip install -r requirements-scale.txt") from exc
    return faiss


def _check_metric(metric: str) -> None:
    if metric not in REGISTRY or REGISTRY[metric].index is None:
        served = [name for name, m in REGISTRY.items() if m.index]
        raise ValueError(f"an index serves {' and '.join(served)}, not {metric!r}")


def _inner_product(metric: str) -> bool:
    """Whether the index ranks by inner product of L2-normalised rows (angular metrics)."""
    return REGISTRY[metric].index == "inner_product"


def prepared(rows: np.ndarray, metric: str) -> np.ndarray:
    """float32, C-ordered, L2-normalised for cosine (so inner product is 1 - distance)."""
    x = np.ascontiguousarray(rows, dtype=np.float32)
    if _inner_product(metric):
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    return x


def default_nlist(n: int) -> int:
    """IVF cells: about sqrt(n) (1,000 at 1e6), so a cell holds about as many rows as there are
    cells and training stays within minutes on two cores; never more than the rows can train."""
    return max(1, min(4096, round(math.sqrt(n)), n // TRAIN_PER_CELL))


@dataclass
class VectorIndex:
    """A FAISS index and how to read its answers as the app's distances."""

    index: Any
    metric: str
    kind: str  # "exact" or "ivf"
    n: int
    nprobe: int = NPROBE

    def search(
        self, queries: np.ndarray, k: int, exclude: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances), each (m, k): cosine distance or euclidean distance, closest
        first; ``exclude`` (a dataset query's own row) never appears."""
        faiss = _faiss()
        q = prepared(np.atleast_2d(queries), self.metric)
        # One query, one thread: concurrent users already fill the cores, and OpenMP threads
        # that spin while they wait starve them (1e5 vectors at load 18 on 2 cores: p50 3 to
        # 6 ms on one thread, 9 ms on two).
        faiss.omp_set_num_threads(1 if len(q) == 1 else os.cpu_count() or 1)
        wanted = min(k + (exclude is not None), self.n)
        if self.kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=self.nprobe)
            scores, indices = self.index.search(q, wanted, params=params)
        else:
            scores, indices = self.index.search(q, wanted)
        if _inner_product(self.metric):
            distances = 1.0 - scores
        else:
            distances = np.maximum(scores, 0.0)
            distances = np.sqrt(distances) if REGISTRY[self.metric].root else distances
        if exclude is not None:  # at most one excluded row per query: keep the first k others
            order = np.argsort(indices == exclude, axis=1, kind="stable")
            indices = np.take_along_axis(indices, order, axis=1)
            distances = np.take_along_axis(distances, order, axis=1)
        indices, distances = indices[:, :k], distances[:, :k]
        if exclude is not None and wanted <= k:  # every row was asked for: drop the excluded
            indices, distances = indices[:, : wanted - 1], distances[:, : wanted - 1]
        found = indices >= 0  # an IVF probe can come back with fewer than k rows
        width = int(found.sum(axis=1).min()) if found.size else 0
        return indices[:, :width].astype(np.intp), distances[:, :width].astype(np.float32)


def _sample_rows(chunks: Chunks, n: int, wanted: int) -> np.ndarray:
    """Every (n / wanted)-th row, in one pass: a deterministic, evenly spread training sample."""
    step = max(1, n // wanted)
    picked, seen = [], 0
    for chunk in chunks():
        first = (-seen) % step
        picked.append(np.asarray(chunk[first::step]))
        seen += len(chunk)
    return np.concatenate(picked)[:wanted]


def build_index(
    chunks: Chunks,
    n: int,
    dim: int,
    metric: str,
    exact_max: int = EXACT_MAX,
    nlist: int | None = None,
    nprobe: int = NPROBE,
) -> VectorIndex:
    """An index of n rows streamed by ``chunks`` (two passes for IVF: a sample, then all).

    Rows may be float16; at most ADD_CHUNK of them are converted to float32 at a time.
    """
    _check_metric(metric)
    faiss = _faiss()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    ip = _inner_product(metric)
    inner = faiss.METRIC_INNER_PRODUCT if ip else faiss.METRIC_L2
    if n <= exact_max:
        index = faiss.IndexFlatIP(dim) if ip else faiss.IndexFlatL2(dim)
        kind = "exact"
    else:
        cells = nlist or default_nlist(n)
        quantizer = faiss.IndexFlatIP(dim) if ip else faiss.IndexFlatL2(dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, cells, faiss.ScalarQuantizer.QT_8bit, inner
        )
        index.train(prepared(_sample_rows(chunks, n, cells * TRAIN_PER_CELL), metric))
        kind = "ivf"
    for chunk in chunks():
        for start in range(0, len(chunk), ADD_CHUNK):
            index.add(prepared(chunk[start : start + ADD_CHUNK], metric))
    if index.ntotal != n:
        raise ValueError(f"expected {n} rows, the chunks gave {index.ntotal}")
    return VectorIndex(index, metric, kind, n, nprobe)


def index_of(
    rows: np.ndarray, metric: str, exact_max: int = EXACT_MAX, nprobe: int = NPROBE
) -> VectorIndex:
    """The index of an in-memory (n, d) matrix."""

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, len(rows), ADD_CHUNK):
            yield rows[start : start + ADD_CHUNK]

    return build_index(chunks, len(rows), rows.shape[1], metric, exact_max, nprobe=nprobe)


def index_path(root: Path, dataset: str, model: str, layer: str, metric: str) -> Path:
    """Where ``python -m convenet index`` keeps a dataset's index for one layer and metric."""
    for name in (dataset, model, layer, metric):
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"Invalid name {name!r} in an index path.")
    return Path(root) / dataset / INDEX_DIR / f"{model}.{layer}.{metric}.faiss"


def save_index(index: VectorIndex, path: Path, about: dict[str, Any]) -> None:
    """The FAISS file and a JSON sidecar (metric, kind, size, nprobe, what it indexes),
    each written to a temporary name and renamed, so a reader never sees half of one."""
    faiss = _faiss()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        faiss.write_index(index.index, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    sidecar = {"metric": index.metric, "kind": index.kind, "n": index.n, "nprobe": index.nprobe}
    text = json.dumps({**about, **sidecar}, indent=1, sort_keys=True)
    path.with_suffix(".json").write_text(text + "\n", encoding="utf-8")


def load_index(path: Path) -> tuple[VectorIndex, dict[str, Any]]:
    """A saved index and its sidecar."""
    about = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    index = _faiss().read_index(str(path))
    if index.ntotal != about["n"]:
        raise ValueError(f"{path.name} holds {index.ntotal} vectors, its sidecar says {about['n']}")
    return VectorIndex(index, about["metric"], about["kind"], about["n"], about["nprobe"]), about


def uses_index(n: int, metric: str, exact_max: int = EXACT_MAX) -> bool:
    """Whether the app ranks n vectors through an IVF index (else its exact scan)."""
    return n > exact_max and metric in INDEX_METRICS and faiss_available()
