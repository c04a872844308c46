"""Nearest-neighbour ranking: the k images whose features are closest to a query's.

Ties are always broken by the lower image index, so the same query gives the same list on every
machine and every run (argpartition alone would pick arbitrarily among equal distances).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convenet.search import metrics
from convenet.search.metrics import check_matrix, pairwise_distances


@dataclass(frozen=True)
class Ranking:
    """The nearest images to one query, closest first (the app's similarity scale is
    ``convenet.search.calibration``'s, placed among the dataset's own distances)."""

    indices: np.ndarray
    distances: np.ndarray


def _check_k(k: int) -> None:
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _top_k_rows(dist: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k smallest entries of each row, ordered by (distance, index).

    O(n) per row: argpartition finds the k smallest, only those k are sorted. Rows where a tie
    straddles the k-th place are redone over every tied candidate, so the lowest indices win.
    """
    n_cols = dist.shape[1]
    if k >= n_cols:
        part = np.broadcast_to(np.arange(n_cols), dist.shape)
    else:
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(dist, part, axis=1)
    order = np.lexsort((part, values), axis=1)
    top = np.take_along_axis(part, order, axis=1)
    if k < n_cols:
        kth = np.take_along_axis(values, order[:, -1:], axis=1)
        for row in np.flatnonzero(np.count_nonzero(dist <= kth, axis=1) > k):
            tied = np.flatnonzero(dist[row] <= kth[row])
            top[row] = tied[np.lexsort((tied, dist[row, tied]))[:k]]
    return top


def _nearest(
    dist: np.ndarray, k: int, excluded: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (indices, distances) per row of dist, never returning row i's excluded[i] column."""
    bad_cols = np.nonzero(~np.isfinite(dist))[1]
    if bad_cols.size:
        raise ValueError(
            f"distance to features row {bad_cols[0]} is not finite: the features contain NaN or inf"
        )
    available = dist.shape[1]
    if excluded is not None:
        # inf sorts after every finite distance and k stays <= available, so it is never chosen.
        dist[np.arange(dist.shape[0]), excluded] = np.inf
        available -= 1
    k = min(k, available)
    if k <= 0:
        return np.empty((dist.shape[0], 0), np.intp), np.empty((dist.shape[0], 0), dist.dtype)
    indices = _top_k_rows(dist, k)
    return indices, np.take_along_axis(dist, indices, axis=1)


def rank(
    query: np.ndarray, features: np.ndarray, metric: str, k: int, exclude: int | None = None
) -> Ranking:
    """The k rows of features nearest to query (all of them if fewer), skipping row `exclude`.

    Pass exclude when the query is itself a dataset image, so it does not find itself first.
    """
    _check_k(k)
    q = np.asarray(query)
    if q.ndim != 1:
        raise ValueError(f"query must be a 1-D feature vector, got shape {q.shape}")
    q = check_matrix("query", q[None, :])
    if not np.isfinite(q).all():
        raise ValueError("query contains NaN or inf")
    dist = pairwise_distances(q, features, metric)
    n = dist.shape[1]
    if exclude is not None and not 0 <= exclude < n:
        raise ValueError(f"exclude={exclude} is not a row of features (0..{n - 1})")
    excluded = None if exclude is None else np.array([exclude])
    indices, distances = _nearest(dist, k, excluded)
    return Ranking(indices=indices[0], distances=distances[0])


def rank_all(
    features: np.ndarray, metric: str, k: int, queries: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out top-k for every row as a query: (indices, distances), each (n, min(k, n-1)).

    ``queries`` (default: the features themselves) gives row i's query vector where a recipe
    expands queries apart from the database; row i is still left out of its own results.
    Queries go in blocks so the (block, n) distance matrix stays near metrics.CHUNK_BYTES.
    """
    _check_k(k)
    x = check_matrix("features", features)
    q = x if queries is None else check_matrix("queries", queries)
    if q.shape != x.shape:
        raise ValueError(f"queries have shape {q.shape}, features {x.shape}")
    n = x.shape[0]
    width = min(k, max(n - 1, 0))
    indices = np.empty((n, width), dtype=np.intp)
    distances = np.empty((n, width), dtype=np.float32)
    block = max(1, metrics.CHUNK_BYTES // (4 * max(n, 1)))
    for start in range(0, n, block):
        stop = min(start + block, n)
        dist = pairwise_distances(q[start:stop], x, metric)
        indices[start:stop], distances[start:stop] = _nearest(dist, k, np.arange(start, stop))
    return indices, distances
