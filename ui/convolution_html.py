"""The convolution walk-through as a page: the image with the window, the channel's map with
the pixel (click another), and the arithmetic from the window's values to that pixel."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
from PIL import Image, ImageDraw

from convenet.inspector import ConvStep, colormap

SHOWN_PX = 224  # both pictures are drawn this wide
COLOURS = ("red", "green", "blue")


def _png(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _image_with_window(image: np.ndarray, step: ConvStep) -> str:
    """The input at SHOWN_PX with the window outlined (part of it may lie in the padding)."""
    picture = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    scale = SHOWN_PX / picture.width
    picture = picture.resize((SHOWN_PX, round(picture.height * scale)), Image.Resampling.NEAREST)
    top, left, bottom, right = step.box
    box = [left * scale - 1, top * scale - 1, (right + 1) * scale, (bottom + 1) * scale]
    ImageDraw.Draw(picture).rectangle(box, outline=(255, 0, 0), width=2)
    return _png(picture)


def _map_with_pixel(step: ConvStep) -> str:
    """The channel's activation map (bright = strong) with the current pixel outlined."""
    values = step.activation_map
    span = float(values.max() - values.min()) or 1.0
    rgb = colormap((values - values.min()) / span)
    picture = Image.fromarray(rgb).resize((SHOWN_PX, SHOWN_PX), Image.Resampling.NEAREST)
    cell = SHOWN_PX / values.shape[1]
    box = [step.col * cell - 1, step.row * cell - 1, (step.col + 1) * cell, (step.row + 1) * cell]
    ImageDraw.Draw(picture).rectangle(box, outline=(255, 0, 0), width=2)
    return _png(picture)


def _grid(values: np.ndarray, kind: str) -> str:
    rows = "".join("<tr>" + "".join(f"<td>{v:+.2f}</td>" for v in row) + "</tr>" for row in values)
    return f"<table class='cn-conv-grid cn-{kind}'><tbody>{rows}</tbody></table>"


def convolution_html(image: np.ndarray, step: ConvStep, what: str) -> str:
    """The whole walk-through; the map's data attributes let a click name its pixel."""
    height, width = step.activation_map.shape
    colours = "".join(
        f"<div class='cn-conv-colour'><b>{name}</b>"
        f"{_grid(step.window[:, :, i], 'in')}<span>×</span>{_grid(step.kernel[:, :, i], 'w')}"
        f"<span>=</span>{_grid(step.products[:, :, i], 'p')}</div>"
        for i, name in enumerate(COLOURS)
    )
    normalised = step.total * step.scale + step.shift
    arithmetic = (
        f"Sum of the {step.products.size} products: <b>{step.total:+.3f}</b>. Batch "
        f"normalisation (folded into one scale and shift): {step.total:+.3f} × "
        f"{step.scale:.3f} {'+' if step.shift >= 0 else '−'} {abs(step.shift):.3f} = "
        f"<b>{normalised:+.3f}</b>. {html.escape(step.activation)} (negatives become 0"
        f"{', at most 6' if step.activation == 'ReLU6' else ''}): <b>{step.output:.3f}</b>, "
        f"the value of pixel ({step.row}, {step.col}) of the map."
    )
    return (
        f"<p>{html.escape(what)} · layer <b>{html.escape(step.layer)}</b>, channel "
        f"<b>{step.channel}</b>, output pixel ({step.row}, {step.col}) of {height}×{width}. "
        "Click any pixel of the map to move the window.</p>"
        "<div class='cn-conv-pictures'>"
        f"<figure><img alt='The input with the window outlined' "
        f"src='{_image_with_window(image, step)}'>"
        "<figcaption>The input: the red square is the 3×3 window this pixel sees (the "
        "model's own padding counts 0)</figcaption></figure>"
        f"<figure><img class='cn-conv-map' data-rows='{height}' data-cols='{width}' "
        f"alt='The channel activation map, the current pixel outlined' "
        f"src='{_map_with_pixel(step)}'><figcaption>Channel {step.channel}'s activation map "
        "(bright = strong): click a pixel</figcaption></figure></div>"
        "<p>For each colour: the window's values (after the model's preprocessing) × the "
        "kernel's weights = their products.</p>"
        f"<div class='cn-conv-colours'>{colours}</div><p class='cn-conv-sum'>{arithmetic}</p>"
    )


# A click on the map sends the pixel under the pointer.
CONV_CLICK_JS = """
element.addEventListener('click', (event) => {
  const map = event.target.closest('img.cn-conv-map');
  if (!map) return;
  const box = map.getBoundingClientRect();
  const rows = Number(map.dataset.rows), cols = Number(map.dataset.cols);
  const row = Math.min(rows - 1, Math.floor((event.clientY - box.top) / box.height * rows));
  const col = Math.min(cols - 1, Math.floor((event.clientX - box.left) / box.width * cols));
  trigger('click', {row, col});
});
"""
