"""The Semantic Search tab's panels that invite play: the overview, the map, the comparison.

Each panel is drawn as it opens (by a click or by a link) and then follows the query while it
stays open; clicking a bar, a heatmap cell or a point on the map changes the search, through
the same hook as any other control.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from convenet.models.registry import get_model_spec
from convenet.playground import UNLABELLED, Playground, umap_available
from convenet.search.recipes import RECIPES
from ui import groups
from ui.common import AppState, friendly
from ui.map_html import MAP_JS, map_html
from ui.own_images import served_path
from ui.search_events import change, switch_model
from ui.search_handlers import (
    CLICK_BAR_JS,
    P_AT,
    UPLOAD_NOT_SCORED,
    compare_charts_html,
    heatmap_html,
)
from ui.similarity_html import CLICK_PAIR_JS, similarity_html
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


HEAVY = groups.HEAVY.events()


def drawn_when_open(
    panel: gr.Accordion,
    draw: Callable[..., Any],
    inputs: list[Any],
    outputs: list[Any],
    api_name: str | None,
    also: Sequence[Any] = (),
    follow_inputs: list[Any] | None = None,
) -> Follower:
    """Draw ``panel``'s ``outputs`` as it opens (a learner's click, or a link that opens it) and
    on each of ``also``'s triggers; then keep them in step with each search while it stays open.
    A closed panel costs nothing. ``follow_inputs``: what the follower reads instead of
    ``inputs`` (the same values, from the session's state rather than the boxes)."""
    is_open = gr.State(False)
    panel.expand(lambda: True, None, is_open, api_visibility="private")
    panel.collapse(lambda: False, None, is_open, api_visibility="private")
    gr.on([panel.expand, *also], draw, inputs, outputs, api_name=api_name, **HEAVY)

    def follow(on: bool, *values: Any) -> Any:
        if on:
            return draw(*values)
        return gr.skip() if len(outputs) == 1 else tuple(gr.skip() for _ in outputs)

    return Follower(follow, [is_open, *(follow_inputs or inputs)], outputs)


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


def alike_groups(pg: Playground, grid: dict[str, dict[str, float]], recipe: str) -> dict:
    """Per model, the last layers that ``recipe`` makes search alike, in order (none: absent)."""
    groups = {}
    for model in grid:
        last = get_model_spec(model).layer_names[-1]
        alike = pg.searches_alike(model, last, recipe)
        if alike:
            groups[model] = (*alike, last)
    return groups


def alike_cells(pg: Playground, grid: dict[str, dict[str, float]], recipe: str) -> str:
    """The sentence under the overview when ``recipe`` makes each model's last layers search
    alike (fuse reads the same three layers for them); "" otherwise."""
    groups = alike_groups(pg, grid, recipe)
    if not groups:
        return ""
    same = len(next(iter(groups.values())))
    layers = get_model_spec(next(iter(groups))).layer_names
    first = len(layers) - same + 1
    return (
        f" With fuse, each model's last {same} layers (L{first}-L{len(layers)}) read the same "
        f"layers with the same steps, so they are one cell: one search, not {same}."
    )


def build_panels(
    pg: Playground, view: View, change_view: ChangeHook
) -> tuple[list[Follower], gr.HTML, dict[str, gr.Accordion]]:
    """The overview heatmap, the map and the comparison, wired to ``view``.

    Returns what keeps the open panels in step with each new search, the layer-similarity
    heatmap (whose cells open the side-by-side panel, built after these), and the panels by
    the name a link opens them with (``?panel=``).
    """

    @friendly
    def quality_view(dataset: str, metric: str, recipe: str) -> str:
        if not pg.spec(dataset).labelled:
            return f"<p>{UNLABELLED}</p>"
        grid = pg.quality(dataset, metric, P_AT, recipe=recipe)
        said, merged = alike_cells(pg, grid, recipe), alike_groups(pg, grid, recipe)
        return heatmap_html(grid, pg.chance(dataset), P_AT, said, merged)

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
            compare_charts_html(rows, (model, layer), pg.chance(dataset)),
            f"P@{P_AT} of dataset image {index} at each layer of every model with features "
            "here; the best layer of each model is green, the dashed line is chance. Click a "
            "bar to search with it.",
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

    with gr.Accordion("Which layer of which model searches best?", open=False) as quality_panel:
        quality_recipe = gr.Dropdown(
            list(RECIPES),
            value="plain",
            label="Search recipe for the overview",
            info="Switch it to watch the whole grid move",
        )
        quality = gr.HTML(elem_id="quality-heatmap", js_on_load=CLICK_BAR_JS)
    with gr.Accordion("Map of the dataset in this layer's feature space", open=False) as map_panel:
        method = gr.Radio(projection_choices(), value="tsne", label="Projection")
        dataset_map = gr.HTML(elem_id="dataset-map", js_on_load=MAP_JS)
    with gr.Accordion("Which layers see alike?", open=False) as similarity_panel:
        similarity = gr.HTML(elem_id="layer-similarity", js_on_load=CLICK_PAIR_JS)
    with gr.Accordion("Compare models on this query", open=False) as compare_panel:
        compare_note = gr.Markdown(elem_id="compare-note")
        compare = gr.HTML(elem_id="compare-charts", js_on_load=CLICK_BAR_JS)

    state_view = [view.dataset, view.current_model, view.current_layer]
    map_inputs = [*state_view, view.query_index, view.upload, view.hits, method]
    compare_inputs = [
        *[view.dataset, view.query_index, view.metric, view.upload],
        *[view.current_model, view.current_layer],
    ]
    followers = [
        drawn_when_open(
            quality_panel,
            quality_view,
            [view.dataset, view.metric, quality_recipe],
            [quality],
            "quality",
            also=[quality_recipe.input],
        ),
        drawn_when_open(  # the boxes agree with the state as it opens; the API names them
            map_panel,
            map_view,
            [view.dataset, view.model, view.layer, *map_inputs[3:]],
            [dataset_map],
            "projection",
            also=[method.input],
            follow_inputs=map_inputs,
        ),
        drawn_when_open(
            compare_panel, compare_view, compare_inputs, [compare, compare_note], "compare"
        ),
        drawn_when_open(
            similarity_panel, similarity_view, [view.dataset], [similarity], "layer_similarity"
        ),
    ]
    for chart in (quality, compare):
        change_view(chart.click, friendly(jump_to), [], api_visibility="private")
    change_view(dataset_map.click, friendly(pick_point), [], api_visibility="private")

    accordions = {
        "overview": quality_panel,
        "map": map_panel,
        "similarity": similarity_panel,
        "compare": compare_panel,
    }
    return followers, similarity, accordions
