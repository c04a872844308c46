"""The dataset map's markup and its page script: points by class, the query and its nearest
images joined by lines and listed, hover thumbnails, zoom and pan (as the Embedding Projector)."""

from __future__ import annotations

import html

import numpy as np

from convenet.playground import class_colour

NEIGHBOURS = 10  # the query's nearest images joined to it on the map and listed under it


def rgb(label: int) -> str:
    r, g, b = class_colour(label)
    return f"rgb({r}, {g}, {b})"


def map_html(
    points: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    urls: list[str],
    query: int | None,
    hits: list[int],
    rows: np.ndarray | None = None,
) -> str:
    """The dataset as points: hover shows the image and its class, a click makes it the query.

    ``rows``: the dataset images that ``points`` and ``urls`` stand for (all when None; a large
    dataset shows a sample, and the key says so). The query is a large diamond; its top results
    are ringed and the nearest ``NEIGHBOURS`` of them are joined to it by lines and listed (a
    2-D map bends distances: the lines show where the layer's true neighbours landed). A query
    without a point of its own (an upload, or an image outside the sample) sits at the mean
    position of its 3 nearest images on the map.
    """
    rows = np.arange(len(points)) if rows is None else np.asarray(rows)
    position = {int(row): j for j, row in enumerate(rows)}
    lo, hi = points.min(axis=0), points.max(axis=0)
    xy = 4 + (points - lo) / np.where(hi - lo > 0, hi - lo, 1.0) * 92
    xy[:, 1] = 100 - xy[:, 1]  # y grows upwards, as in a chart
    ringed = set(hits)
    dots = [
        f"<circle class='cn-pt' cx='{x:.2f}' cy='{y:.2f}' r='{1.6 if i in ringed else 1.1}' "
        f"fill='{rgb(int(labels[i]))}' stroke='{'black' if i in ringed else 'none'}' "
        f"stroke-width='0.4' data-index='{i}' data-class='{html.escape(classes[labels[i]])}' "
        f"data-src='{html.escape(urls[j])}'></circle>"
        for j, (i, (x, y)) in enumerate(zip(rows.tolist(), xy, strict=True))
    ]
    shown = [position[h] for h in hits if h in position][:3]
    if query is not None and query in position:
        x, y = xy[position[query]]
    else:
        x, y = xy[shown].mean(axis=0) if shown else (50.0, 50.0)
    nearest = [position[h] for h in hits[:NEIGHBOURS] if h in position]
    lines = "".join(
        f"<line class='cn-nn' x1='{x:.2f}' y1='{y:.2f}' x2='{xy[j][0]:.2f}' y2='{xy[j][1]:.2f}'>"
        "</line>"
        for j in nearest
    )
    colour = "white" if query is None else rgb(int(labels[query]))
    query_key = (
        "◆ the query · ringed: its top results"
        if query is not None and query in position
        else f"◆ {'your image' if query is None else 'the query (not in the sample)'}, placed at "
        "the mean position of its 3 nearest images on the map · ringed: its top results"
    )
    if len(rows) < len(labels):
        query_key += f" · a sample of {len(rows):,} of the {len(labels):,} images"
    diamond = f"{x:.2f},{y - 3:.2f} {x + 3:.2f},{y:.2f} {x:.2f},{y + 3:.2f} {x - 3:.2f},{y:.2f}"
    marker = (
        f"<polygon class='cn-query' points='{diamond}' fill='{colour}' stroke='black' "
        "stroke-width='0.6'><title>the query</title></polygon>"
    )
    keys = "".join(
        f"<li><span class='cn-swatch' style='background: {rgb(i)}'></span>{html.escape(name)}</li>"
        for i, name in enumerate(classes)
    )
    return (
        "<div class='cn-map'><div class='cn-map-view'><svg viewBox='0 0 100 100' role='img' "
        f"aria-label='Map of the dataset'><g class='cn-map-lines'>{lines}</g>{''.join(dots)}"
        f"{marker}</svg>{ZOOM_BUTTONS}</div>"
        f"<div class='cn-map-side'><ul class='cn-map-keys'>{keys}<li>{html.escape(query_key)}"
        f"</li></ul>{neighbour_list(hits, labels, classes)}</div>"
        "<div class='cn-tip' hidden><img alt=''><span></span></div></div>"
    )


def neighbour_list(hits: list[int], labels: np.ndarray, classes: list[str]) -> str:
    """The query's nearest images in the layer, in rank order; each is a button that makes it
    the query (as its point does)."""
    if not hits:
        return ""
    items = "".join(
        f"<li><button class='cn-nn-item' data-index='{h}'>"
        f"<span class='cn-swatch' style='background: {rgb(int(labels[h]))}'></span>"
        f"{html.escape(classes[labels[h]])} · image {h}</button></li>"
        for h in hits[:NEIGHBOURS]
    )
    return (
        f"<p class='cn-nn-title'>Its {min(len(hits), NEIGHBOURS)} nearest images in this layer "
        f"(joined by lines):</p><ol class='cn-nn-list'>{items}</ol>"
    )


ZOOM_BUTTONS = (
    "<div class='cn-zoom' role='group' aria-label='Zoom the map'>"
    "<button data-zoom='in' aria-label='Zoom in' title='Zoom in (or scroll)'>+</button>"
    "<button data-zoom='out' aria-label='Zoom out' title='Zoom out'>−</button>"
    "<button data-zoom='reset' aria-label='Show the whole map' title='Whole map'>⟲</button></div>"
)

# Clicks send the point's dataset index; the wheel and the buttons zoom, a drag pans. The zoom
# is kept on the element, so a map redrawn for the next query keeps the learner's close-up.
MAP_JS = """
const whole = [0, 0, 100, 100];
element.cnView = element.cnView || whole.slice();
const svg = () => element.querySelector('.cn-map svg');
const show = () => { const s = svg(); if (s) s.setAttribute('viewBox', element.cnView.join(' ')); };
const zoom = (factor, cx, cy) => {
  const [x, y, w, h] = element.cnView;
  const nw = Math.min(100, Math.max(5, w * factor)), nh = Math.min(100, Math.max(5, h * factor));
  const px = cx === undefined ? x + w / 2 : cx, py = cy === undefined ? y + h / 2 : cy;
  element.cnView = [px - (px - x) * nw / w, py - (py - y) * nh / h, nw, nh];
  show();
};
const toMap = (event) => {
  const box = svg().getBoundingClientRect(), [x, y, w, h] = element.cnView;
  const fx = (event.clientX - box.left) / box.width, fy = (event.clientY - box.top) / box.height;
  return [x + fx * w, y + fy * h];
};
watch('value', show);  // runs after Gradio has patched the new map into the page
element.addEventListener('wheel', (event) => {
  if (!event.target.closest('.cn-map svg')) return;
  event.preventDefault();
  const [cx, cy] = toMap(event);
  zoom(event.deltaY < 0 ? 0.8 : 1.25, cx, cy);
}, {passive: false});
let drag = null, moved = false;
element.addEventListener('pointerdown', (event) => {
  if (!event.target.closest('.cn-map svg')) return;
  drag = {x: event.clientX, y: event.clientY, view: element.cnView.slice()};
  moved = false;
});
element.addEventListener('pointermove', (event) => {
  if (drag) {
    const box = svg().getBoundingClientRect(), [x, y, w, h] = drag.view;
    const dx = ((event.clientX - drag.x) / box.width) * w;
    const dy = ((event.clientY - drag.y) / box.height) * h;
    if (Math.abs(event.clientX - drag.x) + Math.abs(event.clientY - drag.y) > 4) moved = true;
    if (moved) { element.cnView = [x - dx, y - dy, w, h]; show(); }
  }
  const tip = element.querySelector('.cn-tip');
  const point = event.target.closest('circle[data-index]');
  if (!tip) return;
  if (!point || drag) { tip.hidden = true; return; }
  tip.querySelector('img').src = point.dataset.src;
  tip.querySelector('span').textContent = point.dataset.class;
  const box = element.getBoundingClientRect();
  tip.style.left = `${event.clientX - box.left + 12}px`;
  tip.style.top = `${event.clientY - box.top + 12}px`;
  tip.hidden = false;
});
element.addEventListener('pointerup', () => { drag = null; });
element.addEventListener('pointerleave', () => { drag = null; });
element.addEventListener('click', (event) => {
  const button = event.target.closest('[data-zoom]');
  if (button) {
    if (button.dataset.zoom === 'reset') { element.cnView = whole.slice(); show(); }
    else zoom(button.dataset.zoom === 'in' ? 0.8 : 1.25);
    return;
  }
  if (moved) { moved = false; return; }  // the end of a drag is not a click on a point
  const point = event.target.closest('[data-index]');
  if (point) trigger('click', {index: Number(point.dataset.index)});
});
"""
