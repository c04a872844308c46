"""Semantic Search tab: pick dataset, model, layer and metric; see what the layer finds similar."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from convenet.models.registry import MODELS, get_model_spec
from convenet.playground import browse_label, spread
from convenet.search.metrics import METRIC_DESCRIPTIONS
from convenet.search.recipes import RECIPES
from ui.common import (
    DEFAULT_METRIC,
    DEFAULT_MODEL,
    EXAMPLES_DIR,
    AppState,
    corresponding_layer,
    dataset_dropdown,
    default_layer,
    friendly,
    image_upload,
    layer_choices,
    layer_info,
    metric_choices,
    model_problem,
    progress_callback,
)
from ui.own_images import OwnImagesBox, build_own_images_box
from ui.search_handlers import (
    caption,
    export_files,
    legend_html,
    picked,
    scores_text,
    summary_markdown,
)
from ui.search_panels import View, build_panels
from ui.side_by_side import build_side_by_side
from ui.why_panel import WhyPanel

TOP_K = 50
ALL_CLASSES = "All classes"

EXPLAINER = """
**How it works.** A CNN turns an image into feature maps, layer after layer. We average each
chosen layer's maps into one vector per image, and rank the dataset by how close each vector is
to the query's. **Early layers** respond to colours, edges and textures, so they find images that
*look* alike; **late layers** respond to object parts and whole objects, so they find images that
*mean* the same. The **metric** decides what "close" means. Try the first and the last layer of a
model on the same query and watch the score change.
"""


def layer_update(model: str, layer: str) -> Any:
    """The layer box for ``model`` with ``layer`` chosen and its description as the hint."""
    return gr.update(choices=layer_choices(model), value=layer, info=layer_info(model, layer))


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

    def dataset_gallery(dataset: str, category: str) -> tuple[Any, list[int]]:
        """The class's images (or all; at most BROWSE_MAX of them) and their dataset indices."""
        folder = pg.dataset(dataset)
        matching = [
            i
            for i, label in enumerate(folder.labels)
            if category in (ALL_CLASSES, None) or folder.classes[label] == category
        ]
        indices = spread(matching)
        items = [(str(folder.paths[i]), folder.classes[folder.labels[i]]) for i in indices]
        label = browse_label(len(indices), len(matching))
        return gr.Gallery(value=items, selected_index=None, label=label), indices

    @friendly
    def show_dataset(dataset: str, category: str) -> tuple[Any, Any, list[int]]:
        """The dataset's images (one class or all), with no selection frame left from before."""
        folder = pg.dataset(dataset)
        if category not in folder.classes:
            category = ALL_CLASSES
        gallery, indices = dataset_gallery(dataset, category)
        categories = gr.update(choices=[ALL_CLASSES, *folder.classes], value=category)
        return categories, gallery, indices

    @friendly
    def on_model_change(model: str, current: str, layer: str) -> tuple[Any, ...]:
        """Switch to ``model`` at the same depth, or stay on ``current`` and say why not.

        The model and layer the search uses live in gr.State and change together here, so no
        search ever sees one without the other (a dropdown may send its event twice).
        """
        key = get_model_spec(model).key
        if key == current:
            return key, gr.skip(), gr.skip(), current, layer
        problem = model_problem(key)
        if problem:
            return current, gr.skip(), problem, current, layer
        chosen = corresponding_layer(current, layer, key)
        return key, layer_update(key, chosen), "", key, chosen

    @friendly
    def on_layer_change(layer: str, model: str) -> tuple[Any, str]:
        get_model_spec(model).layer(layer)  # a layer of another model is refused plainly
        return gr.update(info=layer_info(model, layer)), layer

    @friendly
    def run_search(
        dataset: str,
        model: str,
        layer: str,
        metric: str,
        recipe: str,
        query_index: float | None,
        upload: str | None,
        k: float,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, ...]:
        on_progress = progress_callback(progress, "Extracting features (first use of this model)")
        if upload:
            query: dict[str, Any] = {"query_image": Path(upload)}
            query_picture: Any = upload
        else:
            index = int(query_index or 0)
            query = {"query_index": index}
            query_picture = str(pg.dataset(dataset).paths[index])
        k = min(int(k), len(pg.dataset(dataset).paths) - (0 if upload else 1))  # small sets
        result = pg.search(
            dataset, model, layer, metric, k=k, recipe=recipe, progress=on_progress, **query
        )
        known = result.query_label is not None
        gallery = [
            (
                state.tiles.tile(str(hit.path), hit.similarity, hit.match if known else None),
                caption(hit.rank, hit.similarity, hit.label, hit.match),
            )
            for hit in result.hits
        ]
        hint = (
            f"{get_model_spec(model).title} · {layer} · {METRIC_DESCRIPTIONS[metric]} · "
            f"recipe {recipe}: {RECIPES[recipe].description}"
        )
        csv_file, json_file = export_files(result, pg.images_dir(dataset))
        return (
            query_picture,
            summary_markdown(result, k),
            legend_html(known, scores_text(result, k), hint),
            gr.Gallery(value=gallery, selected_index=None, label=f"Top {k} most similar"),
            [hit.index for hit in result.hits],
            csv_file,
            json_file,
        )

    @friendly
    def pick_from_dataset(indices: list[int], evt: gr.SelectData) -> tuple[int, None]:
        return picked(indices, evt), None

    @friendly
    def pick_from_results(hits: list[int], evt: gr.SelectData) -> tuple[int, None]:
        return picked(hits, evt), None

    with gr.Row(elem_id="cn-search-row"):
        with gr.Column(scale=1, min_width=280, elem_id="cn-side"):
            with gr.Column(elem_id="cn-controls"):
                dataset = dataset_dropdown(state, label="Dataset")
                own = build_own_images_box()
                model = gr.Dropdown(
                    state.model_choices(),
                    value=DEFAULT_MODEL,
                    label="Model",
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
    search_inputs = [dataset, current_model, current_layer, metric, recipe, query_index, upload, k]
    search_outputs = [query_picture, summary, legend, results, hits, csv_button, json_button]
    searches: list[Any] = []
    followers: list[Callable[[Any], None]] = []

    def search_after(event: Any, only_on_success: bool = False) -> None:
        """Chain a search, mirror the view in the page URL, then update the panels on screen."""
        chain = event.success if only_on_success else event.then
        searched = chain(
            run_search,
            search_inputs,
            search_outputs,
            api_visibility="private",
            concurrency_id="search",
            concurrency_limit=8,
        )
        shown = [dataset, model, layer, metric, recipe, query_index, upload]
        searched.then(None, shown, None, js=URL_JS)
        searches.append(searched)
        for follow in followers:
            follow(searched)

    view = View(
        *[dataset, model, layer, metric, recipe, query_index, upload, notice],
        *[current_model, current_layer, hits, layer_update],
    )
    followers.append(build_panels(pg, view, search_after))
    followers.append(build_side_by_side(pg, state.default_dataset, view))
    followers.append(why.connect(pg, view))
    for searched in searches:  # the panels' own clicks searched before their hooks existed
        for follow in followers:
            follow(searched)

    @friendly
    def restore(request: gr.Request) -> tuple[Any, ...]:
        """Read ?dataset=&model=&layer=&metric=&recipe=&query= so a shared link opens the same
        view."""
        params = dict(request.query_params) if request else {}
        name = params.get("dataset", state.default_dataset)
        name = name if name in pg.datasets() else state.default_dataset
        key = params.get("model", DEFAULT_MODEL)
        key = key if key in MODELS else DEFAULT_MODEL
        problem = model_problem(key) or ""
        key = DEFAULT_MODEL if problem else key
        chosen_layer = params.get("layer", "")
        if chosen_layer not in MODELS[key].layer_names:
            chosen_layer = default_layer(key)
        chosen_metric = params.get("metric", DEFAULT_METRIC)
        chosen_metric = chosen_metric if chosen_metric in METRIC_DESCRIPTIONS else DEFAULT_METRIC
        chosen_recipe = params.get("recipe", "plain")
        chosen_recipe = chosen_recipe if chosen_recipe in RECIPES else "plain"
        size = len(pg.dataset(name).paths)
        try:
            index = min(max(int(params.get("query", 0)), 0), size - 1)
        except ValueError:
            index = 0
        categories, items, indices = show_dataset(name, ALL_CLASSES)
        view = (name, key, layer_update(key, chosen_layer), chosen_metric, chosen_recipe, index)
        return (*view, problem, key, chosen_layer, categories, items, indices)

    search_after(
        demo.load(
            restore,
            None,
            [
                *[dataset, model, layer, metric, recipe, query_index],
                *[notice, current_model, current_layer, category, dataset_images, visible],
            ],
            api_name="restore_view",
        )
    )

    def open_dataset(trigger: Callable[..., Any], **named: Any) -> None:
        """When ``trigger`` (an event method) has chosen a dataset: show its images, search."""
        search_after(
            trigger(
                lambda name: (*show_dataset(name, ALL_CLASSES), 0),
                dataset,
                [category, dataset_images, visible, query_index],
                **named,
            )
        )

    open_dataset(dataset.input, api_name="dataset_images")
    category.input(
        show_dataset,
        [dataset, category],
        [category, dataset_images, visible],
        api_name="filter_class",
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
    search_after(
        dataset_images.select(
            pick_from_dataset, visible, [query_index, upload], api_name="pick_query"
        )
    )
    search_after(
        results.select(pick_from_results, hits, [query_index, upload], api_name="pick_result")
    )
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
