"""Side by side: the same query searched in two configurations, the quickest way to see depth.

Each side is one (model, layer) pair picked from a single list, so a side can never hold a
layer that belongs to another model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from convenet.models.registry import MODELS, get_model_spec
from convenet.playground import Playground
from ui.common import friendly
from ui.search_handlers import caption, summary_markdown
from ui.search_panels import HEAVY, Follower, View, clicked, drawn_when_open

SIDE_K = 20


def configurations(pg: Playground, dataset: str) -> list[tuple[str, str]]:
    """Every curated layer of every model that can search here, as 'model:layer' choices."""
    usable = [
        spec
        for spec in MODELS.values()
        if pg.weights_status(spec.key) in ("bundled", "cached")
        or pg.has_features(dataset, spec.key)
    ]
    return [
        (f"{spec.title} · {layer} · {i + 1} of {len(spec.layers)}", f"{spec.key}:{layer}")
        for spec in usable
        for i, layer in enumerate(spec.layer_names)
    ]


def parse(configuration: str) -> tuple[str, str]:
    """'model:layer' back to a model key and one of its curated layers, or a plain refusal."""
    model, _, layer = str(configuration).partition(":")
    spec = get_model_spec(model)
    spec.layer(layer)
    return spec.key, layer


@dataclass(frozen=True)
class SideBySide:
    """What the rest of the tab needs of the panel: its follower, and ``show_pair`` to let a
    chart's cells open it with two configurations."""

    follower: Follower
    show_pair: Callable[[gr.HTML], None]
    panel: gr.Accordion


def build_side_by_side(pg: Playground, default_dataset: str, view: View) -> SideBySide:
    """The side-by-side panel, drawn as it opens and in step with each new search."""

    @friendly
    def side_by_side(
        dataset: str,
        metric: str,
        query_index: float | None,
        upload: str | None,
        left: str,
        right: str,
    ) -> tuple[Any, ...]:
        query: dict[str, Any] = (
            {"query_image": Path(upload)} if upload else {"query_index": int(query_index or 0)}
        )
        shown: list[Any] = []
        for configuration in (left, right):
            model, layer = parse(configuration)
            k = min(SIDE_K, len(pg.dataset(dataset).paths) - 1)  # a small own set
            result = pg.search(dataset, model, layer, metric, k=k, **query)
            tiles = [
                (tile, caption(hit.rank, hit.similarity, hit.label, hit.match))
                for tile, hit in zip(result.tiles(), result.hits, strict=True)
            ]
            shown += [tiles, summary_markdown(result, SIDE_K)]
        return tuple(shown)

    choices = configurations(pg, default_dataset)
    first = MODELS[parse(choices[0][1])[0]]
    title = "Side by side: two layers or models on the same query"
    sides = []
    with gr.Accordion(title, open=False) as panel, gr.Row():
        for side, default in (("Left", first.layer_names[0]), ("Right", first.layer_names[-1])):
            with gr.Column(min_width=280):
                picker = gr.Dropdown(
                    choices, value=f"{first.key}:{default}", label=f"{side}: model and layer"
                )
                text = gr.Markdown(elem_id=f"side-{side.lower()}-summary")
                gallery = gr.Gallery(
                    height=420,
                    allow_preview=False,
                    elem_id=f"side-{side.lower()}",
                    elem_classes=["cn-side-gallery"],
                    label=f"{side}: top {SIDE_K}",
                )
                sides.append((picker, gallery, text))

    (left, left_gallery, left_text), (right, right_gallery, right_text) = sides
    inputs = [view.dataset, view.metric, view.query_index, view.upload, left, right]
    outputs = [left_gallery, left_text, right_gallery, right_text]
    follower = drawn_when_open(
        panel, side_by_side, inputs, outputs, "side_by_side", also=[left.input, right.input]
    )

    def show_pair(cells: gr.HTML) -> None:
        """A click on one of ``cells`` (it sends two 'model:layer' configurations) opens the
        panel with them, then draws them (opening draws too: a second search costs ~ms)."""

        def pick(evt: gr.EventData) -> tuple[Any, ...]:
            pair = clicked(evt, "left", "right")
            known = {value for _, value in choices}
            if not all(value in known for value in pair):
                raise ValueError("Both layers of that cell need features on this dataset")
            return (*pair, gr.Accordion(open=True))

        opened = {"api_visibility": "private", "show_progress": "hidden", "show_progress_on": left}
        cells.click(friendly(pick), None, [left, right, panel], **opened).success(
            side_by_side, inputs, outputs, api_visibility="private", **HEAVY
        )

    return SideBySide(follower, show_pair, panel)
