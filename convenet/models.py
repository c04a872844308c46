"""Build registry models on demand and keep a few in memory (least recently used).

Keras ImageNet weights download on first use (they work on the Space, not offline); when they
cannot be had the user gets one sentence naming the models that do work offline.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any

from convenet.errors import WeightsUnavailableError
from convenet.lru import BuildOnceLRU
from convenet.registry import MODELS, ModelSpec

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
log = logging.getLogger("convenet")

Weights = str | None  # "imagenet" or None (random initialisation, for tests and shapes)


def resolve(dotted: str) -> Any:
    """Import ``package.module.attribute`` lazily, so the registry stays plain strings."""
    module, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def get_model_spec(name: str) -> ModelSpec:
    """Look a model up by key or title, case-insensitively; unknown names list the valid ones."""
    wanted = name.strip().lower()
    for spec in MODELS.values():
        if wanted in (spec.key, spec.title.lower(), spec.label.lower()):
            return spec
    raise ValueError(f"Unknown model {name!r}; choose one of: {', '.join(MODELS)}")


def offline_titles() -> list[str]:
    return [spec.title for spec in MODELS.values() if spec.offline]


def keras_weights_path(spec: ModelSpec) -> Path | None:
    """Where Keras caches this model's ImageNet weights (KERAS_HOME or ~/.keras)."""
    if spec.weights_file is None:
        return None
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return home / "models" / spec.weights_file


def weights_status(spec: ModelSpec) -> str:
    """'bundled' (works offline), 'cached' (downloaded before) or 'download' (needs network)."""
    if spec.offline:
        from convenet.efficientnet_lite import lite_weights_available

        return "bundled" if lite_weights_available(int(spec.key[-1])) else "missing"
    path = keras_weights_path(spec)
    return "cached" if path is not None and path.is_file() else "download"


def _construct(spec: ModelSpec, weights: Weights) -> Any:
    constructor = resolve(spec.constructor)
    if weights is None or weights_status(spec) != "download":
        return constructor(weights=weights)
    try:
        return constructor(weights=weights)
    except Exception as exc:  # keras raises plain Exception for a failed download
        log.warning("Downloading the weights of %s failed: %s", spec.title, exc)
        raise WeightsUnavailableError(unavailable_sentence(spec)) from None


def unavailable_sentence(spec: ModelSpec) -> str:
    """What a user reads when a model's weights cannot be had here: which models do work."""
    return (
        f"The ImageNet weights of {spec.title} could not be downloaded here; models that work "
        f"offline: {', '.join(offline_titles())} (on a Space with internet the others download "
        "their weights once, on first use)."
    )


class ModelCache(BuildOnceLRU[Any]):
    """The built models: memory stays flat while users hop around."""

    def get(self, spec: ModelSpec, weights: Weights) -> Any:  # type: ignore[override]
        return super().get((spec.key, weights), lambda: _construct(spec, weights))


MODEL_CACHE = ModelCache(int(os.environ.get("CONVENET_MODEL_CACHE", "3")))


def load_model(name: str, weights: Weights = "imagenet") -> Any:
    """The Keras model for ``name`` (cached); WeightsUnavailableError when weights can't be had."""
    return MODEL_CACHE.get(get_model_spec(name), weights)


def preprocess_for(name: str) -> Any:
    """The model's own input preprocessing, applied to float RGB 0..255 batches."""
    return resolve(get_model_spec(name).preprocess)
