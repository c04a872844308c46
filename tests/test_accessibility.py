"""Accessibility: an axe-core scan of both tabs at desktop and phone width, alt text on every
result, meaning never carried by colour alone, and every control reachable with the keyboard."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

from tests.test_browser import WAIT_MS, shoot

pytestmark = [pytest.mark.slow, pytest.mark.browser]

WIDTHS = (1400, 420)


def open_page(browser: Browser, url: str, width: int) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.goto(url)
    expect(page.locator("#results-gallery img")).to_have_count(50, timeout=WAIT_MS)
    return page


def settled(page: Page) -> None:
    """Wait until no view is loading: Gradio dims pending outputs, which reads as low contrast."""
    page.wait_for_function(
        "() => !document.querySelector('.pending, .generating, .eta-bar, .progress-text')",
        timeout=WAIT_MS,
    )
    page.wait_for_timeout(500)


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings, one line each (minor ones are not failures)."""
    settled(page)
    found = Axe().run(page).response["violations"]
    return [
        f"{v['impact']} {v['id']}: {node['target']} {node['html'][:120]}"
        for v in found
        if v["impact"] in ("serious", "critical")
        for node in v["nodes"]
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_axe_finds_nothing_serious_on_either_tab(browser: Browser, app_url: str, width: int):
    page = open_page(browser, app_url, width)
    assert (found := serious_violations(page)) == [], "\n".join(found)
    page.get_by_role("tab", name="Model Explorer").click()
    expect(page.locator("#explorer-dataset-gallery img").first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text(re.compile(r"\d+ filters \(showing"))).to_be_visible(timeout=WAIT_MS)
    assert (found := serious_violations(page)) == [], "\n".join(found)
    shoot(page, f"a11y_explorer_{width}")
    page.close()


def test_results_have_alt_text_and_matches_a_mark_besides_colour(browser: Browser, app_url: str):
    page = open_page(browser, app_url, 1400)
    alts = page.locator("#results-gallery img").evaluate_all("els => els.map(e => e.alt)")
    assert len(alts) == 50
    for rank, alt in enumerate(alts, start=1):
        assert alt.startswith(f"#{rank} ") and "%" in alt, alt
    assert any("✓" in alt for alt in alts) and not all("✓" in alt for alt in alts)
    page.close()


def test_every_control_is_reachable_with_the_keyboard(browser: Browser, app_url: str):
    page = open_page(browser, app_url, 1400)
    reached = set()
    for _ in range(60):
        page.keyboard.press("Tab")
        reached.add(
            page.evaluate(
                """() => {
                  const e = document.activeElement;
                  const label = e.getAttribute('aria-label') || (e.labels?.[0]?.textContent);
                  return (label || e.textContent || '').trim();
                }"""
            )
        )
    wanted = {"Copy a link to this view", "Semantic Search", "Model Explorer", "Dataset", "Model"}
    wanted |= {"Layer", "Distance metric", "Thumbnail 1 of 50"}
    assert wanted <= reached, wanted - reached
    page.close()
