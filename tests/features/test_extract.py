"""Feature extraction: pooling matches a numpy reference, one pass serves several layers."""

from __future__ import annotations

import numpy as np
import pytest

from convenet.features.extract import GEM_P, decoded_batches, extract_arrays, extract_features
from convenet.models.loading import get_model_spec, load_model, preprocess_for

pytestmark = pytest.mark.slow
MODEL = "efficientnet_lite0"
LAYERS = ["stem_conv", "block4c_expand_conv", "top_conv"]


@pytest.fixture(scope="module")
def batch(photo: np.ndarray) -> np.ndarray:
    from convenet.data.images import load_image

    first = load_image(_png(photo), 224).astype(np.float32)
    return np.stack([first, first[:, ::-1]])


def _png(array: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def maps(batch: np.ndarray) -> dict[str, np.ndarray]:
    """Full feature maps from a plain single-output model: the reference."""
    import keras

    model = load_model(MODEL)
    x = preprocess_for(MODEL)(batch.copy())
    return {
        name: np.asarray(
            keras.Model(model.inputs, model.get_layer(name).output).predict(x, verbose=0)
        )
        for name in LAYERS
    }


@pytest.mark.parametrize(
    ("pooling", "reference"),
    [
        ("avg", lambda m: m.mean(axis=(1, 2))),
        ("max", lambda m: m.max(axis=(1, 2))),
        ("gem", lambda m: (np.maximum(m, 1e-6) ** GEM_P).mean(axis=(1, 2)) ** (1 / GEM_P)),
    ],
)
def test_pooling_matches_numpy(batch, maps, pooling, reference) -> None:
    got = extract_arrays(MODEL, batch, LAYERS, pooling)
    for name in LAYERS:
        assert got[name].shape == (2, maps[name].shape[-1])
        np.testing.assert_allclose(got[name], reference(maps[name]), rtol=2e-3, atol=2e-4)


def test_flat_pooling_only_for_small_layers(batch) -> None:
    with pytest.raises(ValueError, match="'flat' pooling is only for layers"):
        extract_arrays(MODEL, batch, ["top_conv"], "flat")


def test_unknown_names(batch) -> None:
    with pytest.raises(ValueError, match="Unknown layer 'nope'"):
        extract_arrays(MODEL, batch, ["nope"])
    with pytest.raises(ValueError, match="Unknown pooling 'median'"):
        extract_arrays(MODEL, batch, LAYERS, "median")


def test_extract_features_batches_and_records(photo_file) -> None:
    seen: list[tuple[int, int]] = []
    result = extract_features(
        MODEL, [photo_file] * 5, batch_size=2, progress=lambda d, t: seen.append((d, t))
    )
    assert result.layers == list(get_model_spec(MODEL).layer_names)
    assert all(v.dtype == np.float16 and v.shape[0] == 5 for v in result.features.values())
    assert seen == [(2, 5), (4, 5), (5, 5)]
    meta = result.meta()
    assert meta["model"] == MODEL and meta["pooling"] == "avg" and meta["input_size"] == 224
    # Identical inputs give identical vectors, whatever batch they were in.
    top = result.features["top_conv"].astype(np.float32)
    np.testing.assert_allclose(top[0], top[4], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("flip", [False, True])
def test_decoded_batches_keep_the_order_while_decoding_ahead(photo: np.ndarray, flip) -> None:
    """Batches decoded in a thread come out in order, last partial batch included."""
    from convenet.data.images import load_batch

    sources = [_png(photo[i * 20 : i * 20 + 100, i * 30 : i * 30 + 150]) for i in range(5)]
    got = list(decoded_batches(sources, 32, batch_size=2, flip=flip))
    assert [len(b) for b in got] == [2, 2, 1]
    expected = load_batch(sources, 32)
    np.testing.assert_array_equal(np.concatenate(got), expected[:, :, ::-1] if flip else expected)


def test_batches_side_by_side_give_the_same_features_in_order(photo: np.ndarray) -> None:
    """ONNX Runtime runs batches side by side (one thread each): same vectors, same order."""
    sources = [_png(photo[i * 30 : i * 30 + 200, i * 40 : i * 40 + 260]) for i in range(5)]
    one = extract_features(MODEL, sources, LAYERS, batch_size=2, streams=1)
    both = extract_features(MODEL, sources, LAYERS, batch_size=2, streams=2)
    for name in LAYERS:
        np.testing.assert_array_equal(both.features[name], one.features[name])
