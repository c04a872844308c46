"""Model Explorer core on small hand-built models (known answers) and MobileNetV2 (code paths)."""

from __future__ import annotations

import gc
import weakref

import keras
import numpy as np
import pytest

from convenet.explain import explorer

pytestmark = pytest.mark.quick


def _scaled(x: np.ndarray) -> np.ndarray:
    return x / 255.0


@pytest.fixture(scope="module")
def tiny() -> keras.Model:
    """Conv, depthwise and separable layers with random weights, fixed seed."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.SeparableConv2D(6, 3, name="sep")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="dense")(x))


@pytest.fixture(scope="module")
def mobilenet() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (96, 96, 3)).astype(np.float32)


def test_layer_table_lists_every_layer(tiny: keras.Model) -> None:
    rows = explorer.layer_table(tiny)
    assert [r["name"] for r in rows] == [layer.name for layer in tiny.layers]
    assert [r["index"] for r in rows] == list(range(len(tiny.layers)))
    conv = next(r for r in rows if r["name"] == "conv1")
    assert conv == {
        "index": 1,
        "name": "conv1",
        "type": "Conv2D",
        "output_shape": "16x16x4",
        "parameters": 3 * 3 * 3 * 4 + 4,
        "trainable": True,
    }
    assert rows[-1]["output_shape"] == "3"
    assert sum(r["parameters"] for r in rows) == tiny.count_params()


def test_layer_table_reports_frozen_layers() -> None:
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(2, 3, name="frozen")
    model = keras.Model(inputs, conv(inputs))
    conv.trainable = False
    assert explorer.layer_table(model)[1]["trainable"] is False


def test_conv_layers(tiny: keras.Model, mobilenet: keras.Model) -> None:
    assert explorer.conv_layers(tiny) == ["conv1", "dw", "sep"]
    names = explorer.conv_layers(mobilenet)
    assert names[0] == "Conv1" and names[-1] == "Conv_1"
    assert "expanded_conv_depthwise" in names and "bn_Conv1" not in names


def test_filter_grid_first_layer_is_rgb_patches(tiny: keras.Model) -> None:
    grid, n = explorer.filter_grid(tiny, "conv1")
    assert n == 4 and grid.dtype == np.uint8
    assert grid.shape == (2 * 48 + 2, 2 * 48 + 2, 3)  # 3x3 kernels shown 16x, 2x2 grid
    assert (grid[48:50] == 255).all() and (grid[:, 48:50] == 255).all()  # 2 px white gaps
    kernel = keras.ops.convert_to_numpy(tiny.get_layer("conv1").kernel)[..., 1]
    expected = np.round((kernel - kernel.min()) / np.ptp(kernel) * 255)
    patch = grid[:48, 50:98][8::16, 8::16]  # second filter, the centre of each kernel tap
    uncovered = np.ones((3, 3), dtype=bool)
    uncovered[0, 0] = False  # the filter's number is written over its first tap
    np.testing.assert_allclose(patch[uncovered], expected[uncovered], atol=1)
    assert (patch[0, 0] != expected[0, 0]).any()  # ... so the grid is labelled


def test_filter_grid_bgr_flag_flips_colour(tiny: keras.Model) -> None:
    rgb, _ = explorer.filter_grid(tiny, "conv1")
    bgr, _ = explorer.filter_grid(tiny, "conv1", bgr_input=True)
    tile = np.s_[:24, :24]
    np.testing.assert_array_equal(rgb[tile], bgr[tile][..., ::-1])


@pytest.mark.parametrize("name", ["dw", "sep"])
def test_filter_grid_depthwise_shows_each_channel(tiny: keras.Model, name: str) -> None:
    grid, n = explorer.filter_grid(tiny, name)
    assert n == 4 and grid.shape == (98, 98, 3) and grid.dtype == np.uint8


def test_filter_grid_draws_1x1_layers_as_a_weight_matrix(mobilenet: keras.Model) -> None:
    grid, n = explorer.filter_grid(mobilenet, "Conv_1", max_filters=64)
    assert n == 1280
    # 96 outputs x 96 inputs of 4 px each, after a 14 px top and 30 px left margin of numbers.
    assert grid.shape == (14 + 96 * 4, 30 + 96 * 4, 3)
    assert grid[14:, 30:].std() > 20  # a readable matrix, not one flat colour


def test_pointwise_heatmap_rows_are_outputs_scaled_on_their_own() -> None:
    inputs = keras.Input((4, 4, 5))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, name="mix")
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros((1, 1, 5, 2), np.float32)
    kernel[0, 0, :, 0] = [0.1, -0.1, 0.0, 0.05, 0.0]  # output 0: small weights
    kernel[0, 0, :, 1] = [0.0, 0.0, 9.0, 0.0, -9.0]  # output 1: large ones
    conv.set_weights([kernel])
    grid, matrix = explorer.pointwise_heatmap(model.get_layer("mix"))
    np.testing.assert_array_equal(matrix, kernel[0, 0])
    cell = explorer.WEIGHT_CELL_PX
    cells = grid[14:, 30:][cell // 2 :: cell, cell // 2 :: cell]  # one pixel per weight
    assert cells.shape == (2, 5, 3)
    red, grey, blue = (180, 4, 38), (221, 221, 221), (59, 76, 192)
    assert [tuple(c) for c in cells[0]] == [red, blue, grey, tuple(cells[0, 3]), grey]
    assert [tuple(c) for c in cells[1]] == [grey, grey, red, grey, blue]
    assert explorer.strongest_connections(matrix, 2) == [(2, 1, 9.0), (4, 1, -9.0)]


def test_diverging_colours_sign_and_size() -> None:
    got = explorer.diverging(np.array([-1.0, -0.5, 0.0, 1.0, 7.0]))
    assert [tuple(c) for c in got] == [
        (59, 76, 192),
        (140, 148, 206),
        (221, 221, 221),
        (180, 4, 38),
        (180, 4, 38),
    ]


def test_filter_grid_rejects_other_layers(tiny: keras.Model) -> None:
    with pytest.raises(ValueError, match="'gap' is a GlobalAveragePooling2D, not a convolution"):
        explorer.filter_grid(tiny, "gap")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        explorer.filter_grid(tiny, "nope")


@pytest.fixture(scope="module")
def scaled_channels() -> keras.Model:
    """1x1 conv whose channel c is s[c] * mean(RGB): mean activations rank as 3, 1, 2, 0."""
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 1, name="scaled")
    model = keras.Model(inputs, conv(inputs))
    kernel = np.tile(np.array([1.0, 3.0, 2.0, 4.0]) / 3, (1, 1, 3, 1))
    conv.set_weights([kernel.astype(np.float32), np.zeros(4, np.float32)])
    return model


def test_activation_grid_orders_by_mean_activation(scaled_channels: keras.Model) -> None:
    image = np.random.default_rng(1).uniform(10, 255, (8, 8, 3)).astype(np.float32)
    grid, order = explorer.activation_grid(scaled_channels, "scaled", image, _scaled)
    assert order == [3, 1, 2, 0]
    assert grid.dtype == np.uint8 and grid.shape == (2 * 64 + 1, 2 * 64 + 1, 3)
    (maps,) = explorer.layer_activations(scaled_channels, ["scaled"], image, _scaled)
    first = maps[..., 3]
    expected = explorer.colormap((first - first.min()) / np.ptp(first))
    np.testing.assert_array_equal(grid[:64:8, :64:8], expected)


def test_activation_grid_limits_and_labels(scaled_channels: keras.Model) -> None:
    image = np.random.default_rng(2).uniform(10, 255, (8, 8, 3)).astype(np.float32)
    plain, order = explorer.activation_grid(scaled_channels, "scaled", image, _scaled, max_maps=2)
    assert order == [3, 1] and plain.shape == (64, 129, 3)
    labelled, _ = explorer.activation_grid(
        scaled_channels, "scaled", image, _scaled, max_maps=2, labels=True
    )
    assert labelled.shape == plain.shape and (labelled != plain).any()


def test_activation_grid_mobilenet_keeps_input_intact(
    mobilenet: keras.Model, photo: np.ndarray
) -> None:
    original = photo.copy()
    preprocess = keras.applications.mobilenet_v2.preprocess_input  # edits float input in place
    grid, order = explorer.activation_grid(mobilenet, "block_3_expand_relu", photo, preprocess)
    np.testing.assert_array_equal(photo, original)
    assert len(order) == 32 and len(set(order)) == 32 and grid.dtype == np.uint8


def test_activation_grid_rejects_bad_input(tiny: keras.Model) -> None:
    image = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(ValueError, match="not HxWxC feature maps"):
        explorer.activation_grid(tiny, "dense", image, _scaled)
    with pytest.raises(ValueError, match="Image is 20x16 but model"):
        explorer.activation_grid(tiny, "conv1", np.zeros((20, 16, 3)), _scaled)
    with pytest.raises(ValueError, match="HxWx3 RGB image"):
        explorer.activation_grid(tiny, "conv1", np.zeros((16, 16)), _scaled)


def test_activation_model_is_cached_and_multi_output(tiny: keras.Model) -> None:
    both = explorer.activation_model(tiny, ["conv1", "sep"])
    assert explorer.activation_model(tiny, ("conv1", "sep")) is both
    maps = explorer.layer_activations(tiny, ["conv1", "sep"], np.ones((16, 16, 3)), _scaled)
    assert [m.shape for m in maps] == [(16, 16, 4), (14, 14, 6)]


def test_cache_does_not_keep_models_alive() -> None:
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="c")(inputs))
    explorer.activation_model(model, ["c"])
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_mean_activation_overlay_blends(tiny: keras.Model) -> None:
    image = np.random.default_rng(3).uniform(0, 255, (16, 16, 3)).astype(np.float32)
    half = explorer.mean_activation_overlay(tiny, "conv1", image, _scaled)
    assert half.shape == image.shape and half.dtype == np.uint8
    none = explorer.mean_activation_overlay(tiny, "conv1", image, _scaled, alpha=0.0)
    np.testing.assert_array_equal(none, np.round(image).astype(np.uint8))
    full = explorer.mean_activation_overlay(tiny, "conv1", image, _scaled, alpha=1.0)
    assert set(map(tuple, full.reshape(-1, 3))) <= set(
        map(tuple, explorer.colormap(np.r_[0:1:256j]))
    )
    with pytest.raises(ValueError, match="alpha"):
        explorer.mean_activation_overlay(tiny, "conv1", image, _scaled, alpha=1.5)


@pytest.fixture(scope="module")
def colour_detector() -> keras.Model:
    """Stride-2 conv: channel 0 fires on red, channel 1 on blue; logit k = mean(channel k)."""
    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(2, 3, strides=2, padding="same", activation="relu", name="detect")
    x = keras.layers.GlobalAveragePooling2D()(conv(inputs))
    dense = keras.layers.Dense(2, name="logits")
    model = keras.Model(inputs, dense(x))
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[1, 1, :, 0] = [1.0, -1.0, -1.0]  # red minus the rest
    kernel[1, 1, :, 1] = [-1.0, -1.0, 1.0]  # blue minus the rest
    conv.set_weights([kernel, np.zeros(2, np.float32)])
    dense.set_weights([np.eye(2, dtype=np.float32), np.zeros(2, np.float32)])
    return model


@pytest.fixture(scope="module")
def two_squares() -> np.ndarray:
    """Big red square top-left (class 0 wins), small blue square bottom-right."""
    image = np.zeros((32, 32, 3), np.float32)
    image[2:14, 2:14, 0] = 255
    image[22:30, 22:30, 2] = 255
    return image


def test_gradcam_localises_the_class_evidence(
    colour_detector: keras.Model, two_squares: np.ndarray
) -> None:
    cam, index = explorer.gradcam_map(colour_detector, two_squares, _scaled)
    assert index == 0 and cam.shape == (16, 16)
    assert cam[1:7, 1:7].mean() > 0 and cam[11:15, 11:15].max() == 0
    cam, index = explorer.gradcam_map(colour_detector, two_squares, _scaled, class_index=1)
    assert index == 1 and cam[11:15, 11:15].mean() > 0 and cam[1:7, 1:7].max() == 0


def test_gradcam_overlay_is_bright_where_the_evidence_is(
    colour_detector: keras.Model, two_squares: np.ndarray
) -> None:
    overlay, index = explorer.gradcam(colour_detector, two_squares, _scaled, 1, alpha=1.0)
    assert index == 1 and overlay.shape == (32, 32, 3) and overlay.dtype == np.uint8
    green = overlay[..., 1].astype(float)  # viridis green rises monotonically with value
    assert green[22:30, 22:30].mean() > green[2:14, 2:14].mean() + 100
    with pytest.raises(ValueError, match="class_index 2 out of range"):
        explorer.gradcam(colour_detector, two_squares, _scaled, class_index=2)


def test_gradcam_mobilenet(mobilenet: keras.Model, photo: np.ndarray) -> None:
    preprocess = keras.applications.mobilenet_v2.preprocess_input
    overlay, index = explorer.gradcam(mobilenet, photo, preprocess)
    assert overlay.shape == (96, 96, 3) and overlay.dtype == np.uint8 and 0 <= index < 1000
    _, index = explorer.gradcam(mobilenet, photo, preprocess, 7, "block_13_expand_relu")
    assert index == 7


def test_predict_top_k_softmaxes_logits(
    colour_detector: keras.Model, two_squares: np.ndarray
) -> None:
    (logits,) = explorer.layer_activations(colour_detector, ["logits"], two_squares, _scaled)
    top = explorer.predict_top_k(colour_detector, two_squares, _scaled, ["red", "blue"], k=5)
    expected = np.exp(logits) / np.exp(logits).sum()
    assert [name for name, _ in top] == ["red", "blue"]
    np.testing.assert_allclose([p for _, p in top], expected, rtol=1e-5)


def test_predict_top_k_keeps_probabilities(tiny: keras.Model) -> None:
    image = np.random.default_rng(4).uniform(0, 255, (16, 16, 3)).astype(np.float32)
    (probs,) = explorer.layer_activations(tiny, ["dense"], image, _scaled)
    top = explorer.predict_top_k(tiny, image, _scaled, ["a", "b", "c"], k=2)
    order = np.argsort(-probs)[:2]
    assert [n for n, _ in top] == [["a", "b", "c"][i] for i in order]
    np.testing.assert_allclose([p for _, p in top], probs[order], rtol=1e-6)
    with pytest.raises(ValueError, match="2 class names for 3 model outputs"):
        explorer.predict_top_k(tiny, image, _scaled, ["a", "b"])


def test_views_run_as_graphs_traced_once_and_equal_eager_keras(
    mobilenet: keras.Model, photo: np.ndarray
) -> None:
    """Activations, predictions and Grad-CAM run as TensorFlow graphs (eager Keras holds the
    interpreter lock through every layer's Python), each traced once, with eager's numbers."""
    preprocess = keras.applications.mobilenet_v2.preprocess_input
    layer = "block_13_expand_relu"
    for _ in range(3):
        (maps,) = explorer.layer_activations(mobilenet, [layer], photo, preprocess)
        top = explorer.predict_top_k(mobilenet, photo, preprocess, [str(i) for i in range(1000)])
        cam, index = explorer.gradcam_map(mobilenet, photo, preprocess, None, layer)
    batch = preprocess(photo.copy())[None]
    eager = explorer.activation_model(mobilenet, [layer])(batch, training=False)
    np.testing.assert_allclose(maps, np.asarray(eager)[0], rtol=1e-4, atol=1e-4)
    scores = np.asarray(mobilenet(batch, training=False))[0]
    assert top[0][0] == str(int(np.argmax(scores))) and index == int(np.argmax(scores))
    graphs = explorer._MODEL_CACHE[mobilenet]
    compiled = [graphs[("graph", ("activations", (layer,)))], graphs[("gradcam", layer)]]
    compiled.append(graphs[("graph", ("prediction", None))])
    assert all(fn.experimental_get_tracing_count() == 1 for fn in compiled)
    assert cam.shape == maps.shape[:2]


@pytest.mark.parametrize("size", [8, 20, 64])
def test_channel_numbers_are_the_pixels_pillow_draws(size: int) -> None:
    """The numbers are stamped from drawings made once (drawing text holds the interpreter
    lock): each tile must still look exactly as if its number were drawn on it."""
    from PIL import Image, ImageDraw

    from convenet.explain.explorer import LABEL_AT, _label

    rng = np.random.default_rng(size)
    for text in ("0", "7", "42", "1279"):
        tile = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        drawn = Image.fromarray(tile)
        ImageDraw.Draw(drawn).text(
            LABEL_AT, text, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0)
        )
        stamped = _label(tile, text)
        np.testing.assert_array_equal(stamped, np.asarray(drawn))
        assert not np.array_equal(stamped, tile)
