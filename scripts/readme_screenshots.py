"""Take the README's screenshots of each tab from a running app (small JPEGs under docs/).

    python app.py &   # or any URL where the app runs
    python scripts/readme_screenshots.py [--url http://127.0.0.1:7860/]

Headless Chromium (Debian's /usr/bin/chromium through Playwright) at 1400 x 1100 px, the top of
each tab, scaled to 900 px wide so the README stays light.
"""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

DOCS = Path(__file__).resolve().parents[1] / "docs"
WIDTH, HEIGHT, SHOWN = 1400, 1100, 900
WAIT_MS = 120_000


def save(page: Page, name: str) -> None:
    page.mouse.move(0, 0)
    page.wait_for_timeout(1500)  # let the thumbnails finish loading
    shot = Image.open(io.BytesIO(page.screenshot()))
    small = shot.convert("RGB").resize((SHOWN, round(shot.height * SHOWN / shot.width)))
    small.save(DOCS / f"{name}.jpg", quality=80, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.goto(args.url)
        results = page.locator("#results-gallery button.thumbnail-item")
        expect(results).to_have_count(50, timeout=WAIT_MS)
        save(page, "tab_search")
        page.get_by_role("tab", name="Model Explorer").click()
        # Folded, the models' table leaves room for the layer's filters and the image to explore.
        page.get_by_text("The models, from simplest to most complex").click()
        expect(page.locator("#explorer-dataset-gallery img").first).to_be_visible(timeout=WAIT_MS)
        tab = page.get_by_role("tabpanel").filter(visible=True)
        expect(tab.get_by_label("Layer", exact=True)).to_have_value(
            re.compile(r"\S"), timeout=WAIT_MS
        )
        expect(page.locator(".eta-bar, .progress-text").filter(visible=True)).to_have_count(
            0, timeout=WAIT_MS
        )
        save(page, "tab_explorer")
        browser.close()


if __name__ == "__main__":
    main()
