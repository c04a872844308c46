"""The similarity scale: a result's distance placed among the query's own distances."""

from __future__ import annotations

import numpy as np
import pytest

from convenet.search.calibration import relative_similarity
from convenet.search.metrics import METRICS, pairwise_distances

pytestmark = pytest.mark.quick


def test_scale_by_hand() -> None:
    own = np.arange(1, 101, dtype=np.float32)  # 100 dataset images at distances 1..100
    # near = 1, far = the 25th smallest = 25: 100 x (25 - d) / 24, clipped.
    sims = relative_similarity(np.array([1.0, 7.0, 13.0, 25.0, 60.0]), own)
    np.testing.assert_allclose(sims, [100.0, 75.0, 50.0, 0.0, 0.0])


def test_the_quarter_rounds_up_and_order_does_not_matter() -> None:
    own = np.array([9.0, 3.0, 5.0, 1.0, 7.0])  # 5 images: the quarter is the 2nd smallest, 3
    np.testing.assert_allclose(relative_similarity(np.array([1.0, 2.0, 3.0]), own), [100, 50, 0])


def test_many_queries_at_once_match_one_at_a_time() -> None:
    own = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [10, 30, 20, 40, 50, 60, 70, 80]], np.float32)
    dist = np.array([[1.0, 1.5], [12.0, 20.0]])  # quarter of 8 = 2nd smallest: 2, then 20
    np.testing.assert_allclose(relative_similarity(dist, own), [[100, 50], [80, 0]])
    for row in range(2):
        np.testing.assert_allclose(
            relative_similarity(dist[row], own[row]), relative_similarity(dist, own)[row]
        )


def test_a_quarter_all_at_one_distance_reads_100_there_and_0_beyond() -> None:
    own = np.array([2.0, 2.0, 2.0, 2.0, 5.0, 6.0, 7.0, 8.0])
    np.testing.assert_allclose(relative_similarity(np.array([2.0, 2.0, 5.0]), own), [100, 100, 0])


def test_no_dataset_images_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        relative_similarity(np.array([1.0]), np.array([]))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("offset", [0.0, 50.0])  # a dataset-like query, then one far from all
def test_never_increases_with_rank_and_spans_the_bar(metric: str, offset: float) -> None:
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(200, 16)).astype(np.float32)
    query = rng.normal(size=(1, 16)).astype(np.float32) + offset
    own = pairwise_distances(query, rows, metric)[0]
    sims = relative_similarity(np.sort(own)[:50], own)
    assert np.all(np.diff(sims) <= 0)
    assert sims[0] == 100 and sims[-1] == 0


def test_scale_distances_leave_out_the_query_and_sample_large_sets(monkeypatch):
    from convenet.search import calibration

    database = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    own = calibration.scale_distances(database[2], database, "euclidean", exclude=2)
    assert len(own) == 9 and 0.0 not in own  # its own row (distance 0) is not on the scale
    monkeypatch.setattr(calibration, "SCALE_SAMPLE", 4)
    sampled = calibration.scale_distances(database[0], database, "euclidean")
    assert len(sampled) == 4
    again = calibration.scale_distances(database[0], database, "euclidean")
    assert np.array_equal(sampled, again)  # a fixed sample: the bars do not flicker


def test_a_large_sets_sample_is_drawn_once_and_leaves_out_the_query(monkeypatch):
    from convenet.search import calibration

    monkeypatch.setattr(calibration, "SCALE_SAMPLE", 4)
    database = np.arange(10, dtype=np.float16)[:, None] * np.ones((1, 3), np.float16)
    assert calibration.scale_sample(database[:4]) is None  # at the size: every row is read
    rows, vectors = calibration.scale_sample(database)
    assert len(rows) == 4 and np.all(np.diff(rows) > 0) and vectors.dtype == np.float32
    assert np.array_equal(vectors, database[rows].astype(np.float32))
    sample = (rows, vectors)
    inside, outside = int(rows[1]), int(np.setdiff1d(np.arange(10), rows)[0])
    own = calibration.scale_distances(database[inside], database, "euclidean", inside, sample)
    assert len(own) == 3 and 0.0 not in own  # its own row is not on its scale
    assert (
        len(calibration.scale_distances(database[outside], database, "euclidean", outside, sample))
        == 4
    )
    unkept = calibration.scale_distances(database[inside], database, "euclidean", inside)
    assert np.array_equal(own, unkept)  # kept or drawn anew: the same scale
