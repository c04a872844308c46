"""The view as one value (ui.view_state): links in and out, changes applied whole or refused."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs

import pytest

from convenet.playground import Playground
from ui.view_state import LiveView, ViewState, from_link, with_parts


@pytest.fixture(scope="module")
def pg() -> Playground:
    return Playground.from_feature_source()


def test_a_bad_link_names_every_part_it_ignored_and_what_is_shown(pg: Playground) -> None:
    params = {"dataset": "nosuch", "model": "vgg99", "layer": "zzz", "metric": "foo"}
    view, said = from_link(pg, {**params, "query": "99999"}, "stamps200")
    assert view == ViewState("stamps200")
    assert said == (
        "This link asked for dataset nosuch, model vgg99, layer zzz, metric foo and query image "
        "99999, which this app does not have; showing stamps200, EfficientNet-Lite0, top_conv, "
        "cosine and image 0 instead."
    )


def test_a_good_link_opens_its_view_and_says_nothing(pg: Playground) -> None:
    wanted = ViewState("clipart200", "efficientnet_lite1", "stem_conv", "euclidean", "gem", 20, 7)
    params = {key: values[0] for key, values in parse_qs(wanted.link()).items()}
    assert from_link(pg, params, "stamps200") == (wanted, "")


def test_an_upload_leaves_the_query_out_of_the_link() -> None:
    link = ViewState("stamps200", query=3, upload="/somewhere/cat.jpg").link()
    assert "query" not in parse_qs(link) and "somewhere" not in link


def test_a_layer_of_another_model_is_refused_whole(pg: Playground) -> None:
    live = LiveView(ViewState("stamps200"))
    before = live.snapshot()
    _, view, said = live.apply(pg, with_parts(layer="block3c_expand_conv"))  # a Lite1 layer
    assert (view, live.snapshot()) == (before[0], before)
    assert said == (
        "EfficientNet-Lite0 has no searchable layer block3c_expand_conv; the Layer box lists "
        "its layers."
    )


def test_a_change_applies_to_the_newest_view_not_to_the_one_an_event_read(
    pg: Playground,
) -> None:
    """Two events read the same view; the one that ends last must not undo the other."""
    live = LiveView(ViewState("stamps200"))
    live.apply(pg, with_parts(layer="stem_conv"))  # the newer event lands first
    _, view, said = live.apply(pg, with_parts(metric="euclidean"))  # the older one after it
    assert said == "" and (view.layer, view.metric) == ("stem_conv", "euclidean")
    assert live.snapshot()[1] == 2


def test_a_search_that_a_newer_view_overtook_is_not_shown(pg: Playground) -> None:
    live = LiveView(ViewState("stamps200"))
    _, searched = live.snapshot()
    live.apply(pg, with_parts(query=4))
    assert not live.still(searched) and live.still(live.snapshot()[1])
    assert live.already_shown(live.snapshot()[1])


def test_each_session_starts_from_the_default_view() -> None:
    from copy import deepcopy

    default = LiveView(ViewState("stamps200"))
    session = deepcopy(default)
    session.view = replace(session.view, query=9)
    assert default.view.query == 0 and session is not default
