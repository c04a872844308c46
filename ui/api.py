"""The documented API: ``/search`` with keyword arguments and the app's defaults.

Built with ``gr.api`` so parameter names and defaults come from the function signature:
``client.predict(query_index=3, api_name="/search")`` works.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from ui.common import DEFAULT_METRIC, DEFAULT_MODEL, AppState, default_layer, friendly


def uploaded_path(query: Any) -> Path:
    """The uploaded file's path, refusing anything outside Gradio's upload folder.

    With ``gr.api`` nothing checks the path a client sends, so a caller could otherwise name
    any file on the server.
    """
    raw = query.get("path") if isinstance(query, dict) else getattr(query, "path", query)
    if not isinstance(raw, str) or not raw:
        raise ValueError("query must be an uploaded image file (use gradio_client.handle_file)")
    path = Path(raw).resolve()
    upload_root = Path(
        gr.utils.get_upload_folder()
        if hasattr(gr.utils, "get_upload_folder")
        else Path(tempfile.gettempdir()) / "gradio"
    ).resolve()
    if not path.is_relative_to(upload_root):
        raise ValueError("query must be a file uploaded to this app")
    return path


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
        if not isinstance(k, int) or isinstance(k, bool):
            raise ValueError(f"k must be an integer, got {k!r}")
        if query_index is not None and (
            not isinstance(query_index, int) or isinstance(query_index, bool)
        ):
            raise ValueError(f"query_index must be an integer, got {query_index!r}")
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
