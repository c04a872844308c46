"""The shard extractor on Ray Data: ``map_batches`` over an actor pool, one model per actor.

Each actor loads the model once (its own ONNX Runtime session, or Keras model) and extracts
batches with the same ``features.extract_features`` as the in-process engine; rows come back in
input order (``preserve_order``), one per image (an unreadable one as zeros and the reason it was
skipped), and are cut into the same shards. The image list goes to Ray as a text file (one
``path<TAB>class`` line per image), so the driver never holds it whole.

Ray is optional (requirements-scale.txt). Without ``RAY_ADDRESS`` a local Ray is started; with
it (``ray://head:10001`` or ``auto``) the work goes to that cluster, whose nodes must see the
images folder and the convenet package at the same paths as this machine.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from convenet.features.engines import Engine, Image, Shard
from convenet.features.extract import View, extract_arrays, extract_features
from convenet.models.loading import get_model_spec
from convenet.paths import REPO_DIR
from convenet.settings import worker_environment


class Extractor:
    """One actor: a model loaded once, then a batch of image lines -> per-layer float16 rows
    and an ``error`` column (empty, or why that image was skipped: its row is zeros)."""

    def __init__(self, images_dir: str, model: str, layers: list[str], view: View) -> None:
        self.images_dir = Path(images_dir)
        self.model, self.layers, self.view = model, layers, view
        size = get_model_spec(model).input_size
        blank = np.zeros((1, size, size, 3), np.float32)  # loads the model now: once per actor
        found = extract_arrays(model, blank, layers, view.pooling)
        self.dims = {name: values.shape[1] for name, values in found.items()}

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        lines = [str(line) for line in batch["text"]]
        paths = [self.images_dir / line.split("\t", 1)[0] for line in lines]
        found = extract_features(
            self.model,
            paths,
            self.layers,
            self.view.pooling,
            len(paths),
            flip=self.view.flip,
            skip_broken=True,
        )
        errors = np.full(len(lines), "", dtype=object)
        for row, why in found.skipped:
            errors[row] = why
        readable = errors == ""
        rows = {}
        for name, dim in self.dims.items():
            rows[name] = np.zeros((len(lines), dim), np.float16)
            if readable.any():
                rows[name][readable] = found.features[name]
        return {"text": np.array(lines, dtype=object), "error": errors, **rows}


def ray_engine(
    images_dir: Path,
    model: str,
    layers: list[str],
    view: View,
    batch_size: int,
    shard_size: int,
    actors: int | None = None,
) -> Engine:
    """An engine for ``shards.precompute_shards`` that runs on Ray (started here if needed)."""
    try:
        import ray
    except ImportError as exc:
        raise ValueError("--engine ray needs Ray: pip install -r requirements-scale.txt") from exc

    def run(pending: Iterator[Image]) -> Iterator[Shard]:
        with tempfile.TemporaryDirectory(prefix="convenet-ray-") as tmp:
            listing = Path(tmp) / "images.txt"
            with listing.open("w", encoding="utf-8") as handle:
                count = sum(handle.write(f"{rel}\t{cls}\n") > 0 for rel, cls in pending)
            if count == 0:
                return
            if not ray.is_initialized():
                try:  # local Ray, or the cluster named by RAY_ADDRESS
                    ray.init(include_dashboard=False)
                except Exception as exc:  # Ray raises bare Exceptions when it cannot start
                    raise ValueError(f"Ray did not start here ({exc})") from exc
            context = ray.data.DataContext.get_current()
            context.execution_options.preserve_order = True
            cpus = float(ray.cluster_resources().get("CPU", 1))
            pool = actors or max(1, int(cpus) - 1)
            # The reading tasks need a CPU too: a pool holding every CPU would wait forever.
            per_actor = min(1.0, cpus / (pool + 1))
            rows = ray.data.read_text(str(listing)).map_batches(
                Extractor,
                fn_constructor_args=(str(images_dir), model, list(layers), view),
                batch_size=batch_size,
                batch_format="numpy",
                concurrency=pool,
                num_cpus=per_actor,
                runtime_env={"env_vars": worker_environment(REPO_DIR)},
            )
            for batch in rows.iter_batches(batch_size=shard_size, batch_format="numpy"):
                images = [tuple(str(line).split("\t", 1)) for line in batch["text"]]
                skipped = {i: str(why) for i, why in enumerate(batch["error"]) if why}
                readable = np.array([i not in skipped for i in range(len(images))], bool)
                features = {name: np.asarray(batch[name][readable], np.float16) for name in layers}
                yield [(rel, cls) for rel, cls in images], features, skipped

    return run
