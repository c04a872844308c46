"""Multi-scale GeM: the combination against a direct loop, and the whole extraction against
models built at each smaller size on their own (what the any-size graph must equal)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from convenet.features.multiscale import combine_scales, rescale, scaled_sizes


def reference_combine(vectors: list[np.ndarray], p: float, eps: float = 1e-6) -> np.ndarray:
    """cnnimageretrieval's extract_ms, one image at a time: v += net(x_s)^p; v /= S; v^(1/p)."""
    out = []
    for i in range(len(vectors[0])):
        total = np.zeros(vectors[0].shape[1])
        for scale in vectors:
            v = np.maximum(scale[i].astype(np.float64), 0)
            total += (v / (np.linalg.norm(v) + eps)) ** p
        v = (total / len(vectors)) ** (1 / p)
        out.append(v / (np.linalg.norm(v) + eps))
    return np.array(out)


@pytest.mark.quick
@pytest.mark.parametrize("p", [1.0, 3.0])
def test_combine_matches_the_reference_loop(p: float) -> None:
    rng = np.random.default_rng(int(p))
    vectors = [rng.random((4, 6)).astype(np.float32) for _ in range(3)]
    vectors[1][2] = 0.0  # an all-zero scale weighs nothing and breaks nothing
    np.testing.assert_allclose(combine_scales(vectors, p), reference_combine(vectors, p), 1e-5)


@pytest.mark.quick
def test_sizes_and_rescaling() -> None:
    assert scaled_sizes(224) == (224, 158, 112)
    assert scaled_sizes(260) == (260, 184, 130)
    batch = np.full((2, 8, 8, 3), 200.0, np.float32)
    assert rescale(batch, 8) is batch
    small = rescale(batch, 4)
    assert small.shape == (2, 4, 4, 3) and small.dtype == np.float32
    np.testing.assert_array_equal(small, 200.0)  # a flat picture stays flat


def test_multi_scale_equals_gem_of_models_built_at_each_size() -> None:
    """The any-size graph (ONNX, as the app runs it) against Lite0 rebuilt at 158 and 112 px
    with the same weights: a graph that resized inside itself failed exactly this."""
    import keras

    from convenet.features.extract import GEM_P, extract_arrays
    from convenet.models.efficientnet_lite import architecture
    from convenet.models.loading import get_model_spec, load_model, resolve

    spec = get_model_spec("efficientnet_lite0")
    layers = ("block4c_expand_conv", "top_conv")
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (2, 224, 224, 3)).astype(np.float32)
    got = extract_arrays(spec.key, images, layers, "ms")
    trained = load_model(spec.key)
    scales = []
    for size in scaled_sizes(spec.input_size):
        model = architecture(dataclasses.replace(spec, input_size=size))
        model.set_weights(trained.get_weights())
        maps = keras.Model(model.inputs, [model.get_layer(name).output for name in layers])
        outputs = maps.predict_on_batch(resolve(spec.preprocess)(rescale(images, size)))
        scales.append(
            {
                name: np.mean(np.maximum(out, 1e-6) ** GEM_P, axis=(1, 2)) ** (1 / GEM_P)
                for name, out in zip(layers, outputs, strict=True)
            }
        )
    for name in layers:
        expected = combine_scales([scale[name] for scale in scales], GEM_P)
        np.testing.assert_allclose(got[name], expected, rtol=1e-3, atol=1e-5)
