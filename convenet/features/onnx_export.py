"""Export a model's feature extractor to ONNX: ``python -m convenet.features.onnx_export MODEL
[POOLING]``.

A separate process, so the app never imports TensorFlow, tf2onnx or their memory for it.
"""

from __future__ import annotations

import os
import sys
import uuid
import warnings
from pathlib import Path

import numpy as np

from convenet.errors import WeightsUnavailableError
from convenet.features.onnx_runtime import WEIGHTS_UNAVAILABLE_EXIT, graph_path, weights_id
from convenet.models.loading import get_model_spec
from convenet.models.registry import ModelSpec
from convenet.settings import quiet_tensorflow


def export_graph(spec: ModelSpec, pooling: str = "avg") -> Path | None:
    """Export the Keras extractor of every curated layer, pooled; None if the weights cannot
    be identified on disk (a cache that cannot be written)."""
    from convenet.features.extract import EXTRACTORS

    extractor = EXTRACTORS.get(spec.key, "imagenet", spec.layer_names, pooling)
    weights = weights_id(spec)
    if weights is None:
        return None
    path = graph_path(spec, weights, pooling)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"partial-{uuid.uuid4().hex}-{path.name}")  # one per writer
    size = spec.input_size
    try:
        extractor.predict_on_batch(np.zeros((1, size, size, 3), np.float32))  # export needs a call
        with warnings.catch_warnings():  # Keras' numpy-2 patch of tf2onnx probes np.object
            warnings.simplefilter("ignore", FutureWarning)
            extractor.export(str(partial), format="onnx", verbose=False)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def main(argv: list[str]) -> int:
    """Export one model; exit WEIGHTS_UNAVAILABLE_EXIT with the reason when its weights can't
    be had (the app shows that sentence)."""
    try:
        export_graph(get_model_spec(argv[1]), argv[2] if len(argv) > 2 else "avg")
    except WeightsUnavailableError as exc:
        print(exc)
        return WEIGHTS_UNAVAILABLE_EXIT
    return 0


if __name__ == "__main__":
    quiet_tensorflow()  # an entry point: its last line of output is the error the app shows
    sys.exit(main(sys.argv))
