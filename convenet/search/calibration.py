"""Similarity percentages on a scale set by the query's own distances to the dataset.

A raw distance means nothing on its own: cosine distances at an early layer all sit near 0, and
euclidean ones depend on the layer's scale. A scale fixed by the dataset's own pairs fails too:
an uploaded image unlike the dataset (a photo, a flat colour, noise) is farther from every
dataset image than most dataset pairs are, so every bar read 0 %, and a dataset image in a dense
cluster read 99-100 % down to rank 50. So the scale is set per query, by the query's distances to
every dataset image it may find: 100 % at its nearest, 0 % at the distance that takes in the
nearest quarter of the dataset, linear in distance between. The same rule for dataset images and
uploads; a bar never grows with rank, and the top 50 of a 200-image dataset span the whole bar.
"""

from __future__ import annotations

import math

import numpy as np

from convenet.search.metrics import pairwise_distances

ZERO_AT = 0.25
"""Share of the dataset within the distance that reads 0 %."""

SCALE_SAMPLE = 20_000
"""Above this many images the scale is read from a fixed sample of them: a scan of every row
would undo what an index saves, and the quarter's distance barely moves."""

SIMILARITY_MEANING = (
    "A bar compares the results of one query (a dataset image or an upload alike) in this layer "
    "and metric: 100 % = as close as its nearest dataset image, 0 % = as far as the nearest "
    "quarter of the dataset, linear in distance between."
)


def relative_similarity(distances: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Percent in [0, 100] for each of ``distances`` (..., k), scaled by ``own`` (..., n): the
    query's distances to every dataset image it may find (a dataset query's own row left out).

    100 x (far - d) / (far - near), near = the smallest of ``own``, far = its ceil(ZERO_AT x n)-th
    smallest. When the quarter is all at the nearest distance, d <= near reads 100, else 0.
    """
    ordered = np.sort(np.asarray(own, np.float64), axis=-1)
    if ordered.shape[-1] == 0:
        raise ValueError("a similarity scale needs at least one dataset image")
    quarter = max(math.ceil(ZERO_AT * ordered.shape[-1]), 1)
    near, far = ordered[..., :1], ordered[..., quarter - 1 : quarter]
    dist = np.asarray(distances, np.float64)
    span = far - near
    flat = span <= 0
    linear = (far - dist) / np.where(flat, 1.0, span)
    scaled = np.where(flat, (dist <= near).astype(np.float64), linear)
    return np.clip(100.0 * scaled, 0.0, 100.0).astype(np.float32)


def sampled(size: int) -> bool:
    """Whether a database of ``size`` images sets its scale from a sample of its rows."""
    return size > SCALE_SAMPLE


def scale_sample(database: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The fixed, seeded rows of a database above SCALE_SAMPLE images that set every query's
    scale, with those rows read once as float32; None at or below it (every row is read).

    Kept by the caller per database: drawing and reading them (from a float16 memory map) took
    ~64 ms of a 67 ms search at 60,000 images, and the sample never changes."""
    if not sampled(len(database)):
        return None
    rows = np.sort(np.random.default_rng(0).choice(len(database), SCALE_SAMPLE, replace=False))
    return rows, np.asarray(database[rows], np.float32)


def scale_distances(
    query: np.ndarray,
    database: np.ndarray,
    metric: str,
    exclude: int | None = None,
    sample: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The query's distances to the images it may find (``exclude``, its own row, left out):
    the ``own`` of :func:`relative_similarity`; above SCALE_SAMPLE images, to the rows of
    :func:`scale_sample` (``sample``, if the caller kept it)."""
    if sampled(len(database)):
        rows, vectors = sample or scale_sample(database)
        own = pairwise_distances(query[None], vectors, metric)[0]
        return own if exclude is None else own[rows != exclude]
    own = pairwise_distances(query[None], database, metric)[0]
    return own if exclude is None else np.delete(own, exclude)
