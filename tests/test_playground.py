"""The app's engine: search over shipped features, uploads, first-use computation, checksums."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from convenet.data.datasets import DatasetSpec
from convenet.data.images import load_image
from convenet.data.store import feature_path
from convenet.features.extract import extract_arrays
from convenet.models.registry import MODELS, get_model_spec
from convenet.paths import PRECOMPUTED_DIR
from convenet.playground import Playground

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Playground:
    return Playground(PRECOMPUTED_DIR, tmp_path_factory.mktemp("feature-cache"))


def test_shipped_datasets_in_registry_order(pg: Playground) -> None:
    assert pg.datasets()[:2] == ["stamps200", "clipart200"]
    folder = pg.dataset("stamps200")
    assert len(folder.paths) == 200 and len(folder.classes) == 10
    assert pg.chance("stamps200") == pytest.approx(19 / 199)


def test_search_excludes_the_query_and_scores_it(pg: Playground) -> None:
    result = pg.search("stamps200", "efficientnet_lite0", "top_conv", "cosine", query_index=7, k=10)
    assert [hit.rank for hit in result.hits] == list(range(1, 11))
    assert 7 not in [hit.index for hit in result.hits]
    assert result.p_at_k == pytest.approx(result.matches / 10)
    sims = [hit.similarity for hit in result.hits]
    assert sims == sorted(sims, reverse=True)


def test_late_layers_beat_early_layers_and_chance(pg: Playground) -> None:
    grid = pg.quality("stamps200", "cosine", 10)
    assert {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"} <= set(grid)
    lite0 = grid["efficientnet_lite0"]
    chance = pg.chance("stamps200")
    assert lite0["top_conv"] > 3 * chance
    assert lite0["top_conv"] > lite0["stem_conv"]


def test_uploading_a_dataset_image_finds_itself_first(pg: Playground) -> None:
    folder = pg.dataset("clipart200")
    result = pg.search(
        "clipart200",
        "efficientnet_lite0",
        "top_conv",
        "euclidean",
        query_image=folder.paths[42],
        k=3,
    )
    assert result.hits[0].index == 42 and result.hits[0].similarity > 99
    assert result.query_label is None and result.p_at_k is None


def test_compare_and_projection(pg: Playground) -> None:
    rows = pg.compare("stamps200", 3, "cosine", 10)
    assert len(rows) >= 24 and all(0 <= r["p_at_k"] <= 1 for r in rows)
    points = pg.projection("stamps200", "efficientnet_lite0", "top_conv", "pca")
    assert points.shape == (200, 2) and np.isfinite(points).all()
    # Cached per (dataset, model, layer, method): revisiting a map is instant.
    assert pg.projection("stamps200", "efficientnet_lite0", "top_conv", "pca") is points
    other = pg.projection("stamps200", "efficientnet_lite0", "stem_conv", "pca")
    assert other is not points and not np.allclose(other, points)


def test_kept_maps_do_not_pin_feature_matrices(tmp_path: Path) -> None:
    """The map cache once used a whole feature matrix as its key (up to 25 MB a key, 64 keys):
    now what stays after drawing maps is the maps themselves, a few KB each."""
    import gc
    import tracemalloc

    pg = Playground(PRECOMPUTED_DIR, tmp_path)
    pg._maps["stamps200"] = {}  # no shipped maps: these are drawn and kept

    names = [layer.name for layer in MODELS["efficientnet_lite0"].layers]
    layers = names[-4:]
    for layer in layers:  # features loaded (and kept by the playground) before measuring
        pg.features("stamps200", "efficientnet_lite0", layer)
    pg.projection("stamps200", "efficientnet_lite0", names[0], "pca")  # imports, first use
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for layer in layers:
        pg.projection("stamps200", "efficientnet_lite0", layer, "pca")
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert kept < 2**19, f"{kept / 2**20:.1f} MB kept by 4 maps of 200 points"


def test_umap_map_keeps_classes_together(pg: Playground) -> None:
    pytest.importorskip("umap")
    points = pg.projection("stamps200", "efficientnet_lite0", "top_conv", "umap")
    assert points.shape == (200, 2) and np.isfinite(points).all()
    labels = pg.dataset("stamps200").labels
    gaps = np.linalg.norm(points[:, None] - points[None], axis=2)
    same = labels[:, None] == labels[None]
    off_diagonal = ~np.eye(200, dtype=bool)
    # At the last layer images of one class sit closer together than images of two classes.
    assert gaps[same & off_diagonal].mean() < 0.8 * gaps[~same].mean()


def test_bad_requests(pg: Playground) -> None:
    with pytest.raises(ValueError, match="Unknown dataset"):
        pg.search("nope", "efficientnet_lite0", "top_conv", "cosine", query_index=0)
    with pytest.raises(ValueError, match="Give a query"):
        pg.search("stamps200", "efficientnet_lite0", "top_conv", "cosine")
    with pytest.raises(ValueError, match="k must be between 1 and 200"):
        pg.search("stamps200", "efficientnet_lite0", "top_conv", "cosine", query_index=0, k=0)


def _small_root(tmp_path: Path, n_per_class: int = 3) -> Path:
    """A copy of stamps200 with a few images per class and no features."""
    root = tmp_path / "root"
    for class_dir in sorted((PRECOMPUTED_DIR / "stamps200" / "images").iterdir())[:3]:
        target = root / "tiny" / "images" / class_dir.name
        target.mkdir(parents=True)
        for image in sorted(class_dir.glob("*.jpg"))[:n_per_class]:
            shutil.copy(image, target / image.name)
    return root


def tiny(root: Path) -> list[DatasetSpec]:
    """The throw-away dataset's entry: the app lists what is registered, not what is on disk."""
    return [
        DatasetSpec(
            name="tiny", title="Tiny", description="9 stamps", root=root / "tiny" / "images"
        )
    ]


def test_features_are_computed_on_first_use_and_cached(tmp_path: Path) -> None:
    root = _small_root(tmp_path)
    cache = tmp_path / "cache"
    calls: list[int] = []
    pg = Playground(root, cache, tiny(root))
    feats = pg.features("tiny", "efficientnet_lite0", "top_conv", lambda d, t: calls.append(d))
    assert feats.shape == (9, 1280) and calls[-1] == 9
    assert feature_path(cache, "tiny", "efficientnet_lite0").is_file()
    again = Playground(root, cache, tiny(root)).features("tiny", "efficientnet_lite0", "top_conv")
    np.testing.assert_array_equal(feats, again)


def test_corrupt_cached_file_is_recomputed_not_served(tmp_path: Path) -> None:
    root = _small_root(tmp_path)
    cache = tmp_path / "cache"
    good = (
        Playground(root, cache, tiny(root))
        .features("tiny", "efficientnet_lite0", "top_conv")
        .copy()
    )
    path = feature_path(cache, "tiny", "efficientnet_lite0")
    data = bytearray(path.read_bytes())
    data[-100:] = b"\x7f" * 100  # garbage in the numbers: the checksum must catch it
    path.write_bytes(bytes(data))
    fresh = Playground(root, cache, tiny(root)).features("tiny", "efficientnet_lite0", "top_conv")
    np.testing.assert_allclose(fresh, good, rtol=1e-2, atol=1e-2)
    assert not np.any(fresh == np.float16(np.frombuffer(b"\x7f\x7f", np.float16)[0]))


def test_a_large_dataset_is_served_from_its_memory_map(tmp_path: Path, monkeypatch) -> None:
    """Above EXACT_MAX images the stored float16 rows are served as they are (no float32
    copy) and ranked through an index; below it, float32 in memory as before."""
    root = _small_root(tmp_path)
    cache = tmp_path / "cache"
    small = Playground(root, cache, tiny(root))
    exact = small.search("tiny", "efficientnet_lite0", "top_conv", "cosine", query_index=4, k=5)
    assert small.features("tiny", "efficientnet_lite0", "top_conv").dtype == np.float32
    monkeypatch.setattr("convenet.playground.EXACT_MAX", 8)  # 9 images: "large"
    monkeypatch.setattr("convenet.playground.uses_index", lambda n, metric: n > 8)
    large = Playground(root, cache, tiny(root))
    rows = large.features("tiny", "efficientnet_lite0", "top_conv")
    assert isinstance(rows.base, np.memmap) or isinstance(rows, np.memmap)
    assert rows.dtype == np.float16
    found = large.search("tiny", "efficientnet_lite0", "top_conv", "cosine", query_index=4, k=5)
    assert [h.index for h in found.hits] == [h.index for h in exact.hits]  # exact index below 50k
    np.testing.assert_allclose(
        [h.distance for h in found.hits], [h.distance for h in exact.hits], atol=2e-3
    )
    with pytest.raises(ValueError, match="too many for 9 images"):
        large.search("tiny", "efficientnet_lite0", "top_conv", "cosine", 4, k=5, recipe="flip")


def test_forget_drops_everything_held_for_a_dataset() -> None:
    """A session's own dataset is forgotten when it goes; nothing of it stays in memory."""
    pg = Playground(PRECOMPUTED_DIR)
    pg.search("stamps200", "efficientnet_lite0", "top_conv", "cosine", 3, recipe="gem")
    pg.search("clipart200", "efficientnet_lite0", "top_conv", "cosine", 3)
    pg.forget("stamps200")
    held = [*pg.shelf.held(), *pg._spaces._items, *pg._indexes._items]
    assert held and all(key[0] != "stamps200" for key in held)


def test_a_browsing_gallery_lists_an_even_spread_of_a_large_dataset() -> None:
    from convenet.playground import browse_label, spread

    assert spread([3, 5, 7], 5) == [3, 5, 7]
    rows = list(range(10, 60_010))
    shown = spread(rows, 1000)
    assert len(shown) == 1000 and shown[0] == 10 and shown[-1] == 60_009
    assert shown == sorted(set(shown))  # in order, no repeats
    assert max(b - a for a, b in zip(shown, shown[1:], strict=False)) <= 61
    assert browse_label(200, 200) == "Dataset images"
    assert "1,000 of 60,000, evenly spread" in browse_label(1000, 60_000)


def test_a_large_datasets_scale_sample_is_read_once(pg: Playground, monkeypatch) -> None:
    """Above SCALE_SAMPLE images every search read the same rows again (~64 ms of a 67 ms
    search at 60,000 images): the Playground keeps them per dataset, model, layer and recipe."""
    from convenet import playground
    from convenet.search import calibration

    monkeypatch.setattr(calibration, "SCALE_SAMPLE", 50)
    drawn = []
    draw = playground.scale_sample
    monkeypatch.setattr(playground, "scale_sample", lambda db: drawn.append(1) or draw(db))
    pg._scale_samples.clear()
    results = [
        pg.search("stamps200", "efficientnet_lite0", "top_conv", "cosine", i) for i in (3, 4)
    ]
    assert len(drawn) == 1 and len(pg._scale_samples) == 1
    monkeypatch.setattr(calibration, "SCALE_SAMPLE", 20_000)
    pg.search("clipart200", "efficientnet_lite0", "top_conv", "cosine", 3)
    assert len(drawn) == 1 and len(pg._scale_samples) == 1  # a small set keeps nothing
    for result in results:
        similarity = [hit.similarity for hit in result.hits]
        assert similarity[0] == 100 and similarity == sorted(similarity, reverse=True)


def test_layer_similarity_of_the_shipped_models(pg: Playground) -> None:
    """CKA over every model x layer with features: 1 on the diagonal, symmetric; the sibling
    models' first layers see alike, a first layer and the last one of the same model do not."""
    got = pg.layer_similarity("clipart200")
    names = [(key, layer) for key, layer in got.pairs]
    assert len(names) == got.matrix.shape[0] >= 24 and ("efficientnet_lite0", "top_conv") in names
    np.testing.assert_allclose(np.diag(got.matrix), 1.0)
    np.testing.assert_allclose(got.matrix, got.matrix.T)
    stem0 = names.index(("efficientnet_lite0", MODELS["efficientnet_lite0"].layer_names[0]))
    stem1 = names.index(("efficientnet_lite1", MODELS["efficientnet_lite1"].layer_names[0]))
    assert got.matrix[stem0, stem1] > 0.9 > 0.3 > got.matrix[stem0, stem0 + 7]
    assert pg.layer_similarity("clipart200") is got  # kept


def test_shipped_maps_open_at_once_and_match_the_features(pg: Playground) -> None:
    """Every shipped model x layer has its PCA, t-SNE and UMAP map (scripts/build_maps.py),
    drawn from exactly the features shipped now; the map panel gets them without drawing."""
    from convenet.explain.maps import feature_digest

    for dataset in ("stamps200", "clipart200"):
        maps = pg._shipped_maps(dataset)
        for spec in MODELS.values():
            if not pg.has_features(dataset, spec.key):
                continue
            for layer in spec.layer_names:
                feats = pg.features(dataset, spec.key, layer)[pg.map_rows(dataset)]
                for method in ("pca", "tsne", "umap"):
                    digest, points = maps[f"{spec.key}/{layer}/{method}"]
                    assert digest == feature_digest(feats), f"{dataset} {spec.key} {layer}: stale"
                    assert points.shape == (len(feats), 2)
    shipped = pg._shipped_maps("clipart200")["efficientnet_lite0/top_conv/tsne"][1]
    assert pg.projection("clipart200", "efficientnet_lite0", "top_conv", "tsne") is shipped


def test_a_stale_or_damaged_map_file_is_drawn_instead(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    from convenet.explain.maps import read_maps

    pg = Playground(PRECOMPUTED_DIR, tmp_path / "cache")
    stale = tmp_path / "stale.safetensors"
    wrong = np.zeros((200, 2), np.float32)
    save_file(
        {"efficientnet_lite0/top_conv/pca": wrong},
        str(stale),
        {"efficientnet_lite0/top_conv/pca": "0" * 32},
    )
    pg._maps["stamps200"] = read_maps(stale)
    points = pg.projection("stamps200", "efficientnet_lite0", "top_conv", "pca")
    assert points.std() > 0  # drawn from the features, not the stale zeros
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(stale.read_bytes()[:50])
    assert read_maps(damaged) == {}


def test_a_datasets_channel_peaks_are_computed_once_where_none_ship(tmp_path: Path) -> None:
    """A dataset without shipped peaks (a folder, an upload) gets them from one pass of the
    model, reported as progress and kept; a shipped dataset reads its file and runs nothing."""
    root = _small_root(tmp_path)
    pg = Playground(root, tmp_path / "cache", tiny(root))
    calls: list[tuple[int, int]] = []
    peaks = pg.channel_peaks("tiny", "efficientnet_lite0", lambda d, t: calls.append((d, t)))
    assert calls[-1] == (9, 9)
    assert set(peaks) == set(get_model_spec("efficientnet_lite0").layer_names)
    top = peaks["top_conv"]
    assert top.images.shape == (1280, 9) and top.grid == (7, 7) and top.sane()
    paths = pg.dataset("tiny").paths
    batch = np.stack([load_image(path, 224) for path in paths]).astype(np.float32)
    maps = extract_arrays("efficientnet_lite0", batch, ["top_conv"], "map")["top_conv"]
    maxima = maps[..., 5].reshape(9, -1).max(axis=1)  # channel 5's peak on each image
    assert top.images[5].tolist() == np.argsort(-maxima, kind="stable").tolist()
    np.testing.assert_allclose(top.values[5], np.sort(maxima)[::-1], rtol=1e-5)
    assert pg.channel_peaks("tiny", "efficientnet_lite0", lambda d, t: calls.append(0)) is peaks
    shipped = Playground(PRECOMPUTED_DIR, tmp_path / "cache2")
    seen: list[int] = []
    assert shipped.channel_peaks("stamps200", "efficientnet_lite0", lambda d, t: seen.append(d))
    assert seen == []


def test_a_shipped_peaks_file_missing_a_layer_is_computed_in_full(tmp_path: Path) -> None:
    """A file with the right digest but not every curated layer (one written before a layer
    was added) is not trusted: the pass runs, and every layer has its peaks."""
    from convenet.explain.peaks import PEAKS_FILE, save_peaks

    root = _small_root(tmp_path)
    first = Playground(root, tmp_path / "cache", tiny(root))
    whole = first.channel_peaks("tiny", "efficientnet_lite0")
    digest = first.peaks_digest("tiny", "efficientnet_lite0")
    partial = {"efficientnet_lite0": {"stem_conv": whole["stem_conv"]}}
    (root / "tiny" / PEAKS_FILE).write_bytes(save_peaks(partial, {"efficientnet_lite0": digest}))
    calls: list[int] = []
    again = Playground(root, tmp_path / "cache", tiny(root)).channel_peaks(
        "tiny", "efficientnet_lite0", lambda d, t: calls.append(d)
    )
    assert calls and set(again) == set(whole)
