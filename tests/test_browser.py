"""Browser: drive the real app in headless Chromium the way a visitor does.

Each check compares what the page shows with what the ``/search`` API answers for the same
view, so a page that renders but shows the wrong ranking fails. Screenshots of every step go to
``artifacts/screenshots/`` for a human to look at.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from tests.app_server import REPO

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is not installed (CI always runs these)", allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SHOTS = REPO / "artifacts" / "screenshots"
WAIT_MS = 60_000  # a search on a busy 2-core machine, plus model loading for uploads


def shoot(page: Page, name: str) -> None:
    """A full-page screenshot for a human to look at.

    The window is first made as tall as the page, or lazy images far down would stay blank.
    """
    width = page.viewport_size["width"]
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": width, "height": height})
    page.mouse.move(0, 0)  # no hover highlight left where the test last clicked
    page.wait_for_timeout(1500)  # let the newly visible images load; a picture, not a check
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def copied_link(page: Page) -> str:
    """What the share button wrote to the clipboard, once it holds a link with a saved view
    (polled here: a wait_for_function predicate that returns a promise is truthy at once)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while "deep_link=" not in (text := page.evaluate("navigator.clipboard.readText()")):
        assert time.monotonic() < deadline, f"the clipboard holds {text!r}"
        page.wait_for_timeout(200)
    return text


def summary(page: Page) -> str:
    return page.locator("#search-summary").inner_text()


def expected_summary(api: Client, **view: object) -> str:
    """The sentence the page must show for ``view``, built from the API's answer."""
    out = api.predict(**view, api_name="/search")
    name = out["query_class"].replace("_", " ")
    in_top = sum(r["same_class"] for r in out["results"][:10])
    return f"{out['matches']} of the {out['possible']} other {name} are in the top 50; {in_top} of"


def wait_for_view(page: Page, api: Client, url_params: dict[str, str], **view: object) -> str:
    """Wait until the URL names the view and the summary matches the API; return the summary."""
    for key, value in url_params.items():
        expect(page).to_have_url(re.compile(rf"[?&]{key}={re.escape(value)}(&|$)"), timeout=WAIT_MS)
    expect(page.locator("#search-summary")).to_contain_text(
        expected_summary(api, **view), timeout=WAIT_MS
    )
    return summary(page)


def thumbnails(page: Page, gallery: str):
    return page.locator(f"#{gallery} button.thumbnail-item")


SETTLED_JS = """([selector, first]) => {
  const images = [...document.querySelectorAll(selector)];
  const shown = images.slice(0, first);
  return shown.length === first && shown.every(e => e.complete && e.naturalWidth > 0)
    && !images.some(e => e.complete && !e.naturalWidth);
}"""


def assert_images_load(page: Page, gallery: str, first: int = 6) -> None:
    """The first tiles show a decoded picture and no tile is a broken image, once the gallery
    has settled (a search that follows another one replaces the tiles while they load; a
    broken image stays broken, so this still fails on one)."""
    page.wait_for_function(SETTLED_JS, arg=[f"#{gallery} img", first], timeout=WAIT_MS)


def open_app(page: Page, url: str) -> None:
    page.goto(url)
    expect(thumbnails(page, "results-gallery")).to_have_count(50, timeout=WAIT_MS)


def test_first_view_shows_fifty_results_and_the_url(page: Page, app_url: str, api: Client):
    open_app(page, app_url)
    text = wait_for_view(page, api, {"query": "0"}, query_index=0)
    assert re.search(r"\b\d+ of the \d+ other .+ are in the top 50", text)
    expect(page).to_have_url(
        re.compile(
            r"\?dataset=stamps200&model=efficientnet_lite0&layer=top_conv&metric=cosine"
            r"&recipe=plain&query=0$"
        )
    )
    assert_images_load(page, "results-gallery")
    assert_images_load(page, "dataset-gallery")
    shoot(page, "01_first_view")


def query_picture(page: Page):
    label = page.locator("label[data-testid=block-label]", has_text=re.compile(r"^\s*Query\s*$"))
    return page.locator(".block", has=label).locator("img")


def test_clicking_a_dataset_image_makes_it_the_query(page: Page, app_url: str, api: Client):
    open_app(page, app_url)
    before = wait_for_view(page, api, {"query": "0"}, query_index=0)
    picture = query_picture(page).get_attribute("src")
    thumbnails(page, "dataset-gallery").nth(30).click()
    after = wait_for_view(page, api, {"query": "30"}, query_index=30)
    assert after != before
    expect(query_picture(page)).not_to_have_attribute("src", picture or "")
    shoot(page, "02_dataset_image_clicked")


def test_clicking_a_result_makes_it_the_query(page: Page, app_url: str, api: Client):
    open_app(page, app_url)
    before = wait_for_view(page, api, {"query": "0"}, query_index=0)
    third = api.predict(query_index=0, api_name="/search")["results"][2]["index"]
    thumbnails(page, "results-gallery").nth(2).click()
    after = wait_for_view(page, api, {"query": str(third)}, query_index=third)
    assert after != before
    shoot(page, "03_result_clicked")


def test_new_results_carry_no_stale_selection(page: Page, app_url: str, api: Client):
    open_app(page, app_url)
    wait_for_view(page, api, {"query": "0"}, query_index=0)
    third = api.predict(query_index=0, api_name="/search")["results"][2]["index"]
    thumbnails(page, "results-gallery").nth(2).click()
    wait_for_view(page, api, {"query": str(third)}, query_index=third)
    expect(page.locator("#results-gallery button.thumbnail-item.selected")).to_have_count(0)


def test_first_layer_changes_the_score(page: Page, app_url: str, api: Client):
    open_app(page, app_url)
    before = wait_for_view(page, api, {"layer": "top_conv"}, query_index=0)
    page.get_by_label("Layer").click()
    page.get_by_role("option", name=re.compile(r"^stem_conv")).click()
    after = wait_for_view(page, api, {"layer": "stem_conv"}, query_index=0, layer="stem_conv")
    assert after.splitlines()[0] != before.splitlines()[0]
    shoot(page, "04_first_layer")


def test_uploading_a_photo_searches_with_it(
    page: Page, app_url: str, api: Client, photo_file: Path
):
    open_app(page, app_url)
    expect(page.locator("#search-summary")).to_contain_text("other", timeout=WAIT_MS)
    upload = page.locator(".block", has_text="Or search with your own image")
    upload.locator("input[type=file]").set_input_files(photo_file)
    expect(page.locator("#search-summary")).to_contain_text("Your image", timeout=WAIT_MS)
    expect(thumbnails(page, "results-gallery")).to_have_count(50)
    best = api.predict(query=handle_file(str(photo_file)), k=1, api_name="/search")["results"][0]
    caption = thumbnails(page, "results-gallery").first.inner_text()
    shown = re.fullmatch(r"#1 (\d+)% (\S+)", caption.strip())
    assert shown, f"unexpected caption {caption!r}"
    assert shown[2] == best["class"] and abs(int(shown[1]) - best["similarity"]) <= 1
    assert_images_load(page, "results-gallery")
    shoot(page, "05_upload")


def test_a_shared_link_restores_its_view(page: Page, app_url: str, api: Client):
    open_app(page, f"{app_url}?dataset=clipart200&query=5&layer=stem_conv")
    view = {"dataset": "clipart200", "layer": "stem_conv", "query_index": 5}
    wait_for_view(page, api, {"dataset": "clipart200", "layer": "stem_conv", "query": "5"}, **view)
    expect(page).to_have_url(re.compile(r"model=efficientnet_lite0&.*metric=cosine"))
    expect(page.get_by_label("Dataset")).to_have_value("clipart200")
    expect(page.get_by_label("Layer")).to_have_value(re.compile(r"^stem_conv"))
    assert_images_load(page, "dataset-gallery")
    shoot(page, "06_shared_link")


def test_model_explorer_tab_renders(page: Page, app_url: str):
    open_app(page, app_url)
    page.get_by_role("tab", name="Model Explorer").click()
    panel = page.get_by_role("tabpanel").filter(visible=True)
    expect(panel).to_have_count(1)
    expect(panel).not_to_contain_text("being built")
    # Its views have finished: no spinner left, and a picture the app computed has been drawn.
    page.wait_for_function(
        """panel => !panel.querySelector('[data-testid=status-tracker]:not(.hide)')
            && [...panel.querySelectorAll('img')].some(
                e => /[/]image[.](png|webp)$/.test(e.src) && e.naturalWidth > 0)""",
        arg=panel.element_handle(),
        timeout=WAIT_MS,
    )
    expect(page.locator(".toast-body.error")).to_have_count(0)
    shoot(page, "07_model_explorer")
