"""Integration: start the real app on 127.0.0.1 and drive it with gradio_client."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file

from convenet.search.metrics import METRICS
from tests.app_server import REPO, call_http, running_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's cache folder; its app.log holds what the app printed."""
    return tmp_path_factory.mktemp("app-cache")


@pytest.fixture(scope="module")
def app_url(app_cache: Path):
    with running_app(app_cache) as url:
        yield url


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


def test_search_by_dataset_image_with_defaults(client: Client) -> None:
    out = client.predict(query_index=3, api_name="/search")
    assert out["model"] == "efficientnet_lite0" and out["query_index"] == 3
    results = out["results"]
    assert len(results) == 50
    assert [r["rank"] for r in results] == list(range(1, 51))
    assert all(r["index"] != 3 for r in results)
    sims = [r["similarity"] for r in results]
    assert all(0 <= s <= 100 for s in sims) and sims == sorted(sims, reverse=True)
    same = sum(r["same_class"] for r in results[:50])
    assert out["matches"] == same and out["p_at_k"] == pytest.approx(same / 50)
    # The last layer of a real ImageNet model finds the query's class far above chance (0.095).
    assert out["p_at_k"] > 0.3


@pytest.mark.parametrize("metric", METRICS)
def test_every_metric(client: Client, metric: str) -> None:
    out = client.predict(query_index=10, metric=metric, k=10, api_name="/search")
    assert out["metric"] == metric and len(out["results"]) == 10


def test_search_by_upload(client: Client, photo_file: Path) -> None:
    out = client.predict(query=handle_file(str(photo_file)), k=5, api_name="/search")
    assert len(out["results"]) == 5 and out["query_class"] is None


def test_a_model_change_keeps_the_layer_depth(app_url: str) -> None:
    fresh = Client(app_url, verbose=False)  # a new session: Lite0 at its last layer
    fresh.predict("block2b_project_conv", api_name="/layer_changed")
    shown = fresh.predict("efficientnet_lite1", api_name="/layers_for_model")
    update, notice = shown[2], shown[8]  # the model box already shows the model chosen
    choices = [value for _, value in update["choices"]]
    assert (update["value"], notice) == ("block2c_expand_conv", "")
    assert "block2c_expand_conv" in choices and "block2b_project_conv" not in choices


def test_a_model_without_weights_here_is_refused_in_one_sentence(app_url: str) -> None:
    fresh = Client(app_url, verbose=False)  # a new session: its model is the default
    shown = fresh.predict("vgg16", api_name="/layers_for_model")
    model, notice = shown[1], shown[8]
    assert model["value"] == "efficientnet_lite0"  # the session stays on the model it had
    assert "224 px" in model["info"]  # and the box still describes that model
    assert "VGG16" in notice and "EfficientNet-Lite0" in notice and "Exception" not in notice


def test_similarities_spread_at_the_first_layer(client: Client) -> None:
    out = client.predict(query_index=0, layer="stem_conv", metric="cosine", api_name="/search")
    sims = [r["similarity"] for r in out["results"]]
    assert len(sims) == 50 and max(sims) - min(sims) >= 20


@pytest.mark.parametrize("layer", ["stem_conv", "top_conv"])
@pytest.mark.parametrize("metric", METRICS)
def test_similarities_never_increase_with_rank(client: Client, metric: str, layer: str) -> None:
    out = client.predict(query_index=17, layer=layer, metric=metric, api_name="/search")
    sims = [r["similarity"] for r in out["results"]]
    assert all(a >= b for a, b in zip(sims, sims[1:], strict=False)), sims
    assert max(sims) - min(sims) >= 20  # spread over the bar, not crowded at one end


def test_a_user_mistake_is_logged_as_one_warning_line(client: Client, app_cache: Path) -> None:
    with pytest.raises(Exception, match="Unknown metric 'hamming-by-mistake'"):
        client.predict(query_index=0, metric="hamming-by-mistake", api_name="/search")
    log = (app_cache / "app.log").read_text()
    lines = [line for line in log.splitlines() if "hamming-by-mistake" in line]
    assert len(lines) == 1 and lines[0].startswith("WARNING convenet: search: "), lines
    assert "Traceback" not in log


@pytest.fixture(scope="module")
def unusual_uploads(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A photo, and two images unlike any dataset image: a flat colour and noise."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("unusual")
    noise = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "noise.png")
    Image.new("RGB", (224, 224), (230, 20, 20)).save(folder / "red.png")
    return [REPO / "examples" / "cat.jpg", folder / "noise.png", folder / "red.png"]


@pytest.mark.parametrize("metric", METRICS)
def test_an_uploads_similarities_spread_and_never_increase(
    client: Client, unusual_uploads: list[Path], metric: str
) -> None:
    """The old scale (the dataset's own pairs) read 0 % on every result of such uploads."""
    for image in unusual_uploads:
        for layer in ("stem_conv", "block4c_expand_conv", "top_conv"):
            out = client.predict(
                query=handle_file(str(image)), layer=layer, metric=metric, api_name="/search"
            )
            sims = [r["similarity"] for r in out["results"]]
            where = f"{image.name} at {layer}: {sims}"
            assert all(a >= b for a, b in zip(sims, sims[1:], strict=False)), where
            assert len(sims) == 50 and max(sims) - min(sims) >= 20, where


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dataset": "nope"}, "Unknown dataset 'nope'"),
        ({"model": "alexnet"}, "Unknown model 'alexnet'"),
        ({"layer": "block9"}, "Unknown layer 'block9'"),
        ({"metric": "hamming"}, "Unknown metric 'hamming'"),
        ({"k": 0}, "k must be between 1 and"),
        ({"k": 1000}, "k must be between 1 and"),
        ({"query_index": 999}, "query_index must be a whole number from 0 to"),
        ({"query_index": "three"}, "query_index must be a whole number"),
    ],
)
def test_bad_api_input_gives_clear_error(client: Client, kwargs: dict, message: str) -> None:
    args = {"query_index": 0, **kwargs}
    with pytest.raises(Exception, match=message):
        client.predict(**args, api_name="/search")


def test_bad_upload_gives_clear_error_and_app_keeps_serving(client: Client, tmp_path: Path) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_text("not an image at all")
    with pytest.raises(Exception, match="not an image file"):
        client.predict(query=handle_file(str(fake)), api_name="/search")
    assert len(client.predict(query_index=1, k=3, api_name="/search")["results"]) == 3


def test_api_refuses_paths_outside_uploads(app_url: str) -> None:
    """A crafted FileData naming a server file must not be read (gr.api does not check it)."""
    for target in ("/etc/passwd", str(REPO / "app.py")):
        query = {"path": target, "meta": {"_type": "gradio.FileData"}}
        stream = call_http(
            app_url,
            "search",
            ["stamps200", "efficientnet_lite0", "top_conv", "cosine", None, query, 5, "plain"],
        )
        assert "event: error" in stream
        assert "That file is not available to this app" in stream
        assert "root:" not in stream


@pytest.mark.parametrize(
    "route",
    [
        "gradio_api/file=/etc/passwd",
        "gradio_api/file=app.py",
        "file=/etc/passwd",
        "gradio_api/file=precomputed/../app.py",
        "gradio_api/file=../../etc/passwd",
    ],
)
def test_file_routes_serve_nothing_outside_the_app(app_url: str, route: str) -> None:
    try:
        with urllib.request.urlopen(app_url + route, timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        assert error.code in (400, 403, 404)
    else:
        assert b"root:" not in body and b"build_app" not in body


def test_quality_overview_and_compare(client: Client) -> None:
    table = client.predict("stamps200", "cosine", api_name="/quality")
    assert "EfficientNet-Lite0" in table and "chance" in table
    rows, note = client.predict("stamps200", 3, "cosine", None, api_name="/compare")
    assert "dataset image 3" in note
    data = rows["data"] if isinstance(rows, dict) else rows
    assert len(data) >= 8


def test_projection_map(app_url: str) -> None:
    client = Client(app_url, verbose=False)  # a fresh session: layer choices of the default model
    svg = client.predict(
        "stamps200", "efficientnet_lite0", "top_conv", 3, None, "pca", api_name="/projection"
    )
    assert svg.count("<circle") == 200 and "cn-query" in svg


def test_which_layers_see_alike(client: Client) -> None:
    """The CKA panel: one row per model x layer with features, each cell in words on hover;
    the sibling models' first layers arrange the images almost the same way."""
    import re

    page = client.predict("clipart200", api_name="/layer_similarity")
    rows = re.findall(r"<tr><th scope='row'>([^<]+)</th>", page)
    assert len(rows) >= 24 and rows[:2] == ["Lite0 L1", "Lite0 L2"]
    first = re.search(
        r"EfficientNet-Lite0 stem_conv vs EfficientNet-Lite1 stem_conv: CKA ([\d.]+)", page
    )
    assert first and float(first.group(1)) > 0.9
    assert "almost the same way" in page and "unrelated" in page
