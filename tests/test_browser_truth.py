"""Browser: what the page shows, its URL and its results never disagree (issue 26).

Each test repeats a sequence that once left the boxes, the URL and the results apart, and
checks afterwards that the Layer box, the URL, the results' footer and the ``/search`` API all
name the same view.
"""

from __future__ import annotations

import re

import pytest
from gradio_client import Client

from tests.test_browser import WAIT_MS, open_app, shoot, thumbnails
from tests.test_browser_search import assert_page_intact, controls, wait_for_results

pytestmark = [pytest.mark.slow, pytest.mark.browser]

from playwright.sync_api import Page, expect  # noqa: E402

LINK = "?dataset=clipart200&model=efficientnet_lite0&layer=top_conv&metric=cosine&query=5"


def footer(page: Page) -> str:
    """The results' footer: model title · layer · metric · recipe."""
    return page.locator("#search-legend small").inner_text()


def open_overview(page: Page) -> None:
    page.get_by_text("Which layer of which model searches best?").click()
    page.get_by_role("button", name="Compute the overview for this dataset and metric").click()
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
