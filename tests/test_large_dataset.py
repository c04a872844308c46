"""A dataset above the exact-search threshold, served by the real app: 60,000 images (hard links
to 30 real stamps200 files) whose features (real ones plus noise, all eight layers) are made
before the app starts, where ``app.py --images`` looks for them. The app memory-maps them and
ranks through a FAISS index; its galleries list a spread of the set and its map a sample."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from gradio_client import Client

from benchmarks.bench_served_scale import served_dataset
from convenet.search.vector_index import EXACT_MAX, faiss_available
from tests.app_server import running_app

N = 60_000
MODEL = "efficientnet_lite0"

pytestmark = [
    pytest.mark.slow,  # writes the features of 60,000 images before its app starts
    pytest.mark.skipif(not faiss_available(), reason="needs faiss-cpu"),
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert N > EXACT_MAX
    cache = tmp_path_factory.mktemp("large-app")
    served = served_dataset(tmp_path_factory.mktemp("large") / "images", cache, N)
    with running_app(cache, extra_env={"CONVENET_IMAGES": served}) as url:
        yield url


def test_a_large_dataset_answers_50_results_through_the_index(api: Client) -> None:
    first = time.perf_counter()
    out = api.predict(dataset="big", layer="top_conv", query_index=12_345, k=50, api_name="/search")
    first = time.perf_counter() - first  # builds the IVF index of 60,000 rows once
    assert len(out["results"]) == 50 and out["query_class"] == "flowers"  # the third class
    # Its near-copies (the same real file plus noise) come first: all of its class.
    assert out["p_at_k"] == 1.0 and out["results"][0]["same_class"]
    assert all(row["index"] != 12_345 for row in out["results"])
    assert [r["similarity"] for r in out["results"]] == sorted(
        (r["similarity"] for r in out["results"]), reverse=True
    )
    began = time.perf_counter()
    again = api.predict(
        dataset="big", layer="top_conv", query_index=59_999, k=50, api_name="/search"
    )
    took = time.perf_counter() - began
    assert len(again["results"]) == 50 and again["results"][0]["same_class"]
    assert took < 5, f"a search of {N:,} images took {took:.1f} s (the first {first:.1f} s)"


def test_the_map_of_a_large_dataset_is_a_sample_and_says_so(api: Client) -> None:
    html = api.predict("big", MODEL, "top_conv", 3, None, "pca", api_name="/projection")
    assert "a sample of 5,000 of the 60,000 images" in html


@pytest.mark.slow
@pytest.mark.browser
def test_the_page_shows_results_and_a_spread_of_the_dataset(app_url: str, page) -> None:
    from playwright.sync_api import expect

    from tests.test_browser import WAIT_MS, assert_images_load, shoot, thumbnails

    page.goto(f"{app_url}?dataset=big&query=6001")
    expect(thumbnails(page, "results-gallery")).to_have_count(50, timeout=WAIT_MS)
    assert_images_load(page, "results-gallery")
    dataset_gallery = page.locator("#dataset-gallery")
    expect(dataset_gallery).to_contain_text("1,000 of 60,000, evenly spread", timeout=WAIT_MS)
    expect(thumbnails(page, "dataset-gallery")).to_have_count(1000)
    summary = page.locator("#search-summary")
    expect(summary).to_contain_text("of the 5,999 other")  # thousands separated
    shoot(page, "large_dataset_1400")
    page.set_viewport_size({"width": 420, "height": 900})
    page.reload()
    expect(thumbnails(page, "results-gallery")).to_have_count(50, timeout=WAIT_MS)
    shoot(page, "large_dataset_420")
