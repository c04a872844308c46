"""Pairwise distances and similarity percentages between feature vectors, in pure numpy.

Work is done in float32 (float16 feature files are upcast one chunk at a time) and split into
chunks of about CHUNK_BYTES, so memory stays bounded however many images a dataset has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Metric:
    """One distance metric: everything the app, the ranking and the FAISS index need to know.

    Adding a metric is one record here (plus a test): ``gram`` metrics are computed from one
    matrix product per chunk (rows ``centred`` first, ``angular`` ones divided by their norms,
    ``root`` takes the square root of the squared distance); the others need ``elementwise``,
    which reduces |q - x| over the feature axis. ``index`` says how a FAISS index serves it
    ("inner_product" on L2-normalised rows, "l2"), or None where no index does.
    """

    name: str
    label: str
    description: str
    gram: bool = False
    angular: bool = False
    centred: bool = False
    root: bool = False
    elementwise: Callable[[np.ndarray], np.ndarray] | None = None
    index: Literal["inner_product", "l2"] | None = None


def _minkowski(diff: np.ndarray) -> np.ndarray:
    return _integer_power(diff, MINKOWSKI_P).sum(axis=2) ** (1 / MINKOWSKI_P)


def _sum(diff: np.ndarray) -> np.ndarray:
    return diff.sum(axis=2)


def _max(diff: np.ndarray) -> np.ndarray:
    return diff.max(axis=2)


MINKOWSKI_P = 3
REGISTRY: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "cosine",
            "Cosine",
            "Compares the direction of two feature vectors and ignores how long they are.",
            gram=True,
            angular=True,
            index="inner_product",
        ),
        Metric(
            "euclidean",
            "Euclidean",
            "The straight-line distance between two feature vectors.",
            gram=True,
            root=True,
            index="l2",
        ),
        Metric(
            "sqeuclidean",
            "Squared Euclidean",
            "Euclidean distance squared: same order, but far images look even farther.",
            gram=True,
        ),
        Metric(
            "manhattan",
            "Manhattan",
            "Adds up the differences feature by feature, like walking city blocks.",
            elementwise=_sum,
        ),
        Metric(
            "chebyshev",
            "Chebyshev",
            "Only the one feature where the two images differ most counts.",
            elementwise=_max,
        ),
        Metric(
            "correlation",
            "Correlation",
            "Cosine after subtracting each vector's average: compares the ups and downs.",
            gram=True,
            angular=True,
            centred=True,
        ),
        Metric(
            "minkowski",
            f"Minkowski (p={MINKOWSKI_P})",
            "Between Euclidean and Chebyshev: big differences count more than small ones.",
            elementwise=_minkowski,
        ),
    )
}
"""Every metric by name, in the order the page lists them."""
METRICS: tuple[str, ...] = tuple(REGISTRY)
METRIC_LABELS: dict[str, str] = {name: m.label for name, m in REGISTRY.items()}
METRIC_DESCRIPTIONS: dict[str, str] = {name: m.description for name, m in REGISTRY.items()}

CHUNK_BYTES = 64 * 2**20
"""Memory budget of one chunk of intermediate results (also used by ranking's query blocks)."""
_CACHE_BYTES = 2**20
"""Data rows for a matrix product are upcast in cache-sized pieces, reused while still in L2."""

_NEAR_ZERO = 1e-3
"""Relative size below which matrix-product distances lose digits to cancellation."""


def get_metric(metric: str) -> Metric:
    """The metric's record; an unknown name is refused with the known ones."""
    try:
        return REGISTRY[metric]
    except KeyError:
        raise ValueError(
            f"unknown metric {metric!r}; known metrics: {', '.join(REGISTRY)}"
        ) from None


def check_matrix(name: str, array: np.ndarray) -> np.ndarray:
    """Validate a (rows, features) numeric array without copying it (chunks are cast later)."""
    matrix = np.asarray(array)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows, features), got shape {matrix.shape}")
    if matrix.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold real numbers, got dtype {matrix.dtype}")
    if matrix.shape[1] == 0:
        raise ValueError(f"{name} has no feature columns")
    return matrix


def _float32(block: np.ndarray) -> np.ndarray:
    return block.astype(np.float32, copy=False)


def pairwise_distances(queries: np.ndarray, data: np.ndarray, metric: str) -> np.ndarray:
    """Distances between every query row and every data row, as an (m, n) float32 array.

    Cosine and correlation give 1 for an all-zero (or, for correlation, constant) vector rather
    than NaN, so such images rank in the middle instead of poisoning the ordering.
    """
    record = get_metric(metric)
    q = _float32(check_matrix("queries", queries))
    x = check_matrix("data", data)
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} features but data has {x.shape[1]}")
    out = np.empty((q.shape[0], x.shape[0]), dtype=np.float32)
    if record.gram:
        _gram_distances(q, x, record, out)
    else:
        _elementwise_distances(q, x, record, out)
    return out


def _prepare(rows: np.ndarray, metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """Rows ready for a matrix product, plus their norms (angular) or squared norms (euclidean).

    Zero norms become inf so that a zero vector's cosine similarity is 0, i.e. distance 1.
    """
    if metric.centred:
        # A float64 mean of float32 values is exact for constant rows, so they centre to 0.
        rows = rows - rows.mean(axis=1, keepdims=True, dtype=np.float64).astype(rows.dtype)
    squared = np.einsum("ij,ij->i", rows, rows)
    if not metric.angular:
        return rows, squared
    norms = np.sqrt(squared)
    norms[norms == 0] = np.inf
    return rows, norms


def _gram_distances(q: np.ndarray, x: np.ndarray, metric: Metric, out: np.ndarray) -> None:
    """Cosine / correlation / (squared) euclidean through one matrix product per data chunk."""
    q_rows, q_stat = _prepare(q, metric)
    width = q.shape[1]
    step = max(1, min(_CACHE_BYTES // width, CHUNK_BYTES // (width + q.shape[0])) // 4)
    for start in range(0, x.shape[0], step):
        x_raw = _float32(x[start : start + step])
        x_rows, x_stat = _prepare(x_raw, metric)
        products = q_rows @ x_rows.T
        if metric.angular:
            products /= q_stat[:, None]
            products /= x_stat[None, :]
            dist = np.clip(1 - products, 0, 2, out=products)
            scale = 1.0
        else:
            scale = q_stat[:, None] + x_stat[None, :]
            dist = np.maximum(scale - 2 * products, 0, out=products)
        _refine_near_zero(dist, scale, q, x_raw, metric)
        if metric.root:
            np.sqrt(dist, out=dist)
        out[:, start : start + step] = dist


def _refine_near_zero(
    dist: np.ndarray, scale: np.ndarray | float, q: np.ndarray, x: np.ndarray, metric: Metric
) -> None:
    """Recompute near-zero entries in float64 from the vector difference.

    The matrix-product formulas cancel catastrophically there: without this an image compared
    with itself gets a small non-zero distance and a similarity just under 100%. The difference
    form is exactly 0 for identical vectors and accurate for near-duplicates.
    """
    rows, cols = np.nonzero(dist <= _NEAR_ZERO * scale)
    batch = max(1, CHUNK_BYTES // (16 * q.shape[1]))
    for start in range(0, rows.size, batch):
        r, c = rows[start : start + batch], cols[start : start + batch]
        a, b = q[r].astype(np.float64), x[c].astype(np.float64)
        if metric.angular:
            (a, a_norm), (b, b_norm) = _prepare(a, metric), _prepare(b, metric)
            a, b = a / a_norm[:, None], b / b_norm[:, None]
            dist[r, c] = 0.5 * np.einsum("ij,ij->i", a - b, a - b)
        else:
            dist[r, c] = np.einsum("ij,ij->i", a - b, a - b)


def _elementwise_distances(q: np.ndarray, x: np.ndarray, metric: Metric, out: np.ndarray) -> None:
    """Manhattan / chebyshev / minkowski: no matrix-product form, so broadcast in blocks."""
    budget = max(1, CHUNK_BYTES // (4 * q.shape[1]))
    q_step = max(1, min(q.shape[0], budget))
    for q_start in range(0, q.shape[0], q_step):
        q_block = q[q_start : q_start + q_step, None, :]
        x_step = max(1, budget // q_block.shape[0])
        for x_start in range(0, x.shape[0], x_step):
            diff = q_block - _float32(x[x_start : x_start + x_step])[None, :, :]
            np.abs(diff, out=diff)
            block = metric.elementwise(diff)  # type: ignore[misc]  # set on every non-gram metric
            out[q_start : q_start + q_step, x_start : x_start + x_step] = block


def _integer_power(values: np.ndarray, exponent: int) -> np.ndarray:
    """values ** exponent by repeated multiplication: several times faster than np.power."""
    result = values.copy()
    for _ in range(exponent - 1):
        result *= values
    return result
