"""The Semantic Search tab's panels that invite play: the overview, the map, the comparison.

Each panel redraws on request and then follows the query; clicking a bar, a heatmap cell or a
point on the map changes the search, through the same hook as any other control.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from convenet.models.registry import get_model_spec
from convenet.playground import UNLABELLED, Playground, umap_available
from convenet.search.recipes import RECIPES
from ui.common import AppState, friendly
from ui.own_images import served_path
from ui.search_events import change, switch_model
from ui.search_handlers import (
    CLICK_BAR_JS,
    MAP_JS,
    P_AT,
    UPLOAD_NOT_SCORED,
    compare_charts_html,
    heatmap_html,
    map_html,
)
from ui.similarity_html import similarity_html
from ui.view_state import LiveView, with_parts

ChangeHook = Callable[..., None]


@dataclass
class View:
    """The components that say what is searched; the panels read them and may change them."""

    dataset: gr.Dropdown
    model: gr.Dropdown
    layer: gr.Dropdown
    metric: gr.Dropdown
    recipe: gr.Dropdown
    query_index: gr.Number
    upload: gr.Image
    notice: gr.Markdown
    current_model: gr.State
    current_layer: gr.State
    hits: gr.State
    layer_update: Callable[[str, str], Any]


@dataclass(frozen=True)
class Follower:
    """A panel's share of the one event that follows each search: ``fn`` maps the values of
    ``inputs`` to those of ``outputs`` (skips for a panel that is not on screen)."""

    fn: Callable[..., Any]
    inputs: list[Any]
    outputs: list[Any]


def clicked(evt: gr.EventData, *keys: str) -> list[Any]:
    """The values a click on a chart or map sent; anything else is refused plainly."""
    data = getattr(evt, "_data", None)
    values = [data.get(key) for key in keys] if isinstance(data, dict) else [None]
    if not all(isinstance(v, int | float | str) and len(str(v)) <= 64 for v in values):
        raise ValueError("Click a bar, a cell or a point of the chart to choose it")
    return values


def projection_choices() -> list[tuple[str, str]]:
    """t-SNE, UMAP (where umap-learn is installed) and PCA, as the original playground had."""
    umap = [("UMAP", "umap")] if umap_available() else []
    return [("t-SNE", "tsne"), *umap, ("PCA", "pca")]


def file_url(path: Any) -> str:
    """A dataset image as the app serves it (a session's own images: a cached copy)."""
    return f"gradio_api/file={served_path(path)}"


def build_panels(pg: Playground, view: View, change_view: ChangeHook) -> list[Follower]:
    """The overview heatmap, the map and the comparison, wired to ``view``.

    Returns what keeps the drawn panels in step with each new search.
    """

    @friendly
    def quality_view(dataset: str, metric: str, recipe: str) -> str:
        if not pg.spec(dataset).labelled:
            return f"<p>{UNLABELLED}</p>"
        grid = pg.quality(dataset, metric, P_AT, recipe=recipe)
        return heatmap_html(grid, pg.chance(dataset), P_AT)

    @friendly
    def map_view(
        dataset: str,
        model: str,
        layer: str,
        query_index: float | None,
        upload: str | None,
        hits: list[int],
        method: str,
    ) -> str:
        folder = pg.dataset(dataset)
        points = pg.projection(dataset, model, layer, method)
        query = None if upload else pg.check_index(dataset, int(query_index or 0), "Query")
        rows = pg.map_rows(dataset)
        urls = [file_url(folder.paths[row]) for row in rows]
        hits = list(hits or [])
        return map_html(points, folder.labels, folder.classes, urls, query, hits, rows)

    @friendly
    def similarity_view(dataset: str) -> str:
        """Linear CKA between every model x layer with features on this dataset."""
        found = pg.layer_similarity(dataset)
        return similarity_html(dataset, found.pairs, found.matrix)

    def redraw_similarity(drawn: bool, dataset: str) -> Any:
        """A drawn heatmap follows the dataset (kept per dataset: instant after the first)."""
        return similarity_view(dataset) if drawn else gr.skip()

    def redraw_map(drawn: bool, *inputs: Any) -> Any:
        """Keep a map that is on screen in step with the query; draw nothing until asked."""
        return map_view(*inputs) if drawn else gr.skip()

    def redraw_compare(shown: bool, *inputs: Any) -> Any:
        """The same for the comparison charts."""
        return compare_view(*inputs) if shown else (gr.skip(), gr.skip())

    @friendly
    def compare_view(
        dataset: str,
        query_index: float | None,
        metric: str,
        upload: str | None,
        model: str = "",
        layer: str = "",
    ) -> tuple[str, str]:
        """This query's P@10 everywhere; an upload has no class, which is said, not hidden."""
        if upload:
            return "", UPLOAD_NOT_SCORED
        if not pg.spec(dataset).labelled:
            return "", UNLABELLED
        index = int(query_index or 0)
        rows = pg.compare(dataset, index, metric, P_AT)
        return (
            compare_charts_html(rows, (model, layer)),
            f"P@{P_AT} of dataset image {index} at each layer of every model with features "
            "here; the best layer of each model is green. Click a bar to search with it.",
        )

    def jump_to(state: AppState, live: LiveView, evt: gr.EventData) -> tuple[Any, ...]:
        """A clicked bar or cell: search with its model and layer (if the model works here)."""
        model, chosen = clicked(evt, "model", "layer")
        return switch_model(state, live, get_model_spec(str(model)).key, str(chosen))

    def pick_point(state: AppState, live: LiveView, evt: gr.EventData) -> tuple[Any, ...]:
        """A clicked point of the map: its image is the query."""
        (index,) = clicked(evt, "index")
        if isinstance(index, float) and index.is_integer():
            index = int(index)
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError("Click a point of the map to choose it")
        return change(state, live, with_parts(query=index, upload=None))

    with gr.Accordion("Which layer of which model searches best?", open=False):
        quality_recipe = gr.Dropdown(
            list(RECIPES),
            value="plain",
            label="Search recipe for the overview",
            info="Switch it to watch the whole grid move",
        )
        quality_button = gr.Button("Compute the overview for this dataset and metric")
        quality = gr.HTML(elem_id="quality-heatmap", js_on_load=CLICK_BAR_JS)
    with gr.Accordion("Map of the dataset in this layer's feature space", open=False):
        method = gr.Radio(projection_choices(), value="tsne", label="Projection")
        map_button = gr.Button("Draw the map")
        dataset_map = gr.HTML(elem_id="dataset-map", js_on_load=MAP_JS)
    with gr.Accordion("Which layers see alike?", open=False):
        similarity_button = gr.Button("Compare every layer with every other on this dataset")
        similarity = gr.HTML(elem_id="layer-similarity", js_on_load=CLICK_BAR_JS)
    with gr.Accordion("Compare models on this query", open=False):
        compare_button = gr.Button("Compare every model and layer")
        compare_note = gr.Markdown(elem_id="compare-note")
        compare = gr.HTML(elem_id="compare-charts", js_on_load=CLICK_BAR_JS)

    map_drawn = gr.State(False)
    compared = gr.State(False)
    heavy: dict[str, Any] = {"concurrency_id": "heavy", "concurrency_limit": 1}
    state_view = [view.dataset, view.current_model, view.current_layer]
    map_inputs = [*state_view, view.query_index, view.upload, view.hits, method]
    compare_inputs = [
        *[view.dataset, view.query_index, view.metric, view.upload],
        *[view.current_model, view.current_layer],
    ]

    gr.on(
        [quality_button.click, quality_recipe.input],
        quality_view,
        [view.dataset, view.metric, quality_recipe],
        quality,
        api_name="quality",
        **heavy,
    )
    map_button.click(  # the boxes agree with the state here; the API names model and layer
        map_view,
        [view.dataset, view.model, view.layer, *map_inputs[3:]],
        dataset_map,
        api_name="projection",
        **heavy,
    ).success(lambda: True, None, map_drawn, api_visibility="private")
    compare_button.click(
        compare_view, compare_inputs, [compare, compare_note], api_name="compare", **heavy
    ).success(lambda: True, None, compared, api_visibility="private")
    similarity_drawn = gr.State(False)
    similarity_button.click(
        similarity_view, [view.dataset], similarity, api_name="layer_similarity", **heavy
    ).success(lambda: True, None, similarity_drawn, api_visibility="private")
    for chart in (quality, compare, similarity):
        change_view(chart.click, friendly(jump_to), [], api_visibility="private")
    change_view(dataset_map.click, friendly(pick_point), [], api_visibility="private")

    return [  # the map and the comparison that are on screen follow the query
        Follower(redraw_map, [map_drawn, *map_inputs], [dataset_map]),
        Follower(redraw_compare, [compared, *compare_inputs], [compare, compare_note]),
        Follower(redraw_similarity, [similarity_drawn, view.dataset], [similarity]),
    ]
