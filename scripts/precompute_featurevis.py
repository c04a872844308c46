"""Render the shipped feature-visualization gallery for the offline models.

    nice -n 10 python scripts/precompute_featurevis.py [--models efficientnet_lite0 ...]
        [--per-layer lite0=16 lite1=8 ...] [--force]

For each curated layer it picks the channels that fire most strongly on some class of the shipped
datasets (``interesting_channels``; from the stored features, so the choice is deterministic and
needs no forward pass) and writes ``precomputed/featurevis/<model>/<layer>/<channel>.webp`` with
the settings the app uses on demand, so the Model Explorer shows a channel grid at once.

Resumable: existing pictures are kept unless --force, and each is written atomically. Pictures
are made in rounds (the first 8 channels of every model, then the rest), so a run cut short still
leaves every layer of every model with a grid.
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

quiet_tensorflow()  # before convenet.explain.featurevis imports Keras
from convenet.explain.featurevis import visualize_channel  # noqa: E402
from convenet.explain.featurevis_gallery import (  # noqa: E402
    FEATUREVIS_SIZE,
    FEATUREVIS_STEPS,
    WEBP_QUALITY,
    class_means,
    interesting_channels,
    precomputed_featurevis_path,
)
from convenet.models.loading import load_model, preprocess_for  # noqa: E402
from convenet.models.registry import MODELS  # noqa: E402
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402
from convenet.playground import Playground  # noqa: E402

OFFLINE_MODELS = [key for key, spec in MODELS.items() if spec.offline]
DEFAULT_PER_LAYER = {"efficientnet_lite0": 16}  # every other model: 8
ROUND = 8  # channels per layer made for every model before any model gets more


def save_webp(image: np.ndarray, path: Path) -> None:
    """Write via a temporary file, so an interrupted run never leaves half a picture behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    Image.fromarray(image).save(tmp, format="WEBP", quality=WEBP_QUALITY, method=6)
    os.replace(tmp, path)


def layer_channels(pg: Playground, key: str, layer: str, n: int) -> list[int]:
    """The n most interesting channels of a layer over all shipped datasets."""
    means = []
    for dataset in pg.datasets():
        folder = pg.dataset(dataset)
        features = pg.features(dataset, key, layer)
        means.append(class_means(features, folder.labels, len(folder.classes)))
    return interesting_channels(means, n)


def plan(pg: Playground, per_layer: dict[str, int]) -> list[tuple[str, str, int]]:
    """(model, layer, channel) in build order: round by round, model by model."""
    chosen = {
        (key, layer): layer_channels(pg, key, layer, n)
        for key, n in per_layer.items()
        for layer in MODELS[key].layer_names
    }
    most = max(per_layer.values())
    jobs = []
    for start in range(0, most, ROUND):
        for (key, layer), channels in chosen.items():
            jobs += [(key, layer, c) for c in channels[start : start + ROUND]]
    return jobs


def parse_per_layer(values: list[str], models: list[str]) -> dict[str, int]:
    counts = {key: DEFAULT_PER_LAYER.get(key, ROUND) for key in models}
    for item in values:
        key, _, n = item.partition("=")
        if key not in counts or not n.isdigit() or int(n) < 1:
            raise ValueError(f"--per-layer wants model=count for a chosen model, got {item!r}")
        counts[key] = int(n)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=OFFLINE_MODELS, default=OFFLINE_MODELS)
    parser.add_argument(
        "--per-layer",
        nargs="*",
        default=[],
        metavar="MODEL=N",
        help="channels per curated layer (default: 16 for efficientnet_lite0, else 8)",
    )
    parser.add_argument("--force", action="store_true", help="re-render existing pictures")
    args = parser.parse_args(argv)
    try:
        per_layer = parse_per_layer(args.per_layer, args.models)
    except ValueError as e:
        parser.error(str(e))
    pg = Playground(PRECOMPUTED_DIR)
    jobs = plan(pg, per_layer)
    todo = [j for j in jobs if args.force or not precomputed_featurevis_path(*j).is_file()]
    print(f"{len(jobs)} pictures planned, {len(todo)} to make", flush=True)
    loaded: dict[str, tuple] = {}
    for done, (key, layer, channel) in enumerate(todo, 1):
        if key not in loaded:
            loaded[key] = (load_model(key), preprocess_for(key))
        model, preprocess = loaded[key]
        start = time.monotonic()
        image = visualize_channel(
            model, layer, channel, preprocess, size=FEATUREVIS_SIZE, steps=FEATUREVIS_STEPS
        )
        save_webp(image, precomputed_featurevis_path(key, layer, channel))
        took = time.monotonic() - start
        print(f"[{done}/{len(todo)}] {key} {layer} {channel}: {took:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
