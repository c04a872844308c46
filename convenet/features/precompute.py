"""Compute every curated layer's features for a dataset x model, once, into a feature store.

One forward pass per batch serves all layers (a multi-output model). Each view (pooling, mirrored
or not) is its own file; the plain one (average pooling) is what the app shows by default.
Re-running skips files that are already present, listed in the manifest and pass their checksum.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convenet import __version__
from convenet.data.datasets import scan_image_folder
from convenet.data.store import (
    feature_path,
    is_valid,
    read_feature_file,
    record_in_manifest,
    write_feature_file,
)
from convenet.features.extract import BATCH_SIZE, PLAIN, Progress, View, extract_features
from convenet.models.loading import get_model_spec


def precompute_folder(
    images_dir: Path,
    dataset: str,
    model: str,
    root: Path,
    layers: Sequence[str] | None = None,
    view: View = PLAIN,
    batch_size: int = BATCH_SIZE,
    force: bool = False,
    progress: Progress | None = None,
    fingerprint: str = "",
) -> tuple[Path, bool]:
    """Features of one image folder for one model; returns (file, whether it was computed).

    With ``fingerprint`` (the folder's content hash) a stored file of other contents is stale.
    """
    spec = get_model_spec(model)
    names = list(layers or spec.layer_names)
    target = feature_path(root, dataset, spec.key, view.variant)
    fresh = not fingerprint or (target.is_file() and stored_fingerprint(target) == fingerprint)
    if not force and fresh and is_valid(root, dataset, spec.key, names, view.variant):
        return target, False
    features, meta = compute_folder(
        images_dir, dataset, spec.key, names, view, batch_size, progress, fingerprint=fingerprint
    )
    store_features(root, dataset, spec.key, features, meta, view.variant)
    return target, True


def stored_fingerprint(path: Path) -> str:
    """The content hash a feature file was computed from ("" for shipped datasets' files)."""
    return str(read_feature_file(path, mapped=True).meta.get("fingerprint", ""))


def compute_folder(
    images_dir: Path,
    dataset: str,
    model: str,
    layers: Sequence[str],
    view: View = PLAIN,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    min_classes: int = 2,
    fingerprint: str = "",
) -> tuple[dict[str, np.ndarray], dict]:
    """float16 features (in the folder's scan order) and the metadata that describes them;
    ``fingerprint``, the folder's content hash, is recorded so stale features are never read."""
    folder = scan_image_folder(images_dir, min_classes)
    result = extract_features(
        model,
        folder.paths,
        layers,
        view.pooling,
        batch_size=batch_size,
        progress=progress,
        flip=view.flip,
    )
    meta = {
        **result.meta(),
        "dataset": dataset,
        "images": [path.relative_to(images_dir).as_posix() for path in folder.paths],
        "labels": [folder.classes[label] for label in folder.labels],
        "convenet_version": __version__,
        **({"fingerprint": fingerprint} if fingerprint else {}),
    }
    return result.features, meta


def store_features(
    root: Path,
    dataset: str,
    model: str,
    features: dict[str, np.ndarray],
    meta: dict,
    variant: str | None = None,
) -> Path:
    """Write one feature file and list it, with its checksum, in the root's manifest."""
    target = feature_path(root, dataset, model, variant)
    write_feature_file(target, features, meta)
    record_in_manifest(root, target)
    return target
