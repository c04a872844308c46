"""Multi-scale GeM: one vector from the image at several sizes (Radenović, Tolias and Chum,
"Fine-tuning CNN image retrieval with no human annotation", TPAMI 2018).

A network sees an object at the size it was trained on best; the same photo at 1, 1/√2 and 1/2
of the input size lets each object be seen at a size that suits it. Each scale's GeM vector is
L2-normalised, the scales are combined by their power mean with GeM's exponent, and the result
is L2-normalised again, as in the reference (cnnimageretrieval-pytorch, ``extract_ms``). The
smaller images are made with PIL, as the images themselves are resized when loaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

SCALES = (1.0, 2**-0.5, 0.5)
EPS = 1e-6


def scaled_sizes(size: int, scales: Sequence[float] = SCALES) -> tuple[int, ...]:
    """The input sizes of every scale, largest first (224 -> 224, 158, 112)."""
    return tuple(max(1, round(size * scale)) for scale in scales)


def rescale(batch: np.ndarray, size: int) -> np.ndarray:
    """A float (n, h, w, 3) batch of 0..255 pixels resized to size x size (bilinear, PIL)."""
    if batch.shape[1:3] == (size, size):
        return batch
    pixels = np.clip(np.rint(batch), 0, 255).astype(np.uint8)
    return np.stack(
        [
            np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR), np.float32)
            for image in pixels
        ]
    )


def combine_scales(vectors: Sequence[np.ndarray], p: float) -> np.ndarray:
    """(n, d) GeM vectors of each scale -> (n, d): the power mean of the normalised vectors,
    normalised. Negative values (none from GeM) are clipped to 0 before the power."""
    stacked = np.stack([_normalised(np.maximum(np.asarray(v, np.float32), 0)) for v in vectors])
    return _normalised(np.mean(stacked**p, axis=0) ** (1.0 / p))


def _normalised(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + EPS)
