"""The documented API: ``/search`` with keyword arguments and the app's defaults.

Built with ``gr.api`` so parameter names and defaults come from the function signature:
``client.predict(query_index=3, api_name="/search")`` works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ui.common import DEFAULT_METRIC, DEFAULT_MODEL, AppState, default_layer, friendly


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
        query_index: int | None = None,
        query: gr.FileData | None = None,
        k: int = 50,
    ) -> dict:
        """Rank the dataset's images by similarity to a dataset image or an uploaded image."""
        if query is not None:
            result = pg.search(dataset, model, layer, metric, query_image=uploaded_path(query), k=k)
        else:
            result = pg.search(dataset, model, layer, metric, query_index=query_index, k=k)
        images_dir = pg.images_dir(dataset)
        return {
            "dataset": dataset,
            "model": model,
            "layer": layer,
            "metric": metric,
            "query_index": None if query is not None else query_index,
            "query_class": result.query_label,
            "matches": result.matches if result.query_label else None,
            "possible": result.possible,
            "p_at_k": result.p_at_k,
            "weighted_score": result.weighted_score,
            "results": [
                {
                    "rank": hit.rank,
                    "index": hit.index,
                    "image": hit.path.relative_to(images_dir).as_posix(),
                    "class": hit.label,
                    "similarity": round(hit.similarity, 2),
                    "distance": hit.distance,
                    "same_class": hit.match,
                }
                for hit in result.hits
            ],
        }

    gr.api(search, api_name="search", concurrency_id="search", concurrency_limit=8)
