"""Model Explorer tab's wiring: one function a section attaches that section's events to the
boxes ``ui.explorer_layout`` made; what each event does is in explorer_handlers.

Handlers get the Playground through ``bound`` (ui.search_events), as the search tab's get the
app's state: a ``functools.partial`` would hide their type hints (gr.SelectData, gr.Request)
from Gradio.

Views refresh through counters held in gr.State (model loaded, layer chosen, image chosen,
channel chosen): a handler that changes one bumps its counter, and every view listens to the
counters it depends on, so each view runs once per change and never with a model and a layer
that do not belong together.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from convenet.playground import Playground
from ui import explorer_channel as ch
from ui import explorer_handlers as h
from ui.common import AppState
from ui.explorer_layout import ExplorerLayout, build_explorer_layout
from ui.groups import EXPLORER, FEATUREVIS
from ui.search_events import bound, use_in_search
from ui.search_tab import SearchTab

PRIVATE: dict[str, Any] = {"api_visibility": "private"}


def build_explorer_tab(
    state: AppState, search_tab: SearchTab, tabs: gr.Tabs, tab: gr.Tab, demo: gr.Blocks
) -> None:
    """Fill the Model Explorer ``tab``; ``tabs`` lets links and "use in Semantic Search"
    switch tabs; ``demo`` restores a channel link on load.

    The sections are wired in the order the events were registered in before the split:
    events that share a trigger are sent in that order, and the built config stays the same.
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
    gr.on(  # a new layer or image: the last clicked pixel's words no longer apply
        [counters.layer_token.change, counters.image_token.change],
        lambda: "",
        None,
        views.pixel_md,
        queue=False,
        **PRIVATE,
    )
    # The click only picks the spot; the view is drawn by an event that takes no click, so
    # its image inputs are checked like every other view's (ui.guard).
    views.overlay_image.select(h.pick_spot, None, views.spot, queue=False, **PRIVATE).then(
        bound(h.look_at_pixel, pg),
        [model, layer, *ui.image.inputs, views.spot],
        [views.overlay_image, views.pixel_md],
        **PRIVATE,
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
