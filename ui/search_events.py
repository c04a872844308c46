"""What the Semantic Search tab's events do, apart from where its boxes sit (``ui.search_tab``).

Module-level functions of the app's state and the event's values; the tab binds the state with
``bound``. A click on an image picks the query and searches in one event: every queued event
costs the page a round of status updates, so a click that chained two was slower to show.
"""

from __future__ import annotations

import functools
import html
import inspect
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from convenet.models.registry import get_model_spec
from convenet.playground import Playground, browse_label, spread
from convenet.search.metrics import METRIC_DESCRIPTIONS
from convenet.search.recipes import recipe_at
from ui.common import (
    AppState,
    corresponding_layer,
    friendly,
    layer_choices,
    layer_info,
    model_info,
    model_update,
    progress_callback,
)
from ui.lessons_html import opened_by_link
from ui.search_handlers import (
    P_AT,
    caption,
    export_files,
    legend_html,
    picked,
    recipe_effects,
    scores_text,
)
from ui.search_handlers import summary_markdown as headline
from ui.view_state import LINK_PARTS, LiveView, ViewState, from_link, with_parts

ALL_CLASSES = "All classes"


def bound(fn: Callable[..., Any], state: Any) -> Callable[..., Any]:
    """``fn`` with its first argument filled in: the app's state (or, in the Model Explorer,
    its Playground).

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


def layer_update(model: str, layer: str, recipe: str = "plain") -> Any:
    """The layer box for ``model`` with ``layer`` chosen and its description as the hint; the
    layers ``recipe`` makes search alike are one choice."""
    choices = layer_choices(model, recipe, layer)
    return gr.update(choices=choices, value=layer, info=layer_info(model, layer))


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


def mark_query(query: float | None, upload: str | None, shown: list[int]) -> Any:
    """Frame the query among the dataset's images on screen (none for an upload, or when the
    query is not among those shown), whatever made it the query: a click, the map, a link."""
    index = None if upload or query is None else int(query)
    position = shown.index(index) if index in (shown or []) else None
    return gr.Gallery(selected_index=position)


@friendly
def show_dataset(state: AppState, dataset: str, category: str) -> tuple[Any, Any, list[int]]:
    """The dataset's images (one class or all), with no selection frame left from before."""
    folder = state.playground.dataset(dataset)
    if category not in folder.classes:
        category = ALL_CLASSES
    gallery, indices = dataset_gallery(state, dataset, category)
    categories = gr.update(choices=[ALL_CLASSES, *folder.classes], value=category)
    return categories, gallery, indices


def controls(
    view: ViewState, notice: str = "", upload_notice: str = "", only: set[str] | None = None
) -> tuple[Any, ...]:
    """Every control set to ``view`` (see ``CONTROLS``), all from one value; with ``only``,
    the view's other parts are left as they are on screen (the notices are always set)."""
    parts = {
        "dataset": view.dataset,
        "model": model_update(view.model),
        "layer": layer_update(view.model, view.layer, view.recipe),
        "metric": view.metric,
        "recipe": view.recipe,
        "k": view.k,
        "query": view.query,
        "upload": view.upload,
    }
    shown = [v if only is None or part in only else gr.skip() for part, v in parts.items()]
    if only is not None and "model" not in only:  # the box keeps its value; its line follows
        shown[list(parts).index("model")] = gr.update(info=model_info(view.model))
    if only is not None and "layer" not in only:  # its choices follow the recipe
        choices = layer_choices(view.model, view.recipe, view.layer)
        shown[list(parts).index("layer")] = gr.update(choices=choices)
    return (*shown, notice, upload_notice, view.model, view.layer)


# What ``controls`` sets, in order; the search tab lists the components the same way.
CONTROLS = (
    *("dataset", "model", "layer", "metric", "recipe", "k", "query_index", "upload"),
    *("notice", "upload_notice", "current_model", "current_layer"),
)


def change(
    state: AppState,
    live: LiveView,
    wanted: Callable[[ViewState], ViewState],
    source: str | None = None,
) -> Any:
    """Apply ``wanted`` to the session's newest view; the controls then show the result.

    ``source``: the view's part whose box made the change. A refusal sets every box back; a
    change sets only the boxes whose part it changed, never its own box (which shows what
    was chosen already): an answer that lands while the learner types in a box must not
    overwrite what they typed since.
    """
    before, view, refused = live.apply(state.playground, wanted)
    if refused:
        return controls(view, refused)
    changed = {
        part for part in LINK_PARTS + ("upload",) if getattr(before, part) != getattr(view, part)
    }
    if "model" in changed:
        changed.add("layer")  # another model's layers are other choices
    return controls(view, only=changed - {source})


def switch_model(
    state: AppState, live: LiveView, key: str, layer: str | None, source: str | None = None
) -> Any:
    """``key`` at ``layer`` (None: at the same depth as now), or the view as it is and why not.

    The weights are looked for before the change (a download can take seconds), so the change
    itself applies to the newest view, whatever happened meanwhile.
    """
    problem = Playground.weights_problem(get_model_spec(key).key)
    if problem:
        return controls(live.snapshot()[0], problem)

    def wanted(view: ViewState) -> ViewState:
        chosen = corresponding_layer(view.model, view.layer, key) if layer is None else layer
        return replace(view, model=key, layer=chosen)

    return change(state, live, wanted, source)


@friendly
def on_model_change(state: AppState, live: LiveView, model: str) -> tuple[Any, ...]:
    """Switch to ``model`` at the same depth, or stay and say why not."""
    return switch_model(state, live, get_model_spec(model).key, None, "model")


@friendly
def use_in_search(state: AppState, live: LiveView, model: str, layer: str) -> tuple[Any, ...]:
    """The Model Explorer's layer in Semantic Search: one of the curated layers only."""
    spec = get_model_spec(model)
    if layer not in spec.layer_names:
        raise ValueError(
            f"Semantic Search uses the curated layers of {spec.title}, whose features are "
            f"stored for every dataset: {', '.join(spec.layer_names)}. {layer} is not one "
            "of them; pick one of those first."
        )
    return switch_model(state, live, spec.key, layer)


@friendly
def on_layer_change(state: AppState, live: LiveView, layer: str) -> tuple[Any, ...]:
    """A layer of the current model; a layer of another model is refused plainly."""
    return change(state, live, with_parts(layer=layer), "layer")


def on_part_change(part: str) -> Callable[..., tuple[Any, ...]]:
    """The handler of a box that sets one part of the view (metric, recipe, k)."""

    @friendly
    def handler(state: AppState, live: LiveView, value: Any) -> tuple[Any, ...]:
        if part == "k":
            value = int(value or 0)
        return change(state, live, with_parts(**{part: value}), part)

    handler.__name__ = f"on_{part}_change"
    return handler


@friendly
def on_upload(state: AppState, live: LiveView, upload: str | None) -> tuple[Any, ...]:
    """A new upload (already checked at the edge) is the query; an emptied box: the dataset.

    The box is set to the upload too (unlike a box that made its own change): Gradio keeps a
    session's values only for components an event has set, and a copied link (its deep link)
    carries those values, so this is what lets a shared link show the uploaded image."""
    return change(state, live, with_parts(upload=upload or None))


def upload_refused(state: AppState, live: LiveView, message: str) -> tuple[Any, ...]:
    """The edge refused an upload: the view stays on its last query, the box shows it again,
    and the reason stays next to the box until the next action."""
    said = " ".join(str(message or "").split())[:200]
    said = said or "That file could not be used as a query"
    said += "" if said.endswith((".", "!", "?")) else "."
    kept = "your last uploaded image" if live.snapshot()[0].upload else "the dataset image"
    return controls(live.snapshot()[0], "", f"{html.escape(said)} The search still uses {kept}.")


@friendly
def open_dataset(state: AppState, live: LiveView, dataset: str) -> tuple[Any, ...]:
    """A newly chosen dataset: all its images, and its first image as the query."""
    settled = change(state, live, with_parts(dataset=dataset, query=0, upload=None), "dataset")
    if settled[CONTROLS.index("notice")]:  # refused: the images shown stay
        return (*settled, *(gr.skip(),) * 3)
    return (*settled, *show_dataset(state, live.snapshot()[0].dataset, ALL_CLASSES))


def search_outputs(state: AppState, view: ViewState, progress: gr.Progress) -> tuple[Any, ...]:
    """The query picture, headline, legend, results, their indices, the two export files and
    the link to the view (see ``RESULTS``)."""
    pg = state.playground
    on_progress = progress_callback(progress, "Extracting features (first use of this model)")
    if view.upload:
        where: dict[str, Any] = {"query_image": Path(view.upload)}
        query_picture: Any = view.upload
    else:
        where = {"query_index": view.query}
        query_picture = str(pg.dataset(view.dataset).paths[view.query])
    k = min(view.k, len(pg.dataset(view.dataset).paths) - (0 if view.upload else 1))  # small sets
    result = pg.search(
        view.dataset,
        view.model,
        view.layer,
        view.metric,
        k=k,
        recipe=view.recipe,
        progress=on_progress,
        **where,
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
        f"{get_model_spec(view.model).title} · {view.layer} · "
        f"{METRIC_DESCRIPTIONS[view.metric]} · "
        f"recipe {recipe_named(view.recipe, view.model, view.layer)}: "
        f"{recipe_at(view.recipe, get_model_spec(view.model).layer_names, view.layer).description} "
        + recipe_effects(
            pg.step_effects(view.dataset, view.model, view.layer, view.metric, view.recipe, P_AT),
            pg.searches_alike(view.model, view.layer, view.recipe),
            view.layer,
        )
    ).strip()
    csv_file, json_file = export_files(result, pg.images_dir(view.dataset))
    return (
        query_picture,
        headline(result, k) + tiny_upload_remark(view.upload),
        legend_html(known, scores_text(result, k), hint),
        gr.Gallery(value=gallery, selected_index=None, label=f"Top {k} most similar"),
        [hit.index for hit in result.hits],
        csv_file,
        json_file,
        view.link(),
        link_note(state, view),
    )


def recipe_named(name: str, model: str, layer: str) -> str:
    """A recipe by its name and, where they differ, its steps at this layer: "best (GeM + flip +
    DBA)"."""
    steps = recipe_at(name, get_model_spec(model).layer_names, layer).steps
    return name if steps.lower() == name else f"{name} ({steps})"


RESULTS = (
    *("query_picture", "summary", "legend", "results", "hits", "csv", "json"),
    *("link", "link_note"),
)
TINY_SIDE = 32  # pixels: below this an upload holds too little for any layer to compare


def tiny_upload_remark(upload: str | None) -> str:
    """A remark under the headline when the uploaded picture is too small to say much."""
    if not upload:
        return ""
    with Image.open(upload) as picture:
        width, height = picture.size
    if min(width, height) >= TINY_SIDE:
        return ""
    return (
        f"\n\nYour image is only {width}×{height} pixels: it is stretched to the model's input "
        "size, so it holds almost nothing to compare and these results are close to arbitrary."
    )


def link_note(state: AppState, view: ViewState) -> str:
    """Said where the link is copied, when the view cannot travel in it."""
    if state.playground.spec(view.dataset).owner is not None:
        return f"A link cannot carry your own images: it opens {state.default_dataset} instead."
    return ""


@friendly
def run_search(
    state: AppState, live: LiveView, progress: gr.Progress = gr.Progress()
) -> tuple[Any, ...]:
    """Search with the session's view; nothing changes on screen if its results are already
    there, or if a newer view was chosen while this one was searched."""
    view, revision = live.snapshot()
    if view is None or live.already_shown(revision):
        return tuple(gr.skip() for _ in RESULTS)
    shown = search_outputs(state, view, progress)
    return shown if live.still(revision) else tuple(gr.skip() for _ in RESULTS)


@friendly
def search_clicked(
    state: AppState,
    live: LiveView,
    shown: list[int],
    evt: gr.SelectData,
    progress: gr.Progress = gr.Progress(),
) -> tuple[Any, ...]:
    """A clicked image (``shown``: the dataset indices on screen) becomes the query, searched
    at once; the upload box empties."""
    index = picked(shown, evt)
    settled = change(state, live, with_parts(query=index, upload=None))
    return (*settled, *run_search(state, live, progress))


@friendly
def restore(
    state: AppState, live: LiveView, upload: str | None, request: gr.Request
) -> tuple[Any, ...]:
    """Read ?dataset=&model=&layer=&metric=&recipe=&k=&query= so a shared link opens the same
    view (and ?panel=, ?lesson= what they open); a part that cannot be shown is named, with
    what is shown instead. A shared view's
    upload (``deep_link``: Gradio has put it back in the upload box) stays its query."""
    params = dict(request.query_params) if request else {}
    if params.get("tab") == "explorer":  # a link into the Model Explorer: its own parts
        params = {}
    view, ignored = from_link(state.playground, params, state.default_dataset)
    opened, unknown = opened_by_link(params)
    ignored = " ".join(part for part in (ignored, unknown) if part)
    shared = bool(params.get("deep_link"))
    if upload and shared:
        view = replace(view, upload=upload)
    live.reset(view)
    # A shared view's upload box is Gradio's to put back: never emptied here.
    kept = {"dataset", "model", "layer", "metric", "recipe", "k", "query"} if shared else None
    settled = controls(view, ignored, only=kept)
    return (*settled, *show_dataset(state, view.dataset, ALL_CLASSES), *opened)
