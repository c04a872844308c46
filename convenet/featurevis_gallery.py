"""Where the shipped feature-visualization pictures live, and the settings they were made with.

Kept apart from ``convenet.featurevis`` so the UI can offer the gallery without importing
TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

from convenet.paths import PRECOMPUTED_DIR

# The shipped gallery (scripts/precompute_featurevis.py) and the app's on-demand pictures use
# the same settings, so a shipped picture is exactly what the app would compute.
FEATUREVIS_DIR = PRECOMPUTED_DIR / "featurevis"
FEATUREVIS_SIZE = 128
FEATUREVIS_STEPS = 96


def precomputed_featurevis_path(model_key: str, layer: str, channel: int) -> Path:
    """Where the shipped gallery keeps a channel's picture (FEATUREVIS_SIZE, FEATUREVIS_STEPS)."""
    return FEATUREVIS_DIR / model_key / layer / f"{channel}.png"
