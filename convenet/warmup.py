"""Build at start what each offline model's first use would build while a visitor waits.

On a fresh machine (a Space after every restart or rebuild: its cache is gone) the first
uploaded query of a model exports its ONNX graph (a process that imports TensorFlow: 15 s on
2 cores at load 6, a minute at load 14), the first explanation of a match exports the unpooled
graph, and the first Explorer view imports TensorFlow, builds the Keras model and traces its
functions. The warm-up does that work in the
order a visitor needs it, the default model first, each step as a visitor's call would: through
the same caches (an ONNX session per thread count, the built models, the traced sub-models), so
a visitor who asks for something being built waits for that build and never starts a second.

It runs in a thread of its own, the heavy steps in the low-priority pool (``convenet.priority``):
HTTP 200 and searches keep the CPU. Each step logs one line; ``DONE`` starts the last.
``CONVENET_WARMUP`` chooses the models (``0``: none; see ``convenet.settings``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from convenet.errors import UnknownNameError
from convenet.features.onnx_runtime import ANY_SIZE, graph_file, onnx_extractor
from convenet.models.loading import weights_status
from convenet.models.registry import DEFAULT_MODEL, MODELS, ModelSpec, get_model_spec
from convenet.playground import Playground
from convenet.priority import in_background
from convenet.settings import WARMUP_ENV, onnx_enabled, warmup_models

log = logging.getLogger("convenet")

DONE = "Warm-up finished"  # the log line's start that says every step has run


@dataclass(frozen=True)
class Step:
    """One thing a model's first use builds: what it spares a visitor, and how to build it."""

    serves: str  # for the log: "uploads", "explanations", ...
    build: Callable[[Playground, ModelSpec], object]
    # False: in the warm-up's own thread, at the usual priority, for what keeps the priority of
    # the thread that makes it and serves calls at that priority (the uploads' ONNX session)
    background: bool = True


def _sample(spec: ModelSpec) -> np.ndarray:
    """A fixed RGB image at the model's input size (any picture traces the same functions)."""
    size = spec.input_size
    return np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _stored_features(pg: Playground, spec: ModelSpec) -> None:
    """Read the model's stored features of every dataset that has them, as a first search does
    (the file, its checksum, a float32 copy in memory)."""
    for dataset in pg.datasets():
        if pg.has_features(dataset, spec.key):
            pg.features(dataset, spec.key, spec.layer_names[-1])


def _graph(pooling: str) -> Callable[[Playground, ModelSpec], object]:
    """Export the model's graph for ``pooling`` unless the cache has it."""

    def build(_: Playground, spec: ModelSpec) -> object:
        return graph_file(spec, pooling) if onnx_enabled() else None

    return build


def _session(pooling: str) -> Callable[[Playground, ModelSpec], object]:
    """Open the ONNX session that calls from this kind of thread use, and run it once."""

    def build(_: Playground, spec: ModelSpec) -> object:
        extractor = onnx_extractor(spec.key, pooling, "imagenet")
        if extractor is not None:
            extractor.run(_sample(spec)[None].astype(np.float32), spec.layer_names[-1:])
        return extractor

    return build


def _explorer(pg: Playground, spec: ModelSpec) -> None:
    """What the Model Explorer computes when it opens on the model: its first curated layer,
    the layer table, filters, feature maps, predictions and Grad-CAM of one image."""
    inspector = pg.inspect(spec.key)
    layer, image = spec.layer_names[0], _sample(spec)
    inspector.layer_choices()
    inspector.layer_table()
    inspector.layer_summary(layer)
    inspector.filters(layer)
    inspector.activations(layer, image)
    inspector.predictions(image)
    inspector.gradcam(image)


def _explorer_layers(pg: Playground, spec: ModelSpec) -> None:
    """The feature maps of the model's other curated layers, and the channels' numbers: each
    layer's graph is traced on its first view (0.1-0.7 s of CPU each for Lite0 and Lite2),
    while a class's other visitors wait for the cores."""
    from convenet.explain.explorer import draw_channel_numbers  # TensorFlow: not at start

    inspector, image = pg.inspect(spec.key), _sample(spec)
    for layer in spec.layer_names[1:]:
        inspector.activations(layer, image)
    draw_channel_numbers(max(inspector.channel_count(layer) for layer in spec.layer_names))


UPLOAD_GRAPH = Step("uploads (ONNX graph)", _graph("avg"))
# In the order a visitor meets them: a search and an upload first (the search tab), then why
# it matched (the explanation runs in the low-priority pool, whose ONNX sessions use one
# thread), then the Explorer (its views run in that pool too).
STEPS = (
    Step("searches (stored features)", _stored_features),
    UPLOAD_GRAPH,
    Step("uploads (ONNX session)", _session("avg"), background=False),
    Step("explanations (ONNX graph and session)", _session("map")),
    Step("the Model Explorer (TensorFlow, the Keras model, its views)", _explorer),
    # Last: an upload searched with a recipe (GeM; the smaller sizes of multi-scale GeM).
    Step("recipes' uploads (ONNX graph, GeM)", _graph("gem")),
    Step("recipes' uploads (ONNX graph, GeM at any size)", _graph(ANY_SIZE)),
    Step("the Model Explorer's other layers (feature maps)", _explorer_layers),
)


def models_to_warm() -> list[ModelSpec]:
    """The models CONVENET_WARMUP names; by default those whose weights are here (a visitor
    can use them offline), the default model first."""
    chosen = warmup_models()
    if chosen is not None:
        try:
            return [get_model_spec(key) for key in chosen]
        except UnknownNameError as exc:
            raise SystemExit(f"{WARMUP_ENV}: {exc}") from None
    here = [spec for spec in MODELS.values() if weights_status(spec) == "bundled"]
    return sorted(here, key=lambda spec: spec.key != DEFAULT_MODEL)


def warm_up(pg: Playground, models: Sequence[ModelSpec], steps: Sequence[Step] = STEPS) -> None:
    """Run every step for every model, in order; a step that fails costs only its speed-up."""
    began = time.monotonic()
    for spec in models:
        for step in steps:
            start = time.monotonic()
            try:
                if step.background:
                    in_background(step.build, pg, spec)
                else:
                    step.build(pg, spec)
            except Exception as exc:  # the visitor's first use tries again and answers plainly
                log.warning(
                    "Warm-up: %s for %s not built (%s); its first use builds it.",
                    step.serves,
                    spec.title,
                    exc,
                )
                continue
            took = time.monotonic() - start
            log.info("Warm-up: %s ready for %s (%.1f s)", spec.title, step.serves, took)
    titles = ", ".join(spec.title for spec in models) or "no model"
    log.info("%s in %.0f s: %s", DONE, time.monotonic() - began, titles)


def start_warmup(pg: Playground) -> threading.Thread | None:
    """Start the warm-up in a thread of its own (None when there is nothing to warm)."""
    models = models_to_warm()
    if not models:
        return None
    thread = threading.Thread(target=warm_up, args=(pg, models), name="warmup", daemon=True)
    thread.start()
    return thread
