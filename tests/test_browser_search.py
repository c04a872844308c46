"""Browser: the Semantic Search tab stays correct under every sequence of clicks, at any width.

Each test drives the real app in headless Chromium the way a visitor does and, where the page
shows numbers, checks them against the ``/search`` API for the same view.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from convenet.models.registry import MODELS
from tests.test_browser import WAIT_MS, open_app, shoot, thumbnails

pytestmark = [pytest.mark.slow, pytest.mark.browser]

from playwright.sync_api import Browser, Page, expect  # noqa: E402

LITE0, LITE1 = MODELS["efficientnet_lite0"], MODELS["efficientnet_lite1"]
ERROR_BADGE = re.compile(r"^\s*Error\s*$")


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cat.jpg"


@pytest.fixture(scope="module")
def warm_uploads(api: Client) -> None:
    """The app's first upload exports the model to ONNX (a minute on a busy 2-core machine);
    done once here, so the tests' waits measure the page, not that export."""
    api.predict(query=handle_file(str(EXAMPLE)), k=1, api_name="/search")


def controls(page: Page):
    return page.get_by_role("tabpanel").filter(visible=True)


def choose(page: Page, label: str, option: str | re.Pattern) -> None:
    controls(page).get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option).click()


def error_badges(page: Page):
    """The red "Error" a component shows when the event that feeds it failed."""
    return page.locator("[data-testid=status-tracker]").get_by_text(ERROR_BADGE)


def assert_page_intact(page: Page) -> None:
    """No red error badge, no error toast, no developer words anywhere on the page."""
    expect(error_badges(page)).to_have_count(0)
    expect(page.locator(".toast-body.error")).to_have_count(0)
    text = page.locator("body").inner_text()
    for word in ("Exception", "not in the list of choices", "Traceback"):
        assert word not in text


def wait_for_results(page: Page, api: Client, **view: object) -> dict:
    """Wait until the first result's caption is the API's for ``view``; return the API answer."""
    out = api.predict(**view, api_name="/search")
    first = out["results"][0]
    expect(thumbnails(page, "results-gallery").first).to_contain_text(
        re.compile(rf"#1 {first['similarity']:.0f}%.* {first['class']}"), timeout=WAIT_MS
    )
    return out


def percentages(page: Page) -> list[int]:
    captions = thumbnails(page, "results-gallery").all_inner_texts()
    return [int(re.match(r"\s*#\d+ (\d+)%", text)[1]) for text in captions]


# -- 1. model changes ------------------------------------------------------------------------
def test_model_switch_keeps_the_layer_depth(page: Page, app_url: str, api: Client):
    open_app(page, app_url)
    choose(page, "Layer", re.compile(r"^block2b_project_conv"))
    expect(page).to_have_url(re.compile(r"layer=block2b_project_conv"), timeout=WAIT_MS)
    choose(page, "Model", re.compile(r"^EfficientNet-Lite1"))
    wanted = LITE1.layer_names[LITE0.layer_names.index("block2b_project_conv")]
    expect(page).to_have_url(
        re.compile(rf"model=efficientnet_lite1&layer={wanted}&"), timeout=WAIT_MS
    )
    expect(controls(page).get_by_label("Layer", exact=True)).to_have_value(re.compile(wanted))
    wait_for_results(page, api, query_index=0, model="efficientnet_lite1", layer=wanted)
    assert_page_intact(page)


def test_a_model_without_weights_is_labelled_and_leaves_the_page_intact(
    page: Page, app_url: str, api: Client
):
    open_app(page, app_url)
    before = wait_for_results(page, api, query_index=0)
    controls(page).get_by_label("Model", exact=True).click()
    option = page.get_by_role("option", name="ResNet50 - needs a download")
    expect(option).to_have_count(1)
    option.click()
    notice = page.locator("#search-notice")
    expect(notice).to_contain_text("ResNet50", timeout=WAIT_MS)
    expect(notice).to_contain_text("EfficientNet-Lite0, EfficientNet-Lite1, EfficientNet-Lite2")
    expect(controls(page).get_by_label("Model", exact=True)).to_have_value(
        re.compile(r"^EfficientNet-Lite0")
    )
    expect(thumbnails(page, "results-gallery")).to_have_count(50)
    assert wait_for_results(page, api, query_index=0) == before
    expect(page).to_have_url(re.compile(r"model=efficientnet_lite0"))
    assert_page_intact(page)
    shoot(page, "10_model_without_weights")


def test_a_link_to_a_model_without_weights_opens_a_working_page(
    page: Page, app_url: str, api: Client
):
    open_app(page, f"{app_url}?model=resnet50&layer=conv1_conv")
    expect(page.locator("#search-notice")).to_contain_text("ResNet50", timeout=WAIT_MS)
    wait_for_results(page, api, query_index=0)
    expect(page).to_have_url(re.compile(r"model=efficientnet_lite0&layer=top_conv"))
    assert_page_intact(page)


def test_explorer_never_shows_one_model_under_another_name(page: Page, app_url: str):
    open_app(page, app_url)
    page.get_by_role("tab", name="Model Explorer").click()
    controls(page).get_by_label("Model", exact=True).click()
    page.get_by_role("option", name="ResNet50 - needs a download").click()
    expect(page.locator("#explorer-notice")).to_contain_text("ResNet50", timeout=WAIT_MS)
    expect(controls(page).get_by_label("Model", exact=True)).to_have_value(
        re.compile(r"^EfficientNet-Lite0")
    )
    assert_page_intact(page)


# -- 2. a file that is not an image ------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content"),
    [("notes.jpg", b"just some text, renamed\n" * 20), ("noise.png", bytes(range(256)) * 8)],
)
def test_a_corrupt_upload_says_so_and_keeps_the_results(
    page: Page, app_url: str, api: Client, tmp_path: Path, name: str, content: bytes
):
    open_app(page, app_url)
    before = wait_for_results(page, api, query_index=0)
    shown = thumbnails(page, "results-gallery").all_inner_texts()
    bad = tmp_path / name
    bad.write_bytes(content)
    upload = page.locator(".block", has_text="Or search with your own image")
    upload.locator("input[type=file]").set_input_files(bad)
    message = page.locator(".toast-body")
    expect(message).to_have_count(1, timeout=WAIT_MS)
    expect(message).to_contain_text(f"{name}: not an image file this app can read")
    text = page.locator("body").inner_text()
    for word in ("/tmp/", "gradio-tmp", "Unidentified", "preprocess", "index 5"):
        assert word not in text
    expect(thumbnails(page, "results-gallery")).to_have_count(50)
    assert thumbnails(page, "results-gallery").all_inner_texts() == shown
    assert wait_for_results(page, api, query_index=0) == before
    expect(error_badges(page)).to_have_count(0)


# -- 3. similarity bars ------------------------------------------------------------------------
@pytest.mark.usefixtures("warm_uploads")
def test_bars_fall_with_rank_and_the_legend_says_what_they_mean(
    page: Page, app_url: str, api: Client, photo_file: Path
):
    open_app(page, f"{app_url}?layer=stem_conv&metric=euclidean")
    wait_for_results(page, api, query_index=0, layer="stem_conv", metric="euclidean")
    shown = percentages(page)
    assert len(shown) == 50
    assert all(a >= b for a, b in zip(shown, shown[1:], strict=False)), shown
    assert shown[0] - shown[-1] >= 20, shown
    legend = page.locator("#search-legend")
    expect(legend).to_contain_text("same class as the query")
    expect(legend).to_contain_text("another class")
    meaning = legend.locator(".cn-meaning[title]").get_attribute("title") or ""
    assert "100 %" in meaning and "0 %" in meaning and "upload" in meaning
    upload = page.locator(".block", has_text="Or search with your own image")
    upload.locator("input[type=file]").set_input_files(photo_file)
    expect(page.locator("#search-summary")).to_contain_text("Your image", timeout=WAIT_MS)
    expect(legend).to_contain_text("no class")
    expect(legend).not_to_contain_text("same class")


@pytest.mark.usefixtures("warm_uploads")
def test_an_uploads_bars_spread_and_fall(page: Page, app_url: str, api: Client):
    """The scale of the dataset's own pairs read 0 % on every result of this upload."""
    view = {"layer": "stem_conv", "metric": "cosine"}
    open_app(page, f"{app_url}?layer=stem_conv&metric=cosine")
    wait_for_results(page, api, query_index=0, **view)
    upload = page.locator(".block", has_text="Or search with your own image")
    upload.locator("input[type=file]").set_input_files(EXAMPLE)
    out = wait_for_results(page, api, query=handle_file(str(EXAMPLE)), **view)
    shown = percentages(page)
    wanted = [r["similarity"] for r in out["results"]]  # rounded to 2 places, then to 0
    assert len(shown) == 50 and all(abs(a - b) <= 1 for a, b in zip(shown, wanted, strict=True))
    assert all(a >= b for a, b in zip(shown, shown[1:], strict=False)), shown
    assert shown[0] - shown[-1] >= 20, shown


# -- 4. the headline ---------------------------------------------------------------------------
def test_headline_counts_the_matches_that_were_possible(page: Page, app_url: str, api: Client):
    open_app(page, f"{app_url}?query=7")
    everything = api.predict(query_index=7, k=199, api_name="/search")
    same = [r["same_class"] for r in everything["results"]]
    name = everything["query_class"].replace("_", " ")
    wanted = (
        f"{sum(same[:50])} of the {sum(same)} other {name} are in the top 50; "
        f"{sum(same[:10])} of the top 10 are {name}."
    )
    summary = page.locator("#search-summary")
    expect(summary).to_contain_text(wanted, timeout=WAIT_MS)
    legend = page.locator("#search-legend")
    expect(legend).to_contain_text(f"P@10 = {sum(same[:10]) / 10:.2f} (the score the overview")
    expect(legend).to_contain_text("rank-weighted score")


# -- 5. compare after an upload ----------------------------------------------------------------
@pytest.mark.usefixtures("warm_uploads")
def test_compare_after_an_upload_says_why_it_cannot(page: Page, app_url: str, photo_file: Path):
    open_app(page, app_url)
    upload = page.locator(".block", has_text="Or search with your own image")
    upload.locator("input[type=file]").set_input_files(photo_file)
    expect(page.locator("#search-summary")).to_contain_text("Your image", timeout=WAIT_MS)
    page.get_by_text("Compare models on this query").click()
    expect(page.locator("#compare-note")).to_contain_text("has no class", timeout=WAIT_MS)
    assert_page_intact(page)


# -- 6. stale state ----------------------------------------------------------------------------
def test_switching_dataset_leaves_no_stale_selection_frame(page: Page, app_url: str, api: Client):
    """The old dataset's frame goes; the new dataset's query (its image 0) is framed."""
    open_app(page, app_url)
    thumbnails(page, "dataset-gallery").nth(5).click()
    selected = page.locator("#dataset-gallery button.thumbnail-item.selected")
    expect(selected).to_have_count(1)
    expect(page).to_have_url(re.compile(r"query=5"), timeout=WAIT_MS)
    choose(page, "Dataset", "clipart200")
    expect(page).to_have_url(re.compile(r"dataset=clipart200&.*query=0"), timeout=WAIT_MS)
    wait_for_results(page, api, dataset="clipart200", query_index=0)
    expect(thumbnails(page, "dataset-gallery").nth(0)).to_have_class(
        re.compile(r"\bselected\b"), timeout=WAIT_MS
    )
    expect(selected).to_have_count(1)


@pytest.mark.usefixtures("warm_uploads")
def test_an_upload_takes_the_query_out_of_the_url(page: Page, app_url: str, photo_file: Path):
    open_app(page, f"{app_url}?query=3")
    expect(page).to_have_url(re.compile(r"query=3"), timeout=WAIT_MS)
    upload = page.locator(".block", has_text="Or search with your own image")
    upload.locator("input[type=file]").set_input_files(photo_file)
    expect(page.locator("#search-summary")).to_contain_text("Your image", timeout=WAIT_MS)
    expect(page).not_to_have_url(re.compile(r"query="), timeout=WAIT_MS)


MAP_SIGNATURE = """() => {
  const label = [...document.querySelectorAll('label[data-testid=block-label]')]
    .find(l => l.textContent.trim() === 'Dataset map');
  const map = document.querySelector('#dataset-map') || label?.closest('.block');
  const query = map?.querySelector('.cn-query');
  if (query) return query.getAttribute('points');
  return map?.querySelector('img')?.src || null;
}"""
"""Where the map draws the query: the diamond's corners, or the map picture's address."""


def test_the_map_follows_the_query(page: Page, app_url: str, api: Client):
    open_app(page, app_url)
    page.get_by_text("Map of the dataset in this layer's feature space").click()
    first = page.wait_for_function(MAP_SIGNATURE, timeout=WAIT_MS).json_value()
    thumbnails(page, "dataset-gallery").nth(30).click()
    wait_for_results(page, api, query_index=30)
    page.wait_for_function(f"before => ({MAP_SIGNATURE})() !== before", arg=first, timeout=20_000)


CENTRE_JS = """() => {
  const diamond = document.querySelector('#dataset-map .cn-query');
  if (!diamond) return null;
  const corners = diamond.getAttribute('points').split(' ').map(p => p.split(',').map(Number));
  return [0, 1].map(axis => corners.reduce((sum, corner) => sum + corner[axis], 0) / 4);
}"""
"""The middle of the query's diamond on the map (its corners are listed in 'points')."""


def wait_for_diamond_at(page: Page, x: float, y: float) -> None:
    page.wait_for_function(
        f"""([x, y]) => {{ const c = ({CENTRE_JS})();
          return c !== null && Math.abs(c[0] - x) < 0.02 && Math.abs(c[1] - y) < 0.02; }}""",
        arg=[x, y],
        timeout=WAIT_MS,
    )


def point_at(page: Page, index: int) -> tuple[float, float]:
    circle = page.locator(f"#dataset-map circle[data-index='{index}']")
    return float(circle.get_attribute("cx")), float(circle.get_attribute("cy"))


@pytest.mark.usefixtures("warm_uploads")
def test_an_uploaded_query_is_placed_on_the_map_and_follows_the_query(
    page: Page, app_url: str, api: Client, photo_file: Path
):
    open_app(page, app_url)
    page.get_by_text("Map of the dataset in this layer's feature space").click()
    expect(page.locator("#dataset-map circle")).to_have_count(200, timeout=WAIT_MS)
    upload = page.locator(".block", has_text="Or search with your own image")
    keys = page.locator("#dataset-map .cn-map-keys")
    ringed = page.locator("#dataset-map circle[stroke=black]")
    for image in (photo_file, EXAMPLE):
        upload.locator("input[type=file]").set_input_files(image)
        hits = wait_for_results(page, api, query=handle_file(str(image)))["results"]
        expect(keys).to_contain_text("your image, placed at the mean position", timeout=WAIT_MS)
        nearest = [point_at(page, hit["index"]) for hit in hits[:3]]
        wanted = tuple(sum(axis) / 3 for axis in zip(*nearest, strict=True))
        wait_for_diamond_at(page, *wanted)
        diamond = page.locator("#dataset-map svg > *").last  # drawn last: on top of the points
        assert diamond.get_attribute("class") == "cn-query"
        assert diamond.get_attribute("fill") == "white"
        indices = ringed.evaluate_all("els => els.map(e => Number(e.dataset.index))")
        assert sorted(indices) == sorted(hit["index"] for hit in hits)
    thumbnails(page, "dataset-gallery").nth(30).click()
    wait_for_results(page, api, query_index=30)
    expect(keys).not_to_contain_text("your image", timeout=WAIT_MS)
    wait_for_diamond_at(page, *point_at(page, 30))
    assert page.locator("#dataset-map .cn-query").get_attribute("fill") != "white"
    shoot(page, "16_map_after_upload")


# -- 7. layout at a phone's width and at a desktop's -------------------------------------------
def cut_off(page: Page, selector: str) -> list[str]:
    """Texts of the elements matching ``selector`` that do not fit their box."""
    return page.locator(selector).evaluate_all(
        "els => els.filter(e => e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.value || e.textContent)"
    )


def open_at(browser: Browser, width: int, url: str) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 800})
    tab = context.new_page()
    open_app(tab, url)
    return tab


@pytest.mark.parametrize("width", [420, 1400])
def test_layout_reads_at_phone_and_desktop_width(
    browser: Browser, app_url: str, api: Client, width: int
):
    page = open_at(browser, width, app_url)
    try:
        wait_for_results(page, api, query_index=0)
        tiles = thumbnails(page, "results-gallery")
        boxes = [tiles.nth(i).bounding_box() for i in range(12)]
        first_row = [box for box in boxes if abs(box["y"] - boxes[0]["y"]) < 2]
        lefts = [box["x"] for box in first_row]
        assert lefts == sorted(lefts), "ranks must read left to right"
        if width == 420:
            assert len(first_row) <= 3, f"{len(first_row)} columns at 420 px"
            top = page.locator("#results-gallery").bounding_box()["y"]
            assert top < 800, f"results start {top:.0f} px down on a phone"  # the first screen
        inputs = "#cn-controls input, #results-gallery .caption-label"
        expect(page.locator("#results-gallery .caption-label")).to_have_count(50)
        assert cut_off(page, inputs) == []
        choose(page, "Layer", re.compile(r"^block2b_project_conv"))
        wait_for_results(page, api, query_index=0, layer="block2b_project_conv")
        controls(page).get_by_label("Layer", exact=True).click()  # the list, open once settled
        listed = page.get_by_role("option")
        expect(listed.first).to_be_visible()
        assert cut_off(page, "[role=option]") == []
        page.keyboard.press("Escape")
        shoot(page, f"11_layout_{width}px")
    finally:
        page.context.close()


def test_the_query_sits_above_the_results_on_a_phone(browser: Browser, app_url: str, api: Client):
    """At 420 px the query image and the upload box come before the results, within a screen."""
    page = open_at(browser, 420, app_url)
    try:
        wait_for_results(page, api, query_index=0)
        screen = page.viewport_size["height"]
        query = page.locator("#cn-query .block").first.bounding_box()
        upload = page.locator(".block", has_text="Or search with your own image").bounding_box()
        gallery = page.locator("#results-gallery").bounding_box()
        assert query["y"] + query["height"] <= gallery["y"], "the query must come before results"
        assert abs(upload["y"] - query["y"]) < 2, "the upload box sits beside the query"
        assert upload["x"] >= query["x"] + query["width"] - 1
        assert query["y"] + query["height"] < screen, "the query image is in the first screen"
        assert gallery["y"] < screen, f"results start {gallery['y']:.0f} px down"
        assert cut_off(page, "#cn-query label, #cn-query .prompt") == []
        label = page.get_by_text("Or search with your own image").bounding_box()
        prompt = page.locator("#cn-query .prompt").bounding_box()
        assert label["y"] + label["height"] <= prompt["y"], "the label covers the prompt"
        shoot(page, "15_phone_query_above_results")
    finally:
        page.context.close()


# -- panels to play with -----------------------------------------------------------------------
def test_map_hover_shows_the_image_and_a_click_makes_it_the_query(
    page: Page, app_url: str, api: Client
):
    open_app(page, app_url)
    page.get_by_text("Map of the dataset in this layer's feature space").click()
    points = page.locator("#dataset-map circle")
    expect(points).to_have_count(200, timeout=WAIT_MS)
    everything = api.predict(query_index=0, k=199, api_name="/search")["results"]
    target = next(r for r in everything if r["rank"] > 50)  # not ringed, so not hidden
    point = page.locator(f"#dataset-map circle[data-index='{target['index']}']")
    point.hover()
    tip = page.locator("#dataset-map .cn-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text(target["class"])
    expect(tip.locator("img")).to_have_js_property("complete", True)
    assert tip.locator("img").evaluate("e => e.naturalWidth") > 0
    point.click(force=True)
    expect(page).to_have_url(re.compile(rf"query={target['index']}(&|$)"), timeout=WAIT_MS)
    wait_for_results(page, api, query_index=target["index"])
    query = page.locator("#dataset-map .cn-query")
    expect(query).to_have_count(1)
    ringed = page.locator("#dataset-map circle[stroke=black]")
    expect(ringed).to_have_count(50, timeout=WAIT_MS)
    shoot(page, "12_map_clicked")


def test_clicking_a_compare_bar_switches_model_and_layer(page: Page, app_url: str, api: Client):
    open_app(page, f"{app_url}?query=12")
    page.get_by_text("Compare models on this query").click()
    bars = page.locator("#compare-charts .cn-bar")
    expect(bars).to_have_count(24, timeout=WAIT_MS)  # 3 offline models x 8 layers
    expect(page.locator("#compare-charts .cn-bar.best")).to_have_count(3)
    bars.and_(page.locator("[data-model=efficientnet_lite2][data-layer=stem_conv]")).click()
    expect(page).to_have_url(
        re.compile(r"(?=.*model=efficientnet_lite2&layer=stem_conv)(?=.*query=12)"), timeout=WAIT_MS
    )
    wait_for_results(page, api, query_index=12, model="efficientnet_lite2", layer="stem_conv")
    current = page.locator("#compare-charts .cn-bar.current")
    expect(current).to_have_attribute("data-model", "efficientnet_lite2", timeout=WAIT_MS)
    shoot(page, "13_compare_bar_clicked")


def test_k_and_the_export_follow_the_results(page: Page, app_url: str, api: Client):
    open_app(page, app_url)
    slider = page.locator("input[type=range]")
    slider.fill("20")
    slider.dispatch_event("change")
    slider.dispatch_event("pointerup")
    expect(thumbnails(page, "results-gallery")).to_have_count(20, timeout=WAIT_MS)
    out = api.predict(query_index=0, k=20, api_name="/search")
    with page.expect_download() as download:
        page.get_by_role("button", name="Results as JSON").click()
    rows = json.loads(Path(download.value.path()).read_text())
    assert [(r["rank"], r["image"], r["similarity"]) for r in rows] == [
        (r["rank"], r["image"], r["similarity"]) for r in out["results"]
    ]
    with page.expect_download() as download:
        page.get_by_role("button", name="Results as CSV").click()
    table = list(csv.DictReader(Path(download.value.path()).read_text().splitlines()))
    assert [row["image"] for row in table] == [r["image"] for r in out["results"]]
    assert set(table[0]) >= {"rank", "image", "class", "similarity", "distance"}


def test_side_by_side_shows_two_layers_for_the_same_query(page: Page, app_url: str, api: Client):
    open_app(page, app_url)
    page.get_by_text("Side by side: two layers or models on the same query").click()
    for side, layer in (("left", "stem_conv"), ("right", "top_conv")):
        out = api.predict(query_index=0, layer=layer, k=1, api_name="/search")["results"][0]
        first = thumbnails(page, f"side-{side}").first
        expect(first).to_contain_text(f"#1 {out['similarity']:.0f}%", timeout=WAIT_MS)
        expect(thumbnails(page, f"side-{side}")).to_have_count(20)
    thumbnails(page, "dataset-gallery").nth(30).click()
    out = api.predict(query_index=30, layer="stem_conv", k=1, api_name="/search")["results"][0]
    expect(page.locator("#side-left-summary")).to_contain_text("other", timeout=WAIT_MS)
    expect(thumbnails(page, "side-left").first).to_contain_text(
        re.compile(rf"#1 {out['similarity']:.0f}%.* {out['class']}"), timeout=WAIT_MS
    )
    shoot(page, "14_side_by_side")


def test_clicking_a_heatmap_cell_switches_model_and_layer(page: Page, app_url: str, api: Client):
    open_app(page, app_url)
    page.get_by_text("Which layer of which model searches best?").click()
    cells = page.locator("#quality-heatmap button.cn-cell")
    expect(cells).to_have_count(24, timeout=WAIT_MS)
    model, layer = "efficientnet_lite1", "block4c_expand_conv"
    cells.and_(page.locator(f"[data-model={model}][data-layer={layer}]")).click()
    expect(page).to_have_url(re.compile(f"model={model}&layer={layer}"), timeout=WAIT_MS)
    wait_for_results(page, api, query_index=0, model=model, layer=layer)
    assert_page_intact(page)


# -- panels drawn as they open ----------------------------------------------------------------


def test_the_map_opens_drawn_zooms_and_lists_the_query_neighbours(
    page: Page, app_url: str, api: Client
):
    """No button: opening the panel draws the map; the query is joined to its 10 nearest
    images, listed beside it; a listed image becomes the query; a close-up survives the
    redraw that follows."""
    open_app(page, f"{app_url}?query=12")
    out = wait_for_results(page, api, query_index=12)
    page.get_by_text("Map of the dataset in this layer's feature space").click()
    expect(page.locator("#dataset-map circle")).to_have_count(200, timeout=WAIT_MS)
    expect(page.locator("#dataset-map line.cn-nn")).to_have_count(10)
    listed = page.locator("#dataset-map .cn-nn-item")
    assert [int(i) for i in listed.evaluate_all("l => l.map(e => e.dataset.index)")] == [
        hit["index"] for hit in out["results"][:10]
    ]
    svg = page.locator("#dataset-map svg")
    assert svg.get_attribute("viewBox") == "0 0 100 100"
    page.get_by_role("button", name="Zoom in").click()
    zoomed = svg.get_attribute("viewBox")
    assert zoomed != "0 0 100 100" and float(zoomed.split()[2]) < 100
    picked = out["results"][3]["index"]
    before = page.evaluate(MAP_SIGNATURE)
    listed.nth(3).click()
    wait_for_results(page, api, query_index=picked)
    expect(page).to_have_url(re.compile(rf"query={picked}\b"), timeout=WAIT_MS)
    page.wait_for_function(f"b => ({MAP_SIGNATURE})() !== b", arg=before, timeout=WAIT_MS)
    expect(page.locator("#dataset-map svg")).to_have_attribute("viewBox", zoomed)
    page.get_by_role("button", name="Show the whole map").click()
    expect(page.locator("#dataset-map svg")).to_have_attribute("viewBox", "0 0 100 100")
    shoot(page, "map_neighbours")


def test_a_layer_similarity_cell_opens_its_two_layers_side_by_side(
    page: Page, app_url: str, api: Client
):
    open_app(page, app_url)
    page.get_by_text("Which layers see alike?").click()
    cells = page.locator("#layer-similarity button.cn-cell")
    expect(cells).to_have_count(24 * 24, timeout=WAIT_MS)
    left, right = "efficientnet_lite0:stem_conv", "efficientnet_lite2:top_conv"
    cells.and_(page.locator(f"[data-left='{left}'][data-right='{right}']")).click()
    for side, model, layer in (
        ("left", "efficientnet_lite0", "stem_conv"),
        ("right", "efficientnet_lite2", "top_conv"),
    ):
        out = api.predict(query_index=0, model=model, layer=layer, k=1, api_name="/search")
        first = thumbnails(page, f"side-{side}").first
        expect(first).to_contain_text(f"#1 {out['results'][0]['similarity']:.0f}%", timeout=WAIT_MS)
    assert_page_intact(page)
    shoot(page, "similarity_to_side_by_side")


def test_the_dataset_gallery_frames_the_query_whatever_chose_it(
    page: Page, app_url: str, api: Client, photo_file: Path
):
    """A link, a result click and an upload: the dataset's images frame the query (the 200
    images are shown in order, so image i is thumbnail i), and none for an upload."""
    selected = thumbnails(page, "dataset-gallery").and_(page.locator(".selected"))
    open_app(page, f"{app_url}?query=12")
    expect(selected).to_have_count(1, timeout=WAIT_MS)
    expect(thumbnails(page, "dataset-gallery").nth(12)).to_have_class(re.compile(r"\bselected\b"))
    out = wait_for_results(page, api, query_index=12)
    thumbnails(page, "results-gallery").nth(2).click()
    picked = out["results"][2]["index"]
    wait_for_results(page, api, query_index=picked)
    expect(thumbnails(page, "dataset-gallery").nth(picked)).to_have_class(
        re.compile(r"\bselected\b"), timeout=WAIT_MS
    )
    expect(selected).to_have_count(1)
    upload = page.locator(".block", has_text="Or search with your own image")
    upload.locator("input[type=file]").set_input_files(photo_file)
    expect(page.locator("#search-summary")).to_contain_text("Your image", timeout=WAIT_MS)
    expect(selected).to_have_count(0, timeout=WAIT_MS)


CAPTION_LINES_JS = """() => [...document.querySelectorAll('#results-gallery .caption-label')].map(
  (label) => {
    const style = getComputedStyle(label);
    const padding = parseFloat(style.paddingTop) + parseFloat(style.paddingBottom);
    return Math.round((label.getBoundingClientRect().height - padding)
      / parseFloat(style.lineHeight));
  })"""


@pytest.mark.parametrize(("width", "most"), [(1400, 1), (420, 2)])
def test_result_captions_fit_their_tiles(browser, app_url: str, api: Client, width: int, most: int):
    """The longest class name (musical_instruments) keeps a desktop caption on one line and
    a phone's on two, so the caption never hides most of its picture."""
    everything = api.predict(dataset="clipart200", query_index=0, k=199, api_name="/search")
    instrument = next(
        hit["index"] for hit in everything["results"] if hit["class"] == "musical_instruments"
    )
    page = browser.new_page(viewport={"width": width, "height": 900})
    open_app(page, f"{app_url}?dataset=clipart200&query={instrument}")
    expect(thumbnails(page, "results-gallery").first).to_contain_text("musical_instruments")
    assert max(page.evaluate(CAPTION_LINES_JS)) <= most
    page.close()


def test_the_model_box_says_what_sets_the_chosen_model_apart(page: Page, app_url: str):
    open_app(page, app_url)
    expect(controls(page)).to_contain_text("1.0x width, 1.0x depth, 224 px input")
    choose(page, "Model", re.compile(r"^EfficientNet-Lite2"))
    expect(controls(page)).to_contain_text("1.1x width, 1.2x depth, 260 px input", timeout=WAIT_MS)
    expect(controls(page)).not_to_contain_text("224 px input")
