"""Result tiles: drawn once per image, similarity percent and match, then served from files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convenet.explain import plots
from convenet.explain.plots import TileCache, result_tile
from convenet.paths import PRECOMPUTED_DIR

pytestmark = pytest.mark.quick

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


def test_class_colours_stay_apart_for_colour_blind_viewers() -> None:
    """Every pair of the ten class colours differs by a CIELAB distance of 12 or more under
    simulated protanopia, deuteranopia and tritanopia (Machado et al. 2009, severity 1)."""
    from skimage.color import rgb2lab

    from convenet.explain.plots import PALETTE

    machado = {
        "protan": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                   [-0.003882, -0.048116, 1.051998]],
        "deutan": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                   [-0.011820, 0.042940, 0.968881]],
        "tritan": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                   [0.004733, 0.691367, 0.303900]],
    }  # fmt: skip
    srgb = np.asarray(PALETTE, float) / 255
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    assert len(PALETTE) >= 10
    for vision, matrix in machado.items():
        seen = np.clip(linear @ np.asarray(matrix).T, 0, 1)
        shown = np.where(seen <= 0.0031308, 12.92 * seen, 1.055 * seen ** (1 / 2.4) - 0.055)
        lab = rgb2lab(shown[None])[0]
        gaps = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
        gaps[np.eye(len(lab), dtype=bool)] = np.inf
        assert gaps.min() >= 12, f"{vision}: two classes look alike (distance {gaps.min():.1f})"
