"""Assemble the Blocks app: a status line, the Semantic Search and Model Explorer tabs, the API."""

from __future__ import annotations

import gradio as gr

from ui.api import register_api
from ui.common import EXAMPLES_DIR, AppState
from ui.explorer_tab import build_explorer_tab
from ui.guard import Edge, GuardedBlocks
from ui.search_tab import build_search_tab

CSS = """
.cn-heatmap { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.cn-heatmap th, .cn-heatmap td { padding: 4px 8px; border: 1px solid #ccc; text-align: center; }
.cn-heatmap caption { caption-side: top; text-align: left; padding-bottom: 6px; }
.cn-scroll { overflow-x: auto; max-width: 100%; }
.cn-swatch { display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.3em 0 0.2em;
  vertical-align: -0.1em; border-radius: 2px; }
.cn-meaning { text-decoration: underline dotted; cursor: help; }
/* Galleries: as many columns as fit, so ranks read in order at any width. */
#results-gallery .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)) !important; }
#dataset-gallery .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(72px, 1fr)) !important; }
/* Captions wrap instead of being cut off under a small tile. */
#results-gallery .caption-label { white-space: normal !important; overflow: visible !important;
  text-overflow: clip !important; max-width: 100% !important; }
/* On a phone: the controls, then the results, then the query and upload. */
@media (max-width: 720px) {
  #cn-search-row { flex-direction: column; }
  #cn-side { display: contents; }
  #cn-controls { order: 1; }
  #cn-results { order: 2; }
  #cn-query { order: 3; }
  #source-status { display: none; }
  #results-gallery .grid-container {
    grid-template-columns: repeat(auto-fill, minmax(100px, 1fr)) !important; }
}
"""

INTRO = """
# ConvNet Playground
Which images does one layer of a CNN find similar? Choose a model, a layer and a metric, then
click any image to search with it. The **Model Explorer** looks inside the models.
"""


def build_app(state: AppState | None = None) -> gr.Blocks:
    state = state or AppState()
    with GuardedBlocks(title="ConvNet Playground") as demo:
        gr.Markdown(INTRO)
        gr.Markdown(f"<small>Features: {state.source.message}</small>", elem_id="source-status")
        with gr.Tabs() as tabs:
            with gr.Tab("Semantic Search", id="search"):
                search_tab = build_search_tab(state, demo)
            with gr.Tab("Model Explorer", id="explorer") as explorer_tab:
                build_explorer_tab(state, search_tab, tabs, explorer_tab)
        register_api(state)
    demo.edge = Edge([state.source.root, EXAMPLES_DIR])
    return demo
