"""Guided lessons: short steps, each one sentence of what to notice and the view that shows it.

A lesson is a plain record. Where its sentence states a number, the number is the record's
``margin`` and ``measure`` computes, from the shipped data, what the sentence claims: the
tests check ``measure(pg) >= margin`` for every lesson, so no sentence can say more than the
data shows. The sentence reads the margin from the record, never a copy of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from convenet.playground import Playground

LITE0, LITE1, LITE2 = "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"
FIRST, LAST = "stem_conv", "top_conv"


@dataclass(frozen=True)
class Lesson:
    """One step: ``text`` may name ``{margin}``; ``view`` is the link's parameters (the Search
    tab's view parts, ``panel`` to open one of its panels, or ``tab=explorer`` and the
    Explorer's own); ``measure`` returns the figure the sentence claims is at least
    ``margin``."""

    title: str
    text: str
    view: dict[str, Any] = field(default_factory=dict)
    margin: float | None = None
    measure: Callable[[Playground], float] | None = None

    @property
    def sentence(self) -> str:
        return self.text.format(margin=self.margin)

    def link(self, number: int) -> str:
        """The query string that opens this lesson's view, the lessons list open at it."""
        return "?" + urlencode({**self.view, "lesson": number})


def _p10(pg: Playground, dataset: str, model: str, layer: str, **how: str) -> float:
    return pg.quality(dataset, how.get("metric", "cosine"), recipe=how.get("recipe", "plain"))[
        model
    ][layer]


def _depth(pg: Playground) -> float:
    return _p10(pg, "stamps200", LITE0, LAST) - _p10(pg, "stamps200", LITE0, FIRST)


def _metric(pg: Playground) -> float:
    cosine = _p10(pg, "stamps200", LITE2, LAST)
    return cosine - _p10(pg, "stamps200", LITE2, LAST, metric="euclidean")


def _last_is_best(pg: Playground) -> float:
    """The smaller of two leads, over every model: its last layer over its best other layer,
    and its first layer over chance (both must be above 0)."""
    grid = pg.quality("stamps200", "cosine")
    chance = pg.chance("stamps200")
    return min(
        min(
            layers[LAST] - max(v for name, v in layers.items() if name != LAST),
            layers[FIRST] - chance,
        )
        for layers in grid.values()
    )


def _recipe(pg: Playground) -> float:
    return _p10(pg, "clipart200", LITE2, LAST, recipe="best") - _p10(pg, "clipart200", LITE2, LAST)


def _alike(pg: Playground) -> float:
    """Lite0's and Lite1's last layers against Lite0's own first and last (CKA)."""
    found = pg.layer_similarity("clipart200")
    at = {pair: i for i, pair in enumerate(found.pairs)}
    siblings = found.matrix[at[LITE0, LAST], at[LITE1, LAST]]
    ends = found.matrix[at[LITE0, FIRST], at[LITE0, LAST]]
    return float(siblings - ends)


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "Early layers match colour, late layers match objects",
        "Side by side, the first layer finds images of the same colours and textures, the last "
        "finds the same kind of thing: on stamps200 the last layer's P@10 is at least {margin} "
        "higher.",
        {"dataset": "stamps200", "model": LITE0, "layer": LAST, "query": 12, "panel": "side"},
        0.4,
        _depth,
    ),
    Lesson(
        "The deepest layer searches best here",
        "In the overview, every model's best layer on stamps200 is its last; each step deeper "
        "mostly helps, and even the first layer beats chance.",
        {"dataset": "stamps200", "model": LITE0, "layer": LAST, "panel": "overview"},
        0.0,
        _last_is_best,
    ),
    Lesson(
        "A metric that ignores length",
        "Cosine compares only the direction of two vectors, Euclidean also their length: at "
        "Lite2's last layer on stamps200, cosine's P@10 is at least {margin} higher. Switch the "
        "metric and watch the results move.",
        {"dataset": "stamps200", "model": LITE2, "layer": LAST, "metric": "euclidean"},
        0.02,
        _metric,
    ),
    Lesson(
        "What pooling throws away",
        "A search averages each feature map into one number, so where a feature is is lost: "
        "the heatmaps show where two matched images agree, often on different places.",
        {"dataset": "clipart200", "model": LITE0, "layer": LAST, "query": 3, "panel": "why"},
    ),
    Lesson(
        "What a channel wants",
        "Each channel of a layer has a picture optimised to make it fire and the dataset "
        "images that fire it most: compare what it wants with what it finds.",
        {"tab": "explorer", "model": LITE0, "layer": "block6a_project_conv"},
    ),
    Lesson(
        "Why recipes help",
        "Small tricks on the same features (mirrored images, neighbours' vectors) lift the "
        "search: on clipart200 Lite2's last layer, the best recipe adds at least {margin} "
        "to P@10.",
        {"dataset": "clipart200", "model": LITE2, "layer": LAST, "recipe": "best"},
        0.05,
        _recipe,
    ),
    Lesson(
        "Which layers see alike",
        "Sibling models arrange the images alike at the same depth, while one model's first "
        "and last layers hardly agree: Lite0's and Lite1's last layers are at least {margin} "
        "more alike (CKA) than Lite0's first and last.",
        {"dataset": "clipart200", "model": LITE0, "layer": LAST, "panel": "similarity"},
        0.5,
        _alike,
    ),
)


def lesson_records(pg: Playground) -> list[dict[str, Any]]:
    """The lessons as plain records (API, MCP): each with its link and, where it states a
    number, the figure measured on the shipped data now."""
    return [
        {
            "number": number,
            "title": lesson.title,
            "sentence": lesson.sentence,
            "link": lesson.link(number),
            "claim": None
            if lesson.measure is None
            else {"at_least": lesson.margin, "measured": round(lesson.measure(pg), 3)},
        }
        for number, lesson in enumerate(LESSONS, start=1)
    ]
