"""ModelInspector: the Explorer's checks and answers, on EfficientNet-Lite0 and the shipped data."""

from __future__ import annotations

import numpy as np
import pytest

from convenet.explain.featurevis_gallery import class_means
from convenet.inspector import ModelInspector, as_int
from convenet.paths import PRECOMPUTED_DIR
from convenet.playground import Playground

pytestmark = pytest.mark.quick

DATASET = "stamps200"


@pytest.fixture(scope="module")
def pg() -> Playground:
    return Playground(PRECOMPUTED_DIR)


@pytest.fixture(scope="module")
def lite0(pg: Playground) -> ModelInspector:
    return pg.inspect("EfficientNet-Lite0")  # titles work as well as keys


def test_inspect_names_the_valid_models(pg: Playground) -> None:
    with pytest.raises(ValueError, match="Unknown model 'nope'"):
        pg.inspect("nope")


@pytest.mark.parametrize("value", [1.5, "3", True, None])
def test_as_int_refuses_anything_but_whole_numbers(value: object) -> None:
    with pytest.raises(ValueError, match="Channel must be a whole number"):
        as_int(value, "Channel")
    assert as_int(4.0, "Channel") == 4


def test_filter_colours_follow_the_model_spec_alone(pg: Playground) -> None:
    """A new caffe-style model needs only ``channel_order="BGR"`` in its record to show its
    first-layer filters in the right colours (no second list of BGR model keys)."""
    from dataclasses import replace

    from convenet.models.registry import get_model_spec

    spec = replace(get_model_spec("efficientnet_lite0"), key="newnet", channel_order="BGR")
    assert ModelInspector(spec, pg).bgr_input
    assert not ModelInspector(replace(spec, channel_order="RGB"), pg).bgr_input
    assert ModelInspector(get_model_spec("resnet50"), pg).bgr_input


def test_channel_and_layer_checks(lite0: ModelInspector) -> None:
    assert lite0.spec.key == "efficientnet_lite0" and not lite0.bgr_input
    assert lite0.check_channel("stem_conv", 31) == 31
    with pytest.raises(ValueError, match="Channel 32 is out of range.*0 to 31"):
        lite0.check_channel("stem_conv", 32)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        lite0.channel_count("nope")
    with pytest.raises(ValueError, match="not feature maps"):
        lite0.channel_count("predictions")
    with pytest.raises(ValueError, match="needs a curated layer"):
        lite0.top_images(DATASET, "block1a_dwconv", 0)
    with pytest.raises(ValueError, match="Steps can be 16, 64, 128 or 384, not 100"):
        lite0.feature_visualization("stem_conv", 0, 100)  # refused before any work
    summary = lite0.layer_summary("top_conv")
    assert (summary.kind, summary.shape, summary.channels, summary.curated) == (
        "Conv2D",
        "7x7x1280",
        1280,
        True,
    )


def test_top_images_and_class_means_follow_the_stored_features(
    pg: Playground, lite0: ModelInspector
) -> None:
    feats = pg.features(DATASET, "efficientnet_lite0", "top_conv")
    top = lite0.top_images(DATASET, "top_conv", 7)
    assert [t.index for t in top] == list(np.argsort(-feats[:, 7], kind="stable")[:9])
    assert top[0].activation == pytest.approx(feats[:, 7].max())
    means = lite0.class_activation("top_conv", 7)
    assert list(means) == pg.datasets()
    folder = pg.dataset(DATASET)
    want = class_means(feats, folder.labels, len(folder.classes))[:, 7]
    np.testing.assert_allclose(list(means[DATASET].values()), want, rtol=1e-6)
    assert list(means[DATASET]) == folder.classes


def test_predictions_have_unique_names_and_gradcam_explains_one(
    lite0: ModelInspector,
) -> None:
    image, what = lite0.image(DATASET, 5, None)
    assert image.shape == (224, 224, 3) and what.startswith(f"{DATASET} image 5")
    top = lite0.predictions(image)
    assert len(top) == 5 and len({p.name for p in top}) == 5
    assert [p.probability for p in top] == sorted((p.probability for p in top), reverse=True)
    overlay, used, layer = lite0.gradcam(image, top[1].class_index)
    assert used == top[1].class_index and layer == "top_conv" and overlay.shape == image.shape


def test_inversion_is_cached(lite0: ModelInspector) -> None:
    image, _ = lite0.image(DATASET, 3, None)
    first = lite0.invert("stem_conv", image)
    assert first.image.shape == (224, 224, 3) and first.steps >= 1
    again = lite0.invert("stem_conv", image)
    assert again.image is first.image and again.seconds == first.seconds  # kept, not redone


def test_strongest_spots_are_cropped_where_the_channel_peaks(lite0: ModelInspector) -> None:
    """Each of the nine images where a channel fires most, strongest first, with the input its
    peak sees (the layer's receptive field there) as the patch; a stem channel's 3-pixel field
    is shown inside a wider patch."""
    from convenet.data.images import load_image
    from convenet.inspector import MIN_PATCH

    layer = "block4c_expand_conv"
    spots = lite0.strongest_spots(DATASET, layer, 11)
    assert len(spots) == 9
    peaks = [s.image.activation for s in spots]
    assert peaks == sorted(peaks, reverse=True)
    stored = lite0.playground.channel_peaks(DATASET, "efficientnet_lite0")[layer]
    assert [s.image.index for s in spots] == stored.images[11].tolist()
    np.testing.assert_allclose(peaks, stored.values[11])  # each image's maximum, not its mean
    field = lite0.receptive_fields()[layer]
    for spot in spots:
        top, left, bottom, right = spot.box
        assert spot.patch.shape == (field.size, field.size, 3)  # 115 px, larger than MIN_PATCH
        image = load_image(spot.image.path, 224)
        rows = [r for r in range(224 - field.size + 1) if r <= top and bottom < r + field.size]
        cols = [c for c in range(224 - field.size + 1) if c <= left and right < c + field.size]
        assert any(
            np.array_equal(spot.patch, image[r : r + field.size, c : c + field.size])
            for r in rows
            for c in cols
        )  # the patch is the image around the field's box, untouched
    small = lite0.strongest_spots(DATASET, "stem_conv", 3)
    assert {s.patch.shape for s in small} == {(MIN_PATCH, MIN_PATCH, 3)}
    with pytest.raises(ValueError, match="needs a curated layer"):
        lite0.strongest_spots(DATASET, "block1a_dwconv", 0)
    with pytest.raises(ValueError, match="out of range"):
        lite0.strongest_spots(DATASET, layer, 480)
