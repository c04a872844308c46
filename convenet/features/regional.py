"""R-MAC: regional maximum activations of convolutions (Tolias, Sicre and Jégou, ICLR 2016).

A global max or mean describes the whole image at once; R-MAC takes the maximum inside square
regions at three scales (the whole map, then about 2x2 and 3x3 overlapping squares), normalises
each region's vector and adds them up, so an object that fills only part of the picture still
gets vectors of its own. The regions follow the reference implementation of Radenović et al.
(cnnimageretrieval-pytorch, ``rmac``): overlap near 40 %, extra regions along the longer side.
Pooling runs in NumPy on the unpooled feature maps, vectorised over the batch.
"""

from __future__ import annotations

import math

import numpy as np

LEVELS = 3
OVERLAP = 0.4  # wanted overlap of neighbouring regions
EPS = 1e-6

Region = tuple[int, int, int]  # (top, left, side)


def rmac_regions(height: int, width: int, levels: int = LEVELS) -> list[Region]:
    """The square regions R-MAC pools over a height x width map, level by level."""
    side = min(height, width)
    steps = np.arange(2, 8)
    spacing = (max(height, width) - side) / (steps - 1)
    extra = int(np.argmin(np.abs((side**2 - side * spacing) / side**2 - OVERLAP))) + 1
    extra_w, extra_h = (extra, 0) if height < width else (0, extra) if height > width else (0, 0)
    regions: list[Region] = []
    for level in range(1, levels + 1):
        size = math.floor(2 * side / (level + 1))
        if size == 0:
            continue
        half = math.floor(size / 2 - 1)
        lefts = _starts(width, size, level + extra_w, half)
        tops = _starts(height, size, level + extra_h, half)
        regions += [(top, left, size) for top in tops for left in lefts]
    return regions


def _starts(length: int, size: int, count: int, half: int) -> list[int]:
    """Where ``count`` regions of ``size`` start along a side of ``length``, evenly spread."""
    step = 0.0 if count == 1 else (length - size) / (count - 1)
    return [int(math.floor(half + i * step) - half) for i in range(count)]


def rmac(maps: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """(n, h, w, c) feature maps -> (n, c) R-MAC vectors: the sum of the L2-normalised maxima
    of the whole map and of every region (on a square map the first level's region is the whole
    map again, so it counts twice, as in the reference)."""
    maps = np.asarray(maps, np.float32)
    height, width = maps.shape[1:3]
    total = _normalised(maps.max(axis=(1, 2)))
    for top, left, side in rmac_regions(height, width, levels):
        total += _normalised(maps[:, top : top + side, left : left + side].max(axis=(1, 2)))
    return total


def _normalised(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + EPS)
