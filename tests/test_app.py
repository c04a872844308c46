"""Integration: start the real app on 127.0.0.1 and drive it with gradio_client."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from convenet.metrics import METRICS
from tests.app_server import REPO, call_http, running_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory):
    with running_app(tmp_path_factory.mktemp("app-cache")) as url:
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


def test_layer_choices_follow_the_model(client: Client) -> None:
    update = client.predict("efficientnet_lite1", "top_conv", api_name="/layers_for_model")
    value = update["value"] if isinstance(update, dict) else update
    assert value == "top_conv"
    update = client.predict("vgg16", "top_conv", api_name="/layers_for_model")
    value = update["value"] if isinstance(update, dict) else update
    assert value == "block5_conv3"  # the model's last curated layer replaces an invalid one


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
    rows = client.predict("stamps200", 3, "cosine", api_name="/compare")
    data = rows["data"] if isinstance(rows, dict) else rows
    assert len(data) >= 8


def test_projection_map(app_url: str) -> None:
    client = Client(app_url, verbose=False)  # a fresh session: layer choices of the default model
    image = client.predict(
        "stamps200", "efficientnet_lite0", "top_conv", 3, None, "pca", api_name="/projection"
    )
    path = image["path"] if isinstance(image, dict) else image
    assert Path(path).stat().st_size > 1000
