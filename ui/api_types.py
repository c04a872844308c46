"""What the API's and MCP tools' answers hold, field by field, so the API page and an agent's
tool list show each answer's shape instead of "Any".

``resolved`` is needed because ``gr.api`` reads a return type from the raw signature, which
postponed annotations (``from __future__ import annotations``) leave as a string.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, TypedDict

import gradio as gr

SearchHit = TypedDict(  # "class" is a keyword: the functional form
    "SearchHit",
    {
        "rank": int,
        "index": int,
        "image": str,
        "class": str,
        "similarity": float,
        "distance": float,
        "same_class": bool | None,
    },
)


class SearchAnswer(TypedDict):
    dataset: str
    model: str
    layer: str
    metric: str
    recipe: str
    query_index: int | None
    query_class: str | None
    matches: int | None
    possible: int | None
    p_at_k: float | None
    weighted_score: float | None
    results: list[SearchHit]


class LayerEntry(TypedDict):
    name: str
    sees: str


class ModelEntry(TypedDict):
    key: str
    title: str
    year: int
    input_size: int
    parameters: int
    weights: str
    layers: list[LayerEntry]


ClassScore = TypedDict("ClassScore", {"class": str, "class_index": int, "probability": float})
Explained = TypedDict("Explained", {"class": str, "class_index": int, "layer": str})


class PredictionAnswer(TypedDict):
    top5: list[ClassScore]
    explained: Explained
    gradcam: gr.FileData


TopImage = TypedDict("TopImage", {"image": str, "class": str, "activation": float})


Spot = TypedDict("Spot", {"image": str, "class": str, "peak": float, "box": list[int]})


class ChannelAnswer(TypedDict):
    feature_visualization: gr.FileData
    top_images: list[TopImage]
    strongest: list[Spot]


class MatchChannel(TypedDict):
    channel: int
    share: float
    feature_visualization: gr.FileData | None
    explorer_link: str


class WhyAnswer(TypedDict):
    dataset: str
    model: str
    layer: str
    query_index: int | None
    result_index: int
    cosine: float
    meaning: str
    query_heatmap: gr.FileData
    result_heatmap: gr.FileData
    channels: list[MatchChannel]


class LessonClaim(TypedDict):
    at_least: float
    measured: float


class LessonEntry(TypedDict):
    number: int
    title: str
    sentence: str
    link: str
    claim: LessonClaim | None


def resolved(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (or the function it wraps) with its annotations evaluated in its own module."""
    annotations = fn.__annotations__  # shared with the wrapped function (functools.wraps)
    annotations.update(typing.get_type_hints(inspect.unwrap(fn)))
    return fn
