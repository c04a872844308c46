"""Small pictures drawn with Pillow (no plotting library needed): the dataset map, result tiles."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Tableau-10: distinct for 10 classes and readable for most colour-vision deficiencies.
PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


def class_colour(label: int) -> tuple[int, int, int]:
    return PALETTE[label % len(PALETTE)]


def scatter_map(
    points: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    query: int | None = None,
    highlighted: Sequence[int] = (),
    size: int = 560,
) -> np.ndarray:
    """Points coloured by class; results ringed in black, the query drawn as a large diamond."""
    legend_width = 150
    margin = 18
    image = Image.new("RGB", (size + legend_width, size), "white")
    draw = ImageDraw.Draw(image)
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    xy = margin + (points - lo) / span * (size - 2 * margin)
    xy[:, 1] = size - xy[:, 1]  # y grows upwards, as in a chart
    ringed = set(int(i) for i in highlighted)
    for i, (x, y) in enumerate(xy):
        radius = 5 if i in ringed else 4
        outline = "black" if i in ringed else None
        draw.ellipse(
            (x - radius, y - radius, x + radius, y + radius),
            fill=class_colour(int(labels[i])),
            outline=outline,
            width=2,
        )
    if query is not None:
        x, y = xy[query]
        r = 10
        draw.polygon(
            [(x, y - r), (x + r, y), (x, y + r), (x - r, y)],
            fill=class_colour(int(labels[query])),
            outline="black",
            width=3,
        )
    for row, name in enumerate(classes):
        top = margin + row * 20
        draw.rectangle((size + 6, top, size + 18, top + 12), fill=class_colour(row))
        draw.text((size + 24, top), name[:18], fill="black")
    top = margin + len(classes) * 20 + 10
    draw.polygon(
        [(size + 12, top), (size + 18, top + 6), (size + 12, top + 12), (size + 6, top + 6)],
        fill="white",
        outline="black",
        width=2,
    )
    draw.text((size + 24, top), "query", fill="black")
    draw.ellipse((size + 7, top + 20, size + 17, top + 30), outline="black", width=2)
    draw.text((size + 24, top + 20), "top results", fill="black")
    return np.asarray(image)


@lru_cache(maxsize=256)  # about 21 MB; decoding and resizing are most of a tile's cost
def _blank_tile(path: str, size: int) -> Image.Image:
    """The image centred on a white canvas with room for the bar below it."""
    with Image.open(path) as source:
        tile = source.convert("RGB")
    tile.thumbnail((size, size))
    canvas = Image.new("RGB", (size, size + 12), "white")
    canvas.paste(tile, ((size - tile.width) // 2, (size - tile.height) // 2))
    return canvas


def result_tile(path: str, similarity: float, match: bool | None, size: int = 160) -> Image.Image:
    """A result thumbnail with its similarity as a bar along the bottom.

    Green bar and frame: same class as the query; grey: another class; blue: no class known
    (an uploaded query).
    """
    canvas = _blank_tile(path, size).copy()
    colour = (46, 160, 67) if match else (150, 150, 150) if match is False else (50, 110, 200)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, size + 2, size - 1, size + 11), fill=(230, 230, 230))
    draw.rectangle((0, size + 2, round((size - 1) * similarity / 100), size + 11), fill=colour)
    if match:
        draw.rectangle((0, 0, size - 1, size + 11), outline=colour, width=3)
    return canvas


TileKey = tuple[str, int, bool | None]


class TileCache:
    """Result tiles drawn once and kept as JPEG files, so a search hands out file paths.

    Drawing 50 tiles and letting the UI encode them cost about 85 ms per search; a cached tile
    costs a lookup and a touch. A tile is keyed by image, similarity in whole percent (what the
    caption shows) and match. The ``max_files`` most recently used are kept; a file removed by
    someone else (a temporary-file sweeper) is drawn again. JPEG: 10x faster to encode than WebP.
    """

    def __init__(self, folder: Path, max_files: int = 10_000) -> None:
        self.folder = folder
        self.max_files = max_files
        self._files: OrderedDict[TileKey, Path] = OrderedDict()
        self._lock = threading.Lock()

    def tile(self, path: str, similarity: float, match: bool | None) -> str:
        """The path of the tile ``result_tile`` draws for these values, drawn if need be."""
        key = (path, round(similarity), match)
        with self._lock:
            file = self._files.get(key)
        if file is not None:
            try:
                os.utime(file)  # still there, and fresh for the sweeper
            except OSError:
                file = None
        if file is None:
            file = self._draw(key)
        with self._lock:
            self._files[key] = file
            self._files.move_to_end(key)
            while len(self._files) > self.max_files:
                _, old = self._files.popitem(last=False)
                old.unlink(missing_ok=True)
        return str(file)

    def __len__(self) -> int:
        return len(self._files)

    def _draw(self, key: TileKey) -> Path:
        """Write beside the target, then rename: a concurrent reader never sees half a file."""
        path, percent, match = key
        name = hashlib.sha256(repr(key).encode()).hexdigest()[:24]
        target = self.folder / f"{name}.jpg"
        partial = self.folder / f"partial-{uuid.uuid4().hex}.jpg"
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            result_tile(path, percent, match).save(partial, "JPEG", quality=90)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target
