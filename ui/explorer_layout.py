"""Model Explorer tab's layout: its components, by section, and nothing else.

Each section function creates its boxes in page order and returns them in a frozen record;
``ui.explorer_tab`` attaches the events. Keeping events out of here lets a section's look be
changed without reading its wiring, and the records name every box the wiring may use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from convenet.inspector import (
    FEATUREVIS_STEP_PRESETS,
    FEATUREVIS_STEPS,
    INVERSION_TIME_LIMIT_S,
    TOP_CLASSES,
    TOP_IMAGES,
)
from convenet.models.registry import DEFAULT_MODEL, MODELS
from ui import explorer_handlers as h
from ui.common import AppState, dataset_dropdown, image_upload, layer_choices, model_info
from ui.convolution_html import CONV_CLICK_JS

MODEL_HEADERS = ["model", "summary", "parameters", "depth (layers)", "input size", "weights"]
LAYER_HEADERS = ["index", "name", "type", "output shape", "parameters", "trainable", "sees (px)"]


INTRO = """
Look inside one model, layer by layer. Choose a layer to see its **channels**: each picture is
optimised to make one channel fire; click one for its page. **Filters** are the layer's weights;
**activations** show where each filter fires on an image; **what the layer keeps** rebuilds
your image from the layer alone; **class evidence** shows what the model thinks the image is.
"""


@dataclass(frozen=True)
class ModelPick:
    """The models table, the model and layer boxes, and the list of every layer."""

    models_box: gr.Accordion
    models_table: gr.Dataframe
    model: gr.Dropdown
    layer: gr.Dropdown
    notice: gr.Markdown
    layer_md: gr.Markdown
    layer_filter: gr.Textbox
    layers_table: gr.Dataframe
    use_button: gr.Button


@dataclass(frozen=True)
class Channels:
    """The layer's channel grid and one channel's page (picture, top images, class bars)."""

    grid_md: gr.Markdown
    grid: gr.Gallery
    grid_channels: gr.State  # the channel number of each grid picture
    channel: gr.Number
    steps: gr.Radio
    button: gr.Button
    vis_image: gr.Image
    vis_md: gr.Markdown
    link_md: gr.Markdown
    top_gallery: gr.Gallery
    top_md: gr.Markdown
    bars_html: gr.HTML
    least_gallery: gr.Gallery  # what the channel is not
    spread_html: gr.HTML  # its activation over the dataset, as a histogram
    restored_link: gr.Textbox  # model/layer/channel of a link opened on load

    @property
    def page(self) -> list[Any]:
        """What a channel's page fills, in the order its handlers return it."""
        return [
            self.vis_image,
            self.vis_md,
            self.top_gallery,
            self.top_md,
            self.bars_html,
            self.link_md,
            self.least_gallery,
            self.spread_html,
        ]


@dataclass(frozen=True)
class ImagePick:
    """The image every image view explores: a dataset's or the visitor's own."""

    dataset: gr.Dropdown
    index: gr.Number
    gallery: gr.Gallery
    upload: gr.Image

    @property
    def inputs(self) -> list[Any]:
        """The boxes a handler reads the image from."""
        return [self.dataset, self.index, self.upload]


@dataclass(frozen=True)
class LayerViews:
    """The layer's filters and its activations on the chosen image."""

    filter_image: gr.Image
    filter_md: gr.Markdown
    maps_image: gr.Image
    overlay_image: gr.Image
    maps_md: gr.Markdown
    pixel_md: gr.Markdown  # what a clicked pixel of the layer sees
    spot: gr.State  # that pixel of the input, [y, x]


@dataclass(frozen=True)
class Convolution:
    """The first convolution by hand; ``opened`` and ``pixel`` are the panel's own state."""

    panel: gr.Accordion
    channel: gr.Number
    html: gr.HTML
    opened: gr.State
    pixel: gr.State  # [row, col] clicked on the map, None for its centre


@dataclass(frozen=True)
class Inversion:
    """What the layer keeps of the image: the image rebuilt from its activations."""

    button: gr.Button
    original: gr.Image
    inverted: gr.Image
    md: gr.Markdown


@dataclass(frozen=True)
class ClassEvidence:
    """The model's top classes for the image and the Grad-CAM of one of them."""

    top_classes: gr.Label
    choice: gr.Dropdown
    cam_image: gr.Image
    cam_md: gr.Markdown


@dataclass(frozen=True)
class Counters:
    """The session's counters and choices that the views listen to (see ui.explorer_tab)."""

    opened: gr.State  # the tab was opened once: the dataset shows
    wanted_page: gr.State  # a link named a channel: open its page once the layer shows
    model_token: gr.State  # bumped when the model is chosen
    model_ready: gr.State  # bumped once it loaded (weights available)
    layer_token: gr.State
    image_token: gr.State
    channel_token: gr.State
    current_model: gr.State


@dataclass(frozen=True)
class ExplorerLayout:
    """Every component of the tab, by section, in page order."""

    pick: ModelPick
    channels: Channels
    views: LayerViews
    image: ImagePick
    conv: Convolution
    inversion: Inversion
    evidence: ClassEvidence
    counters: Counters


def build_explorer_layout(state: AppState) -> ExplorerLayout:
    """Create the tab's components in page order (inside the tab's ``with``); no events."""
    pick = model_pick(state)
    channels = channel_section()
    views, image = filters_and_activations(state)
    conv_panel, conv_channel, conv_html = convolution_panel()
    inversion = inversion_section()
    evidence = class_evidence_section()
    # The states come after every visible component, as before the split: the built config,
    # component ids included, stays the same.
    counters = Counters(
        opened=gr.State(False),
        wanted_page=gr.State(False),
        model_token=gr.State(0),
        model_ready=gr.State(0),
        layer_token=gr.State(0),
        image_token=gr.State(0),
        channel_token=gr.State(0),
        current_model=gr.State(DEFAULT_MODEL),
    )
    conv = Convolution(conv_panel, conv_channel, conv_html, gr.State(False), gr.State(None))
    return ExplorerLayout(pick, channels, views, image, conv, inversion, evidence, counters)


def model_pick(state: AppState) -> ModelPick:
    """The intro, the models table, the model and layer boxes and the list of every layer."""
    gr.Markdown(INTRO)
    with gr.Accordion("The models, from simplest to most complex", open=True) as models_box:
        models_table = gr.Dataframe(
            value=h.model_rows(),
            headers=MODEL_HEADERS,
            interactive=False,
            wrap=True,
            label="Models",
            column_widths=["12%", "48%", "9%", "9%", "9%", "13%"],  # floors: EXPLORER_CSS
            elem_id="explorer-models",
        )
    with gr.Row(elem_id="explorer-pick"):
        model = gr.Dropdown(
            state.model_choices(),
            value=DEFAULT_MODEL,
            label="Model",
            info=model_info(DEFAULT_MODEL),
        )
        layer = gr.Dropdown(
            layer_choices(DEFAULT_MODEL),
            value=MODELS[DEFAULT_MODEL].layer_names[0],
            label="Layer",
            info="Curated layers first, then every other convolution layer",
            allow_custom_value=True,  # any layer picked in the layer table
            elem_id="explorer-layer",
        )
    notice = gr.Markdown(elem_id="explorer-notice")
    layer_md = gr.Markdown()
    with gr.Accordion("More info: every layer of this model", open=False):
        layer_filter = gr.Textbox(
            label="Filter by name or type", placeholder="e.g. conv, dwconv, ReLU"
        )
        layers_table = gr.Dataframe(
            headers=LAYER_HEADERS,
            interactive=False,
            label="Layers (click a row to explore that layer)",
            max_height=400,
        )
        use_button = gr.Button("Use this layer in Semantic Search")
        gr.Markdown("<small>Semantic Search works with the curated layers only.</small>")
    return ModelPick(
        models_box=models_box,
        models_table=models_table,
        model=model,
        layer=layer,
        notice=notice,
        layer_md=layer_md,
        layer_filter=layer_filter,
        layers_table=layers_table,
        use_button=use_button,
    )


def nine_images(label: str, elem_id: str) -> gr.Gallery:
    """A channel page's three-by-three gallery of dataset images."""
    return gr.Gallery(
        label=label,
        columns=3,
        height="auto",
        object_fit="cover",
        allow_preview=False,
        elem_id=elem_id,
    )


def channel_section() -> Channels:
    """The layer's channel grid, then one channel's page."""
    gr.Markdown("### Channels")
    grid_md = gr.Markdown()
    grid = gr.Gallery(
        label="Channels of this layer (click one)",
        columns=8,
        height="auto",
        object_fit="contain",
        allow_preview=False,
        elem_id="explorer-channel-grid",
    )
    grid_channels = gr.State([])
    with gr.Group():  # no elem_id: Gradio repeats a group's id on its inner box
        with gr.Row():
            channel = gr.Number(value=0, precision=0, label="Channel", info="0 and up")
            steps = gr.Radio(
                list(FEATUREVIS_STEP_PRESETS),
                value=FEATUREVIS_STEPS,
                label="Optimisation steps",
                info=f"More is sharper and slower; the shipped pictures use {FEATUREVIS_STEPS}",
            )
            button = gr.Button("Show channel", variant="primary")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=280):
                vis_image = gr.Image(
                    label="Feature visualization",
                    interactive=False,
                    format="png",
                    height=400,
                    elem_id="explorer-featurevis",
                )
                vis_md = gr.Markdown()
                link_md = gr.Markdown(elem_id="explorer-channel-link")
            with gr.Column(scale=3, min_width=280):
                top_gallery = nine_images(
                    f"Where it fires most: {TOP_IMAGES} dataset images, cropped around the spot",
                    "explorer-top-images",
                )
                top_md = gr.Markdown()
        bars_html = gr.HTML(elem_id="explorer-class-bars")
        with (
            gr.Accordion("What it is not: the images it ignores, and its spread", open=False),
            gr.Row(equal_height=False),
        ):
            with gr.Column(scale=3, min_width=280):
                least_gallery = nine_images(
                    f"The {TOP_IMAGES} it ignores most (what it is not)", "explorer-least-images"
                )
            with gr.Column(scale=2, min_width=280):
                spread_html = gr.HTML(elem_id="explorer-spread")
    restored_link = gr.Textbox(visible=False)
    return Channels(
        grid_md=grid_md,
        grid=grid,
        grid_channels=grid_channels,
        channel=channel,
        steps=steps,
        button=button,
        vis_image=vis_image,
        vis_md=vis_md,
        link_md=link_md,
        top_gallery=top_gallery,
        top_md=top_md,
        bars_html=bars_html,
        least_gallery=least_gallery,
        spread_html=spread_html,
        restored_link=restored_link,
    )


def filters_and_activations(state: AppState) -> tuple[LayerViews, ImagePick]:
    """The layer's filters, the image to explore, then the layer's activations on it."""
    gr.Markdown("### Filters")
    filter_image = gr.Image(
        label="Filters", interactive=False, format="png", height=480, elem_id="explorer-filters"
    )
    filter_md = gr.Markdown()
    gr.Markdown("### Image to explore")
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                dataset = dataset_dropdown(state, label="Dataset")
                index = gr.Number(value=0, precision=0, minimum=0, label="Image number")
            gallery = gr.Gallery(
                label="Click an image to explore it",
                columns=10,
                height=220,
                allow_preview=False,
                elem_id="explorer-dataset-gallery",
            )
        with gr.Column(scale=2, min_width=200):
            upload = image_upload("Or use your own image", height=200)
    gr.Markdown("### Activations")
    with gr.Row():
        maps_image = gr.Image(
            label="Feature maps", interactive=False, format="png", elem_id="explorer-maps"
        )
        overlay_image = gr.Image(
            label="Mean activation (click a spot)",
            interactive=False,
            format="png",
            elem_id="explorer-overlay",
        )
    maps_md = gr.Markdown()
    pixel_md = gr.Markdown(elem_id="explorer-pixel")
    spot = gr.State(None)
    views = LayerViews(filter_image, filter_md, maps_image, overlay_image, maps_md, pixel_md, spot)
    return views, ImagePick(dataset, index, gallery, upload)


def convolution_panel() -> tuple[gr.Accordion, gr.Number, gr.HTML]:
    """The closed panel that takes the first convolution apart at one pixel."""
    with gr.Accordion("How a convolution computes: the first layer, by hand", open=False) as panel:
        channel = gr.Number(
            value=0,
            precision=0,
            minimum=0,
            label="Channel of the first convolution",
            info="0 and up",
        )
        html = gr.HTML(elem_id="explorer-convolution", js_on_load=CONV_CLICK_JS)
    return panel, channel, html


def inversion_section() -> Inversion:
    """The button that rebuilds the image from the layer, and the two images side by side."""
    gr.Markdown("### What does this layer keep of your image?")
    button = gr.Button(
        f"Rebuild the image from this layer (up to {INVERSION_TIME_LIMIT_S:.0f} s)",
        elem_id="explorer-invert-button",
    )
    with gr.Row():
        original = gr.Image(label="Original", interactive=False, format="png")
        inverted = gr.Image(
            label="Rebuilt from the layer alone",
            interactive=False,
            format="png",
            elem_id="explorer-inverted",
        )
    md = gr.Markdown()
    return Inversion(button, original, inverted, md)


def class_evidence_section() -> ClassEvidence:
    """The top classes, the class to explain and its Grad-CAM."""
    gr.Markdown("### Class evidence")
    with gr.Row():
        with gr.Column():
            top_classes = gr.Label(num_top_classes=TOP_CLASSES, label="Top-5 ImageNet classes")
            choice = gr.Dropdown(
                [], label="Explain class", allow_custom_value=True, info="One of the top 5"
            )
        with gr.Column():
            cam_image = gr.Image(label="Grad-CAM", interactive=False, format="png")
            cam_md = gr.Markdown()
    return ClassEvidence(top_classes, choice, cam_image, cam_md)
