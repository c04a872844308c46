"""The cache folder: configurable, and a read-only location never stops the app."""

from __future__ import annotations

from pathlib import Path

import pytest

from convenet.paths import cache_dir

pytestmark = pytest.mark.quick


def test_cache_dir_honours_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONVENET_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine" and (tmp_path / "mine").is_dir()


def test_uncreatable_cache_falls_back_to_a_temp_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CONVENET_CACHE", str(blocker / "cache"))  # mkdir must fail
    root = cache_dir()
    assert root.is_dir() and root.name.startswith("convenet-cache-")
    probe = root / "probe"
    probe.write_text("ok")
    assert probe.read_text() == "ok"
