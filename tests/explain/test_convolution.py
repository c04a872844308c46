"""The convolution walk-through equals the real model, and receptive fields match gradients."""

from __future__ import annotations

import numpy as np
import pytest

from convenet.explain.convolution import Field, receptive_fields, walk_first_convolution
from convenet.paths import PRECOMPUTED_DIR
from convenet.playground import Playground


@pytest.fixture(scope="module")
def lite0(tmp_path_factory: pytest.TempPathFactory):
    pg = Playground(PRECOMPUTED_DIR, tmp_path_factory.mktemp("conv-cache"))
    inspector = pg.inspect("efficientnet_lite0")
    image, _ = inspector.image("stamps200", 3, None)
    return inspector, image


@pytest.mark.parametrize(
    ("channel", "row", "col"), [(0, 0, 0), (5, 50, 60), (7, 0, 111), (31, 111, 3)]
)
def test_the_hand_computed_pixel_is_the_models_activation(lite0, channel, row, col) -> None:
    """Corners and edges too: there the window reaches into the padding, which counts 0."""
    inspector, image = lite0
    step = walk_first_convolution(inspector.model, image, inspector.preprocess, channel, row, col)
    assert step.output == pytest.approx(float(step.activation_map[row, col]), abs=1e-4)
    assert step.products.shape == step.kernel.shape == step.window.shape == (3, 3, 3)
    assert step.total == pytest.approx(float(step.products.sum()), abs=1e-4)
    assert step.activation == "ReLU6" and 0.0 <= step.output <= 6.0
    top, left, bottom, right = step.box
    assert (top, left) == (2 * row, 2 * col) and (bottom - top, right - left) == (2, 2)


def test_a_pixel_outside_the_map_is_refused_in_words(lite0) -> None:
    inspector, image = lite0
    with pytest.raises(ValueError, match=r"Pixel \(112, 0\) is outside the 112x112 map"):
        walk_first_convolution(inspector.model, image, inspector.preprocess, 0, 112, 0)


def test_fields_grow_with_depth_and_match_the_gradient(lite0) -> None:
    """The input pixels that move one activation (its gradient is not 0) all lie in the box
    the recurrence computes, and they fill much of it: the box is neither too small nor loose."""
    import tensorflow as tf

    inspector, image = lite0
    fields = receptive_fields(inspector.model)
    sizes = [fields[name].size for name in inspector.spec.layer_names]
    assert sizes == sorted(sizes) and sizes[0] == 3 and fields["stem_conv"].jump == 2
    layer, row, col = "block3b_project_conv", 14, 14
    field = fields[layer]
    sub = tf.keras.Model(inspector.model.inputs, inspector.model.get_layer(layer).output)
    x = tf.Variable(inspector.preprocess(np.asarray(image, np.float32)[None]))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(sub([x])[0, row, col, :])
    grad = np.abs(tape.gradient(value, x).numpy()[0]).sum(axis=-1)
    rows, cols = np.nonzero(grad)
    top, left, bottom, right = field.box(row, col, 224, 224)
    assert top <= rows.min() and rows.max() <= bottom and left <= cols.min() and cols.max() <= right
    assert rows.max() - rows.min() + 1 >= 0.8 * (bottom - top + 1)


def test_a_box_is_clipped_to_the_image() -> None:
    assert Field(size=11, jump=4, start=1.0).box(0, 0, 32, 32) == (0, 0, 6, 6)
    assert Field(size=11, jump=4, start=1.0).box(7, 7, 32, 32) == (24, 24, 31, 31)
