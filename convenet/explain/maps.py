"""Maps of a layer's feature space: 2-D projections (PCA, t-SNE, UMAP) of the images' features,
drawn on demand and kept in a bounded cache, or read from the maps shipped beside a dataset's
features (``scripts/build_maps.py``), checked against the features they were drawn from."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path

import numpy as np

from convenet.errors import UnknownNameError
from convenet.lru import BuildOnceLRU

log = logging.getLogger("convenet")

PROJECTIONS: BuildOnceLRU[np.ndarray] = BuildOnceLRU(
    64, weigh=lambda points: points.nbytes, max_bytes=32 * 2**20
)
"""Maps already drawn: 64 views, 32 MB at most (a 5,000-point map is 80 KB)."""


MAPS_FILE = "maps.safetensors"


def feature_digest(feats: np.ndarray) -> str:
    """What a map is keyed by: the exact features it maps (float32, C order)."""
    data = np.ascontiguousarray(feats, np.float32)
    return hashlib.blake2b(data.view(np.uint8), digest_size=16).hexdigest()


def read_maps(path: Path) -> dict[str, tuple[str, np.ndarray]]:
    """Shipped maps, each checked when read (n x 2, finite, with the digest it was drawn
    from); a file that cannot be read costs only the shipping: maps are drawn as before."""
    if not path.is_file():
        return {}
    from safetensors import safe_open

    found = {}
    try:
        with safe_open(str(path), "numpy") as handle:
            digests = handle.metadata() or {}
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                points = handle.get_tensor(key)
                if points.ndim == 2 and points.shape[1] == 2 and np.isfinite(points).all():
                    found[key] = (digests.get(key, ""), points)
    except Exception as exc:  # a damaged file: any parse error; the maps are drawn instead
        log.warning("Shipped maps %s cannot be read (%s); drawing maps on demand.", path, exc)
        return {}
    return found


def project(feats: np.ndarray, method: str) -> np.ndarray:
    """The 2-D points of ``feats`` (rows L2-normalised first) by ``method``: pca, tsne, umap."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import normalize

    shape = feats.shape
    feats = normalize(np.asarray(feats, np.float32))
    if method == "pca":
        return PCA(n_components=2, random_state=0).fit_transform(feats)
    if method == "tsne":
        reduced = PCA(n_components=min(50, *shape), random_state=0).fit_transform(feats)
        perplexity = min(30.0, (shape[0] - 1) / 3)
        return TSNE(2, perplexity=perplexity, init="pca", random_state=0).fit_transform(reduced)
    if method == "umap":
        if not umap_available():
            raise ValueError("UMAP needs the package umap-learn: pip install -r requirements.txt")
        import umap  # slow to import (numba), so only when asked for

        neighbours = min(15, shape[0] - 1)
        return umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=0).fit_transform(
            feats
        )
    raise UnknownNameError("projection", method, ("pca", "tsne", "umap"))


def umap_available() -> bool:
    """Whether umap-learn is installed (it is in requirements.txt; a bare checkout may lack it)."""
    return importlib.util.find_spec("umap") is not None


def projection_of(key: tuple, feats: np.ndarray, method: str) -> np.ndarray:
    """``project(feats, method)``, drawn once per ``key`` (the view and a digest of ``feats``)."""
    return PROJECTIONS.get(key, lambda: project(feats, method))
