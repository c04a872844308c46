"""Sharing: the page's link button copies a link that reopens the same view, upload included."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.app_server import REPO
from tests.test_browser import WAIT_MS, copied_link, shoot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_copied_link_reopens_the_view_with_its_upload(browser: Browser, app_url: str) -> None:
    origin = app_url.rstrip("/")
    sharer = browser.new_context(viewport={"width": 1400, "height": 1000})
    sharer.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    page = sharer.new_page()
    page.goto(f"{app_url}?layer=block4c_expand_conv&query=7")
    summary = page.locator("#search-summary")
    expect(summary).to_contain_text("birds", timeout=WAIT_MS)
    upload = page.locator(".block", has_text="Or search with your own image")
    upload.locator("input[type=file]").set_input_files(REPO / "examples" / "flower.jpg")
    expect(summary).to_contain_text("Your image", timeout=WAIT_MS)
    shared_results = page.locator("#results-gallery").inner_text()
    page.get_by_role("button", name="Copy a link to this view").click()
    expect(page.get_by_role("button", name="Link copied")).to_be_visible(timeout=WAIT_MS)
    link = copied_link(page)
    assert re.search(r"[?&]deep_link=[\w-]+", link) and "layer=block4c_expand_conv" in link
    sharer.close()

    visitor = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = visitor.new_page()
    opened.goto(link)
    expect(opened.locator("#search-summary")).to_contain_text("Your image", timeout=WAIT_MS)
    expect(opened.locator("#results-gallery")).to_have_text(shared_results, timeout=WAIT_MS)
    preview = opened.locator(".block", has_text="Or search with your own image").locator("img")
    expect(preview.first).to_have_js_property("complete", True, timeout=WAIT_MS)
    assert preview.first.evaluate("img => img.naturalWidth") > 0
    shoot(opened, "share_link_reopened")
    visitor.close()


def test_links_survive_the_temporary_file_sweep(tmp_path: Path) -> None:
    """Saved views live in Gradio's deep_links folder, which the sweeper leaves alone."""
    import os
    import time

    from ui.server import sweep_temp_files

    saved = tmp_path / "deep_links" / "abc" / "state.json"
    saved.parent.mkdir(parents=True)
    saved.write_text("[]")
    old = time.time() - 7200
    os.utime(saved, (old, old))
    sweep_temp_files(tmp_path, 60, set())
    assert saved.exists()
