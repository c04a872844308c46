"""Render the shipped feature-visualization gallery for the offline models.

    nice -n 10 python scripts/precompute_featurevis.py [--models efficientnet_lite0 ...] [--force]

For each curated layer it picks the channels with the highest mean activation over the default
dataset (from the stored features, so the choice is deterministic and needs no forward pass)
and writes ``precomputed/featurevis/<model>/<layer>/<channel>.png`` with the same settings the
app uses on demand, so the Model Explorer shows these at once instead of computing them.
Existing pictures are kept unless --force.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from convenet.settings import quiet_tensorflow  # noqa: E402

quiet_tensorflow()  # before convenet.featurevis imports Keras
from convenet.featurevis import visualize_channel  # noqa: E402
from convenet.featurevis_gallery import (  # noqa: E402
    FEATUREVIS_SIZE,
    FEATUREVIS_STEPS,
    precomputed_featurevis_path,
)
from convenet.models import load_model, preprocess_for  # noqa: E402
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402
from convenet.playground import Playground  # noqa: E402
from convenet.registry import MODELS  # noqa: E402

OFFLINE_MODELS = [key for key, spec in MODELS.items() if spec.offline]


def strongest_channels(features: np.ndarray, n: int) -> list[int]:
    """The n channels with the highest mean over the dataset; ties go to the lower index."""
    return [int(c) for c in np.argsort(-features.mean(axis=0), kind="stable")[:n]]


def save_png(image: np.ndarray, path: Path) -> None:
    """Write via a temporary file, so an interrupted run never leaves half a PNG behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    Image.fromarray(image).save(tmp, format="PNG")
    os.replace(tmp, path)


def render_model(pg: Playground, dataset: str, key: str, per_layer: int, force: bool) -> int:
    """Render one model's gallery; returns how many pictures were written."""
    model, preprocess = load_model(key), preprocess_for(key)
    written = 0
    for layer in MODELS[key].layer_names:
        for channel in strongest_channels(pg.features(dataset, key, layer), per_layer):
            path = precomputed_featurevis_path(key, layer, channel)
            if path.is_file() and not force:
                continue
            start = time.monotonic()
            image = visualize_channel(
                model, layer, channel, preprocess, size=FEATUREVIS_SIZE, steps=FEATUREVIS_STEPS
            )
            save_png(image, path)
            written += 1
            print(f"{key} {layer} {channel}: {time.monotonic() - start:.1f} s", flush=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=OFFLINE_MODELS, default=OFFLINE_MODELS)
    parser.add_argument("--per-layer", type=int, default=4, help="channels per curated layer")
    parser.add_argument("--force", action="store_true", help="re-render existing pictures")
    args = parser.parse_args(argv)
    if args.per_layer < 1:
        parser.error(f"--per-layer must be at least 1, got {args.per_layer}")
    pg = Playground(PRECOMPUTED_DIR)
    dataset = pg.datasets()[0]
    for key in args.models:
        count = render_model(pg, dataset, key, args.per_layer, args.force)
        print(f"{key}: {count} pictures written", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
