"""Which layers see alike: linear centered kernel alignment (CKA, Kornblith et al. 2019).

Two layers are compared through how they arrange the same images, not through their features
(which have different sizes and meanings): each layer's centered Gram matrix (image x image
inner products) is normalised, and CKA is the inner product of two such matrices. 1 means the
two layers see the dataset's images in the same geometry (up to rotation and scale); near 0,
in unrelated ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def centered_gram(features: np.ndarray) -> np.ndarray:
    """Image x image inner products of the column-centered features, i.e. H K H (float32: the
    product is most of the cost, and CKA needs no more digits than the features have)."""
    x = np.asarray(features, np.float32)
    x = x - x.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    return x @ x.T


def linear_cka_matrix(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Linear CKA between every pair of feature matrices of the same images, (m, m).

    Each (n, d_i) matrix costs one n x n Gram matrix; then all pairs are one product of the
    flattened, normalised Gram matrices. A layer whose features do not vary has no geometry:
    its CKA with every other layer is 0 (and 1 with itself).
    """
    n = {len(x) for x in layers}
    if len(n) != 1:
        raise ValueError(f"CKA compares features of the same images; got row counts {sorted(n)}")
    flat = np.stack([centered_gram(x).ravel() for x in layers]).astype(np.float64)
    norms = np.linalg.norm(flat, axis=1)
    flat /= np.where(norms > 0, norms, 1.0)[:, None]
    similarity = np.clip(flat @ flat.T, 0.0, 1.0)
    np.fill_diagonal(similarity, 1.0)
    return similarity
