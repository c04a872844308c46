"""The Model Explorer's channel views: the grid a layer opens with, a channel's page (feature
visualization, top images, mean activation per class, a link), and restoring such a link.

Module-level handlers like ``ui.explorer_handlers``; the layout binds the Playground.
"""

from __future__ import annotations

import html
import time
from typing import Any
from urllib.parse import urlencode

import gradio as gr
import numpy as np

from convenet.inspector import FEATUREVIS_STEPS, MIN_PATCH, TOP_IMAGES, TopImage, as_int
from convenet.models.registry import DEFAULT_MODEL, MODELS
from convenet.playground import Playground
from ui.common import friendly, layer_choices, progress_callback

EXPLORER_CSS = """
/* The channel grid and the top images grow with their pictures: nothing behind a scroll bar. */
#explorer-channel-grid .grid-wrap, #explorer-top-images .grid-wrap,
#explorer-least-images .grid-wrap {
  height: auto !important; min-height: 0 !important; max-height: none !important;
  overflow: visible !important; }
#explorer-channel-grid .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)) !important; }
@media (max-width: 720px) {  /* a phone: four channels a row, not two */
  #explorer-channel-grid .grid-container {
    grid-template-columns: repeat(auto-fill, minmax(80px, 1fr)) !important; } }
#explorer-top-images .grid-container, #explorer-least-images .grid-container {
  grid-template-columns: repeat(3, minmax(0, 1fr)) !important; max-width: 480px; }
.cn-spread-bars { display: flex; align-items: flex-end; gap: 2px; height: 64px; }
.cn-spread-bar { flex: 1; background: #3b6fb6; border-radius: 2px 2px 0 0; }
.cn-spread-axis { display: flex; justify-content: space-between; font-size: 0.75rem; }
.cn-spread p { font-size: 0.85rem; margin: 4px 0 0; }
/* Small pictures drawn as large as their box: filters and maps without smoothing. */
#explorer-featurevis img, #explorer-filters img {
  width: 100% !important; height: 100% !important; object-fit: contain; }
#explorer-filters img, #explorer-maps img { image-rendering: pixelated; }
#explorer-channel-link a { color: #1d4ed8 !important; }  /* AA contrast on the grey group */
.cn-cls-blocks { display: flex; flex-wrap: wrap; gap: 8px 32px; font-size: 0.85em; }
.cn-cls { flex: 1 1 260px; max-width: 460px; }
.cn-cls-row { display: grid; grid-template-columns: 8em 1fr 3.5em; align-items: center;
  gap: 6px; margin: 2px 0; }
.cn-cls-name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.cn-cls-track { background: #eef0f3; height: 0.9em; border-radius: 2px; }
.cn-cls-fill { display: block; height: 100%; background: #3b6fb6; border-radius: 2px; }
.cn-cls-value { text-align: right; font-variant-numeric: tabular-nums; }
/* The models table: each column at least as wide as its longest word (a model name may still
   break after its hyphen), so a narrow screen scrolls the table sideways instead of breaking
   words letter by letter; a phone sees the model and summary columns whole. Wide screens keep
   the percentages; !important beats the widths the table sets inline. */
#explorer-models th:nth-child(1), #explorer-models .body-cell:nth-child(1) {
  min-width: 140px !important; }
#explorer-models th:nth-child(2), #explorer-models .body-cell:nth-child(2) {
  min-width: 180px !important; }
#explorer-models th:nth-child(3), #explorer-models .body-cell:nth-child(3) {
  min-width: 104px !important; }
#explorer-models th:nth-child(4), #explorer-models .body-cell:nth-child(4) {
  min-width: 88px !important; }
#explorer-models th:nth-child(5), #explorer-models .body-cell:nth-child(5) {
  min-width: 80px !important; }
#explorer-models th:nth-child(6), #explorer-models .body-cell:nth-child(6) {
  min-width: 100px !important; }
#explorer-models .virtual-row { min-width: max-content !important; }
@media (max-width: 720px) {  /* a phone: Model above Layer, each as wide as the screen */
  #explorer-pick { flex-direction: column; align-items: stretch; } }
"""

CHANNEL_HINT = (
    "Click a channel above (or type a number and press **Show channel**) to open its page."
)


@friendly
def channel_grid(
    pg: Playground, model: str, layer: str
) -> tuple[list[tuple[str, str]], list[int], str]:
    """The layer's shipped channel pictures, shown the moment the layer is chosen."""
    shown = pg.inspect(model).gallery(layer)
    items = [(str(path), f"channel {c}") for path, c in shown]
    if items:
        text = (
            f"{len(items)} channels of **{layer}** that fire most on some class of the "
            "shipped datasets, each as the picture that makes it fire most. Click one."
        )
    else:
        text = (
            f"No channel pictures ship for **{layer}**: type a channel number below and press "
            "**Show channel** to compute one (several seconds)."
        )
    return items, [c for _, c in shown], text


@friendly
def pick_channel(channels: list[int], evt: gr.SelectData) -> int:
    index = as_int(getattr(evt, "index", None), "Channel")
    if not 0 <= index < len(channels or []):
        raise ValueError("Click one of the channel pictures")
    return channels[index]


VIVID = (
    "Such pictures look vivid and busy because nothing holds them to a real photo: the "
    "optimiser repeats what the channel wants everywhere, in the strongest colours."
)


def _about(layer: str, channel: int, how: str) -> str:
    """The picture's caption: what it is, how it was made (``how``), why it looks as it does."""
    return (
        f"Channel {channel} of {layer}: a picture optimised to make this channel fire ({how}). "
        + VIVID
    )


@friendly
def featurevis(
    pg: Playground,
    model: str,
    layer: str,
    channel: Any,
    steps: Any,
    progress: gr.Progress = gr.Progress(),
) -> tuple[np.ndarray, str]:
    start = time.monotonic()
    picture, shipped = pg.inspect(model).feature_visualization(
        layer, channel, steps, lambda done: progress(done, desc="Optimising the picture")
    )
    made = f"{as_int(steps, 'Steps')} steps, {time.monotonic() - start:.0f} s"
    return picture, _about(layer, as_int(channel, "Channel"), "precomputed" if shipped else made)


@friendly
def featurevis_if_missing(
    pg: Playground, model: str, layer: str, channel: Any, progress: gr.Progress = gr.Progress()
) -> tuple[Any, Any]:
    """The channel page's picture when none ships: computed on demand, with progress."""
    inspector = pg.inspect(model)
    channel = inspector.check_channel(layer, channel)
    if channel in inspector.shipped_channels(layer):
        return gr.skip(), gr.skip()
    return featurevis(pg, model, layer, channel, FEATUREVIS_STEPS, progress)


@friendly
def gallery_items(images: list[TopImage]) -> list[tuple[str, str]]:
    """A gallery's (picture, caption) items: each image's class and the channel's activation."""
    return [(str(t.path), f"{t.label} · {t.activation:.2f}") for t in images]


def channel_top_images(
    pg: Playground,
    dataset: str,
    model: str,
    layer: str,
    channel: Any,
    progress: gr.Progress = gr.Progress(),
) -> tuple[list[tuple[np.ndarray, str]], str]:
    """Where the channel fires most: the strongest images, each cropped around its peak."""
    inspector = pg.inspect(model)
    if layer not in inspector.spec.layer_names:
        try:
            inspector.check_curated(layer, "The images that excite a channel")
        except ValueError as e:
            return [], str(e)
    spots = inspector.strongest_spots(
        dataset, layer, channel, progress_callback(progress, "Finding where each channel fires")
    )
    items = [(s.patch, f"{s.image.label} · {s.image.activation:.2f}") for s in spots]
    size = inspector.receptive_fields()[layer].size
    frame = (
        f"the yellow frame is what one position of {layer} sees ({size} px), the rest is context"
        if size < MIN_PATCH
        else f"each patch is what that position of {layer} sees ({size} px of the input)"
    )
    text = (
        f"The {len(items)} {dataset} images where channel {as_int(channel, 'Channel')} fires "
        f"most strongly, each cropped around that spot (number: its peak activation); {frame}."
    )
    return items, text


def spread_html(counts: np.ndarray, edges: np.ndarray, dataset: str, channel: int) -> str:
    """A channel's pooled activation over the dataset as a small histogram, with its range."""
    peak = max(int(counts.max()), 1)
    bars = "".join(
        f"<span class='cn-spread-bar' style='height:{4 + 56 * int(c) / peak:.0f}px' "
        f"title='{int(c)} images from {lo:.2f} to {hi:.2f}'></span>"
        for c, lo, hi in zip(counts, edges[:-1], edges[1:], strict=True)
    )
    total = int(counts.sum())
    label = f"how strongly channel {channel} fires on each of the {total} {dataset} images"
    return (
        f"<div class='cn-spread' role='img' aria-label='{html.escape(label)}'>"
        f"<div class='cn-spread-bars'>{bars}</div>"
        f"<div class='cn-spread-axis'><span>{edges[0]:.2f}</span><span>{edges[-1]:.2f}</span>"
        f"</div><p>How strongly channel {channel} fires on each of the {total} {dataset} "
        "images (its mean over the picture): most images leave it low; the few on the right "
        "are what it looks for.</p></div>"
    )


def channel_least_images(
    pg: Playground, dataset: str, model: str, layer: str, channel: Any
) -> tuple[list[tuple[str, str]], str]:
    """What the channel is not: the dataset images that fire it least, and its histogram."""
    inspector = pg.inspect(model)
    if layer not in inspector.spec.layer_names:
        return [], ""
    least = inspector.top_images(dataset, layer, channel, TOP_IMAGES, least=True)
    items = gallery_items(least)
    counts, edges = inspector.activation_spread(dataset, layer, channel)
    return items, spread_html(counts, edges, dataset, as_int(channel, "Channel"))


def class_bars_html(means: dict[str, dict[str, float]]) -> str:
    """Mean activation per class as small horizontal bars, one block per dataset."""
    peak = max((abs(v) for d in means.values() for v in d.values()), default=0.0) or 1.0
    blocks = []
    for dataset, per_class in means.items():
        rows = []
        for name, value in sorted(per_class.items(), key=lambda kv: -kv[1]):
            width = max(0.0, value) / peak * 100
            rows.append(
                "<div class='cn-cls-row'><span class='cn-cls-name'>"
                f"{html.escape(name)}</span><span class='cn-cls-track'><span class='cn-cls-fill' "
                f"style='width:{width:.1f}%'></span></span>"
                f"<span class='cn-cls-value'>{value:.2f}</span></div>"
            )
        blocks.append(f"<div class='cn-cls'><b>{html.escape(dataset)}</b>{''.join(rows)}</div>")
    label = "role='img' aria-label='mean activation of the channel per class'"
    return f"<div class='cn-cls-blocks' {label}>{''.join(blocks)}</div>"


def channel_link(model: str, layer: str, channel: int) -> str:
    return "?" + urlencode({"tab": "explorer", "model": model, "layer": layer, "channel": channel})


@friendly
def channel_page(
    pg: Playground,
    model: str,
    layer: str,
    channel: Any,
    dataset: str,
    progress: gr.Progress = gr.Progress(),
) -> tuple[Any, ...]:
    """A channel's page at once: its shipped picture (or none yet), top images, class bars, link."""
    inspector = pg.inspect(model)
    channel = inspector.check_channel(layer, channel)
    shipped = channel in inspector.shipped_channels(layer)
    picture = inspector.feature_visualization(layer, channel)[0] if shipped else None
    vis_text = _about(layer, channel, "precomputed" if shipped else "computing…")
    items, top_text = channel_top_images(pg, dataset, model, layer, channel, progress)
    bars = ""
    if layer in inspector.spec.layer_names:
        bars = class_bars_html(inspector.class_activation(layer, channel))
    least, spread = channel_least_images(pg, dataset, model, layer, channel)
    link = channel_link(inspector.spec.key, layer, channel)
    link_md = f"Link to this channel: [{html.escape(link)}]({link})"
    return picture, vis_text, items, top_text, bars, link_md, least, spread


CHANNEL_URL_JS = """
(model, layer, channel) => {
  const url = new URL(window.location.href);
  const params = {tab: "explorer", model, layer, channel: String(channel)};
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  window.history.replaceState(null, "", url);
  return [];
}
"""


# The tab switch happens in the page (``OPEN_EXPLORER_JS``, ``SHOW_SEARCH_JS``), never as a
# server output: once the Tabs have been an output of a queued event, Gradio's page copies
# every component on screen at each status message of every later event (a search click
# cost about half a second more).
OPEN_EXPLORER_JS = """
() => new URL(window.location.href).searchParams.get("tab") === "explorer"
  ? {__type__: "update", selected: "explorer"} : undefined
"""
SHOW_SEARCH_JS = '() => ({__type__: "update", selected: "search"})'


def restore_channel(request: gr.Request) -> tuple[Any, ...]:
    """Show ``?tab=explorer&model=&layer=&channel=``: the model, layer and channel, and the
    link itself for ``from_link``; for a link to a channel the models table folds away, so the
    channel is nearer the top (on a phone the table is a screen tall); any other address
    changes nothing. The tab itself opens in the page (``OPEN_EXPLORER_JS``).

    Only components are written here: Gradio counts any write to a State as a change, which
    would start the Explorer (and TensorFlow) for every visitor.
    """
    params = dict(request.query_params) if request else {}
    if params.get("tab") != "explorer":
        return (gr.skip(),) * 5
    key = params.get("model", DEFAULT_MODEL)
    key = key if key in MODELS and not Playground.weights_problem(key) else DEFAULT_MODEL
    layer = params.get("layer", "") or MODELS[key].layer_names[0]
    try:
        channel = max(as_int(int(params.get("channel", "")), "Channel"), 0)
        named = str(channel)
    except ValueError:
        channel, named = 0, ""
    layers = gr.update(choices=layer_choices(key), value=layer)
    link = f"{key}/{layer}/{named}"
    models = gr.Accordion(open=False) if named else gr.skip()
    return key, layers, channel, link, models


def from_link(link: str, model: str) -> tuple[str, bool, bool]:
    """(current model, whether to open the channel page, open the tab) for a restored link."""
    return model, not link.endswith("/"), True


@friendly
def open_wanted_page(wanted: bool, token: int) -> tuple[bool, int]:
    """After a restored layer's views, open the channel page the link named (once)."""
    return False, token + 1 if wanted else token
