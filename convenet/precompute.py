"""Compute every curated layer's features for a dataset x model, once, into a feature store.

One forward pass per batch serves all layers (a multi-output model). Re-running skips files
that are already present, listed in the manifest and pass their checksum.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from convenet import __version__
from convenet.datasets import scan_image_folder
from convenet.features import Progress, extract_features
from convenet.models import get_model_spec
from convenet.store import feature_path, is_valid, record_in_manifest, write_feature_file


def precompute_folder(
    images_dir: Path,
    dataset: str,
    model: str,
    root: Path,
    layers: Sequence[str] | None = None,
    pooling: str = "avg",
    batch_size: int = 16,
    force: bool = False,
    progress: Progress | None = None,
) -> tuple[Path, bool]:
    """Features of one image folder for one model; returns (file, whether it was computed)."""
    spec = get_model_spec(model)
    names = list(layers or spec.layer_names)
    target = feature_path(root, dataset, spec.key)
    if not force and is_valid(root, dataset, spec.key, names):
        return target, False
    folder = scan_image_folder(images_dir)
    result = extract_features(
        spec.key, folder.paths, names, pooling, batch_size=batch_size, progress=progress
    )
    meta = {
        **result.meta(),
        "dataset": dataset,
        "images": [path.relative_to(images_dir).as_posix() for path in folder.paths],
        "labels": [folder.classes[label] for label in folder.labels],
        "convenet_version": __version__,
    }
    write_feature_file(target, result.features, meta)
    record_in_manifest(root, target)
    return target, True
