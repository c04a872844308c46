"""The Semantic Search view as one value: what every control, the URL and the results show.

A session's view lives in one ``LiveView`` (held in a ``gr.State``, so each session has its own
and every event of the session sees the same object). A change is applied whole to the newest
view or refused whole, under one lock: an event never writes back the values it read when it
started, so a slow refusal or a stale event that ends after a newer one cannot roll the page
back. A search shows its results only if no newer view was chosen while it ran.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from convenet.models.registry import DEFAULT_MODEL, MODELS
from convenet.playground import Playground
from convenet.search.metrics import METRIC_DESCRIPTIONS
from convenet.search.recipes import RECIPES

K_RANGE = (10, 50)  # the k box's bounds; the API allows more
LINK_PARTS = ("dataset", "model", "layer", "metric", "recipe", "query", "k")  # in a link's order
_LOCK = threading.Lock()  # one per process: changes are tiny, so sessions never wait long


@dataclass(frozen=True)
class ViewState:
    """What is searched: a dataset image (``query``) or an uploaded file (``upload``)."""

    dataset: str
    model: str = DEFAULT_MODEL
    layer: str = MODELS[DEFAULT_MODEL].layer_names[-1]
    metric: str = "cosine"
    recipe: str = "plain"
    k: int = K_RANGE[1]
    query: int = 0
    upload: str | None = None

    def link(self) -> str:
        """The URL query string that reopens this view (an upload cannot travel in it)."""
        params = {part: getattr(self, part) for part in LINK_PARTS}
        if self.upload:
            del params["query"]
        if self.k == K_RANGE[1]:  # the default: links made before k was in them stay the same
            del params["k"]
        return urlencode(params)


def problem(pg: Playground, view: ViewState) -> str | None:
    """Why ``view`` cannot be shown, in one sentence; None when it can. No model loads here."""
    if view.dataset not in pg.datasets():
        return f"The dataset {view.dataset} is not available here."
    spec = MODELS.get(view.model)
    if spec is None:
        return f"This app has no model {view.model}."
    if view.layer not in spec.layer_names:
        return f"{spec.title} has no searchable layer {view.layer}; the Layer box lists its layers."
    if view.metric not in METRIC_DESCRIPTIONS:
        return f"This app has no metric {view.metric}."
    if view.recipe not in RECIPES:
        return f"This app has no search recipe {view.recipe}."
    if not K_RANGE[0] <= view.k <= K_RANGE[1]:
        return f"Results shown (k) must be from {K_RANGE[0]} to {K_RANGE[1]}."
    size = len(pg.dataset(view.dataset).paths)
    if view.upload is None and not 0 <= view.query < size:
        return f"The query must be an image number from 0 to {size - 1}."
    return None


class LiveView:
    """A session's current view, its revision (one up per applied change) and the revision
    whose results are on screen."""

    def __init__(self, view: ViewState | None = None) -> None:
        self.view = view
        self.revision = 0
        self.shown = -1

    def __deepcopy__(self, memo: dict[int, Any]) -> LiveView:
        """Each session starts from the default view (Gradio deep-copies a State's value)."""
        return LiveView(self.view)

    def apply(self, pg: Playground, wanted: Any) -> tuple[ViewState, ViewState, str]:
        """Apply ``wanted`` (the newest view -> the view wanted) whole, or refuse it whole.

        Returns the view before, the view now current, and "" or the sentence that says why
        it was refused. ``wanted`` runs under the lock, so it reads the newest view, never a
        stale copy.
        """
        with _LOCK:
            current = self.view
            try:
                new = wanted(current)
            except ValueError as exc:
                return current, current, str(exc)
            why = problem(pg, new)
            if why:
                return current, current, why
            if new != current:
                self.view, self.revision = new, self.revision + 1
            return current, self.view, ""

    def reset(self, view: ViewState) -> None:
        """A page (re)opened: its view is new even if it equals the last one."""
        with _LOCK:
            self.view, self.revision = view, self.revision + 1

    def snapshot(self) -> tuple[ViewState, int]:
        with _LOCK:
            return self.view, self.revision  # type: ignore[return-value]

    def still(self, revision: int) -> bool:
        """Whether ``revision`` is still current; if so, its results are now the ones shown."""
        with _LOCK:
            if revision != self.revision:
                return False
            self.shown = revision
            return True

    def already_shown(self, revision: int) -> bool:
        with _LOCK:
            return self.shown == revision


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def from_link(pg: Playground, params: dict[str, str], dataset: str) -> tuple[ViewState, str]:
    """The view a link asks for, and one sentence naming each part of it that was ignored and
    what is shown instead ("" when nothing was). ``dataset``: the one shown by default."""
    view = ViewState(dataset)
    asked: list[str] = []
    shown: list[str] = []

    def ignore(what: str, value: str, instead: str, why: str = "") -> None:
        asked.append(f"{what} {value[:40]}{why}")  # a client's text is cut, our words are not
        shown.append(instead)

    name = params.get("dataset", dataset)
    if name in pg.datasets():
        view = replace(view, dataset=name)
    else:
        ignore("dataset", name, dataset)
    key = params.get("model", view.model)
    if key not in MODELS:
        ignore("model", key, MODELS[view.model].title)
    elif Playground.weights_problem(key):
        why = f" ({MODELS[key].title}, whose weights are not available here)"
        ignore("model", key, MODELS[view.model].title, why)
    else:
        view = replace(view, model=key, layer=MODELS[key].layer_names[-1])
    layer = params.get("layer", view.layer)
    if layer in MODELS[view.model].layer_names:
        view = replace(view, layer=layer)
    else:
        ignore("layer", layer, view.layer)
    for part, choices in (("metric", METRIC_DESCRIPTIONS), ("recipe", RECIPES)):
        value = params.get(part, getattr(view, part))
        if value in choices:
            view = replace(view, **{part: value})
        else:
            ignore(part, value, getattr(view, part))
    for part, bounds in (("k", K_RANGE), ("query", (0, len(pg.dataset(view.dataset).paths) - 1))):
        raw = params.get(part, str(getattr(view, part)))
        number = int(raw) if raw.strip().isdigit() else None
        if number is not None and bounds[0] <= number <= bounds[1]:
            view = replace(view, **{part: number})
        else:
            default = "image 0" if part == "query" else f"k {view.k}"
            ignore("query image" if part == "query" else "k", raw, default)
    if not asked:
        return view, ""
    return view, (
        f"This link asked for {_join(asked)}, which this app does not have; "
        f"showing {_join(shown)} instead."
    )


def with_parts(**parts: Any) -> Any:
    """A change that sets some parts of the view."""
    return lambda view: replace(view, **parts)


__all__ = ["K_RANGE", "LINK_PARTS", "LiveView", "ViewState", "from_link", "problem", "with_parts"]
