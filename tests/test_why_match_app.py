"""Integration: /why_match through gradio_client on the real app, faithful to /search's ranking,
for dataset queries and uploads; hostile inputs get one plain sentence."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from convenet.explain.featurevis_gallery import FEATUREVIS_SIZE
from tests.app_server import AppProcess, app_process, tensorflow_loaded

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    with app_process(tmp_path_factory.mktemp("why-cache")) as running:
        yield running


@pytest.fixture(scope="module")
def app_url(app: AppProcess) -> str:
    return app.url


def test_explains_the_cosine_search_ranks_by(api: Client) -> None:
    hits = api.predict(query_index=12, k=5, api_name="/search")["results"]
    for hit in hits[:: len(hits) - 1]:  # the first and the last result
        out = api.predict(query_index=12, result_index=hit["index"], api_name="/why_match")
        # The shipped features are float16: the same cosine to a few parts in ten thousand.
        assert out["cosine"] == pytest.approx(1 - hit["distance"], abs=2e-3)
        assert (out["query_index"], out["result_index"]) == (12, hit["index"])
        assert "Bright yellow" in out["meaning"] and "average brightness" in out["meaning"]
        for key in ("query_heatmap", "result_heatmap"):
            with Image.open(out[key]) as picture:
                assert picture.size == (224, 224)  # Lite0's input, drawn over the image
                assert np.asarray(picture.convert("RGB")).std() > 10  # a picture, not a blank
        channels = out["channels"]
        assert len(channels) == 5
        shares = [c["share"] for c in channels]
        assert shares == sorted(shares, reverse=True) and shares[-1] > 0
        for channel in channels:
            assert channel["explorer_link"] == (
                "?tab=explorer&model=efficientnet_lite0&layer=top_conv"
                f"&channel={channel['channel']}"
            )
            if channel["feature_visualization"] is not None:
                with Image.open(channel["feature_visualization"]) as picture:
                    assert picture.size == (FEATUREVIS_SIZE, FEATUREVIS_SIZE)  # as shipped


def test_every_offline_model_and_an_upload(api: Client, photo_file: Path) -> None:
    for model, layer, size in (
        ("efficientnet_lite1", "block3c_expand_conv", 240),
        ("efficientnet_lite2", "stem_conv", 260),
    ):
        out = api.predict(
            dataset="clipart200",
            model=model,
            layer=layer,
            query=handle_file(str(photo_file)),
            result_index=40,
            channels=3,
            api_name="/why_match",
        )
        assert out["query_index"] is None and -1 <= out["cosine"] <= 1
        assert 1 <= len(out["channels"]) <= 3
        with Image.open(out["query_heatmap"]) as picture:
            assert picture.size == (size, size)


@pytest.mark.parametrize(
    ("arguments", "sentence"),
    [
        ({"result_index": 200}, "result_index must be a whole number from 0 to 199"),
        ({"query_index": -3}, "query_index must be a whole number from 0 to 199"),
        ({"layer": "block6d_expand_conv"}, "Unknown layer 'block6d_expand_conv' for model"),
        ({"channels": 10**9}, "channels must be a whole number from 1 to 20"),
        ({"query_index": 2.5}, "whole number"),
        ({"dataset": "../../etc"}, "Unknown dataset"),
    ],
)
def test_hostile_inputs_get_one_plain_sentence(api: Client, arguments: dict, sentence: str):
    with pytest.raises(Exception, match=re.escape(sentence)) as refused:
        api.predict(**arguments, api_name="/why_match")
    message = str(refused.value)
    for word in ("Traceback", 'File "', "/tmp/", "ValueError", ".py"):
        assert word not in message


def test_no_explanation_loaded_tensorflow_into_the_app(app: AppProcess) -> None:
    """Every call above (the offline models) took its feature maps from ONNX Runtime. Runs
    before the next test: a Keras model's preprocessing imports Keras, weights or not."""
    assert not tensorflow_loaded(app.process.pid)


def test_a_model_without_weights_here_is_refused_politely(api: Client) -> None:
    with pytest.raises(Exception, match="models that work offline: EfficientNet-Lite0"):
        api.predict(model="vgg16", layer="block5_conv3", api_name="/why_match")
