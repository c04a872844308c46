"""Where each channel fires most: the strongest images per channel, their spots and patches,
the shipped peaks file (read only while it matches the features), and one pass over a real
dataset checked against the model's own maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convenet.data.images import load_image
from convenet.explain.convolution import Field
from convenet.explain.peaks import (
    MIN_PATCH,
    PEAKS_FILE,
    LayerPeaks,
    layer_peaks,
    patch,
    read_peaks,
    save_peaks,
    strongest,
)
from convenet.features.extract import extract_arrays
from convenet.paths import PRECOMPUTED_DIR
from convenet.playground import Playground

pytestmark = pytest.mark.quick


def test_each_channel_keeps_its_strongest_images_and_their_cells() -> None:
    values = np.array([[1.0, 9.0], [5.0, 2.0], [3.0, 9.0], [5.0, 0.0]], np.float32)
    cells = np.array([[0, 5], [7, 1], [2, 3], [4, 8]])  # flat cells of a 3 x 3 map
    images = np.broadcast_to(np.arange(4)[:, None], values.shape)
    peaks = layer_peaks(strongest(values, images, cells, 3), (3, 3))
    assert peaks.images.tolist() == [[1, 3, 2], [0, 2, 1]]  # a tie: the earlier image first
    assert peaks.values.tolist() == [[5, 5, 3], [9, 9, 2]]
    assert peaks.cells[0].tolist() == [[2, 1], [1, 1], [0, 2]]  # 7 -> (2, 1), 4 -> (1, 1)
    assert peaks.cells[1].tolist() == [[1, 2], [1, 0], [0, 1]]
    assert peaks.sane()


def test_kept_batch_by_batch_is_the_same_as_all_at_once() -> None:
    """The pass keeps only k rows between batches (its memory is one batch's): merging the
    kept rows with each new batch gives what ranking every image at once gives, ties too."""
    rng = np.random.default_rng(1)
    values = rng.integers(0, 6, (50, 7)).astype(np.float32)  # many ties
    cells = rng.integers(0, 49, (50, 7))
    images = np.broadcast_to(np.arange(50)[:, None], values.shape)
    whole = strongest(values, images, cells, 9)
    kept = strongest(values[:8], images[:8], cells[:8], 9)
    for start in range(8, 50, 8):
        rows = (values[start : start + 8], images[start : start + 8], cells[start : start + 8])
        kept = strongest(*(np.concatenate(p) for p in zip(kept, rows, strict=True)), 9)
    for a, b in zip(whole, kept, strict=True):
        assert np.array_equal(a, b)


def test_a_small_field_shows_its_surroundings_with_the_field_framed() -> None:
    image = np.full((224, 224, 3), 200, np.uint8)
    field = Field(size=3, jump=2, start=0.5)  # stem-like: 3 px, every 2 px
    piece = patch(image, field, (50, 60))
    assert piece.shape == (MIN_PATCH, MIN_PATCH, 3)
    assert (piece == [255, 214, 0]).all(axis=-1).any()  # the frame is drawn
    assert (piece[0, 0] < 200).all()  # outside the field: dimmed


def test_a_large_field_is_the_patch_itself_clipped_at_the_border() -> None:
    image = np.arange(224 * 224 * 3, dtype=np.uint32).reshape(224, 224, 3).astype(np.uint8)
    field = Field(size=99, jump=16, start=7.5)
    piece = patch(image, field, (0, 13))  # the top right corner
    assert piece.shape == (99, 99, 3)
    assert np.array_equal(piece, image[:99, -99:])  # untouched pixels, shifted inside
    whole = patch(image, Field(size=500, jump=32, start=15.5), (3, 3))
    assert whole.shape == (224, 224, 3)


def _peaks(n: int = 4) -> LayerPeaks:
    rng = np.random.default_rng(0)
    values = rng.random((n, 6)).astype(np.float32)
    images = np.broadcast_to(np.arange(n)[:, None], values.shape)
    return layer_peaks(strongest(values, images, rng.integers(0, 49, (n, 6)), 3), (7, 7))


def test_shipped_peaks_are_read_only_for_the_features_they_came_from(tmp_path: Path) -> None:
    path = tmp_path / PEAKS_FILE
    path.write_bytes(save_peaks({"m": {"conv": _peaks()}}, {"m": "abc"}))
    read = read_peaks(path, "m", "abc")["conv"]
    assert read.images.tolist() == _peaks().images.tolist()
    assert read.cells.tolist() == _peaks().cells.tolist()
    assert read.grid == (7, 7)
    assert read_peaks(path, "m", "other features") == {}
    assert read_peaks(path, "another model", "abc") == {}
    assert read_peaks(tmp_path / "none", "m", "abc") == {}


def test_a_damaged_or_inconsistent_file_is_computed_instead(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / PEAKS_FILE
    path.write_bytes(b"not a safetensors file")
    assert read_peaks(path, "m", "abc") == {}
    bad = _peaks()
    outside = LayerPeaks(bad.images, bad.values, bad.cells + 7, bad.grid)  # off the 7 x 7 map
    assert not outside.sane()
    path.write_bytes(save_peaks({"m": {"conv": outside}}, {"m": "abc"}))
    assert read_peaks(path, "m", "abc") == {}
    assert "cannot be read" in caplog.text


@pytest.mark.slow
def test_the_shipped_peaks_are_the_models_own_maxima(tmp_path: Path) -> None:
    """Recomputed from the model's maps, image by image: each channel's strongest images, their
    peak value and where it is; the shipped file and a fresh pass agree."""
    pg = Playground(PRECOMPUTED_DIR, tmp_path)
    model, layer, dataset = "efficientnet_lite0", "block3b_project_conv", "clipart200"
    shipped = read_peaks(
        PRECOMPUTED_DIR / dataset / PEAKS_FILE, model, pg.peaks_digest(dataset, model)
    )
    assert shipped, "the shipped peaks no longer match the shipped features"
    folder = pg.dataset(dataset)
    maps = np.concatenate(
        [
            extract_arrays(
                model,
                np.stack([load_image(p, 224) for p in folder.paths[i : i + 20]]),
                [layer],
                "map",
            )[layer]
            for i in range(0, len(folder.paths), 20)
        ]
    )
    peaks = shipped[layer]
    for channel in (0, 17, 39):
        maxima = maps[..., channel].reshape(len(maps), -1).max(axis=1)
        order = np.argsort(-maxima, kind="stable")[:9]
        assert set(peaks.images[channel].tolist()) == set(order.tolist())
        for image, value, (row, col) in zip(
            peaks.images[channel], peaks.values[channel], peaks.cells[channel], strict=True
        ):
            assert float(value) == pytest.approx(float(maxima[image]), rel=2e-3)
            assert float(maps[image, row, col, channel]) == pytest.approx(
                float(maxima[image]), rel=1e-5
            )
