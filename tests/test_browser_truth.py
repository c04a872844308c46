"""Browser: what the page shows, its URL and its results never disagree (issue 26).

Each test repeats a sequence that once left the boxes, the URL and the results apart, and
checks afterwards that the Layer box, the URL, the results' footer and the ``/search`` API all
name the same view.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from gradio_client import Client

from tests.test_browser import WAIT_MS, open_app, shoot, thumbnails
from tests.test_browser_search import (  # noqa: F401 - warm_uploads: a fixture used by name
    EXAMPLE,
    assert_page_intact,
    controls,
    wait_for_results,
    warm_uploads,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

from playwright.sync_api import Page, expect  # noqa: E402

LINK = "?dataset=clipart200&model=efficientnet_lite0&layer=top_conv&metric=cosine&query=5"


def footer(page: Page) -> str:
    """The results' footer: model title · layer · metric · recipe."""
    return page.locator("#search-legend small").inner_text()


def open_overview(page: Page) -> None:
    page.get_by_text("Which layer of which model searches best?").click()
    expect(page.locator("#quality-heatmap button.cn-cell")).to_have_count(24, timeout=WAIT_MS)


def cell(page: Page, model: str, column: int):
    return page.locator(f"#quality-heatmap tr:has(button[data-model={model}]) button.cn-cell").nth(
        column
    )


@pytest.mark.parametrize(
    ("refused", "model", "title"),
    [
        ("VGG19 - needs a download", "efficientnet_lite0", "EfficientNet-Lite0"),
        ("MobileNet - needs a download", "efficientnet_lite1", "EfficientNet-Lite1"),
    ],
)
def test_a_refused_model_then_a_quick_cell_click_leaves_one_view(
    page: Page, app_url: str, api: Client, refused: str, model: str, title: str
):
    """Issue 26, defect 1: the slow refusal used to write back the layer it started with."""
    open_app(page, app_url + LINK)
    wait_for_results(page, api, dataset="clipart200", query_index=5)
    open_overview(page)
    target = cell(page, model, 2)
    layer = target.get_attribute("data-layer")
    controls(page).get_by_label("Model", exact=True).click()
    page.get_by_role("option", name=refused).click()
    target.click()  # within 0.3 s of the refused choice
    expect(page.locator("#search-notice")).to_contain_text(refused.split(" - ")[0], timeout=WAIT_MS)
    page.wait_for_timeout(1500)  # anything still queued lands
    expect(controls(page).get_by_label("Model", exact=True)).to_have_value(re.compile(f"^{title}"))
    expect(controls(page).get_by_label("Layer", exact=True)).to_have_value(re.compile(f"^{layer}"))
    expect(page).to_have_url(re.compile(f"model={model}&layer={layer}&"))
    assert footer(page).startswith(f"{title} · {layer} · ")
    wait_for_results(page, api, dataset="clipart200", query_index=5, model=model, layer=layer)
    thumbnails(page, "dataset-gallery").nth(7).click()  # a later search keeps the layer
    expect(page).to_have_url(re.compile(f"model={model}&layer={layer}&.*query=7"), timeout=WAIT_MS)
    wait_for_results(page, api, dataset="clipart200", query_index=7, model=model, layer=layer)
    assert footer(page).startswith(f"{title} · {layer} · ")
    assert_page_intact(page)
    shoot(page, f"truth_refused_then_cell_{model}")


def test_a_bad_link_says_what_it_ignored(page: Page, app_url: str, api: Client):
    """Issue 26, defect 3: such a link used to fall back without a word."""
    open_app(page, f"{app_url}?dataset=nosuch&model=vgg99&layer=zzz&metric=foo&query=99999")
    expect(page.locator("#search-notice")).to_have_text(
        "This link asked for dataset nosuch, model vgg99, layer zzz, metric foo and query image "
        "99999, which this app does not have; showing stamps200, EfficientNet-Lite0, top_conv, "
        "cosine and image 0 instead.",
        timeout=WAIT_MS,
    )
    expect(page).to_have_url(re.compile(r"dataset=stamps200&.*query=0"), timeout=WAIT_MS)
    wait_for_results(page, api, query_index=0)
    thumbnails(page, "dataset-gallery").nth(3).click()  # the next action clears it
    expect(page.locator("#search-notice")).to_be_hidden(timeout=WAIT_MS)
    assert_page_intact(page)


def test_the_k_box_applies_on_enter_and_the_downloads_use_it(page: Page, app_url: str, api: Client):
    """Issue 26, defect 4: Enter did nothing; CSV and JSON held different k."""
    open_app(page, app_url)
    box = page.get_by_label("number input for Results shown (k)")
    box.fill("10")
    box.press("Enter")
    expect(thumbnails(page, "results-gallery")).to_have_count(10, timeout=WAIT_MS)
    expect(page).to_have_url(re.compile(r"query=0&k=10$"), timeout=WAIT_MS)
    rows = {}
    for kind in ("CSV", "JSON"):
        with page.expect_download() as download:
            page.get_by_role("button", name=f"Results as {kind}").click()
        text = Path(download.value.path()).read_text()
        rows[kind] = len(json.loads(text)) if kind == "JSON" else len(text.splitlines()) - 1
    assert rows == {"CSV": 10, "JSON": 10}


@pytest.mark.usefixtures("warm_uploads")
def test_a_refused_upload_stays_said_by_the_box_and_keeps_the_last_query(
    page: Page, app_url: str, tmp_path: Path
):
    """Issue 26, defect 5: the refusal was a toast that faded, over an emptied box and the old
    upload's results under a "Your image" headline."""
    open_app(page, app_url)
    box = page.locator(".block", has_text="Or search with your own image")
    box.locator("input[type=file]").set_input_files(EXAMPLE)
    expect(page.locator("#search-summary")).to_contain_text("Your image", timeout=WAIT_MS)
    shown = thumbnails(page, "results-gallery").all_inner_texts()
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not a picture at all")
    box.locator("input[type=file]").set_input_files(bad)
    notice = page.locator("#upload-notice")
    expect(notice).to_contain_text(
        "notes.png: not an image file this app can read. The search still uses your last "
        "uploaded image.",
        timeout=WAIT_MS,
    )
    expect(page.locator(".toast-body")).to_have_count(0, timeout=30_000)  # the toast faded
    expect(notice).to_be_visible()
    expect(box.locator("img")).to_have_count(1)  # the box shows the query that is searched
    expect(page.locator("#search-summary")).to_contain_text("Your image")
    assert thumbnails(page, "results-gallery").all_inner_texts() == shown
    thumbnails(page, "dataset-gallery").nth(3).click()  # the next action clears it
    expect(notice).to_be_hidden(timeout=WAIT_MS)
    expect(page).to_have_url(re.compile(r"query=3"), timeout=WAIT_MS)


@pytest.mark.usefixtures("warm_uploads")
def test_a_one_pixel_upload_gets_a_remark(page: Page, app_url: str, tmp_path: Path):
    """Issue 26, defect 5: a 1x1 PNG was searched without a word."""
    from PIL import Image

    dot = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (200, 30, 30)).save(dot)
    open_app(page, app_url)
    box = page.locator(".block", has_text="Or search with your own image")
    box.locator("input[type=file]").set_input_files(dot)
    expect(page.locator("#search-summary")).to_contain_text(
        "Your image is only 1×1 pixels", timeout=WAIT_MS
    )


def test_a_view_of_your_own_images_says_its_link_cannot_carry_them(
    page: Page, app_url: str, tmp_path: Path
):
    """Issue 26, defect 2: the copied link opened stamps200 without a word."""
    from tests.data.test_own_images import make_zip, stamps

    entries = {f"mine/{c}/{i}.jpg": d for i, (c, d) in enumerate(stamps(2, 6))}
    made = make_zip(tmp_path / "mine.zip", entries)
    open_app(page, app_url)
    note = page.locator("#link-note")
    expect(note).to_be_hidden()  # a shipped dataset travels in a link
    page.get_by_text("Use your own images").click()
    page.locator("#own-files input[type=file]").set_input_files(str(made))
    expect(page.locator("#own-files")).to_contain_text(re.compile(r"mine\s*\.zip"), timeout=WAIT_MS)
    page.locator("#own-make").click()
    expect(page.locator("#own-status")).to_contain_text("12 images", timeout=4 * WAIT_MS)
    expect(note).to_have_text(
        "A link cannot carry your own images: it opens stamps200 instead.", timeout=WAIT_MS
    )
    expect(note).to_be_visible()
    shoot(page, "truth_own_images_link_note")


def test_the_phone_footer_keeps_the_api_link(browser, app_url: str):
    """Issue 26, item 6: at phone width Gradio hid "Use via API or MCP"."""
    context = browser.new_context(viewport={"width": 420, "height": 900})
    page = context.new_page()
    try:
        open_app(page, app_url)
        expect(page.locator("footer").get_by_text("Use via API or MCP")).to_be_visible()
    finally:
        context.close()
