"""Small pictures drawn with Pillow (no plotting library needed): the dataset map."""

from __future__ import annotations

from collections.abc import Sequence

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


BAR_COLOURS = {"match": (46, 160, 67), "other": (150, 150, 150), "unknown": (50, 110, 200)}
"""Similarity bar colours: same class as the query, another class, no class known (upload)."""


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
