"""Feature vectors from one or several layers of a model, in one forward pass per batch.

Pooling runs inside the graph (a multi-output model), so only small vectors leave TensorFlow.
Vectors are stored as float16: half the memory, and ranking quality does not change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convenet.images import ImageSource, load_batch
from convenet.models import Weights, get_model_spec, load_model, resolve
from convenet.onnx_features import onnx_extractor

POOLINGS = ("avg", "max", "gem", "flat", "map")
POOLING_LABELS = {
    "avg": "global average",
    "max": "global max",
    "gem": "generalised mean (GeM, p=3)",
    "flat": "flattened feature map",
    "map": "none: the (h, w, c) feature map itself",
}
FLAT_MAX_DIM = 16_384  # a flat vector only for layers small enough to keep whole
GEM_P = 3.0

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class View:
    """How an image becomes a vector: the pooling, and whether it is mirrored left-right first."""

    pooling: str = "avg"
    flip: bool = False

    @property
    def variant(self) -> str | None:
        """Its name in the feature store: None for the plain features, else e.g. ``gem-flip``."""
        parts = ([] if self.pooling == "avg" else [self.pooling]) + (["flip"] if self.flip else [])
        return "-".join(parts) or None


PLAIN = View()


@dataclass
class FeatureSet:
    """Pooled features per layer, with everything needed to know how they were made."""

    features: dict[str, np.ndarray]
    model: str
    pooling: str
    preprocessing: str
    input_size: int
    weights: Weights = "imagenet"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        return list(self.features)

    def meta(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "pooling": self.pooling,
            "preprocessing": self.preprocessing,
            "input_size": self.input_size,
            "weights": self.weights,
            **self.extra,
        }


def _pool_tensor(tensor: Any, pooling: str, layer: str) -> Any:
    import keras

    ops = keras.ops
    if len(tensor.shape) == 2 or pooling == "map":  # "map": where, not just how much (why_match)
        return tensor
    if pooling == "avg":
        return ops.mean(tensor, axis=(1, 2))
    if pooling == "max":
        return ops.max(tensor, axis=(1, 2))
    if pooling == "gem":  # GeM on the positive part: between average (p=1) and max (p->inf)
        clipped = ops.maximum(tensor, 1e-6)
        return ops.power(ops.mean(ops.power(clipped, GEM_P), axis=(1, 2)), 1.0 / GEM_P)
    if pooling == "flat":
        size = int(np.prod(tensor.shape[1:]))
        if size > FLAT_MAX_DIM:
            raise ValueError(
                f"Layer {layer} has {size} values per image; 'flat' pooling is only for layers "
                f"with at most {FLAT_MAX_DIM}. Use avg, max or gem."
            )
        return ops.reshape(tensor, (-1, size))
    raise ValueError(f"Unknown pooling {pooling!r}; choose one of: {', '.join(POOLINGS)}")


class _ExtractorCache:
    """Multi-output models keyed by (model, weights, layers, pooling); a few are kept."""

    def __init__(self, maxsize: int = 6) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_key: str, weights: Weights, layers: tuple[str, ...], pooling: str) -> Any:
        import keras

        key = (model_key, weights, layers, pooling)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        model = load_model(model_key, weights)
        outputs = [_pool_tensor(model.get_layer(name).output, pooling, name) for name in layers]
        extractor = keras.Model(model.inputs, outputs, name=f"{model.name}_features")
        with self._lock:
            self._items[key] = extractor
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return extractor


EXTRACTORS = _ExtractorCache()


def _check_layers(model_key: str, layers: Sequence[str] | None) -> tuple[str, ...]:
    spec = get_model_spec(model_key)
    if not layers:
        return spec.layer_names
    for name in layers:
        spec.layer(name)  # raises a clear error for unknown names
    return tuple(layers)


def extract_arrays(
    model_key: str,
    images: np.ndarray,
    layers: Sequence[str] | None = None,
    pooling: str = "avg",
    weights: Weights = "imagenet",
) -> dict[str, np.ndarray]:
    """Features of a float32 RGB 0..255 batch already at the model's input size (float32 out).

    ONNX Runtime computes the app's features (ImageNet weights, average pooling); Keras the rest.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"Unknown pooling {pooling!r}; choose one of: {', '.join(POOLINGS)}")
    spec = get_model_spec(model_key)
    names = _check_layers(model_key, layers)
    batch = resolve(spec.preprocess)(np.array(images, dtype=np.float32, copy=True))
    fast = onnx_extractor(spec.key, pooling, weights)
    if fast is not None:
        return fast.run(batch, names)
    extractor = EXTRACTORS.get(spec.key, weights, names, pooling)
    outputs = extractor.predict_on_batch(batch)
    if not isinstance(outputs, list | tuple):
        outputs = [outputs]
    return {
        name: np.asarray(out, dtype=np.float32) for name, out in zip(names, outputs, strict=True)
    }


def extract_features(
    model_key: str,
    sources: Sequence[ImageSource],
    layers: Sequence[str] | None = None,
    pooling: str = "avg",
    batch_size: int = 16,
    weights: Weights = "imagenet",
    progress: Progress | None = None,
    flip: bool = False,
) -> FeatureSet:
    """Pooled float16 features of every image for the chosen layers (all curated by default).

    ``flip`` mirrors every image left to right first (the flip recipe averages both views).
    """
    spec = get_model_spec(model_key)
    names = _check_layers(model_key, layers)
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    total = len(sources)
    for start in range(0, total, batch_size):
        batch = load_batch(list(sources[start : start + batch_size]), spec.input_size)
        if flip:
            batch = batch[:, :, ::-1]
        for name, values in extract_arrays(spec.key, batch, names, pooling, weights).items():
            chunks[name].append(values.astype(np.float16))
        if progress is not None:
            progress(min(start + batch_size, total), total)
    features = {
        name: np.concatenate(parts) if parts else np.zeros((0, 0), np.float16)
        for name, parts in chunks.items()
    }
    return FeatureSet(
        features=features,
        model=spec.key,
        pooling=pooling,
        preprocessing=spec.preprocess,
        input_size=spec.input_size,
        weights=weights,
        extra={"flip": True} if flip else {},
    )
