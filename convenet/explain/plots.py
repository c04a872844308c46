"""Small pictures drawn with Pillow (no plotting library needed): result tiles with a bar."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw

# Paul Tol's "muted" scheme and a pale grey: ten class colours that stay apart under protan,
# deutan and tritan colour vision (tested by simulating each), unlike Tableau-10's red/green.
PALETTE = (
    (204, 102, 119),
    (51, 34, 136),
    (221, 204, 119),
    (17, 119, 51),
    (136, 204, 238),
    (136, 34, 85),
    (68, 170, 153),
    (153, 153, 51),
    (170, 68, 153),
    (221, 221, 221),
)

BAR_COLOURS = {"match": (46, 160, 67), "other": (150, 150, 150), "unknown": (50, 110, 200)}
"""Similarity bar colours: same class as the query, another class, no class known (upload)."""


def class_colour(label: int) -> tuple[int, int, int]:
    return PALETTE[label % len(PALETTE)]


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
    colour = BAR_COLOURS["unknown" if match is None else "match" if match else "other"]
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
