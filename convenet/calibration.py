"""Similarity percentages calibrated on the dataset itself, so bars mean the same at every layer.

A raw distance means nothing on its own: cosine distances at an early layer all sit near 0, and
euclidean ones depend on the layer's scale. Here a distance is placed in the distribution of the
distances between the dataset's own images (same layer, same metric): 100 % means closer than
any two dataset images are to each other, 0 % means no closer than the nearest quarter of all
pairs. The top 50 of a 200-image dataset fall within about that quarter, so their bars spread
over the whole range; the map is monotone, so a bar never grows with rank.
"""

from __future__ import annotations

import numpy as np

from convenet.metrics import pairwise_distances

ZERO_AT = 0.25
"""Share of the dataset's pairs that are closer than a pair shown at 0 %."""
MAX_IMAGES = 2000
"""Images used for the reference distribution (a seeded sample beyond this): 2 M pairs at most."""

SIMILARITY_MEANING = (
    "A bar says how few of this dataset's own image pairs are closer than the query and this "
    "result in this layer and metric: 100 % = none are, 0 % = a quarter of all pairs or more."
)


def reference_distances(features: np.ndarray, metric: str) -> np.ndarray:
    """Sorted distances between every pair of (at most MAX_IMAGES) dataset images."""
    rows = np.asarray(features)
    if rows.shape[0] > MAX_IMAGES:
        chosen = np.random.default_rng(0).choice(rows.shape[0], MAX_IMAGES, replace=False)
        rows = rows[np.sort(chosen)]
    if rows.shape[0] < 2:
        raise ValueError("calibrating similarities needs at least 2 images")
    dist = pairwise_distances(rows, rows, metric)
    upper = np.triu_indices(rows.shape[0], 1)
    return np.sort(dist[upper])


def calibrated_similarity(distances: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Percent in [0, 100]: 100 x (1 - share of reference pairs at or below d / ZERO_AT)."""
    closer = np.searchsorted(reference, np.asarray(distances, np.float32), side="right")
    share = closer / reference.size
    return np.clip(100.0 * (1.0 - share / ZERO_AT), 0.0, 100.0).astype(np.float32)
