"""The FAISS index: exact below the threshold (the same answers as ``rank``), IVF above it with
recall@50 measured against exact search, save/load, and the Playground's switch to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss")

from benchmarks.bench_faiss import Synthetic, dataset, real_features  # noqa: E402
from benchmarks.bench_faiss import queries as bench_queries  # noqa: E402
from convenet import playground as playground_module  # noqa: E402
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402
from convenet.playground import Playground  # noqa: E402
from convenet.search import vector_index
from convenet.search.ranking import rank  # noqa: E402
from convenet.search.vector_index import index_of, load_index, save_index, uses_index  # noqa: E402

pytestmark = pytest.mark.quick

K = 50


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Rows around 40 random centres, like features of images of a few dozen kinds."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim)).astype(np.float32)
    rows = centres[rng.integers(0, 40, n)] + 0.6 * rng.normal(size=(n, dim))
    return rows.astype(np.float32)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_index_gives_rank_answers(metric: str) -> None:
    data = clustered(3000, 32, 0)
    index = index_of(data, metric)
    assert index.kind == "exact"
    for row in (0, 17, 2999):
        ours, dist = index.search(data[row], K, exclude=row)
        truth = rank(data[row], data, metric, K, exclude=row)
        assert row not in ours[0]
        assert set(ours[0]) == set(truth.indices)
        np.testing.assert_allclose(dist[0], truth.distances, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_ivf_recall_at_50_against_exact_search(metric: str) -> None:
    """20,000 EfficientNet-Lite0 top_conv vectors (the 400 real ones and draws around them, as
    in bench_faiss.py); queries not in the set; the module's own cells and nprobe."""
    synth = Synthetic(*real_features())
    data = dataset(20_000, synth).astype(np.float32)
    index = index_of(data, metric, exact_max=0)
    assert index.kind == "ivf" and index.index.nlist == 141
    queries = bench_queries(synth)[::4]
    found, _ = index.search(queries, K)
    recalls = [
        len(set(found[i]) & set(rank(q, data, metric, K).indices)) / K
        for i, q in enumerate(queries)
    ]
    assert np.mean(recalls) >= 0.95
    assert found.shape == (len(queries), K)


def test_saved_index_reads_back_with_its_sidecar(tmp_path: Path) -> None:
    data = clustered(2000, 16, 3)
    index = index_of(data, "euclidean", exact_max=0)
    path = tmp_path / "d" / "index" / "m.l.euclidean.faiss"
    save_index(index, path, {"dataset": "d"})
    loaded, about = load_index(path)
    assert (loaded.kind, loaded.n, loaded.metric, about["dataset"]) == (
        "ivf",
        2000,
        "euclidean",
        "d",
    )
    np.testing.assert_array_equal(loaded.search(data[5], 10)[0], index.search(data[5], 10)[0])


def test_only_large_cosine_or_euclidean_sets_use_the_index() -> None:
    assert not uses_index(vector_index.EXACT_MAX, "cosine")
    assert uses_index(vector_index.EXACT_MAX + 1, "euclidean")
    assert not uses_index(10**7, "manhattan")


def test_playground_search_goes_through_the_index_above_the_threshold(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With the threshold lowered to 100 the shipped 200-image set is 'large': the results
    come from the index (an exact one here) and equal the exact scan's."""
    pg = Playground(PRECOMPUTED_DIR, cache_root=tmp_path)
    before = pg.search("stamps200", "efficientnet_lite0", "top_conv", "cosine", query_index=3)
    monkeypatch.setattr(vector_index, "EXACT_MAX", 100)
    monkeypatch.setattr(
        playground_module, "uses_index", lambda n, metric: uses_index(n, metric, exact_max=100)
    )
    built: list[int] = []
    real_index_of = playground_module.index_of
    monkeypatch.setattr(
        playground_module,
        "index_of",
        lambda rows, metric: built.append(len(rows)) or real_index_of(rows, metric),
    )
    after = pg.search("stamps200", "efficientnet_lite0", "top_conv", "cosine", query_index=3)
    assert built == [200]
    assert [h.index for h in after.hits] == [h.index for h in before.hits]
    assert after.p_at_k == before.p_at_k
    np.testing.assert_allclose(
        [h.similarity for h in after.hits], [h.similarity for h in before.hits], atol=0.5
    )


def test_map_shows_a_seeded_sample_of_a_large_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    pg = Playground(PRECOMPUTED_DIR)
    assert list(pg.map_rows("stamps200")) == list(range(200))
    monkeypatch.setattr(playground_module, "MAP_MAX", 50)
    rows = pg.map_rows("stamps200")
    assert len(rows) == 50 and len(set(rows)) == 50 and list(rows) == sorted(rows)
    assert list(pg.map_rows("stamps200")) == list(rows)  # the same sample every time
    points = pg.projection("stamps200", "efficientnet_lite0", "top_conv", "pca")
    assert points.shape == (50, 2)


def test_the_overview_refuses_a_set_too_large_to_rank_all_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pg = Playground(PRECOMPUTED_DIR)
    monkeypatch.setattr(playground_module, "QUALITY_MAX", 100)
    with pytest.raises(ValueError, match="too slow for 200 images"):
        pg.quality("stamps200", "cosine")


def test_the_index_reads_its_form_from_the_metric_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """A metric whose record names an index form is served by FAISS with no other change:
    squared euclidean through an L2 index answers as the exact ranking does."""
    from dataclasses import replace

    from convenet.search import metrics

    record = replace(metrics.REGISTRY["sqeuclidean"], index="l2")
    monkeypatch.setitem(metrics.REGISTRY, "sqeuclidean", record)
    data = clustered(2000, 16, 1)
    index = index_of(data, "sqeuclidean")
    ours, dist = index.search(data[5], K, exclude=5)
    truth = rank(data[5], data, "sqeuclidean", K, exclude=5)
    assert set(ours[0]) == set(truth.indices)
    np.testing.assert_allclose(dist[0], truth.distances, rtol=1e-3, atol=1e-3)
    with pytest.raises(
        ValueError, match="an index serves cosine and euclidean and sqeuclidean, not 'manhattan'"
    ):
        index_of(data, "manhattan")
