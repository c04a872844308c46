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


@pytest.mark.parametrize(
    ("layer", "y", "x"), [("block4c_expand_conv", 100, 37), ("top_conv", 5, 220)]
)
def test_a_clicked_pixel_of_a_deep_layer_shows_what_it_sees(lite0, layer, y, x) -> None:
    """The click lands on the layer's pixel whose field is centred nearest to it; the outline
    is that field (clipped to the image); the channels named are the strongest there."""
    from convenet.explain.explorer import layer_activations

    inspector, image = lite0
    look = inspector.look_at_pixel(layer, image, y, x)
    (maps,) = layer_activations(inspector.model, [layer], image, inspector.preprocess)
    field = inspector.receptive_fields()[layer]
    centre_y = field.start + look.row * field.jump
    centre_x = field.start + look.col * field.jump
    for click, centre, index, size in (
        (y, centre_y, look.row, maps.shape[0]),
        (x, centre_x, look.col, maps.shape[1]),
    ):
        if 0 < index < size - 1:  # inside the map: the nearest centre, half a jump at most
            assert abs(click - centre) <= field.jump / 2
    assert look.box == field.box(look.row, look.col, *image.shape[:2])
    values = maps[look.row, look.col]
    assert [c for c, _ in look.strongest] == list(np.argsort(-values, kind="stable")[:5])
    assert look.strongest[0][1] == pytest.approx(float(values.max()))
    top, left, bottom, right = look.box
    outside = np.ones(image.shape[:2], bool)
    outside[max(top - 2, 0) : bottom + 3, max(left - 2, 0) : right + 3] = False
    _, overlay, _ = inspector.activations(layer, image)  # the picture the click was on
    inside = np.zeros(image.shape[:2], bool)
    inside[top + 2 : bottom - 1, left + 2 : right - 1] = True  # away from the frame
    inside[round(centre_y) - 4 : round(centre_y) + 5, round(centre_x) - 4 : round(centre_x) + 5] = (
        False  # and from the cross at the field's centre
    )
    assert (look.picture[inside] == overlay[inside]).all()  # the field as it was
    if outside.any():  # the rest dimmed
        assert (look.picture[outside] <= overlay[outside]).all()
        assert look.picture[outside].mean() < 0.6 * overlay[outside].mean()


def test_a_clicked_pixel_outside_the_image_is_refused_in_words(lite0) -> None:
    inspector, image = lite0
    with pytest.raises(ValueError, match=r"Pixel \(224, 3\) is outside the 224x224 image"):
        inspector.look_at_pixel("top_conv", image, 224, 3)
