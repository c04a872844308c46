"""Small pictures drawn with Pillow (no plotting library needed): result tiles with a bar."""

from __future__ import annotations

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


BAR_COLOURS = {"match": (46, 160, 67), "other": (150, 150, 150), "unknown": (50, 110, 200)}
"""Similarity bar colours: same class as the query, another class, no class known (upload)."""


def class_colour(label: int) -> tuple[int, int, int]:
    return PALETTE[label % len(PALETTE)]


def result_tile(path: str, similarity: float, match: bool | None, size: int = 160) -> Image.Image:
    """A result thumbnail with its similarity as a bar along the bottom.

    Green bar and frame: same class as the query; grey: another class; blue: no class known
    (an uploaded query).
    """
    with Image.open(path) as source:
        tile = source.convert("RGB")
    tile.thumbnail((size, size))
    canvas = Image.new("RGB", (size, size + 12), "white")
    canvas.paste(tile, ((size - tile.width) // 2, (size - tile.height) // 2))
    colour = BAR_COLOURS["unknown" if match is None else "match" if match else "other"]
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, size + 2, size - 1, size + 11), fill=(230, 230, 230))
    draw.rectangle((0, size + 2, round((size - 1) * similarity / 100), size + 11), fill=colour)
    if match:
        draw.rectangle((0, 0, size - 1, size + 11), outline=colour, width=3)
    return canvas
