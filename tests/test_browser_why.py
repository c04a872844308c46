"""Browser: "Why do these match?" shows the query and a result with their heatmaps, the number
/why_match answers for that pair, and the top channels with links into the Model Explorer; it
follows the search, uploads included."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from playwright.sync_api import Page, expect

from tests.test_browser import WAIT_MS, open_app, shoot

pytestmark = [pytest.mark.slow, pytest.mark.browser]

LINK = re.compile(r"^\?tab=explorer&model=efficientnet_lite0&layer=top_conv&channel=\d+$")


def cosine_text(api: Client, query_index: int, rank: int) -> str:
    """The headline the panel must show for the result at ``rank``, from the API's answers."""
    hit = api.predict(query_index=query_index, k=rank, api_name="/search")["results"][-1]
    out = api.predict(query_index=query_index, result_index=hit["index"], api_name="/why_match")
    return f"Cosine similarity {out['cosine']:.3f}"


def label(page: Page, image: str):
    return page.locator(f"#{image} [data-testid=block-label]")


def open_panel(page: Page) -> None:
    page.get_by_text("Why do these match? The query and a result").click()
    expect(page.locator("#why-query img")).to_be_visible(timeout=WAIT_MS)


def assert_pictures(page: Page) -> None:
    """Both overlays load, and no corner button covers their labels (as it did on a phone)."""
    for side in ("why-query", "why-result"):
        image = page.locator(f"#{side} img")
        expect(image).to_have_js_property("complete", True, timeout=WAIT_MS)
        assert image.evaluate("e => e.naturalWidth") == 224
        expect(page.locator(f"#{side} button[aria-label=Fullscreen]")).to_have_count(0)


@pytest.mark.parametrize("width", [1400, 420])
def test_why_panel_explains_the_chosen_result(page: Page, app_url: str, api: Client, width: int):
    page.set_viewport_size({"width": width, "height": 1000})
    open_app(page, f"{app_url}?query=12")
    open_panel(page)
    panel = page.locator("#why-panel")
    expect(page.locator("#why-summary")).to_contain_text(cosine_text(api, 12, 1), timeout=WAIT_MS)
    expect(page.locator("#why-summary")).to_contain_text("Bright yellow")
    assert_pictures(page)
    expect(label(page, "why-query")).to_have_text("Query: birds #12")
    cards = page.locator("#why-channels li")
    expect(cards).to_have_count(6)
    links = cards.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert all(LINK.match(link) for link in links), links
    assert cards.locator("img").count() + cards.locator(".why-none").count() == 6
    shoot(page, f"why_match_{width}")

    panel.get_by_label("Result to explain", exact=True).click()
    page.get_by_role("option", name=re.compile(r"^Result 3: ")).click()
    expect(page.locator("#why-summary")).to_contain_text(cosine_text(api, 12, 3), timeout=WAIT_MS)
    expect(label(page, "why-result")).to_contain_text("Result 3: ")


def test_why_panel_follows_an_upload(page: Page, app_url: str, api: Client, photo_file: Path):
    # The first upload of a fresh app exports the model's graph: done here, outside the clock.
    api.predict(query=handle_file(str(photo_file)), k=1, api_name="/search")
    open_app(page, app_url)
    open_panel(page)
    upload = page.locator(".block", has_text="Or search with your own image")
    upload.locator("input[type=file]").set_input_files(photo_file)
    expect(page.locator("#search-summary")).to_contain_text("Your image", timeout=WAIT_MS)
    expect(label(page, "why-query")).to_have_text("Query: your image", timeout=WAIT_MS)
    assert_pictures(page)
    expect(page.locator("#why-summary")).to_contain_text("Cosine similarity")
    shoot(page, "why_match_upload")
