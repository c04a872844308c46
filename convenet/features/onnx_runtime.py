"""Pooled features with ONNX Runtime: the Keras multi-output extractor, exported once and cached.

ONNX Runtime runs these networks faster than Keras on a CPU and needs no TensorFlow, so uploads
and feature extraction never load it into the app. Keras stays for everything that needs
gradients or layer internals (Model Explorer, Grad-CAM, feature visualization) and builds each
graph once, in a separate process (``convenet.features.onnx_export``).

Graphs live in the cache (``CONVENET_CACHE/onnx``), one per model and pooling (average, GeM for
the retrieval recipes, none for the feature maps that explain a match), named after the model,
its curated layers, the pooling and the weights' fingerprint, so new weights get a new graph.
``CONVENET_ONNX=0`` turns this off (Keras for everything).
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convenet.disk_cap import make_room, mark_used
from convenet.errors import WeightsUnavailableError
from convenet.lru import BuildOnceLRU
from convenet.models.loading import converted_weights_digest, keras_weights_path
from convenet.models.registry import ModelSpec, get_model_spec
from convenet.paths import REPO_DIR, cache_dir
from convenet.priority import in_background_thread
from convenet.settings import model_cache_size, onnx_enabled

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger("convenet")

EXPORT_VERSION = 1  # bump when the export changes, so older cached graphs are not used
# The poolings the app uses: average and GeM (stored features), "map" (unpooled feature maps,
# for why two images match and R-MAC), GeM at any input size (the smaller scales of
# multi-scale GeM); max and flat run through Keras.
ANY_SIZE = "gem-any-size"
POOLINGS = ("avg", "gem", "map", ANY_SIZE)
EXPORT_TIMEOUT_S = 900
WEIGHTS_UNAVAILABLE_EXIT = 3  # the export process's answer when the weights cannot be had


def weights_id(spec: ModelSpec) -> str | None:
    """What identifies the model's weights on disk, without loading them; None if not there."""
    if spec.offline:
        return converted_weights_digest(spec)
    path = keras_weights_path(spec)
    if path is None or not path.is_file():
        return None
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def graph_path(spec: ModelSpec, weights: str, pooling: str = "avg") -> Path:
    what = repr((EXPORT_VERSION, spec.layer_names, pooling, weights))
    digest = hashlib.sha256(what.encode()).hexdigest()[:16]
    return cache_dir() / "onnx" / f"{spec.key}-{pooling}-{digest}.onnx"


def export_in_subprocess(spec: ModelSpec, pooling: str = "avg") -> Path | None:
    """Export the graph in a child process (``convenet.features.onnx_export``), so that
    TensorFlow and the conversion's memory (gigabytes at its peak) never enter this one; None if
    the weights cannot be identified on disk afterwards (a cache that cannot be written)."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "convenet.features.onnx_export", spec.key, pooling],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=EXPORT_TIMEOUT_S,
        check=False,
    )
    last = (done.stdout.strip() or done.stderr.strip()).splitlines()[-1:] or ["no output"]
    if done.returncode == WEIGHTS_UNAVAILABLE_EXIT:
        raise WeightsUnavailableError(last[0])
    if done.returncode != 0:
        raise RuntimeError(f"the export process failed: {last[0]}")
    weights = weights_id(spec)
    path = graph_path(spec, weights, pooling) if weights is not None else None
    if path is None or not path.is_file():
        return None
    took = time.monotonic() - start
    log.info("Exported %s %s features to ONNX in %.0f s: %s", spec.title, pooling, took, path)
    return path


class OnnxExtractor:
    """One model's curated layers, pooled, in an ONNX Runtime session."""

    def __init__(self, spec: ModelSpec, path: Path, threads: int = 0) -> None:
        """``threads``: ONNX Runtime's threads for one run (0: one per core; 1: the caller's
        thread only; bulk extraction runs several such sessions side by side)."""
        import onnxruntime

        self.spec = spec
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        options.intra_op_num_threads = threads
        # Threads that spin while waiting for work starve everything else on a shared CPU: at
        # load 8 on 2 cores one upload's forward pass took 41 ms spinning, 15 ms sleeping.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session: onnxruntime.InferenceSession = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name
        outputs = [out.name for out in self.session.get_outputs()]
        self.outputs = dict(zip(spec.layer_names, outputs, strict=True))

    def run(self, batch: np.ndarray, layers: tuple[str, ...]) -> dict[str, np.ndarray]:
        """float32 features (pooled, or maps) of a preprocessed batch, for the requested layers."""
        values = self.session.run([self.outputs[name] for name in layers], {self.input: batch})
        return {
            name: np.asarray(value, np.float32) for name, value in zip(layers, values, strict=True)
        }


# One lock per (model, pooling): whoever asks for a graph being exported (the warm-up at start,
# an upload, an explanation, with any thread count) waits for that export instead of starting one.
_EXPORTING: dict[tuple[str, str], threading.Lock] = {}


def graph_file(spec: ModelSpec, pooling: str = "avg") -> Path | None:
    """The graph's file, exported first where it is missing (one export at a time per graph);
    None if the weights cannot be identified on disk afterwards."""
    with _EXPORTING.setdefault((spec.key, pooling), threading.Lock()):
        weights = weights_id(spec)
        path = graph_path(spec, weights, pooling) if weights is not None else None
        if path is None or not path.is_file():
            path = export_in_subprocess(spec, pooling)
            if path is not None:
                make_room(path)
        elif path is not None:
            mark_used(path)
        return path


def _cached_graph(spec: ModelSpec, path: Path, threads: int) -> OnnxExtractor | None:
    """The extractor of an already exported graph; a graph ONNX Runtime cannot load (cut short
    by a full disk or a killed export, or damaged) is removed, so it is exported again."""
    try:
        return OnnxExtractor(spec, path, threads)
    except Exception as exc:  # ONNX Runtime's own error classes, one per kind of damage
        log.warning(
            "The cached ONNX graph of %s is unreadable (%s); exporting it again.",
            spec.title,
            type(exc).__name__,
        )
        path.unlink(missing_ok=True)
        return None


def _build(spec: ModelSpec, pooling: str, threads: int) -> OnnxExtractor | None:
    try:
        path = graph_file(spec, pooling)
        cached = _cached_graph(spec, path, threads) if path is not None else None
        if cached is not None or path is None:
            return cached
        path = graph_file(spec, pooling)  # the unreadable one was removed: exported again, once
        return OnnxExtractor(spec, path, threads) if path is not None else None
    except WeightsUnavailableError:
        raise  # the user's answer either way; a later call may have the weights
    except Exception as exc:  # any other failure only costs speed: Keras serves the model
        log.warning(
            "No ONNX graph for %s %s (%s: %s); Keras serves it.",
            spec.title,
            pooling,
            type(exc).__name__,
            exc,
        )
        return None


# ONNX extractors by (model, pooling); a graph that cannot be made is kept as None, so Keras
# serves that model without another try (one warning in the log).
SESSIONS: BuildOnceLRU[OnnxExtractor | None] = BuildOnceLRU(2 * model_cache_size())


def onnx_extractor(
    model_key: str, pooling: str, weights: Any, threads: int = 0
) -> OnnxExtractor | None:
    """The ONNX extractor for the app's features (ImageNet weights, average or GeM pooling), or
    None where Keras must do it: another pooling or weights, ONNX off, or no graph possible.

    ``threads`` sets its threads per run (0: one per core): bulk extraction runs batches side by
    side, each on a share of the cores (1 on a 2-core machine: no hand-over between threads
    inside each layer); an upload uses every core for its one image (``threads=0``). Slow work
    at low priority (``convenet.priority``) gets its calling thread only: a session's threads
    keep the priority of the thread that made them, so low-priority work makes none.
    """
    if not onnx_enabled() or pooling not in POOLINGS or weights != "imagenet":
        return None
    if threads == 0 and in_background_thread():
        threads = 1
    spec = get_model_spec(model_key)
    return SESSIONS.get((model_key, pooling, threads), lambda: _build(spec, pooling, threads))
