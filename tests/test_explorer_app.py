"""Integration: drive every Model Explorer handler of the real app through gradio_client."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from convenet.explain.featurevis_gallery import (
    FEATUREVIS_SIZE,
    FEATUREVIS_STEPS,
    class_means,
    precomputed_featurevis_path,
    shipped_channels,
)
from convenet.models.imagenet import class_names
from convenet.models.registry import MODELS
from convenet.paths import PRECOMPUTED_DIR
from convenet.playground import Playground
from tests.app_server import running_app

pytestmark = pytest.mark.slow

LITE0 = MODELS["efficientnet_lite0"]
DATASET = "stamps200"
BLOCKED = "http://127.0.0.1:9"  # a closed port: every download fails at once


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    # An empty Keras home and a dead proxy: Keras ImageNet weights can never be had, even on
    # a machine that has them cached or can reach the internet.
    env = {
        "KERAS_HOME": str(tmp_path_factory.mktemp("keras-home")),
        **{name: BLOCKED for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    with running_app(tmp_path_factory.mktemp("explorer-cache"), extra_env=env) as url:
        yield Client(url, verbose=False)


def path_of(output: Any) -> Path:
    return Path(output["path"] if isinstance(output, dict) else output)


def image_size(output: Any) -> tuple[int, int]:
    with Image.open(path_of(output)) as image:
        return image.size


def rows_of(table: Any) -> list[list[Any]]:
    return table["data"] if isinstance(table, dict) else table


def grid_side(tiles: int, tile: int) -> int:
    """Side of the near-square grid of `tiles` square tiles separated by 1-pixel gaps."""
    cols = int(np.ceil(np.sqrt(tiles)))
    rows = int(np.ceil(tiles / cols))
    assert rows == cols, "the cases below use square grids"
    return cols * (tile + 1) - 1


def test_model_list_in_order_of_depth(client: Client) -> None:
    rows = rows_of(client.predict(api_name="/explorer_models"))
    assert [row[0] for row in rows] == [spec.title for spec in MODELS.values()]
    depths = [int(row[3]) for row in rows]
    assert depths == sorted(depths)
    status = {row[0]: row[5] for row in rows}
    assert status["EfficientNet-Lite0"].startswith("bundled")
    assert status["VGG16"] == "downloads on first use"


def test_layer_choices(client: Client) -> None:
    update = client.predict("efficientnet_lite0", "top_conv", api_name="/explorer_layers")
    assert update["value"] == "top_conv"
    names = [choice[1] for choice in update["choices"]]
    assert names[:8] == list(LITE0.layer_names)
    # Lite0: stem + top + 16 depthwise + 16 project + 15 expand convs (block1a has none).
    assert len(names) == len(set(names)) == 49
    assert "block1a_dwconv" in names
    # A layer the new model lacks falls back to its first curated layer, before loading it.
    model, update, notice = client.predict(
        "efficientnet_lite1", "block2b_project_conv", api_name="/curated_layers"
    )
    assert (model["value"], update["value"], notice) == ("efficientnet_lite1", "stem_conv", "")
    assert model["info"] == "1.0x width, 1.1x depth, 240 px input"  # the box says what differs
    assert [choice[1] for choice in update["choices"]] == list(
        MODELS["efficientnet_lite1"].layer_names
    )


def test_layer_table_lists_and_filters_every_layer(client: Client) -> None:
    rows = rows_of(client.predict("efficientnet_lite0", "", api_name="/layer_table"))
    assert len(rows) == LITE0.depth
    assert [int(row[0]) for row in rows] == list(range(LITE0.depth))
    by_name = {row[1]: row for row in rows}
    assert by_name["stem_conv"][2:4] == ["Conv2D", "112x112x32"]
    assert int(by_name["stem_conv"][4]) == 3 * 3 * 3 * 32  # no bias
    dw = rows_of(client.predict("efficientnet_lite0", "DWCONV", api_name="/layer_table"))
    assert len(dw) == 16 and all("dwconv" in row[1] for row in dw)
    relu = rows_of(client.predict("efficientnet_lite0", "relu", api_name="/layer_table"))
    assert relu and all(row[2] == "ReLU" for row in relu)


def test_layer_info_resets_an_out_of_range_channel(client: Client) -> None:
    text, number, *_ = client.predict(
        "efficientnet_lite0", "stem_conv", 500, api_name="/layer_info"
    )
    assert "32 channels" in text and "early" in text
    assert number["value"] == 0 and number["info"] == "0 to 31"


def test_filters(client: Client) -> None:
    image, text = client.predict("efficientnet_lite0", "stem_conv", api_name="/filters")
    assert text.startswith("32 filters (showing 32), each in colour")
    assert image_size(image) == (6 * 50 - 2, 6 * 50 - 2)  # 6x6 tiles of 48 px, 2 px gaps


def test_1x1_filters_are_a_weight_matrix_with_the_strongest_connections(client: Client) -> None:
    image, text = client.predict("efficientnet_lite0", "top_conv", api_name="/filters")
    assert text.startswith("1280 filters (96 of 1280 outputs x 96 of 320 inputs)")
    pairs = re.findall(r"in (\d+) → out (\d+) \(([+-][\d.]+)\)", text)
    assert len(pairs) == 8
    with Image.open(path_of(image)) as picture:
        pixels = np.asarray(picture.convert("RGB"), dtype=float)
    assert pixels.shape == (14 + 96 * 4, 30 + 96 * 4, 3)
    assert pixels[14:, 30:].std() > 20  # not one flat block


def test_dataset_images(client: Client) -> None:
    listing = Client(client.src, verbose=False, download_files=False)  # 200 images: no download
    items, index, upload = listing.predict(DATASET, api_name="/explorer_dataset_images")
    assert len(items) == 200 and index == 0 and upload is None
    assert [item["caption"] for item in items[:3]] == ["birds"] * 3
    assert all(item["image"]["url"].endswith(".jpg") for item in items)


def test_activations_of_a_dataset_image(client: Client) -> None:
    grid, overlay, text = client.predict(
        "efficientnet_lite0", "block2b_project_conv", DATASET, 5, None, api_name="/activations"
    )
    # 56x56x24 maps: all 24 channels, each enlarged 2x to 112 px, in a 5x5 grid.
    assert image_size(grid) == (grid_side(24, 112), grid_side(24, 112))
    assert image_size(overlay) == (224, 224)
    assert "image 5" in text and "24 most active of 24 channels" in text


def test_activations_of_an_upload_with_lite1(client: Client, photo_file: Path) -> None:
    grid, overlay, text = client.predict(
        "efficientnet_lite1",
        "top_conv",
        DATASET,
        0,
        handle_file(str(photo_file)),
        api_name="/activations",
    )
    assert image_size(overlay) == (240, 240)  # Lite1's input size
    # 8x8 maps at 240 px input: the 32 strongest of 1280, each enlarged 8x, in a 6x6 grid.
    assert image_size(grid) == (grid_side(32, 64), grid_side(32, 64))
    assert text.startswith("Your image") and "of 1280 channels" in text


def test_predictions_and_gradcam(client: Client) -> None:
    folder = Playground(PRECOMPUTED_DIR).dataset(DATASET)
    index = next(i for i, path in enumerate(folder.paths) if "zebra" in path.name)
    label, choice = client.predict(
        "efficientnet_lite0", DATASET, index, None, api_name="/predictions"
    )
    confidences = label["confidences"]
    names = [c["label"] for c in confidences]
    scores = [c["confidence"] for c in confidences]
    assert len(names) == 5 and set(names) <= set(class_names())
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-6
    assert label["label"].startswith("zebra")  # a clear photo of a zebra
    indices = [value for _, value in choice["choices"]]
    assert choice["value"] == indices[0] and class_names()[indices[0]] == names[0]

    first, text = client.predict(
        "efficientnet_lite0", DATASET, index, None, indices[0], api_name="/gradcam"
    )
    assert image_size(first) == (224, 224) and names[0] in text
    second, text = client.predict(
        "efficientnet_lite0", DATASET, index, None, indices[1], api_name="/gradcam"
    )
    assert names[1] in text
    with Image.open(path_of(first)) as a, Image.open(path_of(second)) as b:
        assert not np.array_equal(np.asarray(a), np.asarray(b))  # another class, other evidence


def test_featurevis_on_demand_and_precomputed(client: Client) -> None:
    image, text = client.predict(
        "efficientnet_lite0", "block2b_project_conv", 3, 16, api_name="/featurevis"
    )
    assert image_size(image) == (FEATUREVIS_SIZE, FEATUREVIS_SIZE) and "16 steps" in text
    layer = "stem_conv"
    channel = shipped_channels("efficientnet_lite0", layer)[0]
    image, text = client.predict(
        "efficientnet_lite0", layer, channel, FEATUREVIS_STEPS, api_name="/featurevis"
    )
    assert "precomputed" in text
    shipped = precomputed_featurevis_path("efficientnet_lite0", layer, channel)
    with Image.open(path_of(image)) as got, Image.open(shipped) as want:
        assert np.array_equal(np.asarray(got.convert("RGB")), np.asarray(want.convert("RGB")))


def test_channel_grid_lists_the_shipped_pictures(client: Client) -> None:
    layer = "block4c_expand_conv"
    items, text = client.predict("efficientnet_lite0", layer, api_name="/channel_grid")
    channels = shipped_channels("efficientnet_lite0", layer)
    assert [item["caption"] for item in items] == [f"channel {c}" for c in channels]
    assert f"{len(channels)} channels of **{layer}**" in text
    items, text = client.predict("efficientnet_lite0", "block1a_dwconv", api_name="/channel_grid")
    assert items == [] and "Show channel" in text


def test_channel_page_follows_the_stored_features(client: Client) -> None:
    layer, channel = "top_conv", 7
    picture, vis_text, items, top_text, bars, link, least, spread = client.predict(
        "efficientnet_lite0", layer, channel, DATASET, api_name="/channel_page"
    )
    assert len(items) == 9 and f"channel {channel} fires most strongly" in top_text
    # Where it fires most: the shipped peaks (each image's maximum), cropped around the spot;
    # a top_conv position sees more than the whole 224-pixel input, so its patch is all of it.
    shown = [float(re.search(r"· (-?[\d.]+)$", item["caption"]).group(1)) for item in items]
    pg = Playground(PRECOMPUTED_DIR)
    peaks = pg.channel_peaks(DATASET, "efficientnet_lite0")[layer]
    np.testing.assert_allclose(shown, peaks.values[channel], atol=0.006)
    with Image.open(items[0]["image"]) as patch:
        assert patch.size == (224, 224)
    feats = pg.features(DATASET, "efficientnet_lite0", layer)
    assert min(shown) >= np.sort(feats[:, channel])[-9] - 0.006  # peaks, not means
    folder = pg.dataset(DATASET)
    means = class_means(feats, folder.labels, len(folder.classes))[:, channel]
    rows = re.findall(r"cn-cls-name'>([^<]+)</span>.*?cn-cls-value'>(-?[\d.]+)<", bars)
    assert len(rows) == sum(len(pg.dataset(d).classes) for d in pg.datasets())
    assert dict(rows[: len(folder.classes)]) == {
        name: f"{m:.2f}" for name, m in zip(folder.classes, means, strict=True)
    }
    want = f"?tab=explorer&model=efficientnet_lite0&layer={layer}&channel={channel}"
    assert f"]({want})" in link
    shipped = channel in shipped_channels("efficientnet_lite0", layer)
    assert (picture is not None) == shipped
    assert ("precomputed" if shipped else "computing") in vis_text
    assert "vivid and busy" in vis_text  # why such pictures look as they do
    # What it is not: the images that fire it least, and its spread over the whole dataset.
    lowest = [float(re.search(r"· (-?[\d.]+)$", item["caption"]).group(1)) for item in least]
    np.testing.assert_allclose(lowest, np.sort(feats[:, channel])[:9], atol=0.006)
    counts, edges = np.histogram(feats[:, channel].astype(np.float64), bins=16)
    bars_in_page = re.findall(r"title='(\d+) images from", spread)
    assert [int(n) for n in bars_in_page] == counts.tolist() and sum(counts) == len(feats)
    assert f"{edges[0]:.2f}</span><span>{edges[-1]:.2f}" in spread


def test_inversion_shows_the_original_and_what_the_layer_keeps(client: Client) -> None:
    original, rebuilt, text = client.predict(
        "efficientnet_lite0", "stem_conv", DATASET, 5, None, api_name="/invert"
    )
    assert image_size(original) == image_size(rebuilt) == (224, 224)
    assert "image 5" in text and "rebuilt from **stem_conv**" in text and "up to 30 s" in text
    with Image.open(path_of(original)) as a, Image.open(path_of(rebuilt)) as b:
        want, got = np.asarray(a, dtype=float), np.asarray(b.convert("RGB"), dtype=float)
    assert np.abs(got - want).mean() < np.abs(128.0 - want).mean()  # the photo comes back


def test_use_layer_in_search(client: Client) -> None:
    shown = client.predict(  # the search tab's controls (the tab switch is no data output)
        "efficientnet_lite1", "block3c_expand_conv", api_name="/use_layer_in_search"
    )
    model, layer = shown[1], shown[2]
    assert model["value"] == "efficientnet_lite1" and layer["value"] == "block3c_expand_conv"
    with pytest.raises(Exception, match="curated layers of EfficientNet-Lite0"):
        client.predict("efficientnet_lite0", "block1a_dwconv", api_name="/use_layer_in_search")


@pytest.mark.parametrize(
    ("api_name", "args", "message"),
    [
        ("/filters", ["efficientnet_lite0", "block99"], "no layer named 'block99'"),
        ("/filters", ["efficientnet_lite0", "stem_bn"], "BatchNormalization, which has no filt"),
        (
            "/activations",
            ["efficientnet_lite0", "nope", DATASET, 0, None],
            "no layer named 'nope'",
        ),
        (
            "/activations",
            ["efficientnet_lite0", "top_conv", DATASET, 999, None],
            "Image number must be a whole number from 0 to 199",
        ),
        ("/featurevis", ["efficientnet_lite0", "stem_conv", 32, 16], "Channel 32 is out of range"),
        ("/featurevis", ["efficientnet_lite0", "predictions", 0, 16], "not feature maps"),
        (  # a few step counts only: the picture cache holds a few pictures per channel
            "/featurevis",
            ["efficientnet_lite0", "stem_conv", 0, 512],
            "Optimisation steps: choose one of the options this box offers.",
        ),
        (
            "/channel_page",
            ["efficientnet_lite0", "stem_conv", 32, DATASET],
            "Channel 32 is out of range",
        ),
        ("/invert", ["efficientnet_lite0", "predictions", DATASET, 0, None], "not feature maps"),
        (
            "/gradcam",
            ["efficientnet_lite0", DATASET, 0, None, 1000],
            "class_index 1000 out of range",
        ),
        ("/explorer_layers", ["vgg16", "block1_conv1"], "could not be downloaded"),
        ("/filters", ["vgg16", "block1_conv1"], "models that work offline: .*EfficientNet-Lite0"),
    ],
)
def test_bad_input_gives_clear_error(
    client: Client, api_name: str, args: list, message: str
) -> None:
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name=api_name)


def test_the_convolution_walk_through_answers_with_the_models_value(client: Client) -> None:
    """The API's page for one pixel ends with the value the model computes there (the core
    test checks it against the model; here: it reaches a caller, for the pixel asked)."""
    page = client.predict("efficientnet_lite0", DATASET, 3, None, 5, api_name="/convolution")
    assert "output pixel (56, 56) of 112×112" in page and "channel <b>5</b>" in page
    assert re.search(r"ReLU6 \(negatives become 0, at most 6\): <b>\d+\.\d{3}</b>", page)
    assert page.count("<table class='cn-conv-grid") == 9  # 3 colours x (input, kernel, product)
    centre = client.predict("efficientnet_lite0", DATASET, 3, None, 0, api_name="/convolution")
    assert "output pixel (56, 56)" in centre
