"""Model Explorer tab: the layout and its wiring; what each event does is in explorer_handlers.

Views refresh through counters held in gr.State (model loaded, layer chosen, image chosen,
channel chosen): a handler that changes one bumps its counter, and every view listens to the
counters it depends on, so each view runs once per change and never with a model and a layer
that do not belong together.
"""

from __future__ import annotations

from functools import partial
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
from ui import explorer_channel as ch
from ui import explorer_handlers as h
from ui.common import AppState, dataset_dropdown, image_upload, layer_choices, model_info
from ui.convolution_html import CONV_CLICK_JS
from ui.groups import EXPLORER, FEATUREVIS
from ui.search_events import use_in_search
from ui.search_tab import SearchTab

MODEL_HEADERS = ["model", "summary", "parameters", "depth (layers)", "input size", "weights"]
LAYER_HEADERS = ["index", "name", "type", "output shape", "parameters", "trainable", "sees (px)"]


INTRO = """
Look inside one model, layer by layer. Choose a layer to see its **channels**: each picture is
optimised to make one channel fire; click one for its page. **Filters** are the layer's weights;
**activations** show where each filter fires on an image; **what the layer keeps** rebuilds
your image from the layer alone; **class evidence** shows what the model thinks the image is.
"""


def build_explorer_tab(
    state: AppState, search_tab: SearchTab, tabs: gr.Tabs, tab: gr.Tab, demo: gr.Blocks
) -> None:
    """Fill the Model Explorer ``tab``; ``tabs`` lets links and "use in Semantic Search"
    switch tabs; ``demo`` restores a channel link on load."""
    pg = state.playground
    private: dict[str, Any] = {"api_visibility": "private"}
    heavy = FEATUREVIS.events()

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
    model_notice = gr.Markdown(elem_id="explorer-notice")
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
    gr.Markdown("### Channels")
    grid_md = gr.Markdown()
    channel_grid = gr.Gallery(
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
            channel_button = gr.Button("Show channel", variant="primary")
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
    restored_link = gr.Textbox(visible=False)  # model/layer/channel of a link opened on load
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
            images = gr.Gallery(
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
    with gr.Accordion(
        "How a convolution computes: the first layer, by hand", open=False
    ) as conv_panel:
        conv_channel = gr.Number(
            value=0,
            precision=0,
            minimum=0,
            label="Channel of the first convolution",
            info="0 and up",
        )
        conv_html = gr.HTML(elem_id="explorer-convolution", js_on_load=CONV_CLICK_JS)
    gr.Markdown("### What does this layer keep of your image?")
    invert_button = gr.Button(
        f"Rebuild the image from this layer (up to {INVERSION_TIME_LIMIT_S:.0f} s)",
        elem_id="explorer-invert-button",
    )
    with gr.Row():
        original_image = gr.Image(label="Original", interactive=False, format="png")
        inverted_image = gr.Image(
            label="Rebuilt from the layer alone",
            interactive=False,
            format="png",
            elem_id="explorer-inverted",
        )
    invert_md = gr.Markdown()
    gr.Markdown("### Class evidence")
    with gr.Row():
        with gr.Column():
            top_classes = gr.Label(num_top_classes=TOP_CLASSES, label="Top-5 ImageNet classes")
            class_choice = gr.Dropdown(
                [], label="Explain class", allow_custom_value=True, info="One of the top 5"
            )
        with gr.Column():
            cam_image = gr.Image(label="Grad-CAM", interactive=False, format="png")
            cam_md = gr.Markdown()

    # -- events -------------------------------------------------------------------------
    opened = gr.State(False)
    wanted_page = gr.State(False)  # a link named a channel: open its page once the layer shows
    model_token = gr.State(0)  # bumped when the model is chosen
    model_ready = gr.State(0)  # bumped once it loaded (weights available)
    layer_token = gr.State(0)
    image_token = gr.State(0)
    channel_token = gr.State(0)
    current_model = gr.State(DEFAULT_MODEL)
    image_inputs = [dataset, index, upload]
    keras_view = EXPLORER.events()  # two workers: a crowd here cannot hold a search (ui.groups)

    def bump(token: gr.State, event: Any) -> None:
        event.success(lambda n: n + 1, token, token, **private)

    gr.on([tab.select], h.explorer_models, None, models_table, api_name="explorer_models")
    tab.select(lambda: True, None, opened, **private)
    dataset_shown = opened.change(
        partial(h.show_dataset, pg), dataset, [images, index, upload], **private
    )
    bump(model_token, dataset_shown)
    model.input(
        h.curated_layers,
        [model, layer, current_model, model_token],
        [model, layer, model_notice, current_model, model_token],
        api_name="curated_layers",
    )
    loaded = model_token.change(
        partial(h.explorer_layers, pg),
        [model, layer],
        layer,
        api_name="explorer_layers",
        **keras_view,
    )
    bump(model_ready, loaded)
    bump(layer_token, loaded)
    bump(layer_token, layer.input(lambda: None, None, None, **private))
    bump(layer_token, layers_table.select(h.pick_layer_row, None, layer, api_name="pick_layer_row"))
    bump(
        image_token,
        dataset.input(
            partial(h.show_dataset, pg),
            dataset,
            [images, index, upload],
            api_name="explorer_dataset_images",
        ),
    )
    bump(image_token, images.select(h.pick_image, None, [index, upload], api_name="pick_image"))
    for event in (index.submit, upload.upload, upload.clear):
        bump(image_token, event(lambda: None, None, None, **private))

    gr.on(
        [model_ready.change, layer_filter.input],
        partial(h.layer_table, pg),
        [model, layer_filter],
        layers_table,
        api_name="layer_table",
    )
    page_outputs = [vis_image, vis_md, top_gallery, top_md, bars_html, link_md]
    gr.on(
        [layer_token.change],
        partial(h.layer_info, pg),
        [model, layer, channel],
        [layer_md, channel, *page_outputs],
        api_name="layer_info",
    ).then(
        ch.open_wanted_page, [wanted_page, channel_token], [wanted_page, channel_token], **private
    )
    gr.on(
        [layer_token.change],
        partial(ch.channel_grid, pg),
        [model, layer],
        [channel_grid, grid_channels, grid_md],
        api_name="channel_grid",
    )
    gr.on(
        [layer_token.change],
        partial(h.filters, pg),
        [model, layer],
        [filter_image, filter_md],
        api_name="filters",
        **keras_view,
    )
    gr.on(
        [layer_token.change, image_token.change],
        partial(h.activations, pg),
        [model, layer, *image_inputs],
        [maps_image, overlay_image, maps_md],
        api_name="activations",
        **keras_view,
    )
    cam_inputs = [model, *image_inputs, class_choice]
    gr.on(
        [model_ready.change, image_token.change],
        partial(h.predictions, pg),
        [model, *image_inputs],
        [top_classes, class_choice],
        api_name="predictions",
        **keras_view,
    ).success(partial(h.gradcam_view, pg), cam_inputs, [cam_image, cam_md], **private, **keras_view)
    class_choice.input(
        partial(h.gradcam_view, pg),
        cam_inputs,
        [cam_image, cam_md],
        api_name="gradcam",
        **keras_view,
    )

    # The first convolution by hand: drawn as its panel opens, then for a channel, a clicked
    # pixel of the map, another image or model (whose map starts again at its centre).
    conv_open, conv_pixel = gr.State(False), gr.State(None)
    conv_inputs = [model, *image_inputs, conv_channel, conv_pixel]
    convolution = partial(h.convolution, pg)
    conv_panel.expand(lambda: True, None, conv_open, **private)
    conv_panel.collapse(lambda: False, None, conv_open, **private)
    gr.on(
        [conv_panel.expand, conv_channel.submit, conv_channel.blur],
        convolution,
        conv_inputs,
        conv_html,
        api_name="convolution",
        **keras_view,
    )
    conv_html.click(h.pick_pixel, None, conv_pixel, **private).success(
        convolution, conv_inputs, conv_html, **private, **keras_view
    )

    def redraw_convolution(on: bool, *values: Any) -> Any:
        return convolution(*values) if on else gr.skip()

    gr.on([model_ready.change], lambda: None, None, conv_pixel, **private).then(
        redraw_convolution, [conv_open, *conv_inputs], conv_html, **private, **keras_view
    )
    image_token.change(
        redraw_convolution, [conv_open, *conv_inputs], conv_html, **private, **keras_view
    )

    # One channel: a grid click, the button or Enter open its page; a missing picture follows.
    bump(
        channel_token,
        channel_grid.select(ch.pick_channel, grid_channels, channel, api_name="pick_channel"),
    )
    bump(channel_token, channel.submit(lambda: None, None, None, **private))
    page = channel_token.change(
        partial(ch.channel_page, pg),
        [model, layer, channel, dataset],
        page_outputs,
        api_name="channel_page",
        **keras_view,
    )
    page.success(None, [model, layer, channel], None, js=ch.CHANNEL_URL_JS)
    page.success(
        partial(ch.featurevis_if_missing, pg),
        [model, layer, channel],
        [vis_image, vis_md],
        **private,
        **heavy,
    )
    channel_button.click(
        partial(ch.featurevis, pg),
        [model, layer, channel, steps],
        [vis_image, vis_md],
        api_name="featurevis",
        **heavy,
    ).success(lambda n: n + 1, channel_token, channel_token, **private)
    dataset.input(  # an open channel page follows the dataset
        lambda link, n: n + 1 if link else n,
        [link_md, channel_token],
        channel_token,
        **private,
    )
    demo.load(None, None, tabs, js=ch.OPEN_EXPLORER_JS)
    demo.load(
        ch.restore_channel,
        None,
        [model, layer, channel, restored_link, models_box],
        api_name="restore_channel",
        show_progress_on=[restored_link],  # not the models box: a layout's status is costly
    )
    restored_link.change(
        ch.from_link, [restored_link, model], [current_model, wanted_page, opened], **private
    ).success(h.explorer_models, None, models_table, **private)
    invert_button.click(
        partial(h.invert, pg),
        [model, layer, *image_inputs],
        [original_image, inverted_image, invert_md],
        api_name="invert",
        **heavy,
    )
    # The search tab takes the layer (or says why not) and shows its results at once.
    used = search_tab.change_view(
        use_button.click, use_in_search, [model, layer], api_name="use_layer_in_search"
    )
    used.success(None, None, tabs, js=ch.SHOW_SEARCH_JS)
