"""Feature visualization: it must raise the channel's activation, be seeded, and cache PNGs."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from convenet.explain import featurevis
from convenet.explain.explorer import layer_activations

pytestmark = pytest.mark.quick


def _tf_style(x: np.ndarray) -> np.ndarray:
    return x / 127.5 - 1.0


@pytest.fixture(scope="module")
def small() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, name="c2")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="fc")(x))


def _objective(model: keras.Model, layer: str, channel: int, image: np.ndarray) -> float:
    (maps,) = layer_activations(model, [layer], image.astype(np.float32), _tf_style)
    return float(maps[..., channel].mean())


@pytest.mark.parametrize(("layer", "channel"), [("c2", 5), ("fc", 2)])
def test_optimisation_raises_the_objective(small: keras.Model, layer: str, channel: int) -> None:
    image = featurevis.visualize_channel(small, layer, channel, _tf_style, size=32, steps=30)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    rng = np.random.default_rng(0)
    noise = [_objective(small, layer, channel, rng.uniform(0, 255, (32, 32, 3))) for _ in range(5)]
    grey = _objective(small, layer, channel, np.full((32, 32, 3), 128.0))
    assert _objective(small, layer, channel, image) > max(*noise, grey)


def test_deterministic_for_a_seed_and_reports_progress(small: keras.Model) -> None:
    seen: list[float] = []
    first = featurevis.visualize_channel(
        small, "c2", 1, _tf_style, size=32, steps=4, progress=seen.append
    )
    again = featurevis.visualize_channel(small, "c2", 1, _tf_style, size=32, steps=4)
    other = featurevis.visualize_channel(small, "c2", 1, _tf_style, size=32, steps=4, seed=1)
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
    assert seen == [0.25, 0.5, 0.75, 1.0]


def test_mobilenet_at_another_size() -> None:
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))
    preprocess = keras.applications.mobilenet_v2.preprocess_input
    image = featurevis.visualize_channel(
        model, "block_3_expand_relu", 7, preprocess, size=48, steps=2
    )
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8


def test_affine_preprocess_matches_keras_preprocessors() -> None:
    image = np.random.default_rng(1).uniform(0, 255, (5, 7, 3)).astype(np.float32)
    for preprocess in (
        keras.applications.mobilenet_v2.preprocess_input,  # x / 127.5 - 1
        keras.applications.vgg16.preprocess_input,  # RGB -> BGR, minus channel means
        keras.applications.densenet.preprocess_input,  # torch style: (x / 255 - mean) / std
    ):
        matrix, bias = featurevis._affine_preprocess(preprocess)
        np.testing.assert_allclose(image @ matrix + bias, preprocess(image.copy()), atol=1e-3)


def test_bad_arguments_are_rejected(small: keras.Model) -> None:
    with pytest.raises(ValueError, match="channel 8 out of range"):
        featurevis.visualize_channel(small, "c2", 8, _tf_style, size=32, steps=1)
    with pytest.raises(ValueError, match="not a per-pixel affine"):
        featurevis.visualize_channel(small, "c2", 0, lambda x: x**2, size=32, steps=1)
    with pytest.raises(ValueError, match="Flatten need the model's input size"):
        featurevis.visualize_channel(small, "fc", 0, _tf_style, size=24, steps=1)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        featurevis.visualize_channel(small, "nope", 0, _tf_style, size=32, steps=1)
    with pytest.raises(ValueError, match="size >= 16"):
        featurevis.visualize_channel(small, "c2", 0, _tf_style, size=8, steps=1)


def test_cache_key_encodes_every_setting() -> None:
    key = featurevis.picture_key("mobilenet_v2", "block_3", 7, 128, 96)
    variants = {
        key,
        featurevis.picture_key("mobilenet_v2", "block_3", 7, 128, 96, seed=1),
        featurevis.picture_key("mobilenet_v2", "block_3", 7, 128, 96, lr=0.1),
        featurevis.picture_key("mobilenet_v2", "block_3", 7, 64, 96),
        featurevis.picture_key("mobilenet_v2", "block_3", 8, 128, 96),
        featurevis.picture_key("mobilenet_v2", "block_3", 7, 128, 95),
        featurevis.picture_key("mobilenet_v2", "block_4", 7, 128, 96),
    }
    assert len(variants) == 7
    assert featurevis.picture_key("a/b", "c", 0, 32, 1) != featurevis.picture_key(
        "a", "b/c", 0, 32, 1
    )


def test_cache_round_trip(
    small: keras.Model, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONVENET_CACHE", str(tmp_path))
    args = ("small", small, "c2", 3, _tf_style)
    made = featurevis.visualize_channel_cached(*args, size=32, steps=2)
    assert featurevis.picture_key("small", "c2", 3, 32, 2) in featurevis.picture_store()

    def must_not_run(*_args: object, **_kwargs: object) -> np.ndarray:
        raise AssertionError("cache miss: visualize_channel was called again")

    monkeypatch.setattr(featurevis, "visualize_channel", must_not_run)
    seen: list[float] = []
    loaded = featurevis.visualize_channel_cached(*args, size=32, steps=2, progress=seen.append)
    np.testing.assert_array_equal(loaded, made)
    assert loaded.dtype == np.uint8 and seen == [1.0]


def test_inversion_matches_the_layer_and_resembles_the_image(small: keras.Model) -> None:
    """An early layer keeps almost everything: the rebuilt image's activations match the
    original's, and the picture is closer to it than grey is."""
    y, x = np.mgrid[:32, :32]
    image = np.stack([y * 8, x * 8, np.full((32, 32), 128)], axis=-1).astype(np.float32)
    seen: list[float] = []
    rebuilt, steps, error = featurevis.invert_layer(
        small, "c1", image, _tf_style, steps=120, progress=seen.append
    )
    assert rebuilt.shape == (32, 32, 3) and rebuilt.dtype == np.uint8
    assert steps == 120 and len(seen) == 120 and seen[-1] == 1.0
    assert error < 0.2
    (want,) = layer_activations(small, ["c1"], image, _tf_style)
    (got,) = layer_activations(small, ["c1"], rebuilt.astype(np.float32), _tf_style)
    grey = np.full_like(image, 128.0)
    (grey_acts,) = layer_activations(small, ["c1"], grey, _tf_style)
    assert np.abs(got - want).mean() < 0.5 * np.abs(grey_acts - want).mean()
    inner = np.s_[2:-2, 2:-2]  # the 3x3 conv sees borders less
    assert np.abs(rebuilt[inner] - image[inner]).mean() < np.abs(grey[inner] - image[inner]).mean()


def test_inversion_stops_at_its_time_limit(small: keras.Model) -> None:
    image = np.full((32, 32, 3), 100.0, np.float32)
    _, steps, _ = featurevis.invert_layer(
        small, "c2", image, _tf_style, steps=10_000, time_limit_s=0
    )
    assert steps == 1
    with pytest.raises(ValueError, match="not feature maps"):
        featurevis.invert_layer(small, "fc", image, _tf_style, steps=2)
