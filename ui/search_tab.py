"""Semantic Search tab: pick dataset, model, layer and metric; see what the layer finds similar."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from convenet.metrics import METRIC_DESCRIPTIONS
from convenet.models import get_model_spec
from convenet.playground import SearchResult
from convenet.plots import scatter_map
from convenet.registry import MODELS
from ui.common import (
    DEFAULT_METRIC,
    DEFAULT_MODEL,
    EXAMPLES_DIR,
    AppState,
    default_layer,
    friendly,
    layer_choices,
    metric_choices,
    progress_callback,
)

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


def caption(rank: int, similarity: float, label: str, match: bool) -> str:
    """Rank and percentage first: a long class name may be cut off under a small tile."""
    return f"#{rank} {similarity:.0f}%{' ✓' if match else ''} {label}"


def picked(shown: list[int], evt: gr.SelectData | None) -> int:
    """The dataset index of the clicked tile; a call without a click is refused plainly."""
    index = getattr(evt, "index", None)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(shown or []):
        raise ValueError("Click one of the images shown to choose it")
    return shown[index]


def summary_markdown(result: SearchResult, k: int) -> str:
    if result.query_label is None:
        return f"**Your image** — top {k} results (no class to compare with)."
    return (
        f"**{result.matches}/{k}** of the top {k} share the query's class "
        f"(**{result.query_label}**) · precision@{k} = {result.p_at_k:.2f} · "
        f"rank-weighted score = {result.weighted_score:.2f}"
    )


def heatmap_html(grid: dict[str, dict[str, float]], chance: float, k: int) -> str:
    """An accessible table: one row per model, one cell per curated layer, shaded by precision."""
    if not grid:
        return "<p>No features are available yet for this dataset.</p>"
    header = "".join(f"<th scope='col'>L{i + 1}</th>" for i in range(8))
    rows = []
    for key, layers in grid.items():
        spec = MODELS[key]
        cells = []
        for name, value in layers.items():
            strength = max(0.0, (value - chance) / max(1e-9, 1 - chance))
            colour = f"rgba(34, 139, 34, {0.1 + 0.8 * strength:.2f})" if value > chance else "#eee"
            below = " (at or below chance)" if value <= chance else ""
            cells.append(
                f"<td style='background:{colour}' title='{html.escape(name)}{below}'>"
                f"{value:.2f}</td>"
            )
        rows.append(f"<tr><th scope='row'>{html.escape(spec.title)}</th>{''.join(cells)}</tr>")
    return (
        f"<table class='cn-heatmap'><caption>precision@{k} averaged over every query "
        f"(chance = {chance:.2f}; grey cells are at or below chance). Columns run from the first "
        f"curated layer (L1) to the last (L8); hover a cell for the layer's name.</caption>"
        f"<thead><tr><th scope='col'>model</th>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


@dataclass
class SearchTab:
    """The search tab's controls, and a hook that re-runs the search after another event."""

    dataset: gr.Dropdown
    model: gr.Dropdown
    layer: gr.Dropdown
    metric: gr.Dropdown
    query_index: gr.Number
    search_after: Callable[[Any], None]


def build_search_tab(state: AppState, demo: gr.Blocks) -> SearchTab:
    pg = state.playground

    def dataset_gallery(dataset: str, category: str) -> tuple[list[tuple[str, str]], list[int]]:
        folder = pg.dataset(dataset)
        indices = [
            i
            for i, label in enumerate(folder.labels)
            if category in (ALL_CLASSES, None) or folder.classes[label] == category
        ]
        return [(str(folder.paths[i]), folder.classes[folder.labels[i]]) for i in indices], indices

    @friendly
    def show_dataset(dataset: str, category: str) -> tuple[Any, Any, list[int]]:
        folder = pg.dataset(dataset)
        if category not in folder.classes:
            category = ALL_CLASSES
        items, indices = dataset_gallery(dataset, category)
        categories = gr.update(choices=[ALL_CLASSES, *folder.classes], value=category)
        return categories, items, indices

    @friendly
    def on_model_change(model: str, layer: str) -> Any:
        spec = get_model_spec(model)
        value = layer if layer in spec.layer_names else default_layer(model)
        return gr.update(choices=layer_choices(model), value=value)

    @friendly
    def run_search(
        dataset: str,
        model: str,
        layer: str,
        metric: str,
        query_index: float | None,
        upload: str | None,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, str, gr.Gallery, list[int]]:
        on_progress = progress_callback(progress, "Extracting features (first use of this model)")
        if upload:
            result = pg.search(
                dataset,
                model,
                layer,
                metric,
                query_image=Path(upload),
                k=TOP_K,
                progress=on_progress,
            )
            query_picture: Any = upload
        else:
            index = int(query_index or 0)
            result = pg.search(
                dataset, model, layer, metric, query_index=index, k=TOP_K, progress=on_progress
            )
            query_picture = str(pg.dataset(dataset).paths[index])
        known = result.query_label is not None
        gallery = [
            (
                state.tiles.tile(str(hit.path), hit.similarity, hit.match if known else None),
                caption(hit.rank, hit.similarity, hit.label, hit.match),
            )
            for hit in result.hits
        ]
        hint = f"{get_model_spec(model).title} · {layer} · {METRIC_DESCRIPTIONS[metric]}"
        legend = "Bars show similarity; green = same class as the query."
        return (
            query_picture,
            summary_markdown(result, TOP_K) + f"\n\n<small>{hint} {legend}</small>",
            gr.Gallery(value=gallery, selected_index=None),  # no stale selection frame
            [hit.index for hit in result.hits],
        )

    @friendly
    def pick_from_dataset(indices: list[int], evt: gr.SelectData) -> tuple[int, None]:
        return picked(indices, evt), None

    @friendly
    def pick_from_results(hits: list[int], evt: gr.SelectData) -> tuple[int, None]:
        return picked(hits, evt), None

    @friendly
    def quality_view(dataset: str, metric: str) -> str:
        return heatmap_html(pg.quality(dataset, metric, 10), pg.chance(dataset), 10)

    @friendly
    def map_view(
        dataset: str,
        model: str,
        layer: str,
        query_index: float | None,
        upload: str | None,
        hits: list[int],
        method: str,
    ) -> np.ndarray:
        folder = pg.dataset(dataset)
        points = pg.projection(dataset, model, layer, method)
        query = None if upload else pg.check_index(dataset, int(query_index or 0), "Query")
        return scatter_map(points, folder.labels, folder.classes, query, hits or [])

    @friendly
    def compare_view(dataset: str, query_index: float | None, metric: str) -> list[list[Any]]:
        rows = pg.compare(dataset, int(query_index or 0), metric, 10)
        return [[r["model"], r["layer"], r["description"], round(r["p_at_k"], 2)] for r in rows]

    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            dataset = gr.Dropdown(pg.datasets(), value=state.default_dataset, label="Dataset")
            model = gr.Dropdown(
                state.model_choices(),
                value=DEFAULT_MODEL,
                label="Model",
                info="In order of complexity",
            )
            layer = gr.Dropdown(
                layer_choices(DEFAULT_MODEL),
                value=default_layer(DEFAULT_MODEL),
                label="Layer",
                info="Early layers see colour and texture; late ones, objects",
            )
            metric = gr.Dropdown(metric_choices(), value=DEFAULT_METRIC, label="Distance metric")
            gr.Markdown(EXPLAINER)
            query_picture = gr.Image(label="Query", type="filepath", interactive=False, height=220)
            upload = gr.Image(
                label="Or search with your own image",
                type="filepath",
                image_mode=None,  # the path as uploaded: our decoder checks and converts it
                sources=["upload", "clipboard"],
                height=220,
            )
            example_files = sorted(str(p) for p in EXAMPLES_DIR.glob("*.jpg"))
            examples = (
                gr.Examples(example_files, inputs=upload, label="Example images")
                if example_files
                else None
            )
            query_index = gr.Number(value=0, precision=0, visible=False, label="query index")
        with gr.Column(scale=3):
            summary = gr.Markdown(elem_id="search-summary")
            results = gr.Gallery(
                label=f"Top {TOP_K} most similar",
                columns=6,
                height=560,
                allow_preview=False,
                elem_id="results-gallery",
                object_fit="contain",
            )
            with gr.Accordion("Dataset: click an image to make it the query", open=True):
                category = gr.Dropdown([ALL_CLASSES], value=ALL_CLASSES, label="Show class")
                dataset_images = gr.Gallery(
                    label="Dataset images",
                    columns=10,
                    height=300,
                    allow_preview=False,
                    elem_id="dataset-gallery",
                )
    with gr.Accordion("Which layer of which model searches best?", open=False):
        quality_button = gr.Button("Compute the overview for this dataset and metric")
        quality = gr.HTML()
    with gr.Accordion("Map of the dataset in this layer's feature space", open=False):
        method = gr.Radio([("t-SNE", "tsne"), ("PCA", "pca")], value="tsne", label="Projection")
        map_button = gr.Button("Draw the map")
        map_image = gr.Image(label="Dataset map", interactive=False)
    with gr.Accordion("Compare models on this query", open=False):
        compare_button = gr.Button("Compare every model and layer")
        compare = gr.Dataframe(
            headers=["model", "layer", "what it sees", "precision@10"], interactive=False
        )

    hits = gr.State([])
    visible = gr.State([])
    search_inputs = [dataset, model, layer, metric, query_index, upload]
    search_outputs = [query_picture, summary, results, hits]

    def search_after(event: Any) -> None:
        """Chain a search, then mirror the view in the page URL so a link reproduces it."""
        event.then(
            run_search,
            search_inputs,
            search_outputs,
            api_visibility="private",
            concurrency_id="search",
            concurrency_limit=8,
        ).then(None, [dataset, model, layer, metric, query_index], None, js=URL_JS)

    @friendly
    def restore(request: gr.Request) -> tuple[Any, ...]:
        """Read ?dataset=&model=&layer=&metric=&query= so a shared link opens the same view."""
        params = dict(request.query_params) if request else {}
        name = params.get("dataset", state.default_dataset)
        name = name if name in pg.datasets() else state.default_dataset
        key = params.get("model", DEFAULT_MODEL)
        key = key if key in MODELS else DEFAULT_MODEL
        chosen_layer = params.get("layer", "")
        if chosen_layer not in MODELS[key].layer_names:
            chosen_layer = default_layer(key)
        chosen_metric = params.get("metric", DEFAULT_METRIC)
        chosen_metric = chosen_metric if chosen_metric in METRIC_DESCRIPTIONS else DEFAULT_METRIC
        size = len(pg.dataset(name).paths)
        try:
            index = min(max(int(params.get("query", 0)), 0), size - 1)
        except ValueError:
            index = 0
        categories, items, indices = show_dataset(name, ALL_CLASSES)
        return (
            name,
            key,
            gr.update(choices=layer_choices(key), value=chosen_layer),
            chosen_metric,
            index,
            categories,
            items,
            indices,
        )

    search_after(
        demo.load(
            restore,
            None,
            [dataset, model, layer, metric, query_index, category, dataset_images, visible],
            api_name="restore_view",
        )
    )
    search_after(
        dataset.input(
            lambda name: (*show_dataset(name, ALL_CLASSES), 0),
            dataset,
            [category, dataset_images, visible, query_index],
            api_name="dataset_images",
        )
    )
    category.input(
        show_dataset,
        [dataset, category],
        [category, dataset_images, visible],
        api_name="filter_class",
    )
    search_after(model.input(on_model_change, [model, layer], layer, api_name="layers_for_model"))
    search_after(layer.input(lambda: None, None, None, api_name="layer_changed"))
    search_after(metric.input(lambda: None, None, None, api_name="metric_changed"))
    search_after(
        dataset_images.select(
            pick_from_dataset, visible, [query_index, upload], api_name="pick_query"
        )
    )
    search_after(
        results.select(pick_from_results, hits, [query_index, upload], api_name="pick_result")
    )
    search_after(upload.upload(lambda: None, None, None, api_name="upload_changed"))
    if examples is not None:  # clicking an example fills the upload box: search with it
        search_after(examples.load_input_event)
    quality_button.click(
        quality_view,
        [dataset, metric],
        quality,
        api_name="quality",
        concurrency_id="heavy",
        concurrency_limit=1,
    )
    map_button.click(
        map_view,
        [dataset, model, layer, query_index, upload, hits, method],
        map_image,
        api_name="projection",
        concurrency_id="heavy",
        concurrency_limit=1,
    )
    compare_button.click(
        compare_view,
        [dataset, query_index, metric],
        compare,
        api_name="compare",
        concurrency_id="heavy",
        concurrency_limit=1,
    )
    return SearchTab(dataset, model, layer, metric, query_index, search_after)


URL_JS = """
(dataset, model, layer, metric, query) => {
  const url = new URL(window.location.href);
  const params = {dataset, model, layer, metric, query: String(query ?? 0)};
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  window.history.replaceState(null, "", url);
  return [];
}
"""
