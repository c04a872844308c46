"""The one colour scale of every heatmap in the app (feature maps, Grad-CAM, why two images match).

Kept apart from ``convenet.explain.explorer`` so views that run without TensorFlow can use it too.
"""

from __future__ import annotations

import numpy as np

# Viridis sampled at 9 even steps: perceptually uniform and readable for colour-blind viewers.
_VIRIDIS = np.array(
    [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ],
    dtype=np.float64,
)
_LUT = (
    np.stack(
        [
            np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_VIRIDIS)), _VIRIDIS[:, c])
            for c in range(3)
        ],
        axis=1,
    )
    .round()
    .astype(np.uint8)
)


def colormap(values: np.ndarray) -> np.ndarray:
    """Map values in 0..1 to viridis-like RGB uint8 (brighter = stronger), shape (..., 3)."""
    idx = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)) * 255 + 0.5, 0, 255)
    return _LUT[idx.astype(np.uint8)]
