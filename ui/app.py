"""Assemble the Blocks app: a status line, the Semantic Search and Model Explorer tabs, the API."""

from __future__ import annotations

import gradio as gr

from ui.api import register_api
from ui.common import AppState
from ui.explorer_channel import EXPLORER_CSS
from ui.explorer_tab import build_explorer_tab
from ui.gradio_compat.events import keep_off_api_page, no_app_until_launch
from ui.guard import Edge, GuardedBlocks
from ui.own_images import wire_own_images
from ui.search_tab import build_search_tab, lessons_accordion
from ui.server import run_slow_groups_in_background
from ui.tools import TOOLS, register_tools

# For screen readers and keyboards: Gradio's image buttons carry no text, so each is named
# after its picture; its "empty value" placeholders carry a label, which only an image role
# allows; a box that scrolls must take the focus, or its hidden part is out of the keyboard's
# reach. Run after the page changes, at most once a frame.
HEAD = """
<script>
(() => {
  const fix = () => {
    document.querySelectorAll("button:not([aria-label])").forEach((button) => {
      const img = button.querySelector("img");
      if (!img || button.textContent.trim()) return;
      const file = decodeURIComponent(img.src.split("/").pop() || "").replace(/\\.\\w+$/, "");
      button.setAttribute("aria-label", img.alt || `Image ${file}`);
    });
    document.querySelectorAll(".empty[aria-label]:not([role])").forEach((placeholder) => {
      placeholder.setAttribute("role", "img");
    });
    document.querySelectorAll(".block:not([tabindex])").forEach((box) => {
      const overflow = getComputedStyle(box).overflowY;
      const scrolls = box.scrollHeight > box.clientHeight + 1 && overflow !== "visible";
      if (scrolls) box.setAttribute("tabindex", "0");
    });
  };
  // The k box applies on Enter too: leaving the box is what applies it.
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.matches("#results-k input")) event.target.blur();
  });
  let queued = false;
  const later = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; fix(); });
  };
  new MutationObserver(later).observe(document.documentElement, {childList: true, subtree: true});
})();
</script>
"""
CSS = (
    """
/* Grey helper text dark enough to read (WCAG AA contrast on white). */
.info-text, .or, footer .show-api, footer .built-with, footer .settings {
  color: #4b5563 !important;
}
.min_value, .max_value { color: #4b5563 !important; }
/* Gradio hides its API link on a phone; the app is meant to be scripted from anywhere. */
footer .show-api { display: inline-flex !important; }
footer { flex-wrap: wrap; }
button[role="tab"].selected { color: #9a3412 !important; }
button.primary { background: #c2410c !important; border-color: #c2410c !important; color: #fff; }
.cn-heatmap { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.cn-heatmap th, .cn-heatmap td { padding: 4px 8px; border: 1px solid #ccc; text-align: center; }
.cn-heatmap caption { caption-side: top; text-align: left; padding-bottom: 6px; }
.cn-scroll { overflow-x: auto; max-width: 100%; }
.cn-cka th, .cn-cka td { padding: 0 3px; font-size: 11px; white-space: nowrap; }
.cn-cka td { width: 16px; height: 16px; padding: 0; }
.cn-cka thead th { writing-mode: vertical-rl; transform: rotate(180deg); padding: 3px 0; }
.cn-cka .cn-cell { height: 16px; }
.cn-sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
.cn-swatch { display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.3em 0 0.2em;
  vertical-align: -0.1em; border-radius: 2px; }
.cn-meaning { text-decoration: underline dotted; cursor: help; }
/* No blank gap while there is no notice. */
#search-notice:has(.md:empty), #own-status:has(.md:empty), #upload-notice:has(.md:empty),
#link-note:has(.md:empty) { display: none; }
/* Galleries: as many columns as fit, so ranks read in order at any width. */
#results-gallery .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)) !important; }
.cn-side-gallery .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(110px, 1fr)) !important; }
#dataset-gallery .grid-container, #explorer-dataset-gallery .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(72px, 1fr)) !important; }
/* Captions: small enough for one line under a desktop tile; on a narrow tile they wrap
   (at any character) instead of being cut off. */
#results-gallery .caption-label, .cn-side-gallery .caption-label,
#dataset-gallery .caption-label {
  white-space: normal !important; overflow: visible !important; overflow-wrap: anywhere;
  text-overflow: clip !important; max-width: 100% !important; font-size: 0.68rem; }
.cn-cell { all: unset; cursor: pointer; display: block; width: 100%; }
.cn-cell:hover, .cn-cell:focus-visible { outline: 2px solid #333; }
.cn-charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr));
  gap: 12px; }
.cn-chart { margin: 0; }
.cn-chart figcaption { font-size: 0.85em; margin-bottom: 4px; }
.cn-bars { display: flex; align-items: flex-end; gap: 3px; height: 90px;
  border-bottom: 1px solid #999; position: relative; }
.cn-chance { position: absolute; left: 0; right: 0; border-top: 2px dashed #c0392b;
  pointer-events: none; }
.cn-bar { flex: 1; height: var(--h); min-height: 2px; padding: 0; border: none;
  background: #9aa7b8; cursor: pointer; position: relative; }
.cn-bar.best { background: rgb(46, 160, 67); }
.cn-bar.current { outline: 2px solid #000; outline-offset: 1px; }
.cn-bar:hover, .cn-bar:focus-visible { outline: 2px solid #333; }
.cn-bar span { position: absolute; top: -1.3em; left: 0; right: 0; font-size: 0.7em; }
.cn-ticks { display: flex; gap: 3px; font-size: 0.7em; }
.cn-ticks span { flex: 1; text-align: center; }
.cn-map { position: relative; display: flex; flex-wrap: wrap; gap: 12px; }
.cn-map-view { position: relative; width: min(100%, 560px); }
.cn-conv-pictures { display: flex; flex-wrap: wrap; gap: 12px; }
.cn-conv-pictures figure { margin: 0; width: 224px; max-width: 100%; }
.cn-conv-pictures img { width: 224px; max-width: 100%; image-rendering: pixelated;
  display: block; }
.cn-conv-map { cursor: crosshair; }
.cn-conv-pictures figcaption { font-size: 0.8em; }
.cn-conv-colours { display: flex; flex-wrap: wrap; gap: 10px 18px; }
.cn-conv-colour { display: flex; align-items: center; gap: 4px; font-size: 0.75em; }
.cn-conv-grid { border-collapse: collapse; font-family: monospace; }
.cn-conv-grid td { border: 1px solid #ccc; padding: 1px 3px; text-align: right; }
.cn-conv-grid.cn-w td { background: #eef3fb; }
.cn-conv-grid.cn-p td { background: #fff6d5; }
.cn-lessons { margin: 0; padding-left: 1.4em; }
.cn-lessons li { margin: 0 0 6px; line-height: 1.4; }
.cn-lessons a, .cn-lesson-now a { font-weight: 600; padding: 0 !important;
  font-size: inherit !important; }
.cn-lesson-here, .cn-lesson-now { background: #fff6d5; outline: 4px solid #fff6d5; }
.cn-map svg { width: 100%; aspect-ratio: 1; border: 1px solid #ddd; touch-action: none;
  cursor: grab; }
.cn-nn { stroke: #333; stroke-width: 1; opacity: 0.55; vector-effect: non-scaling-stroke; }
.cn-zoom { position: absolute; top: 6px; right: 6px; display: flex; gap: 4px; }
.cn-zoom button { width: 32px; height: 32px; border: 1px solid #999; border-radius: 4px;
  background: white; font-size: 1.1em; cursor: pointer; }
.cn-map-side { flex: 1 1 220px; font-size: 0.85em; }
.cn-nn-title { margin: 8px 0 4px; font-weight: 600; }
.cn-nn-list { margin: 0; padding-left: 1.6em; }
.cn-nn-item { background: none; border: none; padding: 1px 0; cursor: pointer; text-align: left;
  font: inherit; color: inherit; text-decoration: underline dotted; }
.cn-pt { cursor: pointer; }
.cn-pt:hover { stroke: black; stroke-width: 0.5; }
.cn-map-keys { list-style: none; padding: 0; margin: 0; }
.cn-tip { position: absolute; pointer-events: none; background: white; border: 1px solid #999;
  padding: 4px; border-radius: 4px; box-shadow: 0 2px 6px rgba(0, 0, 0, 0.2); z-index: 10; }
.cn-tip img { display: block; width: 96px; height: 96px; object-fit: contain; }
/* On a phone: the controls, the query beside the upload box (both small), the results, then
   the examples and the explainer. */
@media (max-width: 720px) {
  #cn-search-row { flex-direction: column; gap: 10px !important; }
  #cn-side { display: contents; }
  /* The controls' boxes join the column, so "Use your own images" can follow the results. */
  #cn-controls { display: contents; }
  #cn-controls > * { order: 1; }
  #cn-own, #own-status { order: 4; }
  #cn-query { order: 2; flex-direction: row !important; flex-wrap: nowrap !important; }
  #upload-notice { order: 2; }  /* right under the upload box it speaks of */
  #cn-query > .block { flex: 1 1 0 !important; min-width: 0 !important;
    height: 116px !important; }
  /* A short prompt under the box's label: "Click to Upload" (the drop hint is cut off). */
  #cn-query [data-testid=upload-text] { padding-top: 34px; }
  #cn-query .prompt > span:not(:last-of-type) { display: none; }
  /* The two small boxes' labels stop short of their corner buttons. */
  #cn-query [data-testid=block-label] { max-width: calc(100% - 40px); }
  #cn-results { order: 3; gap: 8px !important; }
  #cn-more { order: 4; }
  #source-status { display: none; }
  /* Tighter gaps, and the header row: the lessons and a small copy-link button, one line. */
  .column, .row { --layout-gap: 10px !important; }
  #cn-header { flex-wrap: nowrap !important; gap: 8px !important; }
  #cn-lessons-column { min-width: 0 !important; flex: 1 1 0 !important; }
  #cn-link { min-width: 0 !important; flex: 0 0 96px !important; }
  /* Open, the lessons take the whole width; the button moves under them. */
  #cn-header:has(#cn-lessons-box .label-wrap.open) { flex-wrap: wrap !important; }
  #cn-header:has(#cn-lessons-box .label-wrap.open) #cn-lessons-column {
    flex-basis: 100% !important; }
  #cn-link button { font-size: 0.7rem !important; line-height: 1.15 !important;
    white-space: normal !important; padding: 4px 6px !important; }
  #cn-intro h1 { font-size: 1.4rem !important; margin: 0 0 4px !important; }
  #cn-intro p { font-size: 0.85rem !important; line-height: 1.3 !important; margin: 0 !important; }
  #search-summary p { font-size: 0.95rem !important; margin: 0 !important; }
  #cn-controls .block { padding-top: 6px !important; padding-bottom: 6px !important; }
  #results-gallery .grid-container {
    grid-template-columns: repeat(auto-fill, minmax(100px, 1fr)) !important; }
  #results-gallery .caption-label, .cn-side-gallery .caption-label { font-size: 0.62rem; }
}
"""
    + EXPLORER_CSS
)

INTRO = """
# ConvNet Playground
Which images does one layer of a CNN find similar? Choose a model, a layer and a metric, then
click any image to search with it. The **Model Explorer** looks inside the models.
"""


def build_app(state: AppState | None = None) -> gr.Blocks:
    state = state or AppState()
    with no_app_until_launch(), GuardedBlocks(title="ConvNet Playground") as demo:
        gr.Markdown(INTRO, elem_id="cn-intro")
        with gr.Row(elem_id="cn-header"):
            gr.Markdown(f"<small>Features: {state.source.message}</small>", elem_id="source-status")
            with gr.Column(scale=2, min_width=200, elem_id="cn-lessons-column"):
                lessons = lessons_accordion()
            # The URL already names the view; this link also carries an uploaded image.
            with gr.Column(scale=0, min_width=220, elem_id="cn-link"):
                gr.DeepLinkButton("Copy a link to this view", "Link copied", size="sm")
                link_note = gr.Markdown(elem_id="link-note")  # when the view cannot travel
        with gr.Tabs() as tabs:
            with gr.Tab("Semantic Search", id="search"):
                search_tab = build_search_tab(state, demo, link_note, lessons)
            with gr.Tab("Model Explorer", id="explorer") as explorer_tab:
                build_explorer_tab(state, search_tab, tabs, explorer_tab, demo)
        wire_own_images(state, search_tab.own, search_tab, demo)
        register_api(state)
        register_tools(state)
    keep_off_api_page(demo, TOOLS)
    run_slow_groups_in_background(demo)
    demo.edge = Edge()
    return demo
