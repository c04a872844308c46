"""ONNX Runtime computes the same features as Keras, and a cached graph needs no TensorFlow."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file

from convenet.data.images import load_batch
from convenet.data.store import feature_path, read_feature_file
from convenet.features import onnx_runtime
from convenet.features.extract import extract_arrays
from convenet.models.loading import get_model_spec
from convenet.paths import PRECOMPUTED_DIR
from tests.app_server import app_process, tensorflow_loaded

pytestmark = pytest.mark.slow
MODEL = "efficientnet_lite0"
SPEC = get_model_spec(MODEL)
HALF_ULP = 2.0**-11  # float16 keeps 11 significant bits: rounding moves a value by at most this


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):
    """A private cache: the weights are converted and the graph exported into it, once."""
    root = tmp_path_factory.mktemp("convenet-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVENET_CACHE", str(root))
        onnx_runtime.SESSIONS.clear()
        yield root
    onnx_runtime.SESSIONS.clear()


def shipped(dataset: str, count: int) -> tuple[list[Path], dict[str, np.ndarray]]:
    """The first ``count`` images of a shipped dataset and their stored (Keras) float16 features."""
    stored = read_feature_file(feature_path(PRECOMPUTED_DIR, dataset, MODEL))
    names = stored.meta["images"][:count]
    images = [PRECOMPUTED_DIR / dataset / "images" / name for name in names]
    return images, {layer: values[:count] for layer, values in stored.features.items()}


@pytest.mark.parametrize("dataset", ["stamps200", "clipart200"])
def test_onnx_and_keras_give_the_same_features(cache: Path, monkeypatch, dataset: str) -> None:
    images, stored = shipped(dataset, 24)
    batch = load_batch(images, SPEC.input_size)
    fast = extract_arrays(MODEL, batch)
    assert list(cache.joinpath("onnx").glob(f"{MODEL}-avg-*.onnx"))  # ONNX Runtime ran them
    monkeypatch.setenv("CONVENET_ONNX", "0")
    keras = extract_arrays(MODEL, batch)
    for layer in SPEC.layer_names:
        scale = np.abs(keras[layer]).max()
        assert np.abs(fast[layer] - keras[layer]).max() <= HALF_ULP * scale, layer
        # The shipped files (Keras, float16): the same values after float16 rounding.
        ours = fast[layer].astype(np.float16).astype(np.float32)
        np.testing.assert_allclose(
            ours,
            stored[layer].astype(np.float32),
            rtol=2 * HALF_ULP,
            atol=2 * HALF_ULP * scale,
            err_msg=layer,
        )


def test_gem_on_onnx_matches_keras_and_the_shipped_view(cache: Path, monkeypatch) -> None:
    stored = read_feature_file(feature_path(PRECOMPUTED_DIR, "clipart200", MODEL, "gem"))
    images = [
        PRECOMPUTED_DIR / "clipart200" / "images" / name for name in stored.meta["images"][:8]
    ]
    batch = load_batch(images, SPEC.input_size)
    fast = extract_arrays(MODEL, batch, pooling="gem")
    assert list(cache.joinpath("onnx").glob(f"{MODEL}-gem-*.onnx"))
    monkeypatch.setenv("CONVENET_ONNX", "0")
    keras = extract_arrays(MODEL, batch, pooling="gem")
    for layer in SPEC.layer_names:
        scale = np.abs(keras[layer]).max()
        np.testing.assert_allclose(fast[layer], keras[layer], atol=4 * HALF_ULP * scale)
        shipped_values = stored.features[layer][:8].astype(np.float32)
        np.testing.assert_allclose(fast[layer], shipped_values, atol=4 * HALF_ULP * scale)


def test_other_poolings_and_random_weights_stay_with_keras(cache: Path) -> None:
    assert onnx_runtime.onnx_extractor(MODEL, "max", "imagenet") is None
    assert onnx_runtime.onnx_extractor(MODEL, "avg", None) is None
    assert onnx_runtime.onnx_extractor(MODEL, "avg", "imagenet") is not None


def test_a_failed_export_leaves_the_model_to_keras(cache: Path, monkeypatch, caplog) -> None:
    def broken(spec, pooling="avg"):
        raise RuntimeError("an operator tf2onnx cannot convert")

    onnx_runtime.SESSIONS.clear()
    monkeypatch.setattr(
        onnx_runtime, "graph_path", lambda spec, weights, pooling="avg": cache / "absent.onnx"
    )
    monkeypatch.setattr(onnx_runtime, "export_in_subprocess", broken)
    assert onnx_runtime.onnx_extractor(MODEL, "avg", "imagenet") is None
    assert "Keras serves it" in caplog.text
    out = extract_arrays(MODEL, np.zeros((1, SPEC.input_size, SPEC.input_size, 3)), ["top_conv"])
    assert out["top_conv"].shape == (1, 1280)
    onnx_runtime.SESSIONS.clear()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/maps")
def test_uploads_never_load_tensorflow_into_the_app(tmp_path: Path, photo_file: Path) -> None:
    """A fresh cache: the app converts the weights and exports the graph in another process."""
    with app_process(tmp_path, cold=True) as app:
        client = Client(app.url, verbose=False)
        out = client.predict(query=handle_file(str(photo_file)), k=5, api_name="/search")
        assert len(out["results"]) == 5
        assert list((tmp_path / "onnx").glob(f"{MODEL}-avg-*.onnx"))
        assert not tensorflow_loaded(app.process.pid)
