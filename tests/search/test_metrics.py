"""Distances against scipy/sklearn references, and the similarity-percent contract."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import pairwise_distances as sklearn_pairwise

from convenet.search import metrics
from convenet.search.metrics import (
    METRIC_DESCRIPTIONS,
    METRIC_LABELS,
    METRICS,
    MINKOWSKI_P,
    pairwise_distances,
)

pytestmark = pytest.mark.quick

SCIPY_NAMES = {"manhattan": "cityblock"}
SKLEARN_NATIVE = ("cosine", "euclidean", "manhattan")


def scipy_reference(queries: np.ndarray, data: np.ndarray, metric: str) -> np.ndarray:
    extra = {"p": MINKOWSKI_P} if metric == "minkowski" else {}
    return cdist(
        queries.astype(np.float64),
        data.astype(np.float64),
        SCIPY_NAMES.get(metric, metric),
        **extra,
    )


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """float32 results against float64 references: relative to the distances' scale."""
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * max(1.0, expected.max()))


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(7, 33)), rng.normal(loc=0.5, size=(53, 33))


def test_labels_and_descriptions_cover_every_metric():
    assert set(METRIC_LABELS) == set(METRICS) == set(METRIC_DESCRIPTIONS)
    assert METRIC_LABELS["sqeuclidean"] == "Squared Euclidean"
    assert all(text and "\n" not in text for text in METRIC_DESCRIPTIONS.values())


@pytest.mark.parametrize("metric", METRICS)
def test_matches_scipy(metric, data):
    queries, rows = data
    dist = pairwise_distances(queries, rows, metric)
    assert dist.dtype == np.float32 and dist.shape == (7, 53)
    assert_close(dist, scipy_reference(queries, rows, metric))


@pytest.mark.parametrize("metric", SKLEARN_NATIVE)
def test_matches_sklearn(metric, data):
    queries, rows = data
    assert_close(pairwise_distances(queries, rows, metric), sklearn_pairwise(queries, rows, metric))


@pytest.mark.parametrize("metric", METRICS)
def test_float16_input_is_computed_in_float32(metric):
    rng = np.random.default_rng(1)
    # Non-negative like ReLU features, which is what float16 feature files hold.
    queries = rng.random((4, 64)).astype(np.float16)
    rows = rng.random((30, 64)).astype(np.float16)
    dist = pairwise_distances(queries, rows, metric)
    assert dist.dtype == np.float32
    assert_close(dist, scipy_reference(queries, rows, metric))


@pytest.mark.parametrize("metric", METRICS)
def test_chunked_result_equals_reference(metric, data, monkeypatch):
    queries, rows = data
    # Budgets of a few rows force many data chunks (and query blocks for elementwise metrics).
    monkeypatch.setattr(metrics, "CHUNK_BYTES", 4 * 33 * 5)
    monkeypatch.setattr(metrics, "_CACHE_BYTES", 4 * 33 * 3)
    assert_close(pairwise_distances(queries, rows, metric), scipy_reference(queries, rows, metric))


@pytest.mark.parametrize("metric", METRICS)
def test_identical_vectors_are_exactly_zero_apart(metric):
    rng = np.random.default_rng(2)
    # Large offsets make the matrix-product formulas cancel badly without refinement.
    rows = (rng.normal(size=(20, 256)) + 100).astype(np.float32)
    dist = pairwise_distances(rows, rows, metric)
    assert np.all(np.diag(dist) == 0)
    assert np.all(dist >= 0) and np.isfinite(dist).all()


@pytest.mark.parametrize("metric", METRICS)
def test_near_duplicates_keep_an_accurate_small_distance(metric):
    rng = np.random.default_rng(3)
    base = rng.normal(size=(1, 128)) + 10
    near = base + rng.normal(scale=1e-3, size=base.shape)
    dist = pairwise_distances(base, near, metric)
    expected = scipy_reference(base, near, metric)
    assert dist[0, 0] > 0
    np.testing.assert_allclose(dist, expected, rtol=2e-2)


@pytest.mark.parametrize("metric", ["cosine", "correlation"])
def test_zero_or_constant_vectors_give_distance_one(metric):
    rows = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 4.0], [0.1, 0.1, 0.1]])
    dist = pairwise_distances(rows, rows, metric)
    assert not np.isnan(dist).any()
    assert dist[0, 0] == dist[0, 1] == dist[1, 0] == 1
    if metric == "correlation":  # constant rows centre to zero
        assert dist[2, 2] == dist[2, 1] == dist[0, 2] == 1


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(ValueError, match="cosine.*minkowski"):
        pairwise_distances(np.ones((1, 2)), np.ones((1, 2)), "hamming")


@pytest.mark.parametrize(
    ("queries", "rows"),
    [
        (np.ones((2, 3)), np.ones((4, 5))),
        (np.ones(3), np.ones((4, 3))),
        (np.ones((2, 0)), np.ones((4, 0))),
        (np.array([["a"]]), np.ones((1, 1))),
    ],
)
def test_bad_shapes_and_dtypes_raise(queries, rows):
    with pytest.raises(ValueError):
        pairwise_distances(queries, rows, "euclidean")


def test_a_new_metric_is_one_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """Extending: a record in a temporary registry is computed by both paths, matrix product
    and element-wise, with no other change."""
    rng = np.random.default_rng(3)
    q, x = rng.normal(size=(4, 16)).astype(np.float32), rng.normal(size=(30, 16)).astype(np.float32)
    chord = metrics.Metric("chord", "Chord", "sqrt(1 - cos)", gram=True, angular=True, root=True)
    half = metrics.Metric(
        "halfcity", "Half city", "half Manhattan", elementwise=lambda d: d.sum(axis=2) / 2
    )
    monkeypatch.setitem(metrics.REGISTRY, "chord", chord)
    monkeypatch.setitem(metrics.REGISTRY, "halfcity", half)
    np.testing.assert_allclose(
        pairwise_distances(q, x, "chord"), np.sqrt(cdist(q, x, "cosine")), atol=1e-5
    )
    np.testing.assert_allclose(
        pairwise_distances(q, x, "halfcity"), cdist(q, x, "cityblock") / 2, rtol=1e-5
    )
    with pytest.raises(ValueError, match="unknown metric 'nope'.*chord"):
        pairwise_distances(q, x, "nope")


def test_the_registry_is_the_one_list() -> None:
    assert tuple(metrics.REGISTRY) == METRICS
    assert set(METRIC_LABELS) == set(METRIC_DESCRIPTIONS) == set(METRICS)
