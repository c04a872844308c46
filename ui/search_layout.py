"""The Semantic Search tab's layout: every box in its place, nothing wired (``ui/search_tab.py``
wires the events). On a phone the controls, the query and the results stack in that order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from convenet.search.recipes import RECIPES
from ui.common import (
    DEFAULT_METRIC,
    DEFAULT_MODEL,
    EXAMPLES_DIR,
    AppState,
    dataset_dropdown,
    default_layer,
    image_upload,
    layer_choices,
    layer_info,
    metric_choices,
    model_info,
)
from ui.own_images import OwnImagesBox, build_own_images_box
from ui.search_events import ALL_CLASSES
from ui.view_state import K_RANGE
from ui.why_panel import WhyPanel

TOP_K = 50

EXPLAINER = """
**How it works.** A CNN turns an image into feature maps, layer after layer. We average each
chosen layer's maps into one vector per image, and rank the dataset by how close each vector is
to the query's. **Early layers** respond to colours, edges and textures, so they find images that
*look* alike; **late layers** respond to object parts and whole objects, so they find images that
*mean* the same. The **metric** decides what "close" means. Try the first and the last layer of a
model on the same query and watch the score change.
"""


@dataclass
class SearchLayout:
    """The tab's boxes, by what they hold."""

    dataset: gr.Dropdown
    own: OwnImagesBox
    model: gr.Dropdown
    layer: gr.Dropdown
    metric: gr.Dropdown
    recipe: gr.Dropdown
    notice: gr.Markdown
    query_picture: gr.Image
    upload: gr.Image
    upload_notice: gr.Markdown
    examples: Any  # gr.Examples, or None when no example ships
    query_index: gr.Number
    link: gr.Textbox  # the view's URL query string
    refusal: gr.Textbox  # an upload's refusal, read in the page
    summary: gr.Markdown
    results: gr.Gallery
    legend: gr.HTML
    k: gr.Slider
    csv_button: gr.DownloadButton
    json_button: gr.DownloadButton
    why: WhyPanel
    category: gr.Dropdown
    dataset_images: gr.Gallery


def search_layout(state: AppState) -> SearchLayout:
    """Place the tab's boxes: controls and query on the side, results and panels beside them."""
    with gr.Row(elem_id="cn-search-row"):
        with gr.Column(scale=1, min_width=280, elem_id="cn-side"):
            with gr.Column(elem_id="cn-controls"):
                dataset = dataset_dropdown(state, label="Dataset")
                own = build_own_images_box()
                model = gr.Dropdown(
                    state.model_choices(),
                    value=DEFAULT_MODEL,
                    label="Model",
                    info=model_info(DEFAULT_MODEL),
                )
                first_layer = default_layer(DEFAULT_MODEL)
                layer = gr.Dropdown(
                    layer_choices(DEFAULT_MODEL),
                    value=first_layer,
                    label="Layer",
                    info=layer_info(DEFAULT_MODEL, first_layer),
                )
                with gr.Row():  # side by side: on a phone the results stay near the top
                    metric = gr.Dropdown(
                        metric_choices(),
                        value=DEFAULT_METRIC,
                        label="Distance metric",
                        min_width=120,
                    )
                    recipe = gr.Dropdown(
                        list(RECIPES), value="plain", label="Search recipe", min_width=120
                    )
                notice = gr.Markdown(elem_id="search-notice")
            with gr.Column(elem_id="cn-query"):  # on a phone: side by side, above the results
                query_picture = gr.Image(
                    label="Query", type="filepath", interactive=False, height=220
                )
                upload = image_upload("Or search with your own image", height=220)
            upload_notice = gr.Markdown(elem_id="upload-notice")
            with gr.Column(elem_id="cn-more"):
                example_files = sorted(str(p) for p in EXAMPLES_DIR.glob("*.jpg"))
                examples = (
                    gr.Examples(example_files, inputs=upload, label="Example images")
                    if example_files
                    else None
                )
                gr.Markdown(EXPLAINER)
            query_index = gr.Number(value=0, precision=0, visible=False, label="query index")
            link = gr.Textbox(visible=False, label="link")  # the view's URL query string
            refusal = gr.Textbox(visible=False, label="refusal")  # an upload's, read in the page
        with gr.Column(scale=3, elem_id="cn-results"):
            summary = gr.Markdown(elem_id="search-summary")
            results = gr.Gallery(
                label=f"Top {TOP_K} most similar",
                height=560,
                allow_preview=False,
                elem_id="results-gallery",
                object_fit="contain",
            )
            legend = gr.HTML(elem_id="search-legend")
            with gr.Row(elem_id="cn-results-tools"):
                k = gr.Slider(
                    *K_RANGE,
                    value=TOP_K,
                    step=5,
                    label="Results shown (k)",
                    min_width=220,
                    elem_id="results-k",
                )
                with gr.Column(min_width=160, scale=0):
                    csv_button = gr.DownloadButton("Results as CSV", size="sm")
                    json_button = gr.DownloadButton("Results as JSON", size="sm")
            why = WhyPanel()
            with gr.Accordion("Dataset: click an image to make it the query", open=True):
                category = gr.Dropdown([ALL_CLASSES], value=ALL_CLASSES, label="Show class")
                dataset_images = gr.Gallery(
                    label="Dataset images",
                    height=300,
                    allow_preview=False,
                    elem_id="dataset-gallery",
                )
    return SearchLayout(
        dataset=dataset,
        own=own,
        model=model,
        layer=layer,
        metric=metric,
        recipe=recipe,
        notice=notice,
        query_picture=query_picture,
        upload=upload,
        upload_notice=upload_notice,
        examples=examples,
        query_index=query_index,
        link=link,
        refusal=refusal,
        summary=summary,
        results=results,
        legend=legend,
        k=k,
        csv_button=csv_button,
        json_button=json_button,
        why=why,
        category=category,
        dataset_images=dataset_images,
    )
