"""Model Explorer tab: its layout, then its wiring; what each event does is in explorer_handlers.

The layout functions only create components and hand them back in frozen records, one per
section; the ``wire_*`` functions only attach events, one section each, so a section's boxes and
its events can be read apart. Handlers get the Playground through ``bound`` (ui.search_events),
as the search tab's get the app's state: a ``functools.partial`` would hide their type hints.

Views refresh through counters held in gr.State (model loaded, layer chosen, image chosen,
channel chosen): a handler that changes one bumps its counter, and every view listens to the
counters it depends on, so each view runs once per change and never with a model and a layer
that do not belong together.
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
from convenet.playground import Playground
from ui import explorer_channel as ch
from ui import explorer_handlers as h
from ui.common import AppState, dataset_dropdown, image_upload, layer_choices, model_info
from ui.convolution_html import CONV_CLICK_JS
from ui.groups import EXPLORER, FEATUREVIS
from ui.search_events import bound, use_in_search
from ui.search_tab import SearchTab

MODEL_HEADERS = ["model", "summary", "parameters", "depth (layers)", "input size", "weights"]
LAYER_HEADERS = ["index", "name", "type", "output shape", "parameters", "trainable", "sees (px)"]
PRIVATE: dict[str, Any] = {"api_visibility": "private"}


INTRO = """
Look inside one model, layer by layer. Choose a layer to see its **channels**: each picture is
optimised to make one channel fire; click one for its page. **Filters** are the layer's weights;
**activations** show where each filter fires on an image; **what the layer keeps** rebuilds
your image from the layer alone; **class evidence** shows what the model thinks the image is.
"""


# -- layout: components only, no events ------------------------------------------------------


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
    """The session's counters and choices that the views listen to (see the module's doc)."""

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
    # The states come after every visible component, as they always have: the page's config,
    # component ids included, stays what links and scripts written against it know.
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
                top_gallery = gr.Gallery(
                    label=f"The {TOP_IMAGES} dataset images that excite it most",
                    columns=3,
                    height="auto",
                    object_fit="cover",
                    allow_preview=False,
                    elem_id="explorer-top-images",
                )
                top_md = gr.Markdown()
        bars_html = gr.HTML(elem_id="explorer-class-bars")
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
        overlay_image = gr.Image(label="Mean activation", interactive=False, format="png")
    maps_md = gr.Markdown()
    views = LayerViews(filter_image, filter_md, maps_image, overlay_image, maps_md)
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


# -- wiring: events only, one section a function -----------------------------------------------


def build_explorer_tab(
    state: AppState, search_tab: SearchTab, tabs: gr.Tabs, tab: gr.Tab, demo: gr.Blocks
) -> None:
    """Fill the Model Explorer ``tab``; ``tabs`` lets links and "use in Semantic Search"
    switch tabs; ``demo`` restores a channel link on load.

    The sections are wired in the order the events were always registered in: events that
    share a trigger run in that order, and the page's config stays the same.
    """
    ui = build_explorer_layout(state)
    pg = state.playground
    wire_choices(ui, pg, tab)
    wire_layer_views(ui, pg)
    wire_filters_and_activations(ui, pg)
    wire_class_evidence(ui, pg)
    wire_convolution(ui, pg)
    wire_channel_page(ui, pg)
    wire_channel_links(ui, tabs, demo)
    wire_inversion(ui, pg)
    wire_use_in_search(ui, search_tab, tabs)


def bump(token: gr.State, event: Any) -> None:
    """Once ``event`` succeeds, count one more change on ``token``: its views refresh."""
    event.success(lambda n: n + 1, token, token, **PRIVATE)


def wire_choices(ui: ExplorerLayout, pg: Playground, tab: gr.Tab) -> None:
    """The model, layer and image choices: each bumps the counter its views listen to."""
    pick, image, counters = ui.pick, ui.image, ui.counters
    image_outputs = [image.gallery, image.index, image.upload]
    gr.on([tab.select], h.explorer_models, None, pick.models_table, api_name="explorer_models")
    tab.select(lambda: True, None, counters.opened, **PRIVATE)
    dataset_shown = counters.opened.change(
        bound(h.show_dataset, pg), image.dataset, image_outputs, **PRIVATE
    )
    bump(counters.model_token, dataset_shown)
    pick.model.input(
        h.curated_layers,
        [pick.model, pick.layer, counters.current_model, counters.model_token],
        [pick.model, pick.layer, pick.notice, counters.current_model, counters.model_token],
        api_name="curated_layers",
    )
    loaded = counters.model_token.change(
        bound(h.explorer_layers, pg),
        [pick.model, pick.layer],
        pick.layer,
        api_name="explorer_layers",
        **EXPLORER.events(),  # two workers: a crowd here cannot hold a search (ui.groups)
    )
    bump(counters.model_ready, loaded)
    bump(counters.layer_token, loaded)
    bump(counters.layer_token, pick.layer.input(lambda: None, None, None, **PRIVATE))
    bump(
        counters.layer_token,
        pick.layers_table.select(h.pick_layer_row, None, pick.layer, api_name="pick_layer_row"),
    )
    bump(
        counters.image_token,
        image.dataset.input(
            bound(h.show_dataset, pg),
            image.dataset,
            image_outputs,
            api_name="explorer_dataset_images",
        ),
    )
    bump(
        counters.image_token,
        image.gallery.select(
            h.pick_image, None, [image.index, image.upload], api_name="pick_image"
        ),
    )
    for event in (image.index.submit, image.upload.upload, image.upload.clear):
        bump(counters.image_token, event(lambda: None, None, None, **PRIVATE))


def wire_layer_views(ui: ExplorerLayout, pg: Playground) -> None:
    """What a layer shows once chosen: the layer list, its description and its channel grid."""
    pick, channels, counters = ui.pick, ui.channels, ui.counters
    gr.on(
        [counters.model_ready.change, pick.layer_filter.input],
        bound(h.layer_table, pg),
        [pick.model, pick.layer_filter],
        pick.layers_table,
        api_name="layer_table",
    )
    gr.on(
        [counters.layer_token.change],
        bound(h.layer_info, pg),
        [pick.model, pick.layer, channels.channel],
        [pick.layer_md, channels.channel, *channels.page],
        api_name="layer_info",
    ).then(
        ch.open_wanted_page,
        [counters.wanted_page, counters.channel_token],
        [counters.wanted_page, counters.channel_token],
        **PRIVATE,
    )
    gr.on(
        [counters.layer_token.change],
        bound(ch.channel_grid, pg),
        [pick.model, pick.layer],
        [channels.grid, channels.grid_channels, channels.grid_md],
        api_name="channel_grid",
    )


def wire_filters_and_activations(ui: ExplorerLayout, pg: Playground) -> None:
    """The layer's filters follow the layer; its activations, the layer and the image."""
    model, layer, views, counters = ui.pick.model, ui.pick.layer, ui.views, ui.counters
    gr.on(
        [counters.layer_token.change],
        bound(h.filters, pg),
        [model, layer],
        [views.filter_image, views.filter_md],
        api_name="filters",
        **EXPLORER.events(),
    )
    gr.on(
        [counters.layer_token.change, counters.image_token.change],
        bound(h.activations, pg),
        [model, layer, *ui.image.inputs],
        [views.maps_image, views.overlay_image, views.maps_md],
        api_name="activations",
        **EXPLORER.events(),
    )


def wire_class_evidence(ui: ExplorerLayout, pg: Playground) -> None:
    """The top classes follow the model and the image; Grad-CAM follows them or a class."""
    evidence, counters = ui.evidence, ui.counters
    cam_inputs = [ui.pick.model, *ui.image.inputs, evidence.choice]
    cam_outputs = [evidence.cam_image, evidence.cam_md]
    gr.on(
        [counters.model_ready.change, counters.image_token.change],
        bound(h.predictions, pg),
        [ui.pick.model, *ui.image.inputs],
        [evidence.top_classes, evidence.choice],
        api_name="predictions",
        **EXPLORER.events(),
    ).success(bound(h.gradcam_view, pg), cam_inputs, cam_outputs, **PRIVATE, **EXPLORER.events())
    evidence.choice.input(
        bound(h.gradcam_view, pg),
        cam_inputs,
        cam_outputs,
        api_name="gradcam",
        **EXPLORER.events(),
    )


def wire_convolution(ui: ExplorerLayout, pg: Playground) -> None:
    """The first convolution by hand: drawn as its panel opens, then for a channel, a clicked
    pixel of the map, another image or model (whose map starts again at its centre)."""
    conv, counters = ui.conv, ui.counters
    conv_inputs = [ui.pick.model, *ui.image.inputs, conv.channel, conv.pixel]
    convolution = bound(h.convolution, pg)
    conv.panel.expand(lambda: True, None, conv.opened, **PRIVATE)
    conv.panel.collapse(lambda: False, None, conv.opened, **PRIVATE)
    gr.on(
        [conv.panel.expand, conv.channel.submit, conv.channel.blur],
        convolution,
        conv_inputs,
        conv.html,
        api_name="convolution",
        **EXPLORER.events(),
    )
    conv.html.click(h.pick_pixel, None, conv.pixel, **PRIVATE).success(
        convolution, conv_inputs, conv.html, **PRIVATE, **EXPLORER.events()
    )

    def redraw_convolution(on: bool, *values: Any) -> Any:
        """Redrawn only while the panel is open: a closed one costs nothing."""
        return convolution(*values) if on else gr.skip()

    redraw_inputs = [conv.opened, *conv_inputs]
    gr.on([counters.model_ready.change], lambda: None, None, conv.pixel, **PRIVATE).then(
        redraw_convolution, redraw_inputs, conv.html, **PRIVATE, **EXPLORER.events()
    )
    counters.image_token.change(
        redraw_convolution, redraw_inputs, conv.html, **PRIVATE, **EXPLORER.events()
    )


def wire_channel_page(ui: ExplorerLayout, pg: Playground) -> None:
    """One channel: a grid click, the button or Enter open its page; a missing picture follows."""
    model, layer, channels, counters = ui.pick.model, ui.pick.layer, ui.channels, ui.counters
    this_channel = [model, layer, channels.channel]
    picture = [channels.vis_image, channels.vis_md]
    bump(
        counters.channel_token,
        channels.grid.select(
            ch.pick_channel, channels.grid_channels, channels.channel, api_name="pick_channel"
        ),
    )
    bump(counters.channel_token, channels.channel.submit(lambda: None, None, None, **PRIVATE))
    page = counters.channel_token.change(
        bound(ch.channel_page, pg),
        [*this_channel, ui.image.dataset],
        channels.page,
        api_name="channel_page",
        **EXPLORER.events(),
    )
    page.success(None, this_channel, None, js=ch.CHANNEL_URL_JS)
    page.success(
        bound(ch.featurevis_if_missing, pg), this_channel, picture, **PRIVATE, **FEATUREVIS.events()
    )
    channels.button.click(
        bound(ch.featurevis, pg),
        [*this_channel, channels.steps],
        picture,
        api_name="featurevis",
        **FEATUREVIS.events(),
    ).success(lambda n: n + 1, counters.channel_token, counters.channel_token, **PRIVATE)
    ui.image.dataset.input(  # an open channel page follows the dataset
        lambda link, n: n + 1 if link else n,
        [channels.link_md, counters.channel_token],
        counters.channel_token,
        **PRIVATE,
    )


def wire_channel_links(ui: ExplorerLayout, tabs: gr.Tabs, demo: gr.Blocks) -> None:
    """A channel's link opened on load: the tab opens, then the model, layer and channel."""
    pick, channels, counters = ui.pick, ui.channels, ui.counters
    demo.load(None, None, tabs, js=ch.OPEN_EXPLORER_JS)
    # progress on the hidden box, not the models box: a layout's status is costly (test_page_cost)
    demo.load(
        ch.restore_channel,
        None,
        [pick.model, pick.layer, channels.channel, channels.restored_link, pick.models_box],
        api_name="restore_channel",
        show_progress_on=[channels.restored_link],
    )
    channels.restored_link.change(
        ch.from_link,
        [channels.restored_link, pick.model],
        [counters.current_model, counters.wanted_page, counters.opened],
        **PRIVATE,
    ).success(h.explorer_models, None, pick.models_table, **PRIVATE)


def wire_inversion(ui: ExplorerLayout, pg: Playground) -> None:
    """The rebuild button: slow, so it shares the feature visualization's one worker."""
    ui.inversion.button.click(
        bound(h.invert, pg),
        [ui.pick.model, ui.pick.layer, *ui.image.inputs],
        [ui.inversion.original, ui.inversion.inverted, ui.inversion.md],
        api_name="invert",
        **FEATUREVIS.events(),
    )


def wire_use_in_search(ui: ExplorerLayout, search_tab: SearchTab, tabs: gr.Tabs) -> None:
    """The search tab takes the layer (or says why not) and shows its results at once."""
    pick = ui.pick
    used = search_tab.change_view(
        pick.use_button.click,
        use_in_search,
        [pick.model, pick.layer],
        api_name="use_layer_in_search",
    )
    used.success(None, None, tabs, js=ch.SHOW_SEARCH_JS)
