"""Result tiles: drawn once per image, similarity percent and match, then served from files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convenet import plots
from convenet.paths import PRECOMPUTED_DIR
from convenet.plots import TileCache, result_tile

IMAGES = sorted((PRECOMPUTED_DIR / "stamps200" / "images").rglob("*.jpg"))[:3]


@pytest.fixture()
def drawn(monkeypatch) -> list[tuple]:
    """Every call of result_tile, so a test can tell a cached tile from a drawn one."""
    calls: list[tuple] = []

    def counting(path: str, similarity: float, match: bool | None) -> Image.Image:
        calls.append((path, similarity, match))
        return result_tile(path, similarity, match)

    monkeypatch.setattr(plots, "result_tile", counting)
    return calls


def test_a_tile_file_is_the_drawn_tile(tmp_path: Path) -> None:
    cache = TileCache(tmp_path)
    file = cache.tile(str(IMAGES[0]), 63.4, True)
    with Image.open(file) as image:
        assert image.format == "JPEG"
        got = np.asarray(image.convert("RGB"), dtype=np.int16)
    want = np.asarray(result_tile(str(IMAGES[0]), 63, True), dtype=np.int16)
    assert got.shape == want.shape
    assert np.abs(got - want).mean() < 3  # JPEG quality 90


def test_same_values_reuse_the_file_others_draw_their_own(tmp_path: Path, drawn) -> None:
    cache = TileCache(tmp_path)
    first = cache.tile(str(IMAGES[0]), 63.4, True)
    assert cache.tile(str(IMAGES[0]), 62.6, True) == first  # both show 63 %
    assert len(drawn) == 1
    others = {
        cache.tile(str(IMAGES[0]), 64.0, True),
        cache.tile(str(IMAGES[0]), 63.0, False),
        cache.tile(str(IMAGES[0]), 63.0, None),
        cache.tile(str(IMAGES[1]), 63.0, True),
    }
    assert len(others) == 4 and first not in others and len(drawn) == 5


def test_a_removed_file_is_drawn_again(tmp_path: Path, drawn) -> None:
    cache = TileCache(tmp_path)
    file = Path(cache.tile(str(IMAGES[0]), 50, False))
    file.unlink()  # as the temporary-file sweeper does
    assert Path(cache.tile(str(IMAGES[0]), 50, False)) == file and file.is_file()
    assert len(drawn) == 2


def test_only_the_most_recently_used_files_are_kept(tmp_path: Path) -> None:
    cache = TileCache(tmp_path, max_files=2)
    oldest = Path(cache.tile(str(IMAGES[0]), 10, True))
    kept = Path(cache.tile(str(IMAGES[1]), 10, True))
    cache.tile(str(IMAGES[0]), 10, True)  # used again: now the newest
    newest = Path(cache.tile(str(IMAGES[2]), 10, True))
    assert len(cache) == 2
    assert oldest.is_file() and newest.is_file() and not kept.exists()
    assert sorted(tmp_path.iterdir()) == sorted([oldest, newest])  # no partial files left
