"""Browser: the Model Explorer's channel grid, channel pages and links, filters, inversion.

Driven in headless Chromium like the other browser tests (fixtures in conftest.py); every
expectation is checked against what the core computes for the same view.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convenet.explain.featurevis_gallery import shipped_channels
from tests.test_browser import CHROMIUM, WAIT_MS, assert_images_load, shoot

if not CHROMIUM.exists():  # test_browser already skips this module's imports when missing
    pytest.skip("no Chromium", allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.browser]

MODEL = "efficientnet_lite0"
SLOW_MS = 3 * WAIT_MS  # TensorFlow loading, then a model, on a busy machine


def grid_images(page: Page):
    return page.locator("#explorer-channel-grid button.thumbnail-item img")


def drawn(page: Page, box: str) -> None:
    """The picture in ``box`` has loaded (scrolled to first: the page loads images lazily)."""
    page.locator(box).scroll_into_view_if_needed(timeout=SLOW_MS)
    picture = page.locator(f"{box} img")
    expect(picture).to_have_js_property("complete", True, timeout=SLOW_MS)
    page.wait_for_function(
        "el => el.naturalWidth > 0", arg=picture.element_handle(), timeout=SLOW_MS
    )


def field_size(layer: str) -> int:
    """The receptive field of one pixel of ``layer``, from the core (Lite0 built here)."""
    from convenet.paths import PRECOMPUTED_DIR
    from convenet.playground import Playground

    return Playground(PRECOMPUTED_DIR).inspect(MODEL).receptive_fields()[layer].size


def open_explorer(page: Page, url: str, query: str = "") -> None:
    page.goto(url.rstrip("/") + query)
    if not query:
        page.get_by_role("tab", name="Model Explorer").click()


def choose_layer(page: Page, layer: str) -> None:
    box = page.locator("#explorer-layer input")
    box.click()
    page.get_by_role("option", name=re.compile(rf"^{layer} ")).click()


def test_choosing_a_layer_shows_its_channel_grid_without_a_button(page: Page, app_url: str):
    first, other = "stem_conv", "block4c_expand_conv"
    assert shipped_channels(MODEL, first) and shipped_channels(MODEL, other)
    open_explorer(page, app_url)
    expect(grid_images(page)).to_have_count(len(shipped_channels(MODEL, first)), timeout=SLOW_MS)
    # No channel page opens by itself: only a click, the button or a link open one.
    expect(page.locator("#explorer-channel-link")).not_to_contain_text("Link to this channel")
    choose_layer(page, other)
    captions = page.locator("#explorer-channel-grid button.thumbnail-item")
    want = [f"channel {c}" for c in shipped_channels(MODEL, other)]
    expect(captions).to_have_text(want, timeout=SLOW_MS)
    assert_images_load(page, "explorer-channel-grid", first=len(want))  # none broken


def test_a_channel_click_opens_its_page_and_its_link_restores_it(page: Page, app_url: str):
    layer = "stem_conv"
    channel = shipped_channels(MODEL, layer)[1]
    open_explorer(page, app_url)
    expect(grid_images(page)).to_have_count(len(shipped_channels(MODEL, layer)), timeout=SLOW_MS)
    page.locator(
        "#explorer-channel-grid button.thumbnail-item", has_text=f"channel {channel}"
    ).click()
    check_channel_page(page, layer, channel)
    link = f"?tab=explorer&model={MODEL}&layer={layer}&channel={channel}"
    expect(page).to_have_url(re.compile(rf"channel={channel}(&|$)"), timeout=WAIT_MS)
    expect(page.locator("#explorer-channel-link a")).to_have_attribute("href", link)
    shoot(page, "10_channel_page")

    fresh = page.context.new_page()
    fresh.goto(app_url.rstrip("/") + "/" + link)  # the exact form other tabs link with
    check_channel_page(fresh, layer, channel)
    fresh.close()


def check_channel_page(page: Page, layer: str, channel: int) -> None:
    expect(page.get_by_text(f"Channel {channel} of {layer}")).to_be_visible(timeout=SLOW_MS)
    drawn(page, "#explorer-featurevis")
    tops = page.locator("#explorer-top-images img")
    expect(tops).to_have_count(9, timeout=SLOW_MS)
    page.locator("#explorer-top-images").scroll_into_view_if_needed()
    box = page.locator("#explorer-top-images").bounding_box()
    last = tops.nth(8).bounding_box()
    # All nine inside their box, none hidden behind a scroll bar.
    assert box and last and last["y"] + last["height"] <= box["y"] + box["height"] + 1
    expect(page.locator("#explorer-class-bars .cn-cls-row").first).to_be_visible()


def test_top_conv_filters_are_not_a_flat_block(page: Page, app_url: str):
    open_explorer(page, app_url, f"/?tab=explorer&model={MODEL}&layer=top_conv")
    expect(page.get_by_text("1x1 kernels only mix channels")).to_be_visible(timeout=SLOW_MS)
    drawn(page, "#explorer-filters")
    picture = page.locator("#explorer-filters img")
    pixels = np.asarray(Image.open(io.BytesIO(picture.screenshot())).convert("RGB"), float)
    h, w = pixels.shape[:2]
    centre = pixels[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3)
    centre = centre[(centre < 250).any(axis=1)]  # not the white gaps between tiles
    assert centre.std(axis=0).mean() > 20, "the filters render as one flat colour"


def test_inversion_rebuilds_an_uploaded_image(page: Page, app_url: str, photo_file: Path):
    open_explorer(page, app_url, f"/?tab=explorer&model={MODEL}&layer=stem_conv")
    expect(grid_images(page).first).to_be_visible(timeout=SLOW_MS)
    upload = page.locator(".block", has_text="Or use your own image").last
    upload.locator("input[type=file]").set_input_files(photo_file)
    expect(page.get_by_text("Your image · stem_conv")).to_be_visible(timeout=SLOW_MS)
    page.locator("#explorer-invert-button").click()
    drawn(page, "#explorer-inverted")
    expect(page.locator("#explorer-inverted img")).to_have_js_property("naturalWidth", 224)
    expect(page.get_by_text("rebuilt from stem_conv").first).to_be_visible()
    expect(page.get_by_text("Your image, rebuilt")).to_be_visible()
    shoot(page, "11_inversion")


@pytest.mark.parametrize("width", [1400, 420])
def test_channel_page_and_activations_fit_their_boxes(page: Page, app_url: str, width: int):
    page.set_viewport_size({"width": width, "height": 1000})
    layer = "block2b_project_conv"
    channel = shipped_channels(MODEL, layer)[0]
    open_explorer(page, app_url, f"/?tab=explorer&model={MODEL}&layer={layer}&channel={channel}")
    check_channel_page(page, layer, channel)
    drawn(page, "#explorer-maps")
    maps = page.locator("#explorer-maps img")
    box, img = page.locator("#explorer-maps").bounding_box(), maps.bounding_box()
    assert box and img and img["width"] <= box["width"] + 1 and img["height"] <= box["height"] + 1
    # A click on the mean activation: what that pixel of the layer sees, and its channels.
    drawn(page, "#explorer-overlay")
    overlay = page.locator("#explorer-overlay img")
    before = overlay.get_attribute("src")
    overlay.click(position={"x": 10, "y": 10})  # near the top-left corner
    words = page.locator("#explorer-pixel")
    size = field_size(layer)
    expect(words).to_contain_text(
        re.compile(rf"pixel \(row [0-3], column [0-3]\) of {layer} sees a {size} x {size} px"),
        timeout=SLOW_MS,
    )
    expect(words.locator("a[href*='channel=']")).to_have_count(5)
    expect(overlay).not_to_have_attribute("src", before or "", timeout=SLOW_MS)  # outlined
    shoot(page, f"12_explorer_{width}")


# The words a box breaks across lines (a range over the word lies on more than one line); a
# line may still break after a hyphen.
BROKEN_WORDS = """root => {
  const broken = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const match of node.textContent.matchAll(/[^\\s-]+-?/g)) {  // a hyphen may break
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      if (tops.size > 1) broken.push(match[0]);
    }
  }
  return broken;
}"""


def test_a_channel_link_on_a_phone_folds_the_models_and_cuts_no_word(page: Page, app_url: str):
    """At 420 px: the link folds the models table away (the channel is what it names); opened,
    no word of it is broken letter by letter; the Model and Layer boxes show their whole
    choice."""
    page.set_viewport_size({"width": 420, "height": 1000})
    layer = "block4c_expand_conv"
    open_explorer(page, app_url, f"/?tab=explorer&model={MODEL}&layer={layer}&channel=3")
    layer_box = page.locator("#explorer-layer input")
    expect(layer_box).to_have_value(re.compile(rf"^{layer} · \d of 8$"), timeout=SLOW_MS)
    table = page.get_by_role("tabpanel").locator("table").first  # the models table
    expect(table).to_be_hidden()
    page.get_by_text("The models, from simplest to most complex").click()
    expect(table).to_be_visible()
    block = table.locator("xpath=ancestor::div[contains(@class, 'block')][1]")
    expect(block.get_by_role("gridcell", name="EfficientNet-Lite0", exact=True)).to_be_visible()
    assert block.evaluate(BROKEN_WORDS) == []
    model_box = page.get_by_role("combobox", name="Model", exact=True)
    expect(model_box).to_have_value(re.compile(r"^EfficientNet-Lite0 \("))
    for box in (model_box, layer_box):
        width = box.evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert width[0] <= width[1], f"{box.input_value()!r} is cut off: {width}"
    shoot(page, "13_explorer_link_420")


DUPLICATE_IDS_JS = """() => {
  const seen = {};
  for (const e of document.querySelectorAll('[id]')) seen[e.id] = (seen[e.id] || 0) + 1;
  return Object.keys(seen).filter((id) => id && seen[id] > 1);
}"""


def test_no_element_id_is_used_twice_on_either_tab(page: Page, app_url: str):
    """Ids a page sets are unique (a label or a link may point at one); Gradio's own icon
    symbols ("icon") are the one repeated id, and not ours."""
    open_explorer(page, app_url)
    expect(grid_images(page).first).to_be_visible(timeout=SLOW_MS)
    assert set(page.evaluate(DUPLICATE_IDS_JS)) <= {"icon"}
    page.get_by_role("tab", name="Semantic Search").click()
    page.locator("#results-gallery button.thumbnail-item").first.wait_for(timeout=WAIT_MS)
    assert set(page.evaluate(DUPLICATE_IDS_JS)) <= {"icon"}
