"""Retrieval quality of a feature space: how often an image's nearest neighbours share its class.

Every image is used once as a query against all the others (leave-one-out), so scores need no
train/test split and compare layers, models and metrics on equal terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from convenet.search.metrics import check_matrix
from convenet.search.ranking import rank_all


@dataclass
class RetrievalScores:
    """Leave-one-out scores at k; chance is the precision a random ranking would get."""

    p_at_k: float
    map_at_k: float
    weighted_score: float
    chance: float
    k: int
    per_class: dict[str, dict[str, float]]

    def to_dict(self) -> dict:
        return asdict(self)


def _check_labels(labels: np.ndarray, n_features: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}"
        )
    if labels.size != n_features:
        raise ValueError(f"{labels.size} labels for {n_features} feature rows")
    if labels.size < 2:
        raise ValueError("leave-one-out retrieval needs at least 2 images")
    if labels.min() < 0:
        raise ValueError(f"labels must be class indices >= 0, got {labels.min()}")
    return labels


def _relevant(
    features: np.ndarray,
    labels: np.ndarray,
    metric: str,
    k: int,
    queries: np.ndarray | None = None,
) -> np.ndarray:
    """relevant[i, j]: does query i's j-th leave-one-out result share its class?"""
    indices, _ = rank_all(features, metric, k, queries)
    return labels[indices] == labels[:, None]


def _precision(relevant: np.ndarray) -> np.ndarray:
    return relevant.mean(axis=1)


def _weighted(relevant: np.ndarray) -> np.ndarray:
    """The original ConvNet Playground score: result i of k weighs (k - i) / k."""
    k = relevant.shape[1]
    weights = k - np.arange(k)  # the common 1/k cancels; integers keep a perfect list at exactly 1
    return (relevant @ weights) / weights.sum()


def _average_precision(relevant: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """AP@k = sum_i P@i * rel_i / min(k, n_relevant); 0 for a query whose class has no others."""
    k = relevant.shape[1]
    precision_at_i = np.cumsum(relevant, axis=1) / np.arange(1, k + 1)
    # With n_relevant = 0 nothing is relevant, so the sum is 0 and the divisor 1 just avoids 0/0.
    return (precision_at_i * relevant).sum(axis=1) / np.maximum(np.minimum(k, n_relevant), 1)


def chance_precision(labels: np.ndarray) -> float:
    """precision@k of a random ranking, averaged over every image as the query (leave-one-out):
    the chance that another image shares the query's class, ``(n_class - 1) / (n - 1)``."""
    labels = np.asarray(labels)
    if labels.size < 2:
        raise ValueError("chance needs at least two images")
    return float(((np.bincount(labels)[labels] - 1) / (labels.size - 1)).mean())


def evaluate_retrieval(
    features: np.ndarray,
    labels: np.ndarray,
    metric: str,
    k: int = 10,
    class_names: Sequence[str] | None = None,
    queries: np.ndarray | None = None,
) -> RetrievalScores:
    """precision@k, mAP@k and the rank-weighted score, overall and per class (names or label ids).

    k is capped at n - 1 (the most results a leave-one-out query can have); the cap is reported.
    ``queries``: row i's query vector when a recipe expands queries (default: row i itself).
    """
    features = check_matrix("features", features)
    labels = _check_labels(labels, features.shape[0])
    if class_names is not None and len(class_names) <= labels.max():
        raise ValueError(f"{len(class_names)} class names but labels go up to {labels.max()}")
    relevant = _relevant(features, labels, metric, k, queries)
    n_relevant = np.bincount(labels)[labels] - 1
    scores = {
        "p_at_k": _precision(relevant),
        "map_at_k": _average_precision(relevant, n_relevant),
        "weighted_score": _weighted(relevant),
    }
    per_class = {}
    for label in np.unique(labels):
        name = str(label) if class_names is None else class_names[label]
        mask = labels == label
        per_class[name] = {key: float(values[mask].mean()) for key, values in scores.items()}
    return RetrievalScores(
        p_at_k=float(scores["p_at_k"].mean()),
        map_at_k=float(scores["map_at_k"].mean()),
        weighted_score=float(scores["weighted_score"].mean()),
        chance=chance_precision(labels),
        k=relevant.shape[1],
        per_class=per_class,
    )


def per_query_precision(
    features: np.ndarray,
    labels: np.ndarray,
    metric: str,
    k: int,
    queries: np.ndarray | None = None,
) -> np.ndarray:
    """precision@k of every image as a query, shape (n,); its mean is the overall p_at_k."""
    features = check_matrix("features", features)
    labels = _check_labels(labels, features.shape[0])
    return _precision(_relevant(features, labels, metric, k, queries))


def query_scores(ranked_labels: np.ndarray, query_label: int | str) -> dict[str, float]:
    """precision@k and weighted score of one query's result list (k = len(ranked_labels))."""
    relevant = np.asarray(ranked_labels) == query_label
    if relevant.ndim != 1 or relevant.size == 0:
        raise ValueError(f"ranked_labels must be a non-empty 1-D array, got shape {relevant.shape}")
    return {
        "p_at_k": float(_precision(relevant[None])[0]),
        "weighted_score": float(_weighted(relevant[None])[0]),
    }
