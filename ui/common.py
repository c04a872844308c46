"""Shared UI plumbing: the one Playground, dropdown choices, and friendly errors."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
from gradio import utils as gradio_utils

from convenet.errors import WeightsUnavailableError
from convenet.hub import FeatureSource, resolve_feature_source
from convenet.images import ImageLoadError
from convenet.metrics import METRIC_LABELS, METRICS
from convenet.models import get_model_spec, weights_status
from convenet.playground import Playground
from convenet.plots import TileCache
from convenet.registry import DEFAULT_MODEL, MODELS

log = logging.getLogger("convenet")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_METRIC = "cosine"
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
USER_ERRORS = (ValueError, ImageLoadError, WeightsUnavailableError, KeyError)


def friendly(fn: F) -> F:
    """Turn a user's mistake into a clear message in the UI and the API, never a stack trace.

    A user's mistake is logged as one warning line; a fault of the app keeps its traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            log.warning("%s: %s", fn.__name__, exc.message)
            exc.print_exception = False
            raise
        except USER_ERRORS as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            log.warning("%s: %s", fn.__name__, message)
            raise gr.Error(str(message), print_exception=False) from None
        except Exception:  # keep serving: log the detail, show one sentence
            log.exception("Unexpected error in %s", fn.__name__)
            raise gr.Error(
                "Something went wrong on our side; please try again.", print_exception=False
            ) from None

    return wrapper  # type: ignore[return-value]


class AppState:
    """The feature source, Playground and result tiles shared by every tab (made once at start).

    Tiles live in Gradio's temporary folder, which serves them as they are and whose sweeper
    removes the unused ones; one folder per process, so apps sharing it never clash.
    """

    def __init__(self, source: FeatureSource | None = None) -> None:
        self.source = source or resolve_feature_source()
        self.playground = Playground(self.source.root)
        self.default_dataset = self.playground.datasets()[0]
        folder = Path(gradio_utils.get_upload_folder()) / f"result-tiles-{os.getpid()}"
        self.tiles = TileCache(folder)

    def model_choices(self) -> list[tuple[str, str]]:
        labels = []
        for spec in MODELS.values():
            status = weights_status(spec)
            note = {"bundled": " · offline", "download": " · downloads weights"}.get(status, "")
            labels.append((spec.label + note, spec.key))
        return labels


def layer_choices(model: str) -> list[tuple[str, str]]:
    spec = get_model_spec(model)
    return [(f"{layer.name} — {layer.description}", layer.name) for layer in spec.layers]


def default_layer(model: str) -> str:
    return get_model_spec(model).layer_names[-1]


def metric_choices() -> list[tuple[str, str]]:
    return [(METRIC_LABELS[name], name) for name in METRICS]


def progress_callback(progress: gr.Progress, what: str) -> Callable[[int, int], None]:
    def update(done: int, total: int) -> None:
        progress((done, total), desc=what, unit="images")

    return update


__all__ = ["AppState", "DEFAULT_METRIC", "DEFAULT_MODEL", "friendly"]
