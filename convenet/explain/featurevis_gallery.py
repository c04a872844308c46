"""Where the shipped feature-visualization pictures live, the settings they were made with, and
which channels are worth shipping.

Kept apart from ``convenet.explain.featurevis`` so the UI can offer the gallery without importing
TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convenet.paths import PRECOMPUTED_DIR

# The shipped gallery (scripts/precompute_featurevis.py) and the app's on-demand pictures use
# the same settings, so a shipped picture is what the app would compute (up to WebP's loss).
# Chosen from a contact sheet of 128px/96, 128/256, 128/512, 128/256 at lr 0.1 and 160/384:
# 160px at 384 steps is as clean as 128/512, larger on the page, and costs about the same.
FEATUREVIS_DIR = PRECOMPUTED_DIR / "featurevis"
FEATUREVIS_SIZE = 160
FEATUREVIS_STEPS = 384
FEATUREVIS_SUFFIX = ".webp"
WEBP_QUALITY = 90  # ~10-20 KB per picture; artefacts invisible next to the optimisation's own


def precomputed_featurevis_path(model_key: str, layer: str, channel: int) -> Path:
    """Where the shipped gallery keeps a channel's picture (FEATUREVIS_SIZE, FEATUREVIS_STEPS)."""
    return FEATUREVIS_DIR / model_key / layer / f"{channel}{FEATUREVIS_SUFFIX}"


def shipped_channels(model_key: str, layer: str) -> list[int]:
    """Channels of a layer that have a shipped picture, in ascending order."""
    folder = FEATUREVIS_DIR / model_key / layer
    if not folder.is_dir():
        return []
    found = (p.name.removesuffix(FEATUREVIS_SUFFIX) for p in folder.glob(f"*{FEATUREVIS_SUFFIX}"))
    return sorted(int(stem) for stem in found if stem.isdigit())


def class_means(features: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, channels) mean pooled activation of each class; empty classes are 0."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise ValueError(
            f"features must be (n, channels) with one label per row; got {features.shape} "
            f"and {labels.shape}"
        )
    sums = np.zeros((n_classes, features.shape[1]))
    np.add.at(sums, labels, features)
    counts = np.bincount(labels, minlength=n_classes)[:, None]
    return sums / np.maximum(counts, 1)


def interesting_channels(per_dataset_class_means: Sequence[np.ndarray], n: int) -> list[int]:
    """The n channels that fire most strongly on some class of some dataset.

    Each dataset's class means are divided by that dataset's mean activation over all channels,
    so datasets weigh alike; a channel's score is its largest class mean. This favours channels
    that respond to something specific over ones that fire a little on everything. Ties go to
    the lower index.
    """
    if not per_dataset_class_means:
        raise ValueError("need class means of at least one dataset")
    scores = np.max(
        [(m / max(float(np.abs(m).mean()), 1e-12)).max(axis=0) for m in per_dataset_class_means],
        axis=0,
    )
    return [int(c) for c in np.argsort(-scores, kind="stable")[:n]]


def top_activating_images(
    features: np.ndarray, channel: int, k: int = 9, least: bool = False
) -> np.ndarray:
    """Indices of the k rows (dataset images) with the highest pooled activation for a channel,
    or with ``least`` the lowest (what the channel is not)."""
    features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"features must be (n_images, channels), got shape {features.shape}")
    if not 0 <= channel < features.shape[1]:
        raise ValueError(f"channel {channel} out of range for {features.shape[1]} channels")
    values = features[:, channel] if least else -features[:, channel]
    return np.argsort(values, kind="stable")[: max(k, 0)]
