"""A dataset's features as the app reads them: from the feature source, else the local cache, else
computed once and stored; a file that fails its checksum or no longer covers the folder is never
served.

Kept per (dataset, model, view) in memory: float32 rows in the dataset's order, or for a large
dataset the stored float16 rows memory-mapped as they are (a float32 copy of 1e6 x 1280 alone
would take 5 GB). One thread computes a missing key; the others wait for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from convenet.data.catalog import Catalog
from convenet.data.datasets import DatasetSpec, ImageFolder
from convenet.data.store import feature_path, read_feature_file, verify_file
from convenet.disk_cap import make_room, mark_used
from convenet.features.extract import View
from convenet.features.precompute import compute_folder, store_features
from convenet.models.registry import ModelSpec
from convenet.priority import in_background

log = logging.getLogger("convenet")
Progress = Callable[[int, int], None]
Key = tuple[str, str, str | None]  # (dataset, model key, view variant)


class FeatureShelf:
    """Every layer's features of (dataset, model, view), loaded or computed on first use."""

    def __init__(
        self,
        catalog: Catalog,
        source_root: Path,
        cache_root: Path,
        scan: Callable[[str], ImageFolder],
        mapped_above: int,
    ) -> None:
        """``scan`` lists a dataset's images in order; a stored file of more than
        ``mapped_above`` images in that order is served memory-mapped."""
        self.catalog = catalog
        self.source_root = source_root
        self.cache_root = cache_root
        self.scan = scan
        self.mapped_above = mapped_above
        self._lock = threading.Lock()
        self._held: dict[Key, dict[str, np.ndarray]] = {}
        self._computing: dict[Key, threading.Lock] = {}

    def roots(self, spec: DatasetSpec) -> tuple[Path, Path]:
        """Feature stores to read, in order: the feature source, then where it is computed."""
        return (self.source_root, spec.cache or self.cache_root)

    def stored(self, dataset: str, model: ModelSpec) -> bool:
        """Whether a feature file of (dataset, model) exists in either store."""
        data = self.catalog.get(dataset)
        return any(
            feature_path(root, data.store_name, model.key).is_file() for root in self.roots(data)
        )

    def layer(
        self, dataset: str, model: ModelSpec, layer: str, view: View, progress: Progress | None
    ) -> np.ndarray:
        """(n, d) features of one layer in one view."""
        key = (dataset, model.key, view.variant)
        with self._lock:
            if key in self._held:
                return self._held[key][layer]
            computing = self._computing.setdefault(key, threading.Lock())
        with computing:
            with self._lock:
                if key in self._held:
                    return self._held[key][layer]
            source, cache = self.roots(self.catalog.get(dataset))
            loaded = self._load_valid(source, dataset, model, view)
            if loaded is None:
                loaded = self._load_valid(cache, dataset, model, view)
            if loaded is None or layer not in loaded:
                loaded = self._compute(dataset, model, progress, view)
            with self._lock:
                self._held[key] = loaded
        return loaded[layer]

    def held(self) -> list[Key]:
        """The keys in memory now."""
        with self._lock:
            return list(self._held)

    def forget(self, dataset: str) -> None:
        """Drop a dataset that is gone (a session's uploads)."""
        with self._lock:
            for kept in (self._held, self._computing):
                for key in [key for key in kept if key[0] == dataset]:
                    del kept[key]

    def _load_valid(
        self, root: Path, dataset: str, model: ModelSpec, view: View
    ) -> dict[str, np.ndarray] | None:
        data = self.catalog.get(dataset)
        path = feature_path(root, data.store_name, model.key, view.variant)
        if not path.is_file():
            return None
        mark_used(path)  # first: the file the cap would evict next is never the one being read
        try:
            if not verify_file(root, path.relative_to(root).as_posix()):
                log.warning("Feature file %s failed its checksum; not using it.", path)
                return None
            stored = read_feature_file(path, mapped=True)
        except FileNotFoundError:  # evicted or removed meanwhile: computed again
            return None
        if data.fingerprint and stored.meta.get("fingerprint") != data.fingerprint:
            log.info("The folder %s changed since its features were stored: computing.", dataset)
            return None
        wanted = [p.relative_to(data.root).as_posix() for p in self.scan(dataset).paths]
        if stored.meta.get("images") == wanted and len(wanted) > self.mapped_above:
            return stored.features  # the file's memory map as it is (float16, dataset order)
        position = {name: i for i, name in enumerate(stored.meta.get("images", []))}
        if any(name not in position for name in wanted):
            log.warning("Feature file %s does not cover the dataset's images.", path)
            return None
        order = np.array([position[name] for name in wanted], dtype=np.int64)
        # float32 in memory: ranking skips a float16 conversion per query (5x faster).
        return {
            layer: values[order].astype(np.float32) for layer, values in stored.features.items()
        }

    def _compute(
        self, dataset: str, model: ModelSpec, progress: Progress | None, view: View
    ) -> dict[str, np.ndarray]:
        """Compute every curated layer once, then cache it on disk.

        A cache that cannot be written (read-only, disk full) costs persistence, not the
        answer: the features are kept in memory only, with a warning.
        """
        data = self.catalog.get(dataset)
        features, meta = in_background(  # the searches of everyone else go first
            compute_folder,
            data.root,
            data.store_name,
            model.key,
            model.layer_names,
            view,
            progress=progress,
            min_classes=2 if data.labelled else 1,
            fingerprint=data.fingerprint,
        )
        target = self.roots(data)[1]
        try:
            make_room(
                store_features(target, data.store_name, model.key, features, meta, view.variant)
            )
        except OSError as exc:
            log.warning(
                "Cannot store features of %s x %s in %s (%s); keeping them in memory only.",
                dataset,
                model.title,
                target,
                exc,
            )
        # compute_folder scans the same folder as ``scan``, so rows are in dataset order.
        return {name: values.astype(np.float32) for name, values in features.items()}
