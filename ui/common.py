"""Shared UI plumbing: the one Playground, dropdown choices, and friendly errors."""

from __future__ import annotations

import functools
import logging
import os
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from convenet.data.datasets import DatasetSpec
from convenet.errors import ImageLoadError, UnknownNameError, WeightsUnavailableError
from convenet.models.registry import DEFAULT_MODEL, MODELS, ModelSpec, get_model_spec
from convenet.playground import Playground
from convenet.search.metrics import METRIC_LABELS, METRICS
from convenet.search.recipes import depth_index, layers_alike
from ui.gradio_compat.files import upload_folder
from ui.server import MISTAKES

log = logging.getLogger("convenet")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_METRIC = "cosine"
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
# UnknownNameError ("Unknown model 'x'; choose one of: ...") is a ValueError, named for the reader.
USER_ERRORS = (UnknownNameError, ValueError, ImageLoadError, WeightsUnavailableError, KeyError)


LIBRARIES = tuple(  # where installed packages and the standard library live
    {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib", "stdlib")}
)
FAULT = "Something went wrong on our side; please try again."


def raised_by_us(exc: BaseException) -> bool:
    """Whether our own code raised ``exc`` (a check that says what the visitor got wrong),
    not a library under it (numpy, TensorFlow, PIL: a fault of ours, whatever its class,
    and its message may name server internals)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    where = Path(tb.tb_frame.f_code.co_filename).resolve()
    return not any(where.is_relative_to(folder) for folder in LIBRARIES)


def friendly(fn: F) -> F:
    """Turn a user's mistake into a clear message in the UI and the API, never a stack trace.

    A user's mistake (a ValueError or KeyError our own code raised, with its sentence) is
    logged as one warning line, at most a few a minute per visitor; anything else, the same
    classes from a library included, is a fault of the app: its traceback goes to the log,
    and the visitor reads one plain sentence.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error as exc:
            MISTAKES.note(f"{fn.__name__}: {exc.message}")
            exc.print_exception = False
            raise
        except USER_ERRORS as exc:
            if not raised_by_us(exc):
                log.exception("Unexpected error in %s", fn.__name__)
                raise gr.Error(FAULT, print_exception=False) from None
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            MISTAKES.note(f"{fn.__name__}: {message}")
            raise gr.Error(str(message), print_exception=False) from None
        except Exception:  # keep serving: log the detail, show one sentence
            log.exception("Unexpected error in %s", fn.__name__)
            raise gr.Error(FAULT, print_exception=False) from None

    return wrapper  # type: ignore[return-value]


class AppState:
    """The feature source, Playground and result tiles shared by every tab (made once at start).

    Tiles live in Gradio's temporary folder, which serves them as they are and whose sweeper
    removes the unused ones; one folder per process, so apps sharing it never clash.
    """

    def __init__(self, folders: list[DatasetSpec] | None = None) -> None:
        """``folders``: datasets served from folders on this machine (``app.py --images``)."""
        self.playground = Playground.from_feature_source()
        self.source = self.playground.source
        for spec in folders or []:
            self.playground.catalog.add(spec)
        self.default_dataset = self.playground.datasets()[0]
        self.dataset_boxes: list[gr.Dropdown] = []  # every tab's dataset choice, kept in step
        folder = upload_folder() / f"result-tiles-{os.getpid()}"
        self.tiles = Playground.tiles(folder)

    def model_choices(self) -> list[tuple[str, str]]:
        """The models that work here first, then the others, each group in order of depth.

        A dropdown has no headings: each model that needs its weights says so in its label.
        """
        specs = sorted(MODELS.values(), key=lambda spec: not works_here(spec))  # stable sort
        return [(model_label(spec), spec.key) for spec in specs]


def model_info(key: str) -> str:
    """The info line under a model box: what sets the chosen model apart (the list itself puts
    the models that work here first and says which need a download)."""
    return get_model_spec(key).in_one_line


def model_update(key: str) -> Any:
    """A model box set to ``key``, its info line following it."""
    return gr.update(value=key, info=model_info(key))


def works_here(spec: ModelSpec) -> bool:
    """Whether the model's weights are here already (installed or downloaded before)."""
    return Playground.weights_status(spec.key) in ("bundled", "cached")


def model_label(spec: ModelSpec) -> str:
    """Short enough not to be cut off in a dropdown; says when the weights are not here."""
    status = Playground.weights_status(spec.key)
    if status == "download":
        return f"{spec.title} - needs a download"
    if status == "missing":
        return f"{spec.title} - weights not installed"
    return f"{spec.title} ({spec.params / 1e6:.1f}M params)"


def corresponding_layer(old_model: str, old_layer: str, new_model: str) -> str:
    """The new model's curated layer at the same depth position as ``old_layer`` in the old."""
    old, new = get_model_spec(old_model), get_model_spec(new_model)
    if old_layer not in old.layer_names:
        return old_layer if old_layer in new.layer_names else default_layer(new.key)
    return new.layer_names[depth_index(old.layer_names, old_layer, len(new.layer_names))]


def layer_choices(
    model: str, recipe: str = "plain", layer: str | None = None
) -> list[tuple[str, str]]:
    """Name and position only, so no label is cut off; the description goes in the info line.

    Layers that ``recipe`` makes search exactly alike (fuse reads the same three for the last
    ones) are one choice: ``layer`` where it is one of them, else the deepest."""
    names = get_model_spec(model).layer_names
    n, choices = len(names), []
    for i, name in enumerate(names):
        group = sorted({name, *layers_alike(recipe, names, name)}, key=names.index)
        if len(group) == 1:
            choices.append((f"{name} · {i + 1} of {n}", name))
            continue
        if name != (layer if layer in group else group[-1]):
            continue
        first, last = names.index(group[0]) + 1, names.index(group[-1]) + 1
        choices.append((f"{name} · {first}-{last} of {n}, one search with {recipe}", name))
    return choices


def layer_info(model: str, layer: str) -> str:
    """The hint under the layer box: what this layer tends to see."""
    spec = get_model_spec(model)
    return spec.layer(layer).description.capitalize() if layer in spec.layer_names else ""


def default_layer(model: str) -> str:
    return get_model_spec(model).layer_names[-1]


def image_upload(label: str, height: int) -> gr.Image:
    """An upload box that hands over the path as uploaded: our decoder checks and converts it
    (Gradio would otherwise decode and re-save any image not already RGB)."""
    return gr.Image(
        label=label,
        type="filepath",
        image_mode=None,
        sources=["upload", "clipboard"],
        height=height,
        buttons=[],  # only its clear button: a phone's small box has no room for more
    )


def dataset_dropdown(state: AppState, **kwargs: Any) -> gr.Dropdown:
    """A tab's dataset choice, from the one dataset list; a session's own images join it."""
    box = gr.Dropdown(state.playground.datasets(), value=state.default_dataset, **kwargs)
    state.dataset_boxes.append(box)
    return box


def metric_choices() -> list[tuple[str, str]]:
    return [(METRIC_LABELS[name], name) for name in METRICS]


def progress_callback(progress: gr.Progress, what: str) -> Callable[[int, int], None]:
    def update(done: int, total: int) -> None:
        progress((done, total), desc=what, unit="images")

    return update


__all__ = ["AppState", "DEFAULT_METRIC", "DEFAULT_MODEL", "friendly"]
