"""Retrieval scores: a hand-worked example, a brute-force loop reference, and edge cases."""

import numpy as np
import pytest

from convenet.search.evaluation import (
    RetrievalScores,
    chance_precision,
    evaluate_retrieval,
    per_query_precision,
    query_scores,
)
from convenet.search.metrics import pairwise_distances

pytestmark = pytest.mark.quick

# Four points on a line, euclidean, k = 2.  Class sizes: label 0 has 3 images, label 1 has 1.
#   query 0 (label 0): neighbours 1 (d=1), 2 (d=3) -> relevant [1, 0]
#   query 1 (label 0): neighbours 0 (d=1), 2 (d=2) -> relevant [1, 0]
#   query 2 (label 1): neighbours 1 (d=2), 0 (d=3) -> relevant [0, 0]  (no other image of class 1)
#   query 3 (label 0): neighbours 2 (d=4), 1 (d=6) -> relevant [0, 1]
LINE = np.array([[0.0], [1.0], [3.0], [7.0]])
LINE_LABELS = np.array([0, 0, 1, 0])


def reference_scores(features, labels, metric, k):
    """Plain-loop leave-one-out p@k, AP@k, weighted score and chance, one query at a time."""
    dist = pairwise_distances(features, features, metric)
    n = len(labels)
    p, ap, weighted, chance = [], [], [], []
    for i in range(n):
        order = sorted((float(dist[i, j]), j) for j in range(n) if j != i)[:k]
        hits = [labels[j] == labels[i] for _, j in order]
        kk = len(hits)
        n_relevant = sum(labels[j] == labels[i] for j in range(n) if j != i)
        p.append(sum(hits) / kk)
        precision_sum, found = 0.0, 0
        for rank_, hit in enumerate(hits, start=1):
            if hit:
                found += 1
                precision_sum += found / rank_
        ap.append(precision_sum / min(kk, n_relevant) if n_relevant else 0.0)
        weights = [(kk - r) / kk for r in range(kk)]
        weighted.append(sum(w for w, hit in zip(weights, hits, strict=True) if hit) / sum(weights))
        chance.append(n_relevant / (n - 1))
    return np.array(p), np.array(ap), np.array(weighted), np.array(chance)


def test_chance_by_hand():
    # Class 0 (3 images): 2 of the 4 others share the class; class 1 (2 images): 1 of 4.
    assert chance_precision(np.array([0, 0, 0, 1, 1])) == pytest.approx((3 * 2 / 4 + 2 * 1 / 4) / 5)
    scores = evaluate_retrieval(np.eye(5), np.array([0, 0, 0, 1, 1]), "euclidean", k=2)
    assert scores.chance == pytest.approx(0.4)
    with pytest.raises(ValueError, match="two images"):
        chance_precision(np.array([0]))


def test_hand_computed_example():
    scores = evaluate_retrieval(LINE, LINE_LABELS, "euclidean", k=2, class_names=["a", "b"])
    assert scores.k == 2
    # p@2 per query: 1/2, 1/2, 0, 1/2
    assert scores.p_at_k == pytest.approx((0.5 + 0.5 + 0 + 0.5) / 4)
    # AP@2 (2 relevant each for class 0): 1/2, 1/2, 0, (P@2 = 1/2) / 2 = 1/4
    assert scores.map_at_k == pytest.approx((0.5 + 0.5 + 0 + 0.25) / 4)
    # weights (1, 1/2), total 3/2: [1,0] -> 2/3, [0,0] -> 0, [0,1] -> 1/3
    assert scores.weighted_score == pytest.approx((2 / 3 + 2 / 3 + 0 + 1 / 3) / 4)
    # chance: (class size - 1) / (n - 1) = 2/3, 2/3, 0, 2/3
    assert scores.chance == pytest.approx(0.5)
    assert scores.per_class["a"] == pytest.approx(
        {"p_at_k": 0.5, "map_at_k": (0.5 + 0.5 + 0.25) / 3, "weighted_score": 5 / 9}
    )
    assert scores.per_class["b"] == {"p_at_k": 0.0, "map_at_k": 0.0, "weighted_score": 0.0}


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "manhattan", "correlation"])
@pytest.mark.parametrize("k", [1, 5, 40])
def test_matches_brute_force_loop(metric, k):
    rng = np.random.default_rng(k)
    labels = rng.integers(0, 4, size=30)
    features = rng.normal(size=(30, 6)) + labels[:, None] * 0.7
    p, ap, weighted, chance = reference_scores(features, labels, metric, k)
    scores = evaluate_retrieval(features, labels, metric, k=k)
    assert scores.k == min(k, 29)
    assert scores.p_at_k == pytest.approx(p.mean())
    assert scores.map_at_k == pytest.approx(ap.mean())
    assert scores.weighted_score == pytest.approx(weighted.mean())
    assert scores.chance == pytest.approx(chance.mean())
    for label in np.unique(labels):
        mask = labels == label
        assert scores.per_class[str(label)]["p_at_k"] == pytest.approx(p[mask].mean())
        assert scores.per_class[str(label)]["map_at_k"] == pytest.approx(ap[mask].mean())
    np.testing.assert_allclose(per_query_precision(features, labels, metric, k), p)


def test_separated_clusters_score_one():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    centres = np.eye(3) * 100
    features = centres[labels] + rng.normal(scale=0.1, size=(30, 3))
    scores = evaluate_retrieval(features, labels, "euclidean", k=9)
    assert scores.p_at_k == scores.map_at_k == scores.weighted_score == 1.0
    assert scores.chance == pytest.approx(9 / 29)
    assert per_query_precision(features, labels, "euclidean", 9).mean() == scores.p_at_k


def test_to_dict_is_plain_data():
    result = evaluate_retrieval(LINE, LINE_LABELS, "euclidean", k=2)
    assert isinstance(result, RetrievalScores)
    as_dict = result.to_dict()
    assert set(as_dict) == {"p_at_k", "map_at_k", "weighted_score", "chance", "k", "per_class"}
    assert set(as_dict["per_class"]) == {"0", "1"}


def test_query_scores_by_hand():
    # Relevant at ranks 2 and 3 of 3: p = 2/3; weights (1, 2/3, 1/3) -> (2/3 + 1/3) / 2 = 1/2.
    assert query_scores(np.array([0, 1, 1]), 1) == pytest.approx(
        {"p_at_k": 2 / 3, "weighted_score": 0.5}
    )
    assert query_scores(np.array(["cat", "dog"]), "cat") == {"p_at_k": 0.5, "weighted_score": 2 / 3}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([0, 1, 1]), "labels for"),
        (np.array([0.0, 1.0, 1.0, 0.0]), "integer"),
        (np.array([0, -1, 1, 0]), ">= 0"),
    ],
)
def test_bad_labels_raise(labels, message):
    with pytest.raises(ValueError, match=message):
        evaluate_retrieval(LINE, labels, "euclidean")


def test_other_bad_input_raises():
    with pytest.raises(ValueError, match="at least 2"):
        evaluate_retrieval(LINE[:1], LINE_LABELS[:1], "euclidean")
    with pytest.raises(ValueError, match="class names"):
        evaluate_retrieval(LINE, LINE_LABELS, "euclidean", class_names=["only one"])
    with pytest.raises(ValueError, match="non-empty"):
        query_scores(np.array([]), 0)
