"""Browser: the Lessons list opens each step's whole view; a link opens a named panel, drawn."""

from __future__ import annotations

import re

import pytest
from gradio_client import Client

from convenet.lessons import LESSONS
from tests.test_browser import WAIT_MS, open_app, shoot, thumbnails

pytestmark = [pytest.mark.slow, pytest.mark.browser]

from playwright.sync_api import Browser, expect  # noqa: E402


@pytest.mark.parametrize("width", [1400, 420])
def test_a_lesson_link_opens_its_view_with_its_panel(browser: Browser, app_url: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    open_app(page, app_url)
    page.get_by_text("Lessons:").click()
    steps = page.locator("#cn-lessons li")
    expect(steps).to_have_count(len(LESSONS))
    expect(steps.first).to_contain_text(LESSONS[0].sentence)
    steps.first.get_by_role("link").click()  # stamps200, Lite0, top_conv, query 12, side by side
    expect(page).to_have_url(re.compile(r"lesson=1"), timeout=WAIT_MS)
    expect(thumbnails(page, "side-left")).to_have_count(20, timeout=WAIT_MS)
    expect(thumbnails(page, "side-right")).to_have_count(20)
    now = page.locator("#cn-lessons .cn-lesson-now")
    expect(now).to_contain_text(f"Step 1 of {len(LESSONS)}: {LESSONS[0].title}")
    expect(now.get_by_role("link")).to_have_text(f"Next: {LESSONS[1].title} →")
    expect(page).to_have_url(re.compile(r"query=12\b"))
    shoot(page, f"lesson_1_{width}px")
    page.close()


def test_a_metric_lesson_sets_the_metric_box(browser: Browser, app_url: str):
    number = next(i for i, lesson in enumerate(LESSONS, 1) if "metric" in lesson.view)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    open_app(page, app_url + LESSONS[number - 1].link(number))
    metric = page.get_by_label("Distance metric", exact=True)
    expect(metric).to_have_value(re.compile("Euclidean"), timeout=WAIT_MS)
    expect(page.locator("#search-legend small")).to_contain_text("EfficientNet-Lite2")
    page.close()


def test_a_link_opens_a_panel_drawn_and_names_one_it_does_not_have(browser: Browser, app_url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    open_app(page, f"{app_url}?panel=map")
    expect(page.locator("#dataset-map circle")).to_have_count(200, timeout=WAIT_MS)
    page.goto(f"{app_url}?panel=secret&lesson=99")
    expect(page.locator("#search-notice")).to_contain_text(
        "This link asked for lesson 99 and panel secret, which this page does not have.",
        timeout=WAIT_MS,
    )
    page.close()


def test_the_lessons_answer_through_the_api(api: Client):
    records = api.predict(api_name="/lessons")
    assert [r["title"] for r in records] == [lesson.title for lesson in LESSONS]
    assert all(r["claim"]["measured"] >= r["claim"]["at_least"] for r in records if r["claim"])


def test_a_link_that_opens_the_why_panel_explains_once_the_search_is_done(
    browser: Browser, app_url: str
):
    """The why panel opened by a link before any results: no error; it explains result 1."""
    number = next(i for i, lesson in enumerate(LESSONS, 1) if lesson.view.get("panel") == "why")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    open_app(page, app_url + LESSONS[number - 1].link(number))
    expect(page.locator("#why-query img")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(".toast-body.error")).to_have_count(0)
    page.close()
