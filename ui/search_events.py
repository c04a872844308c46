"""What the Semantic Search tab's events do, apart from where its boxes sit (``ui.search_tab``).

Module-level functions of the app's state and the event's values; the tab binds the state with
``bound``. A click on an image picks the query and searches in one event: every queued event
costs the page a round of status updates, so a click that chained two was slower to show.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from convenet.models.registry import MODELS, get_model_spec
from convenet.playground import Playground, browse_label, spread
from convenet.search.metrics import METRIC_DESCRIPTIONS
from convenet.search.recipes import RECIPES
from ui.common import (
    DEFAULT_METRIC,
    DEFAULT_MODEL,
    AppState,
    corresponding_layer,
    default_layer,
    friendly,
    layer_choices,
    layer_info,
    progress_callback,
)
from ui.search_handlers import caption, export_files, legend_html, picked, scores_text
from ui.search_handlers import summary_markdown as headline

ALL_CLASSES = "All classes"


def bound(fn: Callable[..., Any], state: AppState) -> Callable[..., Any]:
    """``fn`` with the app's state filled in.

    Not a ``functools.partial``: Gradio finds ``gr.SelectData`` and ``gr.Request`` parameters
    by their type hints, which it cannot read from a partial.
    """

    @functools.wraps(fn)
    def handler(*args: Any, **kwargs: Any) -> Any:
        return fn(state, *args, **kwargs)

    signature = inspect.signature(fn)
    handler.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[1:]
    )
    return handler


def layer_update(model: str, layer: str) -> Any:
    """The layer box for ``model`` with ``layer`` chosen and its description as the hint."""
    return gr.update(choices=layer_choices(model), value=layer, info=layer_info(model, layer))


def dataset_gallery(state: AppState, dataset: str, category: str) -> tuple[Any, list[int]]:
    """The class's images (or all; at most BROWSE_MAX of them, evenly spread) with their class
    as caption, and their dataset indices."""
    folder = state.playground.dataset(dataset)
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
def show_dataset(state: AppState, dataset: str, category: str) -> tuple[Any, Any, list[int]]:
    """The dataset's images (one class or all), with no selection frame left from before."""
    folder = state.playground.dataset(dataset)
    if category not in folder.classes:
        category = ALL_CLASSES
    gallery, indices = dataset_gallery(state, dataset, category)
    categories = gr.update(choices=[ALL_CLASSES, *folder.classes], value=category)
    return categories, gallery, indices


def open_dataset(state: AppState, dataset: str) -> tuple[Any, ...]:
    """A newly chosen dataset: all its images, and its first image as the query."""
    return (*show_dataset(state, dataset, ALL_CLASSES), 0)


@friendly
def on_model_change(model: str, current: str, layer: str) -> tuple[Any, ...]:
    """Switch to ``model`` at the same depth, or stay on ``current`` and say why not.

    The model and layer the search uses live in gr.State and change together here, so no
    search ever sees one without the other (a dropdown may send its event twice).
    """
    key = get_model_spec(model).key
    if key == current:
        return key, gr.skip(), gr.skip(), current, layer
    problem = Playground.weights_problem(key)
    if problem:
        return current, gr.skip(), problem, current, layer
    chosen = corresponding_layer(current, layer, key)
    return key, layer_update(key, chosen), "", key, chosen


@friendly
def on_layer_change(layer: str, model: str) -> tuple[Any, str]:
    get_model_spec(model).layer(layer)  # a layer of another model is refused plainly
    return gr.update(info=layer_info(model, layer)), layer


def search_outputs(
    state: AppState,
    query: tuple[str, str, str, str, str],
    query_index: float | None,
    upload: str | None,
    k: float,
    progress: gr.Progress,
) -> tuple[Any, ...]:
    """The query picture, headline, legend, results, their indices and the two export files.

    ``query``: dataset, model, layer, metric and recipe.
    """
    dataset, model, layer, metric, recipe = query
    pg = state.playground
    on_progress = progress_callback(progress, "Extracting features (first use of this model)")
    if upload:
        where: dict[str, Any] = {"query_image": Path(upload)}
        query_picture: Any = upload
    else:
        index = int(query_index or 0)
        where = {"query_index": index}
        query_picture = str(pg.dataset(dataset).paths[index])
    k = min(int(k), len(pg.dataset(dataset).paths) - (0 if upload else 1))  # small sets
    result = pg.search(
        dataset, model, layer, metric, k=k, recipe=recipe, progress=on_progress, **where
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
        headline(result, k),
        legend_html(known, scores_text(result, k), hint),
        gr.Gallery(value=gallery, selected_index=None, label=f"Top {k} most similar"),
        [hit.index for hit in result.hits],
        csv_file,
        json_file,
    )


@friendly
def run_search(
    state: AppState,
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
    """Search with what the boxes say (a dataset image, or the upload if there is one)."""
    query = (dataset, model, layer, metric, recipe)
    return search_outputs(state, query, query_index, upload, k, progress)


@friendly
def search_clicked(
    state: AppState,
    shown: list[int],
    dataset: str,
    model: str,
    layer: str,
    metric: str,
    recipe: str,
    k: float,
    evt: gr.SelectData,
    progress: gr.Progress = gr.Progress(),
) -> tuple[Any, ...]:
    """A clicked image (``shown``: the dataset indices on screen) becomes the query, searched
    at once; the upload box empties."""
    index = picked(shown, evt)
    query = (dataset, model, layer, metric, recipe)
    return index, None, *search_outputs(state, query, index, None, k, progress)


@friendly
def restore(state: AppState, request: gr.Request) -> tuple[Any, ...]:
    """Read ?dataset=&model=&layer=&metric=&recipe=&query= so a shared link opens the same
    view."""
    pg = state.playground
    params = dict(request.query_params) if request else {}
    name = params.get("dataset", state.default_dataset)
    name = name if name in pg.datasets() else state.default_dataset
    key = params.get("model", DEFAULT_MODEL)
    key = key if key in MODELS else DEFAULT_MODEL
    problem = Playground.weights_problem(key) or ""
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
    categories, items, indices = show_dataset(state, name, ALL_CLASSES)
    view = (name, key, layer_update(key, chosen_layer), chosen_metric, chosen_recipe, index)
    return (*view, problem, key, chosen_layer, categories, items, indices)
