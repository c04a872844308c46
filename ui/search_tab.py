"""Semantic Search tab: pick dataset, model, layer and metric; see what the layer finds similar.

Events here name the component that shows their progress (``show_progress_on``): Gradio's page
keeps a loading status for every component that ever showed one, and at each status message of
every later event copies each of those on screen, whole value and all (200 pictures for the
dataset's gallery, 50 tiles for the results). So searches show their progress on the headline
above the results, the galleries and the layout boxes never do, and a click costs the page a few
small copies instead of big ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from convenet.search.recipes import RECIPES
from ui import search_events
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
)
from ui.own_images import OwnImagesBox, build_own_images_box
from ui.search_events import (
    ALL_CLASSES,
    bound,
    layer_update,
    on_layer_change,
    on_model_change,
    restore,
    run_search,
    search_clicked,
    show_dataset,
)
from ui.search_panels import Follower, View, build_panels
from ui.side_by_side import build_side_by_side
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
class SearchTab:
    """The search tab's controls, and a hook that re-runs the search after another event."""

    dataset: gr.Dropdown
    model: gr.Dropdown
    layer: gr.Dropdown
    metric: gr.Dropdown
    query_index: gr.Number
    current_model: gr.State
    current_layer: gr.State
    search_after: Callable[[Any], None]
    open_dataset: Callable[[Any], None]
    own: OwnImagesBox


def build_search_tab(state: AppState, demo: gr.Blocks) -> SearchTab:
    pg = state.playground

    with gr.Row(elem_id="cn-search-row"):
        with gr.Column(scale=1, min_width=280, elem_id="cn-side"):
            with gr.Column(elem_id="cn-controls"):
                dataset = dataset_dropdown(state, label="Dataset")
                own = build_own_images_box()
                model = gr.Dropdown(
                    state.model_choices(),
                    value=DEFAULT_MODEL,
                    label="Model",
                    info=state.model_info(),
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
            with gr.Column(elem_id="cn-more"):
                example_files = sorted(str(p) for p in EXAMPLES_DIR.glob("*.jpg"))
                examples = (
                    gr.Examples(example_files, inputs=upload, label="Example images")
                    if example_files
                    else None
                )
                gr.Markdown(EXPLAINER)
            query_index = gr.Number(value=0, precision=0, visible=False, label="query index")
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
                    10, TOP_K, value=TOP_K, step=5, label="Results shown (k)", min_width=220
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
    hits = gr.State([])
    visible = gr.State([])
    current_model = gr.State(DEFAULT_MODEL)
    current_layer = gr.State(default_layer(DEFAULT_MODEL))
    view = View(
        *[dataset, model, layer, metric, recipe, query_index, upload, notice],
        *[current_model, current_layer, hits, layer_update],
    )
    boxes = [dataset, current_model, current_layer, metric, recipe]
    search_outputs = [query_picture, summary, legend, results, hits, csv_button, json_button]
    search: dict[str, Any] = {"concurrency_id": "search", "concurrency_limit": 8}
    search["show_progress_on"] = summary  # see the module's docstring
    unfollowed: list[Any] = []  # searches wired before the panels that follow them existed
    follow: list[Callable[[Any], None]] = []

    def followed(searched: Any) -> None:
        """Mirror the view in the page URL and update the panels once the results are in."""
        shown = [dataset, model, layer, metric, recipe, query_index, upload]
        searched.then(None, shown, None, js=URL_JS)
        if follow:
            follow[0](searched)
        else:
            unfollowed.append(searched)

    def search_after(event: Any, only_on_success: bool = False) -> None:
        """Chain a search after ``event``."""
        chain = event.success if only_on_success else event.then
        inputs = [*boxes, query_index, upload, k]
        run = bound(run_search, state)
        followed(chain(run, inputs, search_outputs, api_visibility="private", **search))

    def search_on_click(gallery: gr.Gallery, shown: gr.State, api_name: str) -> None:
        """A click on one of ``gallery``'s images (``shown``: their dataset indices) makes it the
        query and searches with it, in one event."""
        outputs = [query_index, upload, *search_outputs]
        clicked = bound(search_clicked, state)
        followed(gallery.select(clicked, [shown, *boxes, k], outputs, api_name=api_name, **search))

    followers = [
        *build_panels(pg, view, search_after),
        build_side_by_side(pg, state.default_dataset, view),
        why.connect(pg, view),
    ]
    follow.append(follow_searches(followers))
    for searched in unfollowed:  # the panels' own clicks searched before they were all built
        follow[0](searched)
    search_after(
        demo.load(
            bound(restore, state),
            None,
            [
                *[dataset, model, layer, metric, recipe, query_index],
                *[notice, current_model, current_layer, category, dataset_images, visible],
            ],
            api_name="restore_view",
            show_progress_on=summary,  # see the module's docstring
        )
    )

    def open_dataset(trigger: Callable[..., Any], **named: Any) -> None:
        """When ``trigger`` (an event method) has chosen a dataset: show its images, search."""
        search_after(
            trigger(
                bound(search_events.open_dataset, state),
                dataset,
                [category, dataset_images, visible, query_index],
                show_progress_on=summary,  # see the module's docstring
                **named,
            )
        )

    open_dataset(dataset.input, api_name="dataset_images")
    category.input(
        bound(show_dataset, state),
        [dataset, category],
        [category, dataset_images, visible],
        api_name="filter_class",
        show_progress_on=category,  # see the module's docstring
    )
    search_after(
        model.input(
            on_model_change,
            [model, current_model, current_layer],
            [model, layer, notice, current_model, current_layer],
            api_name="layers_for_model",
        )
    )
    search_after(
        layer.input(
            on_layer_change,
            [layer, current_model],
            [layer, current_layer],
            api_name="layer_changed",
        )
    )
    search_after(metric.input(lambda: None, None, None, api_name="metric_changed"))
    search_after(recipe.input(lambda: None, None, None, api_name="recipe_changed"))
    search_after(k.release(lambda: None, None, None, api_name="k_changed"))
    search_on_click(dataset_images, visible, "pick_query")
    search_on_click(results, hits, "pick_result")
    # The edge refuses a file that is not an image before this runs: the refusal is one message,
    # the search is skipped (previous results stay) and the unreadable file leaves the box.
    accepted = upload.upload(lambda _path: None, upload, None, api_name="upload_changed")
    accepted.failure(lambda: None, None, upload, api_visibility="private")
    search_after(accepted, only_on_success=True)
    search_after(upload.clear(lambda: None, None, None, api_visibility="private"))
    if examples is not None:  # clicking an example fills the upload box: search with it
        search_after(examples.load_input_event)

    return SearchTab(
        *[dataset, model, layer, metric, query_index, current_model, current_layer],
        *[search_after, open_dataset, own],
    )


def follow_searches(followers: list[Follower]) -> Callable[[Any], None]:
    """One event after a search updates every panel that follows the query.

    One event, not one per panel: each queued event costs the page a round of status updates
    (every component on screen is copied), which delayed the next click. A panel whose update
    fails says so in a warning; the others are still updated.
    """
    inputs = [component for f in followers for component in f.inputs]
    outputs = [component for f in followers for component in f.outputs]

    def follow(*values: Any) -> tuple[Any, ...]:
        updates: list[Any] = []
        start = 0
        for f in followers:
            part = values[start : start + len(f.inputs)]
            start += len(f.inputs)
            try:
                got = f.fn(*part)
            except gr.Error as exc:
                gr.Warning(exc.message)
                got = tuple(gr.skip() for _ in f.outputs)
            updates += list(got) if len(f.outputs) > 1 else [got]
        return tuple(updates)

    def after(event: Any) -> None:
        event.success(
            follow,
            inputs,
            outputs,
            api_visibility="private",
            concurrency_id="follow",
            concurrency_limit=2,
        )

    return after


URL_JS = """
(dataset, model, layer, metric, recipe, query, upload) => {
  const url = new URL(window.location.href);
  const params = {dataset, model, layer, metric, recipe};
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  // An uploaded image cannot travel in a link: the URL then names no dataset query.
  if (upload) url.searchParams.delete("query");
  else url.searchParams.set("query", String(query ?? 0));
  window.history.replaceState(null, "", url);
  return [];
}
"""
