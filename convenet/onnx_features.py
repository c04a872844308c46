"""Pooled features with ONNX Runtime: the Keras multi-output extractor, exported once and cached.

ONNX Runtime runs these networks faster than Keras on a CPU and needs no TensorFlow, so uploads
and feature extraction neither wait for nor load it once a model's graph is cached. Keras stays
for everything that needs gradients or layer internals (Model Explorer, Grad-CAM, feature
visualization) and builds the graph the first time (``model.export(format="onnx")``).

Graphs live in the cache (``CONVENET_CACHE/onnx``), one per model and pooling (average, and GeM
for the retrieval recipes), named after the model, its curated layers, the pooling and the
weights' fingerprint, so new weights get a new graph. ``CONVENET_ONNX=0``
turns this off (Keras for everything).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convenet.models import get_model_spec, keras_weights_path
from convenet.paths import cache_dir
from convenet.registry import ModelSpec

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger("convenet")

EXPORT_VERSION = 1  # bump when the export changes, so older cached graphs are not used
POOLINGS = ("avg", "gem")  # the poolings the app stores; max and flat run through Keras


def onnx_enabled() -> bool:
    return os.environ.get("CONVENET_ONNX", "1") != "0"


def weights_id(spec: ModelSpec) -> str | None:
    """What identifies the model's weights on disk, without loading them; None if not there."""
    if spec.offline:
        from convenet.efficientnet_lite import cached_weights_digest

        return cached_weights_digest(int(spec.key[-1]))
    path = keras_weights_path(spec)
    if path is None or not path.is_file():
        return None
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def graph_path(spec: ModelSpec, weights: str, pooling: str = "avg") -> Path:
    what = repr((EXPORT_VERSION, spec.layer_names, pooling, weights))
    digest = hashlib.sha256(what.encode()).hexdigest()[:16]
    return cache_dir() / "onnx" / f"{spec.key}-{pooling}-{digest}.onnx"


def export_graph(spec: ModelSpec, pooling: str = "avg") -> Path | None:
    """Export the Keras extractor of every curated layer (imports TensorFlow); None if the
    weights cannot be identified on disk (a cache that cannot be written)."""
    from convenet.features import EXTRACTORS

    extractor = EXTRACTORS.get(spec.key, "imagenet", spec.layer_names, pooling)
    weights = weights_id(spec)
    if weights is None:
        return None
    path = graph_path(spec, weights, pooling)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"partial-{uuid.uuid4().hex}-{path.name}")
    size = spec.input_size
    try:
        extractor.predict_on_batch(np.zeros((1, size, size, 3), np.float32))  # export needs a call
        with warnings.catch_warnings():  # Keras' numpy-2 patch of tf2onnx probes np.object
            warnings.simplefilter("ignore", FutureWarning)
            extractor.export(str(partial), format="onnx", verbose=False)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    log.info("Exported %s %s features to ONNX: %s", spec.title, pooling, path)
    return path


class OnnxExtractor:
    """One model's curated layers, pooled, in an ONNX Runtime session."""

    def __init__(self, spec: ModelSpec, path: Path) -> None:
        import onnxruntime

        self.spec = spec
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        self.session: onnxruntime.InferenceSession = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name
        outputs = [out.name for out in self.session.get_outputs()]
        self.outputs = dict(zip(spec.layer_names, outputs, strict=True))

    def run(self, batch: np.ndarray, layers: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Pooled float32 features of a preprocessed batch, for the requested curated layers."""
        values = self.session.run([self.outputs[name] for name in layers], {self.input: batch})
        return {
            name: np.asarray(value, np.float32) for name, value in zip(layers, values, strict=True)
        }


class _Sessions:
    """ONNX extractors by model and pooling: built once (from the cached graph, else exported)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], OnnxExtractor | None] = {}
        self._lock = threading.Lock()
        self._building: dict[tuple[str, str], threading.Lock] = {}

    def get(self, model_key: str, pooling: str = "avg") -> OnnxExtractor | None:
        key = (model_key, pooling)
        with self._lock:
            if key in self._items:
                return self._items[key]
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            spec = get_model_spec(model_key)
            weights = weights_id(spec)
            path = graph_path(spec, weights, pooling) if weights is not None else None
            if path is None or not path.is_file():
                path = export_graph(spec, pooling)
            extractor = OnnxExtractor(spec, path) if path is not None else None
            with self._lock:
                self._items[key] = extractor
            return extractor

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


SESSIONS = _Sessions()


def onnx_extractor(model_key: str, pooling: str, weights: Any) -> OnnxExtractor | None:
    """The ONNX extractor for the app's features (ImageNet weights, average or GeM pooling), or
    None where Keras must do it: another pooling or weights, ONNX off, or no graph possible."""
    if not onnx_enabled() or pooling not in POOLINGS or weights != "imagenet":
        return None
    return SESSIONS.get(model_key, pooling)
