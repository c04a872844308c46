"""Browser: the search recipe control changes the ranking (as /search ranks it), lives in the
link, and moves the whole quality overview."""

from __future__ import annotations

import re

import pytest
from gradio_client import Client
from playwright.sync_api import Page, expect

from tests.test_browser import WAIT_MS, open_app, shoot
from tests.test_browser_search import choose

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def captions(page: Page) -> list[str]:
    return page.locator("#results-gallery img").evaluate_all("els => els.map(e => e.alt)")


def expected_captions(api: Client, recipe: str) -> list[str]:
    out = api.predict(dataset="clipart200", query_index=3, recipe=recipe, api_name="/search")
    return [f"#{hit['rank']} " for hit in out["results"]], [hit["class"] for hit in out["results"]]


def test_recipe_changes_the_ranking_and_travels_in_the_link(page: Page, app_url: str, api: Client):
    open_app(page, f"{app_url}?dataset=clipart200&query=3")
    plain = captions(page)
    choose(page, "Search recipe", "best")
    expect(page).to_have_url(re.compile(r"[?&]recipe=best(&|$)"), timeout=WAIT_MS)
    ranks, classes = expected_captions(api, "best")
    expect(page.locator("#results-gallery img").first).to_have_attribute(
        "alt", re.compile(rf"^#1 .*{re.escape(classes[0])}$"), timeout=WAIT_MS
    )
    best = captions(page)
    assert best != plain
    assert [c.rsplit(" ", 1)[-1] for c in best] == classes
    expect(page.locator("#search-legend")).to_contain_text("recipe best")
    layer_box = page.get_by_label("Layer", exact=True)
    expect(layer_box).to_have_value(re.compile(r"^top_conv · 6-8 of 8, one search with best$"))
    shoot(page, "recipe_best")

    page.goto(page.url)  # the link reopens the same recipe
    expect(page.locator("#results-gallery img")).to_have_count(50, timeout=WAIT_MS)
    expect(page.get_by_label("Search recipe", exact=True)).to_have_value("best")
    expect(page.locator("#results-gallery img").first).to_have_attribute(
        "alt", best[0], timeout=WAIT_MS
    )


def cell_values(page: Page) -> list[float]:
    return [float(t) for t in page.locator("#quality-heatmap td").all_inner_texts()]


def test_overview_moves_with_its_recipe(page: Page, app_url: str):
    open_app(page, app_url)
    page.get_by_text("Which layer of which model searches best?").click()
    heatmap = page.locator("#quality-heatmap table")
    expect(heatmap).to_be_visible(timeout=WAIT_MS)
    plain = cell_values(page)
    page.get_by_label("Search recipe for the overview", exact=True).click()
    page.get_by_role("option", name="best").click()
    expect(heatmap.locator("td").first).not_to_have_text(f"{plain[0]:.2f}", timeout=WAIT_MS)
    best = cell_values(page)
    spans = heatmap.locator("td").evaluate_all("els => els.map(e => e.colSpan)")
    assert sum(spans) == len(plain) >= 24  # every model x layer with features
    assert len(best) < len(plain)  # best fuses the last layers: one cell each, one search
    assert sum(best) / len(best) > sum(plain) / len(plain)  # the tricks lift the grid on average
