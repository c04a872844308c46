"""Browser: "Use your own images" from the upload to the map, at phone and desktop width."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app_server import app_process
from tests.data.test_own_images import make_zip, stamps
from tests.test_browser import WAIT_MS, assert_images_load, open_app, shoot, thumbnails

pytestmark = [pytest.mark.slow, pytest.mark.browser]

from playwright.sync_api import Browser, expect  # noqa: E402


@pytest.fixture(scope="module")
def own_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("own")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory, own_dir: Path) -> Iterator[str]:
    env = {"CONVENET_OWN_DIR": str(own_dir)}
    with app_process(tmp_path_factory.mktemp("own-browser"), extra_env=env) as app:
        yield app.url


@pytest.fixture(scope="module")
def trip_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zipped folder "trip" of three class folders, and a note that is not an image."""
    entries = {f"trip/{c}/{i}.jpg": d for i, (c, d) in enumerate(stamps(3, 20))}
    entries["trip/notes.txt"] = b"not a picture"
    return make_zip(tmp_path_factory.mktemp("zip") / "trip.zip", entries)


@pytest.mark.parametrize("width", [1400, 420])
def test_a_zip_becomes_a_dataset_searched_mapped_and_gone_with_the_page(
    browser: Browser, app_url: str, trip_zip: Path, own_dir: Path, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        open_app(page, app_url)
        page.get_by_text("Use your own images").click()
        page.locator("#own-files input[type=file]").set_input_files(str(trip_zip))
        # the uploaded file's row: name and extension are separate cells' text ("trip .zip")
        expect(page.locator("#own-files")).to_contain_text(
            re.compile(r"trip\s*\.zip"), timeout=WAIT_MS
        )
        page.locator("#own-make").click()
        status = page.locator("#own-status")
        # a fresh cache exports the model to ONNX first (a minute or more on a busy machine)
        expect(status).to_contain_text("60 images in 3 classes", timeout=4 * WAIT_MS)
        expect(status).to_contain_text("Skipped 1: trip/notes.txt (not an image)")
        expect(page.locator("#search-summary")).to_contain_text(
            "of the 19 other birds are in the top 50", timeout=WAIT_MS
        )
        expect(thumbnails(page, "results-gallery")).to_have_count(50)
        assert_images_load(page, "results-gallery")
        expect(thumbnails(page, "dataset-gallery")).to_have_count(60, timeout=WAIT_MS)
        assert_images_load(page, "dataset-gallery")
        shoot(page, f"13_own_images_{width}px")
        page.get_by_text("Map of the dataset in this layer's feature space").click()
        points = page.locator("#dataset-map circle")
        expect(points).to_have_count(60, timeout=WAIT_MS)
        points.nth(30).hover(force=True)
        tip = page.locator("#dataset-map .cn-tip img")
        expect(tip).to_have_js_property("complete", True, timeout=WAIT_MS)
        assert tip.evaluate("e => e.naturalWidth") > 0  # served, though its folder is not
        assert len(list(own_dir.glob("app-*/*"))) == 1
    finally:
        context.close()
    for _ in range(80):  # closing the page ends the session: its files go
        if not list(own_dir.glob("app-*/*")):
            break
        time.sleep(0.25)
    assert not list(own_dir.glob("app-*/*"))
