"""Top-k ranking against a full (distance, index) sort, ties, exclusion and bad input."""

import numpy as np
import pytest

from convenet.search import metrics
from convenet.search.metrics import METRICS, pairwise_distances
from convenet.search.ranking import Ranking, rank, rank_all

pytestmark = pytest.mark.quick


def brute_force(query: np.ndarray, features: np.ndarray, metric: str, k: int, exclude=None):
    """Reference: sort every row by (distance, index) in plain Python."""
    dist = pairwise_distances(query[None], features, metric)[0]
    order = sorted((float(d), i) for i, d in enumerate(dist) if i != exclude)
    return np.array([i for _, i in order[:k]], dtype=np.intp)


@pytest.fixture
def features() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)


@pytest.mark.parametrize("metric", METRICS)
def test_rank_matches_brute_force(metric, features):
    result = rank(features[3], features, metric, k=10, exclude=3)
    assert isinstance(result, Ranking)
    np.testing.assert_array_equal(result.indices, brute_force(features[3], features, metric, 10, 3))
    expected = pairwise_distances(features[3][None], features, metric)[0, result.indices]
    np.testing.assert_array_equal(result.distances, expected)
    assert np.all(np.diff(result.distances) >= 0)


def test_query_not_in_dataset_finds_its_duplicate_first(features):
    result = rank(features[42] * 1.0, features, "euclidean", k=3)
    assert result.indices[0] == 42
    assert result.distances[0] == 0


def test_ties_are_broken_by_index_even_across_the_cut():
    # 1-D points: distance 1 from 0 for rows 1, 3, 5, 7 and 2 for rows 0, 2, 4, 6.
    points = np.array([2, 1, -2, 1, 2, -1, -2, -1], dtype=np.float32)[:, None]
    query = np.zeros(1, dtype=np.float32)
    for k in range(1, 9):
        expected = [1, 3, 5, 7, 0, 2, 4, 6][:k]
        np.testing.assert_array_equal(rank(query, points, "manhattan", k).indices, expected)


def test_ties_on_many_duplicates_are_deterministic():
    rng = np.random.default_rng(1)
    features = np.repeat(rng.normal(size=(5, 8)), 40, axis=0)[rng.permutation(200)]
    first = rank(features[0], features, "cosine", k=25, exclude=0)
    again = rank(features[0].copy(), features.copy(), "cosine", k=25, exclude=0)
    np.testing.assert_array_equal(first.indices, again.indices)
    np.testing.assert_array_equal(
        first.indices, brute_force(features[0], features, "cosine", 25, 0)
    )


def test_exclusion_and_k_larger_than_available(features):
    small = features[:6]
    result = rank(small[2], small, "euclidean", k=50, exclude=2)
    assert sorted(result.indices) == [0, 1, 3, 4, 5]
    assert len(rank(small[2], small, "euclidean", k=50).indices) == 6


@pytest.mark.parametrize("k", [0, -1, 2.5, "3"])
def test_bad_k_raises(k, features):
    with pytest.raises(ValueError, match="k must be"):
        rank(features[0], features, "cosine", k)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_query_raises(bad, features):
    query = features[0].copy()
    query[3] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        rank(query, features, "cosine", 5)


def test_non_finite_features_raise_naming_the_row(features):
    broken = features.copy()
    broken[17, 0] = np.nan
    with pytest.raises(ValueError, match="row 17"):
        rank(features[0], broken, "euclidean", 5)
    with pytest.raises(ValueError, match="NaN or inf"):
        rank_all(broken, "euclidean", 5)


@pytest.mark.parametrize(
    ("query", "exclude"), [(np.ones((1, 16)), None), (np.ones(15), None), (np.ones(16), 200)]
)
def test_bad_query_or_exclude_raises(query, exclude, features):
    with pytest.raises(ValueError):
        rank(query, features, "cosine", 5, exclude=exclude)


@pytest.mark.parametrize("metric", ["cosine", "manhattan"])
def test_rank_all_equals_leave_one_out_rank(metric, features, monkeypatch):
    monkeypatch.setattr(metrics, "CHUNK_BYTES", 4 * 200 * 7)  # query blocks of 7 rows
    indices, distances = rank_all(features, metric, k=6)
    assert indices.shape == distances.shape == (200, 6)
    for i in range(len(features)):
        single = rank(features[i], features, metric, k=6, exclude=i)
        np.testing.assert_array_equal(indices[i], single.indices)
        # Matrix products of different shapes may differ in the last bit.
        np.testing.assert_allclose(distances[i], single.distances, rtol=1e-6)


def test_rank_all_caps_k_at_n_minus_one():
    indices, _ = rank_all(np.eye(4), "euclidean", k=10)
    assert indices.shape == (4, 3)
    assert all(i not in row for i, row in enumerate(indices))


def test_float16_features_rank_like_float32(features):
    half = features.astype(np.float16)
    result = rank(half[0], half, "cosine", k=10, exclude=0)
    np.testing.assert_array_equal(
        result.indices,
        brute_force(half[0].astype(np.float32), half.astype(np.float32), "cosine", 10, 0),
    )
