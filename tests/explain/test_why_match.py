"""Why two images match: the split of the cosine by channel and by position, against hand
computation on tiny arrays, and on the real model against the features the search ranks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.distance import cosine as cosine_distance

from convenet.explain.colormap import colormap
from convenet.explain.why_match import (
    MAX_CHANNELS,
    MEANING,
    Channel,
    MatchExplanation,
    PairExplanation,
    channel_shares,
    explain_maps,
    explorer_link,
    heat_overlay,
    position_shares,
)

pytestmark = pytest.mark.quick


def test_channel_shares_by_hand() -> None:
    # (3, 4) and (4, 3) have length 5: unit vectors (.6, .8) and (.8, .6), cosine .96.
    shares = channel_shares(np.array([3.0, 4.0]), np.array([4.0, 3.0]))
    np.testing.assert_allclose(shares, [0.48, 0.48])
    assert shares.sum() == pytest.approx(0.96)


def test_channel_shares_of_a_zero_vector_are_zero() -> None:
    np.testing.assert_array_equal(channel_shares(np.zeros(3), np.ones(3)), np.zeros(3))


def test_position_shares_by_hand() -> None:
    # Two positions, (2, 0) and (0, 2): pooled (1, 1), length sqrt(2). The other image points
    # along (1, 0): the first position's share is 2 / sqrt(2), the second's 0, and their mean,
    # 1 / sqrt(2), is the cosine of (1, 1) and (1, 0).
    maps = np.array([[[2.0, 0.0], [0.0, 2.0]]])
    shares = position_shares(maps, np.array([5.0, 0.0]))
    np.testing.assert_allclose(shares, [[math.sqrt(2), 0.0]])
    assert shares.mean() == pytest.approx(1 / math.sqrt(2))


def test_position_shares_can_be_negative() -> None:
    # A position pointing away from the other image pulls the match down.
    maps = np.array([[[3.0, 0.0], [-1.0, 0.0]]])  # pooled (1, 0)
    np.testing.assert_allclose(position_shares(maps, np.array([1.0, 0.0])), [[3.0, -1.0]])


def test_both_heatmaps_and_the_channels_add_up_to_the_cosine() -> None:
    rng = np.random.default_rng(0)
    query = rng.normal(0.2, 1.0, (5, 4, 6))
    result = rng.normal(0.1, 1.0, (3, 3, 6))  # another size: maps of two models' inputs differ
    found = explain_maps(query, result)
    expected = 1 - cosine_distance(query.mean(axis=(0, 1)), result.mean(axis=(0, 1)))
    assert found.cosine == pytest.approx(expected)
    assert found.channels.sum() == pytest.approx(expected)
    assert found.query_heat.shape == (5, 4) and found.result_heat.shape == (3, 3)
    assert found.query_heat.mean() == pytest.approx(expected)
    assert found.result_heat.mean() == pytest.approx(expected)


def test_top_channels_are_the_largest_positive_shares_ties_in_channel_order() -> None:
    found = MatchExplanation(
        0.5, np.zeros((1, 1)), np.zeros((1, 1)), np.array([0.1, 0.3, -0.2, 0.3, 0.0])
    )
    assert found.top_channels(3) == [1, 3, 0]
    assert found.top_channels(5) == [1, 3, 0]  # zero and negative shares do not carry a match


def test_heat_top_is_the_largest_share_of_either_image() -> None:
    found = MatchExplanation(0.0, np.array([[0.5, -1.0]]), np.array([[2.0]]), np.zeros(1))
    assert found.heat_top == 2.0
    assert MatchExplanation(0.0, -np.ones((1, 1)), -np.ones((1, 1)), np.zeros(1)).heat_top == 1.0


def test_heat_overlay_blends_the_colour_scale_over_the_image() -> None:
    image = np.full((4, 4, 3), 100, np.uint8)
    bright = heat_overlay(image, np.full((2, 2), 3.0), top=2.0, alpha=0.5)  # above top: top
    dark = heat_overlay(image, np.full((2, 2), -1.0), top=2.0, alpha=0.5)  # below 0: 0
    for picture, end in ((bright, 1.0), (dark, 0.0)):
        expected = np.round((colormap(end) + 100.0) / 2)
        np.testing.assert_array_equal(picture, np.broadcast_to(expected, (4, 4, 3)))
    half = heat_overlay(image, np.full((2, 2), 1.0), top=2.0, alpha=1.0)
    np.testing.assert_array_equal(half[0, 0], colormap(0.5))


def test_heat_overlay_upsamples_to_the_image() -> None:
    heat = np.array([[0.0, 1.0]])  # left dark, right bright
    out = heat_overlay(np.zeros((8, 16, 3), np.uint8), heat, top=1.0, alpha=1.0)
    assert out.shape == (8, 16, 3)
    np.testing.assert_array_equal(out[:, 0], np.broadcast_to(colormap(0.0), (8, 3)))
    np.testing.assert_array_equal(out[:, -1], np.broadcast_to(colormap(1.0), (8, 3)))


def test_explorer_link() -> None:
    assert (
        explorer_link("efficientnet_lite0", "top_conv", 12)
        == "?tab=explorer&model=efficientnet_lite0&layer=top_conv&channel=12"
    )


def test_a_channel_gives_its_shipped_picture_and_a_pair_its_meaning() -> None:
    from convenet.explain.featurevis_gallery import precomputed_featurevis_path, shipped_channels

    model, layer = "efficientnet_lite0", "top_conv"
    index = shipped_channels(model, layer)[0]
    shipped = precomputed_featurevis_path(model, layer, index)
    picture = Channel(index, 0.1, shipped, explorer_link(model, layer, index)).picture()
    with Image.open(shipped) as file:
        assert picture.dtype == np.uint8 and picture.shape == (file.height, file.width, 3)
        assert np.array_equal(picture, np.asarray(file.convert("RGB")))
    assert Channel(1, 0.1, None, "").picture() is None  # no picture shipped: nothing to send
    pixels = np.zeros((4, 4, 3), np.uint8)
    found = explain_maps(np.ones((2, 2, 3)), np.ones((2, 2, 3)))
    assert PairExplanation(found, pixels, pixels, []).meaning == MEANING


# -- on the real model: every offline model and curated layer -----------------------------------


@pytest.fixture(scope="module")
def pg():
    from convenet.paths import PRECOMPUTED_DIR
    from convenet.playground import Playground

    return Playground(PRECOMPUTED_DIR)


@pytest.mark.slow
@pytest.mark.parametrize(
    "model", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
)
def test_explains_the_cosine_the_search_ranks_by(pg, model: str) -> None:
    from convenet.models.loading import get_model_spec

    for layer in get_model_spec(model).layer_names:
        hit = pg.search("stamps200", model, layer, "cosine", query_index=7, k=3).hits[2]
        pair = pg.why_match("stamps200", model, layer, hit.index, query_index=7, channels=4)
        # The shipped features are float16: the same cosine to a few parts in ten thousand.
        assert pair.explanation.cosine == pytest.approx(1 - hit.distance, abs=2e-3), layer
        assert pair.query_overlay.shape == pair.result_overlay.shape
        assert pair.query_overlay.dtype == np.uint8
        assert 1 <= len(pair.channels) <= 4
        shares = [channel.share for channel in pair.channels]
        assert shares == sorted(shares, reverse=True) and shares[0] > 0
        for channel in pair.channels:
            assert channel.link == explorer_link(model, layer, channel.index)
            assert channel.featurevis is None or channel.featurevis.is_file()


@pytest.mark.slow
def test_an_uploaded_query(pg, photo_file) -> None:

    pair = pg.why_match("clipart200", "efficientnet_lite0", "top_conv", 5, query_image=photo_file)
    assert -1 <= pair.explanation.cosine <= 1
    assert pair.explanation.query_heat.mean() == pytest.approx(pair.explanation.cosine)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"result_index": 200}, "result_index must be a whole number from 0 to 199"),
        ({"query_index": -1}, "query_index must be a whole number from 0 to 199"),
        ({"layer": "block6d_expand_conv"}, "Unknown layer 'block6d_expand_conv'"),
        ({"channels": 10**9}, f"channels must be a whole number from 1 to {MAX_CHANNELS}"),
        ({"channels": 0}, f"channels must be a whole number from 1 to {MAX_CHANNELS}"),
        ({"query_index": None}, "Give a query"),
    ],
)
def test_hostile_inputs_get_one_plain_sentence(pg, kwargs: dict, message: str) -> None:

    args = {"layer": "top_conv", "result_index": 1, "query_index": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        pg.why_match("stamps200", "efficientnet_lite0", **args)
