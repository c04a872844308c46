"""What a click costs Gradio's page: few events, and no big component behind every status.

Gradio's page keeps a loading status for every component that ever showed one (an event's
``show_progress_on``, else its outputs) and, at every status message of every event, copies each
of those on screen (``$state.snapshot``: its whole value, and for a layout block every component
inside it). A gr.Tabs among them made a search click copy the whole app several times.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.quick

LAYOUT = {"tabs", "tabitem", "accordion", "row", "column", "group", "form", "sidebar"}


@pytest.fixture(scope="module")
def config() -> dict:
    from ui.app import build_app

    return build_app().get_config_file()


def progress_targets(config: dict) -> list[tuple[str, dict]]:
    """(event name, component) for every component a server event shows its progress on."""
    components = {c["id"]: c for c in config["components"]}
    return [
        (str(dep.get("api_name")), components[target])
        for dep in config["dependencies"]
        if dep.get("backend_fn")
        for target in (dep.get("show_progress_on") or dep["outputs"])
    ]


def test_no_server_event_shows_progress_on_a_layout_block(config: dict) -> None:
    bad = [(name, c["type"]) for name, c in progress_targets(config) if c["type"] in LAYOUT]
    assert not bad, f"these events would make every later status copy a whole layout: {bad}"


@pytest.mark.parametrize("gallery", ["dataset-gallery", "results-gallery"])
def test_no_gallery_of_the_search_tab_shows_progress(config: dict, gallery: str) -> None:
    bad = [
        name for name, c in progress_targets(config) if c.get("props", {}).get("elem_id") == gallery
    ]
    assert not bad, f"these events would make every later status copy a gallery: {bad}"


def test_a_click_on_an_image_is_one_server_event(config: dict) -> None:
    components = {c["id"]: c for c in config["components"]}
    for gallery in ("results-gallery", "dataset-gallery"):
        (block,) = [i for i, c in components.items() if c["props"].get("elem_id") == gallery]
        selects = [
            dep
            for dep in config["dependencies"]
            if [block, "select"] in [list(t) for t in dep["targets"]]
        ]
        assert len(selects) == 1 and selects[0]["backend_fn"], gallery
        shown = {components[o]["props"].get("elem_id") for o in selects[0]["outputs"]}
        assert "results-gallery" in shown, f"a click on {gallery} only picks; the search waits"


CHROMIUM = Path("/usr/bin/chromium")

# Counts the page's structuredClone calls (Svelte's snapshot clones every value, one by one).
COUNT_CLONES = """
(() => {
  const clone = window.structuredClone;
  window.__clones = 0;
  window.structuredClone = (value, options) => {
    window.__clones += 1;
    return clone(value, options);
  };
})();
"""


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"), reason=f"{CHROMIUM} is not installed"
)
def test_a_result_click_copies_little_in_the_page(page, app_url: str) -> None:
    """Before: about 196,000 copies per click (the Tabs, the dataset gallery, seven events);
    after: about 9,000."""
    from playwright.sync_api import expect

    tiles = page.locator("#results-gallery button.thumbnail-item")
    page.add_init_script(COUNT_CLONES)
    page.goto(app_url)
    expect(tiles).to_have_count(50, timeout=60_000)
    expect(page).to_have_url(re.compile(r"query=0"), timeout=60_000)
    captions = "tiles => tiles.map(t => t.innerText).join('|')"
    for n in (1, 2):  # the second click is counted: the first one of a session sets things up
        before = tiles.evaluate_all(captions)
        page.evaluate("window.__clones = 0")
        tiles.nth(n).click()
        page.wait_for_function(
            f"before => ({captions})([...document.querySelectorAll("
            "'#results-gallery button.thumbnail-item')]) !== before",
            arg=before,
            timeout=60_000,
        )
        page.wait_for_timeout(1500)  # the panels' event after the search: counted too
    copies = page.evaluate("window.__clones")
    assert 0 < copies < 30_000, f"{copies} structuredClone calls for one click"
