"""The documented API: ``/search`` with keyword arguments and the app's defaults.

Built with ``gr.api`` so parameter names and defaults come from the function signature:
``client.predict(query_index=3, api_name="/search")`` works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ui.api_types import SearchAnswer, resolved
from ui.common import DEFAULT_METRIC, DEFAULT_MODEL, AppState, default_layer, friendly
from ui.groups import SEARCH


def uploaded_path(query: Any) -> Path:
    """The path of an upload the edge (ui.guard) has already checked."""
    raw = query.get("path") if isinstance(query, dict) else getattr(query, "path", query)
    return Path(raw)


def register_api(state: AppState) -> None:
    """Add the keyword-argument endpoints that scripts and notebooks call."""
    pg = state.playground

    @friendly
    def search(
        dataset: str = state.default_dataset,
        model: str = DEFAULT_MODEL,
        layer: str = default_layer(DEFAULT_MODEL),
        metric: str = DEFAULT_METRIC,
        query_index: int = 0,
        query: gr.FileData = None,  # type: ignore[assignment]  # no Optional: MCP needs the plain file type
        k: int = 50,
        recipe: str = "plain",
    ) -> SearchAnswer:
        """Find the images of a dataset that one layer of a CNN finds most similar to a query.

        Args:
            dataset: the dataset to search, "stamps200" or "clipart200".
            model: a model key from list_models, for example "efficientnet_lite0".
            layer: one of the model's eight curated layers (see list_models); early layers
                match colour and texture, late ones match objects.
            metric: how distance is measured: {metrics}.
            query_index: the dataset image to search with (0 to 199); ignored when `query`
                is given.
            query: your own image instead (an uploaded file, or a data: URL for MCP clients).
            k: how many results, 1 to 199.
            recipe: the search recipe: {recipes}; plain is average pooling of one layer,
                best the combination that measured best.

        Returns:
            The query's class (dataset images only), how many of the top k share it
            (`matches`, `p_at_k`), the rank-weighted score, and `results`: for each rank the
            dataset `index`, `image` path, `class`, `similarity` (percent: 100 = as close as
            the query's nearest dataset image, 0 = as far as the nearest quarter of the
            dataset), `distance` and `same_class`.
        """
        if query is not None:
            upload = uploaded_path(query)
            result = pg.search(
                dataset, model, layer, metric, query_image=upload, k=k, recipe=recipe
            )
        else:
            result = pg.search(
                dataset, model, layer, metric, query_index=query_index, k=k, recipe=recipe
            )
        images_dir = pg.images_dir(dataset)
        return {
            "dataset": dataset,
            "model": model,
            "layer": layer,
            "metric": metric,
            "recipe": recipe,
            "query_index": None if query is not None else query_index,
            "query_class": result.query_label,
            "matches": result.matches if result.query_label else None,
            "possible": result.possible,
            "p_at_k": result.p_at_k,
            "weighted_score": result.weighted_score,
            "results": result.rows(images_dir),
        }

    search.__doc__ = search_description(search.__doc__ or "")
    gr.api(resolved(search), api_name="search", **SEARCH.events())


def search_description(template: str) -> str:
    """/search's description with today's metrics and recipes, read from their registries: a
    new metric or recipe needs no second file to appear on the API page and in the MCP tools."""
    from convenet.search.metrics import REGISTRY
    from convenet.search.recipes import RECIPES

    def either(names: list[str]) -> str:
        return f"{', '.join(names[:-1])} or {names[-1]}"

    return template.format(metrics=either(list(REGISTRY)), recipes=either(list(RECIPES)))
