"""R-MAC against a line-by-line port of the reference (cnnimageretrieval-pytorch's ``rmac``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from convenet.features.regional import rmac, rmac_regions

pytestmark = pytest.mark.quick


def reference_rmac(x: np.ndarray, levels: int = 3, eps: float = 1e-6) -> np.ndarray:
    """One image's (h, w, c) map, looped as the reference does (NCHW there, HWC here)."""
    ovr = 0.4
    steps = np.array([2, 3, 4, 5, 6, 7], np.float64)
    height, width = x.shape[:2]
    w = min(width, height)
    b = (max(height, width) - w) / (steps - 1)
    idx = int(np.argmin(np.abs(((w**2 - w * b) / w**2) - ovr)))
    wd = hd = 0
    if height < width:
        wd = idx + 1
    elif height > width:
        hd = idx + 1
    v = x.max(axis=(0, 1))
    v = v / (np.linalg.norm(v) + eps)
    for level in range(1, levels + 1):
        wl = math.floor(2 * w / (level + 1))
        wl2 = math.floor(wl / 2 - 1)
        b = 0 if level + wd == 1 else (width - wl) / (level + wd - 1)
        cen_w = np.floor(wl2 + np.arange(level - 1 + wd + 1) * b) - wl2
        b = 0 if level + hd == 1 else (height - wl) / (level + hd - 1)
        cen_h = np.floor(wl2 + np.arange(level - 1 + hd + 1) * b) - wl2
        for i in cen_h.tolist():
            for j in cen_w.tolist():
                if wl == 0:
                    continue
                region = x[int(i) : int(i) + wl, int(j) : int(j) + wl]
                vt = region.max(axis=(0, 1))
                v = v + vt / (np.linalg.norm(vt) + eps)
    return v


@pytest.mark.parametrize("shape", [(7, 7), (5, 5), (10, 10), (1, 1), (2, 2), (6, 9), (9, 4)])
def test_rmac_matches_the_reference_loop(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    maps = rng.random((3, *shape, 5)).astype(np.float32)
    expected = np.stack([reference_rmac(image) for image in maps])
    np.testing.assert_allclose(rmac(maps), expected, rtol=1e-5, atol=1e-6)


def test_regions_of_a_7x7_map_are_the_whole_map_then_2x2_then_3x3() -> None:
    regions = rmac_regions(7, 7)
    assert regions[0] == (0, 0, 7)
    assert sorted(regions[1:5]) == [(0, 0, 4), (0, 3, 4), (3, 0, 4), (3, 3, 4)]
    assert len(regions[5:]) == 9 and {side for _, _, side in regions[5:]} == {3}
    assert all(top + side <= 7 and left + side <= 7 for top, left, side in regions)


def test_an_object_in_one_corner_still_leads_its_own_region() -> None:
    """What R-MAC is for: a small object's channel is not drowned by the rest of the picture."""
    maps = np.zeros((1, 8, 8, 2), np.float32)
    maps[0, :, :, 0] = 1.0  # the background everywhere
    maps[0, 0, 0, 1] = 1.0  # a small object in the top left corner
    vector, mean = rmac(maps)[0], maps.mean(axis=(1, 2))[0]
    regions = rmac_regions(8, 8)
    with_object = 1 + sum(top == 0 and left == 0 for top, left, _ in regions)  # + the global max
    assert with_object >= 4
    # A region holding the object adds (1, 1)/sqrt(2), any other (1, 0): the object's share
    # follows the regions it is in, not its 1 pixel in 64.
    half, without = with_object / math.sqrt(2), 1 + len(regions) - with_object
    assert vector[1] / vector[0] == pytest.approx(half / (half + without), rel=1e-5)
    assert vector[1] / vector[0] > 10 * mean[1] / mean[0]
