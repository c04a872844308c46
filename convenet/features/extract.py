"""Feature vectors from one or several layers of a model, in one forward pass per batch.

Pooling runs inside the graph (a multi-output model), so only small vectors leave TensorFlow.
Vectors are stored as float16: half the memory, and ranking quality does not change.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convenet.data.images import ImageLoadError, ImageSource, load_batch, load_image
from convenet.errors import UnknownNameError
from convenet.features.multiscale import combine_scales, rescale, scaled_sizes
from convenet.features.onnx_runtime import ANY_SIZE, onnx_extractor
from convenet.features.regional import rmac
from convenet.lru import BuildOnceLRU
from convenet.models.loading import Weights, get_model_spec, load_model, resolve

POOLINGS = ("avg", "max", "gem", "rmac", "ms", "flat", "map")  # "map": the (h, w, c) maps
# Poolings made in NumPy from the unpooled maps rather than inside the graph.
FROM_MAPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"rmac": rmac}
FLAT_MAX_DIM = 16_384  # a flat vector only for layers small enough to keep whole
GEM_P = 3.0
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
# Batches extracted side by side: one per core, but at most four, since each batch in flight
# holds its own activations (about 40 MB for Lite0 at batch 8); on more cores each gets several.
STREAMS = min(CORES, 4)
# Images per forward pass: 8 kept every core's activations closer to its caches than 16 or 32
# (Lite0, 2 cores: 7-9 % more images per CPU-second than 16, 4 no better; bench_extraction.py).
BATCH_SIZE = 8

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
    skipped: list[tuple[int, str]] = field(default_factory=list)
    """Images left out because they could not be read (``skip_broken``): (index, why)."""

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
    raise UnknownNameError("pooling", pooling, POOLINGS)


def _extractor(model_key: str, weights: Weights, layers: tuple[str, ...], pooling: str) -> Any:
    """One Keras model from the input to the pooled outputs of every requested layer.

    ``ANY_SIZE``: the layers up to the curated ones, copied onto an input of any height and
    width (the top, which needs the trained size, is left out), GeM-pooled. A graph that
    resizes inside itself instead exports wrongly to ONNX (tf2onnx, Keras 3: every layer after
    the resize off by 40-120 %), so the resizing stays outside, in PIL.
    """
    import keras

    model = load_model(model_key, weights)
    if pooling == ANY_SIZE:
        trunk = keras.Model(model.inputs, [model.get_layer(name).output for name in layers])
        free = keras.models.clone_model(trunk, input_tensors=[keras.Input((None, None, 3))])
        free.set_weights(trunk.get_weights())
        pooled = [
            _pool_tensor(out, "gem", name) for out, name in zip(free.outputs, layers, strict=True)
        ]
        return keras.Model(free.inputs, pooled, name=f"{model.name}_features_any_size")
    outputs = [_pool_tensor(model.get_layer(name).output, pooling, name) for name in layers]
    return keras.Model(model.inputs, outputs, name=f"{model.name}_features")


class _ExtractorCache(BuildOnceLRU[Any]):
    """Multi-output models keyed by (model, weights, layers, pooling); a few are kept."""

    def get(  # type: ignore[override]
        self, model_key: str, weights: Weights, layers: tuple[str, ...], pooling: str
    ) -> Any:
        key = (model_key, weights, layers, pooling)
        return super().get(key, lambda: _extractor(model_key, weights, layers, pooling))


EXTRACTORS = _ExtractorCache(6)


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
    threads: int = 0,
) -> dict[str, np.ndarray]:
    """Features of a float32 RGB 0..255 batch already at the model's input size (float32 out).

    ONNX Runtime computes the app's features (ImageNet weights, average pooling); Keras the rest.
    ``threads=1``: ONNX Runtime runs in the calling thread only (see ``extract_features``).
    """
    if pooling not in (*POOLINGS, ANY_SIZE):
        raise UnknownNameError("pooling", pooling, POOLINGS)
    if pooling == "ms":
        return _multi_scale(model_key, images, layers, weights, threads)
    if pooling in FROM_MAPS:
        maps = extract_arrays(model_key, images, layers, "map", weights, threads)
        pool = FROM_MAPS[pooling]
        return {name: pool(m) if m.ndim == 4 else m for name, m in maps.items()}
    spec = get_model_spec(model_key)
    names = _check_layers(model_key, layers)
    batch = resolve(spec.preprocess)(np.array(images, dtype=np.float32, copy=True))
    fast = onnx_extractor(spec.key, pooling, weights, threads)
    if fast is not None:
        return fast.run(batch, names)
    extractor = EXTRACTORS.get(spec.key, weights, names, pooling)
    outputs = extractor.predict_on_batch(batch)
    if not isinstance(outputs, list | tuple):
        outputs = [outputs]
    return {
        name: np.asarray(out, dtype=np.float32) for name, out in zip(names, outputs, strict=True)
    }


def _multi_scale(
    model_key: str,
    images: np.ndarray,
    layers: Sequence[str] | None,
    weights: Weights,
    threads: int,
) -> dict[str, np.ndarray]:
    """Multi-scale GeM (``convenet.features.multiscale``): the model's own graph at full size,
    the any-size graph at the smaller scales, combined per layer."""
    _, *smaller = scaled_sizes(get_model_spec(model_key).input_size)
    scales = [extract_arrays(model_key, images, layers, "gem", weights, threads)]
    scales += [
        extract_arrays(model_key, rescale(images, size), layers, ANY_SIZE, weights, threads)
        for size in smaller
    ]
    return {name: combine_scales([scale[name] for scale in scales], GEM_P) for name in scales[0]}


def decoded_batches(
    sources: Sequence[ImageSource],
    size: int,
    batch_size: int,
    flip: bool = False,
    broken: list[tuple[int, str]] | None = None,
) -> Iterator[np.ndarray]:
    """The images as batches, each decoded in a thread while the caller runs the one before.

    Decoding (PIL) and inference (ONNX Runtime, Keras) both release the GIL, so the next batch's
    JPEG decoding fills the gaps between the network's operators instead of stopping it.
    ``broken``: an image that cannot be read is listed there (index, why) and left out of its
    batch (a batch left empty is not yielded), rather than stopping the whole run.
    """

    def load(start: int) -> np.ndarray:
        chunk = list(sources[start : start + batch_size])
        if broken is None:
            batch = load_batch(chunk, size)
        else:
            pixels = []
            for offset, source in enumerate(chunk):
                try:
                    pixels.append(load_image(source, size))
                except ImageLoadError as exc:  # "name: why"; the caller knows the name
                    broken.append((start + offset, str(exc).split(": ", 1)[-1]))
            batch = np.zeros((0, size, size, 3), np.float32)
            if pixels:
                batch = np.stack(pixels).astype(np.float32)
        return batch[:, :, ::-1] if flip else batch

    starts = range(0, len(sources), batch_size)
    with ThreadPoolExecutor(1, thread_name_prefix="decode") as pool:
        coming = [pool.submit(load, start) for start in starts[:1]]
        for start in starts:
            batch = coming.pop().result()
            if start + batch_size < len(sources):
                coming.append(pool.submit(load, start + batch_size))
            if len(batch):
                yield batch


def extract_features(
    model_key: str,
    sources: Sequence[ImageSource],
    layers: Sequence[str] | None = None,
    pooling: str = "avg",
    batch_size: int = BATCH_SIZE,
    weights: Weights = "imagenet",
    progress: Progress | None = None,
    flip: bool = False,
    streams: int = STREAMS,
    skip_broken: bool = False,
) -> FeatureSet:
    """Pooled float16 features of every image for the chosen layers (all curated by default).

    ``flip`` mirrors every image left to right first (the flip recipe averages both views).
    ``streams``: batches run side by side on ONNX Runtime, the cores shared out between them
    (default: one per core, at most four); a network split across cores inside every layer
    waits for its slowest thread at each of them, whole batches side by side do not. 1: one
    batch at a time on every core. ``skip_broken``: an image that cannot be read is left out and
    listed in the result's ``skipped`` (else it stops the run with an ImageLoadError).
    """
    spec = get_model_spec(model_key)
    names = _check_layers(model_key, layers)
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    total = len(sources)
    # ONNX Runtime: runs side by side, the cores shared out between them; Keras: one at a time.
    threads = max(1, CORES // streams)
    graph = "map" if pooling in FROM_MAPS else "gem" if pooling == "ms" else pooling
    side_by_side = streams > 1 and onnx_extractor(spec.key, graph, weights, threads) is not None
    workers, threads = (streams, threads) if side_by_side else (1, 0)
    running: deque[Future[dict[str, np.ndarray]]] = deque()
    stored = 0
    broken: list[tuple[int, str]] | None = [] if skip_broken else None

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        return extract_arrays(spec.key, batch, names, pooling, weights, threads)

    def collect() -> None:
        nonlocal stored
        for name, values in running.popleft().result().items():
            chunks[name].append(values.astype(np.float16))
        stored += len(values)
        if progress is not None:
            progress(min(stored + len(broken or ()), total), total)

    with ThreadPoolExecutor(workers, thread_name_prefix="extract") as pool:
        for batch in decoded_batches(sources, spec.input_size, batch_size, flip, broken):
            running.append(pool.submit(run, batch))
            if len(running) >= workers:  # one batch per worker in flight: memory stays bounded
                collect()
        while running:
            collect()
    if progress is not None and broken:  # the last batches may have had nothing to run
        progress(total, total)
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
        skipped=broken or [],
    )
