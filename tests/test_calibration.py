"""The similarity scale: distances placed among the dataset's own pairwise distances."""

from __future__ import annotations

import numpy as np
import pytest

from convenet import calibration
from convenet.calibration import calibrated_similarity, reference_distances
from convenet.metrics import METRICS, pairwise_distances


def test_reference_is_every_pair_once_sorted() -> None:
    rows = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    np.testing.assert_allclose(reference_distances(rows, "euclidean"), [5.0, 5.0, 10.0])


def test_scale_by_hand() -> None:
    reference = np.arange(1, 101, dtype=np.float32)  # 100 pairs at distances 1..100
    sims = calibrated_similarity(np.array([0.5, 1.0, 10.0, 25.0, 60.0]), reference)
    # 0, 1, 10, 25 and 60 of the 100 pairs are at most as far: 100 x (1 - share / 0.25).
    np.testing.assert_allclose(sims, [100.0, 96.0, 60.0, 0.0, 0.0])


@pytest.mark.parametrize("metric", METRICS)
def test_never_increases_with_distance_and_spans_the_bar(metric: str) -> None:
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(120, 16)).astype(np.float32)
    reference = reference_distances(rows, metric)
    distances = np.sort(pairwise_distances(rows[:1], rows[1:], metric)[0])
    sims = calibrated_similarity(distances, reference)
    assert np.all(np.diff(sims) <= 0)
    assert sims.max() - sims.min() >= 50


def test_large_datasets_are_sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibration, "MAX_IMAGES", 10)
    rows = np.random.default_rng(2).normal(size=(50, 4))
    assert reference_distances(rows, "cosine").size == 10 * 9 // 2
