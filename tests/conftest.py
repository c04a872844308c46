"""Shared fixtures: a private cache per test session, the warm files every app starts with,
small real images, and what ``-m quick`` selects."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app_server import WARM, app_process

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CONVENET_HUB_OFFLINE", "1")  # no test touches the internet


@pytest.hookimpl(tryfirst=True)  # before -m deselects anything
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``quick`` on a module marks its tests that are neither slow nor browser ones, so a module
    can say "quick" once and keep its few slow tests out of ``pytest -m quick``."""
    modules = {item.getparent(pytest.Module) for item in items}
    quick_modules = {m for m in modules if m is not None and m.get_closest_marker("quick")}
    for item in items:
        if item.getparent(pytest.Module) in quick_modules and not (
            item.get_closest_marker("slow") or item.get_closest_marker("browser")
        ):
            item.add_marker(pytest.mark.quick)
    for module in quick_modules:
        module.own_markers[:] = [mark for mark in module.own_markers if mark.name != "quick"]


@pytest.fixture(scope="session", autouse=True)
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """Where the session keeps what its apps build on first use (``tests.app_server.WarmCache``);
    CONVENET_TEST_COLD=1 starts every app on an empty cache, as before, for comparisons. Fails
    the session's end if an app wrote into a shared file through its link."""
    if os.environ.get("CONVENET_TEST_COLD") == "1":
        yield None
        return
    WARM.root = tmp_path_factory.mktemp("warm-cache")
    yield WARM.root
    assert not WARM.changed(), f"apps changed shared warm files: {WARM.changed()}"


@pytest.fixture(scope="session")
def photo() -> object:
    """A real photo (scikit-learn's sample of a Chinese temple) as an RGB array."""
    from sklearn.datasets import load_sample_image

    return load_sample_image("china.jpg")


@pytest.fixture()
def photo_file(tmp_path: Path, photo) -> Path:
    from PIL import Image

    path = tmp_path / "china.jpg"
    Image.fromarray(photo).save(path, quality=90)
    return path


# -- browser tests: one app and one headless Chromium per test module ----------------------------
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app for this module (modules with their own app_url fixture override this)."""
    with app_process(tmp_path_factory.mktemp("browser-cache")) as app:
        yield app.url


@pytest.fixture(scope="module")
def api(app_url: str) -> Any:
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab; uncaught script errors fail the test that caused them."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"script errors in the page: {errors}"
