"""Assemble the Blocks app: a status line, the Semantic Search and Model Explorer tabs, the API."""

from __future__ import annotations

import gradio as gr

from ui.api import register_api
from ui.common import AppState
from ui.explorer_tab import build_explorer_tab
from ui.guard import Edge, GuardedBlocks
from ui.search_tab import build_search_tab
from ui.tools import hide_internal_events, register_tools

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
CSS = """
/* Grey helper text dark enough to read (WCAG AA contrast on white). */
.info-text, .or, footer .show-api, footer .built-with, footer .settings {
  color: #4b5563 !important;
}
.min_value, .max_value { color: #4b5563 !important; }
button[role="tab"].selected { color: #9a3412 !important; }
button.primary { background: #c2410c !important; border-color: #c2410c !important; color: #fff; }
.cn-heatmap { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.cn-heatmap th, .cn-heatmap td { padding: 4px 8px; border: 1px solid #ccc; text-align: center; }
.cn-heatmap caption { caption-side: top; text-align: left; padding-bottom: 6px; }
"""

INTRO = """
# ConvNet Playground
How does a convolutional neural network *see*? Pick a dataset, a pretrained CNN, one of its
layers and a distance metric: the images that layer finds most similar to the query appear
on the right. Then look inside the models in the **Model Explorer**.
"""


def build_app(state: AppState | None = None) -> gr.Blocks:
    state = state or AppState()
    with GuardedBlocks(title="ConvNet Playground") as demo:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=True):
            gr.Markdown(f"<small>Features: {state.source.message}</small>", elem_id="source-status")
            # The URL already names the view; this link also carries an uploaded image.
            gr.DeepLinkButton(
                "Copy a link to this view", "Link copied", size="sm", scale=0, min_width=220
            )
        with gr.Tabs() as tabs:
            with gr.Tab("Semantic Search", id="search"):
                search_tab = build_search_tab(state, demo)
            with gr.Tab("Model Explorer", id="explorer") as explorer_tab:
                build_explorer_tab(state, search_tab, tabs, explorer_tab)
        register_api(state)
        register_tools(state)
    hide_internal_events(demo)
    demo.edge = Edge()
    return demo
