"""Draw every shipped dataset's maps once (PCA, t-SNE and UMAP of each model x layer with
features) and ship them beside the features, so the map panel opens at once.

    python scripts/build_maps.py [--root precomputed] [--methods pca tsne umap] [--jobs N]

Each map is stored with a digest of the features it was drawn from; the app uses it only while
those features are unchanged (``Playground.projection``), else it draws the map as before.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from convenet.data.store import atomic_write_bytes  # noqa: E402
from convenet.explain.maps import MAPS_FILE, feature_digest, project  # noqa: E402
from convenet.models.registry import MODELS  # noqa: E402
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402
from convenet.playground import Playground  # noqa: E402


def _draw(root: Path, dataset: str, model: str, layer: str, method: str) -> tuple:
    """One map, in a worker process: (key, points, digest of the features, seconds)."""
    start = time.perf_counter()
    pg = Playground(root)
    feats = pg.features(dataset, model, layer)[pg.map_rows(dataset)]
    points = project(feats, method).astype("float32")
    return f"{model}/{layer}/{method}", points, feature_digest(feats), time.perf_counter() - start


def build(root: Path, methods: list[str], jobs: int) -> None:
    from concurrent.futures import ProcessPoolExecutor

    from safetensors.numpy import save

    pg = Playground(root)
    tasks = [
        (root, dataset, spec.key, layer, method)
        for dataset in pg.datasets()
        for spec in MODELS.values()
        if pg.has_features(dataset, spec.key)
        for layer in spec.layer_names
        for method in methods
    ]
    drawn: dict[str, tuple[dict, dict]] = {}
    with ProcessPoolExecutor(jobs) as pool:
        for task, (key, points, digest, seconds) in zip(
            tasks, pool.map(_draw, *zip(*tasks, strict=True)), strict=True
        ):
            tensors, digests = drawn.setdefault(task[1], ({}, {}))
            tensors[key], digests[key] = points, digest
            print(f"{task[1]} {key}: {seconds:.1f} s", flush=True)
    for dataset, (tensors, digests) in drawn.items():
        path = root / dataset / MAPS_FILE
        atomic_write_bytes(path, save(tensors, metadata=digests))
        print(f"wrote {path} ({len(tensors)} maps)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=PRECOMPUTED_DIR)
    parser.add_argument("--methods", nargs="+", default=["pca", "tsne", "umap"])
    parser.add_argument("--jobs", type=int, default=1, help="maps drawn at once (processes)")
    args = parser.parse_args()
    build(args.root, args.methods, args.jobs)


if __name__ == "__main__":
    main()
