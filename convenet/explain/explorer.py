"""Look inside a Keras CNN: layer table, filters, feature maps, Grad-CAM and predictions.

Everything works on any single-input Keras functional model (Keras Applications, EfficientNet-Lite)
so the UI needs no per-architecture code. Images are float32 HxWx3 RGB arrays in 0..255, already
resized to the model input; `preprocess` turns such an image into model input.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

from convenet.explain.colormap import colormap

Preprocess = Callable[[np.ndarray], np.ndarray]
T = TypeVar("T")

CONV_TYPES = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
FILTER_MIN_PX = 48  # smallest side of one filter patch: 3x3 kernels as crisp 16 px cells
WEIGHT_CELL_PX = 4  # side of one weight in a 1x1 layer's input x output heatmap
WEIGHTS_SHOWN = 96  # outputs (rows) and inputs (columns) drawn of a 1x1 layer's matrix
MAP_MIN_PX = 64  # smallest on-screen side of one feature map
LABEL_AT = (3, 2)  # where a tile's channel number is written, in pixels from its corner

_MODEL_CACHE: weakref.WeakKeyDictionary[keras.Model, dict[Hashable, Any]] = (
    weakref.WeakKeyDictionary()
)
_CACHE_LOCK = threading.RLock()  # re-entrant: a build may itself use the cache


def cached_for_model(model: keras.Model, key: Hashable, build: Callable[[], T]) -> T:
    """Build once per (model, key); weak keys so a dropped model frees its sub-models too."""
    with _CACHE_LOCK:
        per_model = _MODEL_CACHE.setdefault(model, {})
        if key not in per_model:
            per_model[key] = build()
        return per_model[key]


def _normalise(a: np.ndarray, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Min-max scale to 0..1 over `axis`; constant slices become 0 rather than NaN."""
    lo = a.min(axis=axis, keepdims=True)
    span = a.max(axis=axis, keepdims=True) - lo
    return np.where(span > 0, (a - lo) / np.where(span > 0, span, 1), 0.0)


def _upsample(tile: np.ndarray, min_px: int) -> np.ndarray:
    """Nearest-neighbour enlarge so each cell stays a crisp block of at least min_px per side."""
    factor = max(1, math.ceil(min_px / min(tile.shape[:2])))
    return tile.repeat(factor, axis=0).repeat(factor, axis=1)


def _tile_grid(tiles: Sequence[np.ndarray], gap: int = 1) -> np.ndarray:
    """Lay equal-size RGB tiles in a near-square grid separated by white gaps."""
    h, w = tiles[0].shape[:2]
    cols = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    grid = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        top, left = (i // cols) * (h + gap), (i % cols) * (w + gap)
        grid[top : top + h, left : left + w] = tile
    return grid


@functools.lru_cache(maxsize=4096)
def _label_stamp(text: str) -> np.ndarray:
    """A channel number drawn once, white outlined in black: its RGBA pixels (H x W x 4
    bytes, the colour already weighted by coverage, as Pillow draws on a clear canvas).

    Drawing text holds the interpreter lock: drawn afresh on every tile it took 10 % of the
    lock's time in bench_soak.py's class, while searches waited for it.
    """
    box = ImageDraw.Draw(Image.new("RGBA", (1, 1))).textbbox(LABEL_AT, text, stroke_width=2)
    stamp = Image.new("RGBA", (max(1, box[2]), max(1, box[3])), (0, 0, 0, 0))
    ImageDraw.Draw(stamp).text(
        LABEL_AT, text, fill=(255, 255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0, 255)
    )
    return np.asarray(stamp)


def draw_channel_numbers(count: int) -> None:
    """Draw the numbers of channels 0..count-1 now (0.5 ms each), so that no view draws them
    while a visitor waits."""
    for channel in range(min(count, _label_stamp.cache_info().maxsize)):
        _label_stamp(str(channel))


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    """Write a channel number in the corner, outlined so it reads on light and dark maps."""
    stamp = _label_stamp(text)
    h, w = min(tile.shape[0], stamp.shape[0]), min(tile.shape[1], stamp.shape[1])
    pixels = stamp[:h, :w].astype(np.float32)
    out = tile.copy()
    corner = pixels[..., :3] + (1.0 - pixels[..., 3:] / 255.0) * tile[:h, :w]
    out[:h, :w] = np.clip(np.rint(corner), 0, 255).astype(np.uint8)
    return out


def _get_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    try:
        return model.get_layer(name)
    except ValueError as e:
        raise ValueError(f"Model '{model.name}' has no layer named '{name}'") from e


def _input_tensor(model: keras.Model) -> keras.KerasTensor:
    if len(model.inputs) != 1:
        raise ValueError(f"Model '{model.name}' has {len(model.inputs)} inputs; expected one image")
    return model.inputs[0]


def _output_tensor(model: keras.Model) -> keras.KerasTensor:
    if len(model.outputs) != 1:
        raise ValueError(f"Model '{model.name}' has {len(model.outputs)} outputs; expected one")
    return model.outputs[0]


def _compiled(model: keras.Model, sub: keras.Model, key: Hashable) -> Callable[[Any], Any]:
    """``sub``'s forward pass as one TensorFlow graph, traced once (cached with ``model``).

    Eager Keras runs every layer's ``__call__`` in Python and holds the interpreter lock all
    along: in a class of 30 learners (bench_soak.py) the Explorer's activations held it 38 % of
    the time the app's threads held it, and every search waited behind them. A graph runs its
    kernels without the lock.
    """
    signature = [tf.TensorSpec((None, *_input_tensor(model).shape[1:]), tf.float32)]
    return cached_for_model(
        model,
        ("graph", key),
        lambda: tf.function(lambda x: sub(x, training=False), input_signature=signature),
    )


def _shape_text(layer: keras.layers.Layer) -> str:
    """'112x112x32' without the batch axis; several outputs are comma-separated."""
    shapes = [t.shape[1:] for t in keras.tree.flatten(layer.output)]
    return ", ".join("x".join("?" if d is None else str(d) for d in s) or "1" for s in shapes)


def layer_table(model: keras.Model) -> list[dict]:
    """One row per layer (index, name, type, output_shape, parameters, trainable) for a table."""
    return [
        {
            "index": i,
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": _shape_text(layer),
            "parameters": int(layer.count_params()),
            "trainable": bool(layer.trainable),
        }
        for i, layer in enumerate(model.layers)
    ]


def conv_layers(model: keras.Model) -> list[str]:
    """Names of layers with a spatial conv kernel, in model order: those with filters to show."""
    return [layer.name for layer in model.layers if isinstance(layer, CONV_TYPES)]


def _last_conv(model: keras.Model) -> str:
    names = conv_layers(model)
    if not names:
        raise ValueError(f"Model '{model.name}' has no convolution layer; pass layer_name")
    return names[-1]


def _filter_tiles(layer: keras.layers.Layer, bgr_input: bool) -> np.ndarray:
    """(n, kh, kw, 3) uint8 patches, one per filter, each normalised on its own."""
    if isinstance(layer, keras.layers.Conv2D):
        kernel = layer.kernel.numpy()  # (kh, kw, in, out)
        if kernel.shape[2] == 3:  # first layer: the filter is itself a small colour image
            rgb = kernel.transpose(3, 0, 1, 2)
            rgb = rgb[..., ::-1] if bgr_input else rgb
            return np.round(_normalise(rgb, axis=(1, 2, 3)) * 255).astype(np.uint8)
        spatial = kernel.mean(axis=2)
    else:  # depthwise and separable: one spatial pattern per input channel (x multiplier)
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        kernel = (layer.kernel if depthwise else layer.depthwise_kernel).numpy()
        spatial = kernel.reshape(*kernel.shape[:2], -1)
    return colormap(_normalise(spatial.transpose(2, 0, 1), axis=(1, 2)))


def filter_kind(layer: keras.layers.Layer) -> str:
    """What a layer's filter picture shows, in words for the page."""
    if isinstance(layer, keras.layers.Conv2D) and layer.kernel.shape[2] == 3:
        return "each in colour, as the RGB pattern it matches"
    if is_pointwise(layer):
        return (
            "1x1 kernels only mix channels, so this is the weight matrix: one row per output "
            "channel, one column per input channel, each row scaled on its own (red = positive, "
            "blue = negative)"
        )
    return "each averaged over its input channels and scaled on its own (bright = large weight)"


def is_pointwise(layer: keras.layers.Layer) -> bool:
    """A plain 1x1 convolution: its weights are a matrix, not spatial patterns."""
    return (
        type(layer) is keras.layers.Conv2D
        and tuple(layer.kernel_size) == (1, 1)
        and layer.kernel.shape[2] != 3
    )


# Diverging blue-white-red (coolwarm's ends): the sign of a weight matters, not only its size.
_DIVERGING = np.array([(59, 76, 192), (221, 221, 221), (180, 4, 38)], dtype=np.float64)


def diverging(values: np.ndarray) -> np.ndarray:
    """Map values in -1..1 to blue (negative), light grey (0) and red (positive) RGB uint8."""
    x = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), -1, 1) + 1  # 0..2
    low, frac = np.minimum(x.astype(int), 1), x - np.minimum(x.astype(int), 1)
    rgb = _DIVERGING[low] * (1 - frac[..., None]) + _DIVERGING[low + 1] * frac[..., None]
    return np.round(rgb).astype(np.uint8)


def strongest_connections(kernel: np.ndarray, n: int = 8) -> list[tuple[int, int, float]]:
    """(input, output, weight) of the n largest-magnitude weights of an (in, out) matrix."""
    flat = np.argsort(-np.abs(kernel), axis=None, kind="stable")[:n]
    rows, cols = np.unravel_index(flat, kernel.shape)
    return [(int(i), int(o), float(kernel[i, o])) for i, o in zip(rows, cols, strict=True)]


def _axis_labels(image: np.ndarray, rows: int, cols: int, cell: int) -> np.ndarray:
    """Margins with channel numbers every 16 cells: output down the left, input along the top."""
    margin_left, margin_top = 30, 14
    canvas = Image.new("RGB", (image.shape[1] + margin_left, image.shape[0] + margin_top), "white")
    canvas.paste(Image.fromarray(image), (margin_left, margin_top))
    draw = ImageDraw.Draw(canvas)
    for c in range(0, cols, 16):
        draw.text((margin_left + c * cell, 1), str(c), fill=(0, 0, 0))
    for r in range(0, rows, 16):
        draw.text((2, margin_top + r * cell), str(r), fill=(0, 0, 0))
    return np.asarray(canvas)


def pointwise_heatmap(layer: keras.layers.Layer) -> tuple[np.ndarray, np.ndarray]:
    """A 1x1 layer's weights as an output x input heatmap (each row scaled by its largest
    magnitude, so every output channel's pattern reads) and the full (in, out) matrix."""
    matrix = layer.kernel.numpy()[0, 0]  # (in, out)
    shown = matrix[:WEIGHTS_SHOWN, :WEIGHTS_SHOWN].T  # rows: outputs
    peak = np.abs(shown).max(axis=1, keepdims=True)
    cells = diverging(np.where(peak > 0, shown / np.where(peak > 0, peak, 1), 0.0))
    cells = cells.repeat(WEIGHT_CELL_PX, axis=0).repeat(WEIGHT_CELL_PX, axis=1)
    return _axis_labels(cells, *shown.shape, WEIGHT_CELL_PX), matrix


def filter_grid(
    model: keras.Model, layer_name: str, max_filters: int = 64, *, bgr_input: bool = False
) -> tuple[np.ndarray, int]:
    """Weights of a conv layer as an image grid; returns (uint8 HxWx3 grid, filters in layer).

    A 3-channel kernel is drawn in colour; deeper kernels show the mean over input channels
    (depthwise: each channel) through the colormap, each tile numbered. A 1x1 layer is drawn
    as its weight matrix (pointwise_heatmap): a mean of 1x1 kernels would be one flat colour.
    bgr_input=True flips colour for caffe-style models (Keras VGG16/ResNet50) whose first layer
    reads BGR.
    """
    layer = _get_layer(model, layer_name)
    if not isinstance(layer, CONV_TYPES):
        raise ValueError(
            f"Layer '{layer_name}' is a {type(layer).__name__}, not a convolution; "
            "choose one of conv_layers(model)"
        )
    if max_filters < 1:
        raise ValueError(f"max_filters must be >= 1, got {max_filters}")
    if is_pointwise(layer):
        grid, matrix = pointwise_heatmap(layer)
        return grid, matrix.shape[1]
    tiles = _filter_tiles(layer, bgr_input)
    shown = [_label(_upsample(t, FILTER_MIN_PX), str(i)) for i, t in enumerate(tiles[:max_filters])]
    return _tile_grid(shown, gap=2), len(tiles)


def activation_model(model: keras.Model, layer_names: Sequence[str]) -> keras.Model:
    """Cached sub-model from the input to the named layers' outputs.

    Keras convention: with one name it returns a single array, with several a list.
    """
    names = tuple(layer_names)
    if not names:
        raise ValueError("layer_names is empty; name at least one layer")
    return cached_for_model(
        model,
        ("activations", names),
        lambda: keras.Model(
            _input_tensor(model), [_get_layer(model, n).output for n in names], name="activations"
        ),
    )


def _prediction_model(model: keras.Model, layer_name: str | None) -> keras.Model:
    """Cached model returning (layer output, prediction), or the prediction alone."""
    outputs = [_output_tensor(model)]
    if layer_name is not None:
        outputs.insert(0, _get_layer(model, layer_name).output)
    return cached_for_model(
        model,
        ("prediction", layer_name),
        lambda: keras.Model(_input_tensor(model), outputs, name="prediction"),
    )


def _to_batch(model: keras.Model, image: np.ndarray, preprocess: Preprocess) -> np.ndarray:
    """Validate an HxWx3 image and turn it into a (1, H, W, C) float32 model batch."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"Expected an HxWx3 RGB image, got shape {image.shape}")
    want = _input_tensor(model).shape[1:3]
    if any(w is not None and w != got for w, got in zip(want, image.shape[:2], strict=True)):
        raise ValueError(
            f"Image is {image.shape[0]}x{image.shape[1]} but model '{model.name}' expects "
            f"{want[0]}x{want[1]}; resize it first"
        )
    # A copy, because Keras preprocess_input edits float arrays in place.
    x = np.asarray(preprocess(image.astype(np.float32, copy=True)), dtype=np.float32)
    if x.ndim not in (3, 4):
        raise ValueError(f"preprocess returned shape {x.shape}; expected HxWxC or 1xHxWxC")
    return x if x.ndim == 4 else x[None]


def layer_activations(
    model: keras.Model, layer_names: Sequence[str], image: np.ndarray, preprocess: Preprocess
) -> list[np.ndarray]:
    """Outputs of the named layers for one image, each with its batch axis of 1 removed."""
    names = tuple(layer_names)
    forward = _compiled(model, activation_model(model, names), ("activations", names))
    out = forward(_to_batch(model, image, preprocess))
    return [keras.ops.convert_to_numpy(t)[0] for t in keras.tree.flatten(out)]


def _feature_maps(
    model: keras.Model, layer_name: str, image: np.ndarray, preprocess: Preprocess
) -> np.ndarray:
    """(h, w, c) activations, rejecting layers (Dense, pooled) that have no spatial maps."""
    (maps,) = layer_activations(model, [layer_name], image, preprocess)
    if maps.ndim != 3:
        raise ValueError(
            f"Layer '{layer_name}' outputs shape {maps.shape}, not HxWxC feature maps; "
            "choose a convolutional layer"
        )
    return maps


def activation_grid(
    model: keras.Model,
    layer_name: str,
    image: np.ndarray,
    preprocess: Preprocess,
    max_maps: int = 32,
    *,
    labels: bool = False,
) -> tuple[np.ndarray, list[int]]:
    """Feature maps for one image, strongest channels (by mean activation) first.

    Returns the uint8 grid and the channel index of each tile in reading order. Every map is
    normalised on its own, so the grid shows *where* a channel fires; the order shows *how much*.
    """
    if max_maps < 1:
        raise ValueError(f"max_maps must be >= 1, got {max_maps}")
    maps = _feature_maps(model, layer_name, image, preprocess)
    order = [int(c) for c in np.argsort(-maps.mean(axis=(0, 1)), kind="stable")[:max_maps]]
    tiles = colormap(_normalise(maps[..., order], axis=(0, 1)))  # (h, w, n, 3)
    tiles = [_upsample(tiles[:, :, i], MAP_MIN_PX) for i in range(len(order))]
    if labels:
        tiles = [_label(t, str(c)) for t, c in zip(tiles, order, strict=True)]
    return _tile_grid(tiles), order


def _overlay(image: np.ndarray, heat: np.ndarray, alpha: float) -> np.ndarray:
    """Blend a colour-mapped 2-D heatmap, bilinearly resized to the image, over the image."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in 0..1, got {alpha}")
    size = np.asarray(image).shape[:2]
    up = tf.image.resize(heat[..., None].astype(np.float32), size, method="bilinear")
    coloured = colormap(_normalise(up.numpy()[..., 0])).astype(np.float32)
    blended = alpha * coloured + (1.0 - alpha) * np.clip(image, 0, 255)
    return np.round(blended).astype(np.uint8)


def mean_activation_overlay(
    model: keras.Model,
    layer_name: str,
    image: np.ndarray,
    preprocess: Preprocess,
    alpha: float = 0.5,
) -> np.ndarray:
    """Channel-mean of a layer's maps over the image: where the layer as a whole responds."""
    return overlay_of_maps(image, _feature_maps(model, layer_name, image, preprocess), alpha)


def overlay_of_maps(image: np.ndarray, maps: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``mean_activation_overlay`` from (h, w, c) maps already computed for ``image``."""
    return _overlay(image, maps.mean(axis=-1), alpha)


def _class_index(class_index: int | None, scores: np.ndarray) -> int:
    if class_index is None:
        return int(np.argmax(scores))
    if not 0 <= class_index < scores.size:
        raise ValueError(f"class_index {class_index} out of range for {scores.size} classes")
    return int(class_index)


def gradcam_map(
    model: keras.Model,
    image: np.ndarray,
    preprocess: Preprocess,
    class_index: int | None = None,
    layer_name: str | None = None,
) -> tuple[np.ndarray, int]:
    """Grad-CAM at the layer's resolution: ReLU(sum_k mean(d score / d A_k) * A_k).

    Uses the model's output as the class score (probabilities if the model ends in softmax).
    Returns (h, w) float map, not normalised, and the class explained.
    """
    layer_name = layer_name or _last_conv(model)
    sub = _prediction_model(model, layer_name)
    maps_out, scores_out = sub.outputs
    if len(maps_out.shape) != 4 or len(scores_out.shape) != 2:
        raise ValueError(
            f"Grad-CAM needs HxWxC maps at '{layer_name}' and (batch, classes) output; "
            f"got {tuple(maps_out.shape)} and {tuple(scores_out.shape)}"
        )
    wanted = -1 if class_index is None else _class_index(class_index, np.zeros(scores_out.shape[1]))
    cam, index = _gradcam_graph(model, sub, layer_name)(
        _to_batch(model, image, preprocess), tf.constant(wanted, tf.int32)
    )
    return cam.numpy()[0], int(index)


def _gradcam_graph(model: keras.Model, sub: keras.Model, layer_name: str) -> Callable:
    """Grad-CAM as one graph (see ``_compiled``): the class wanted, or the top one for -1."""
    signature = [
        tf.TensorSpec((None, *_input_tensor(model).shape[1:]), tf.float32),
        tf.TensorSpec((), tf.int32),
    ]

    def run(x: tf.Tensor, wanted: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)  # record even when the model's weights are frozen
            maps, scores = sub(x, training=False)
            top = tf.argmax(scores[0], output_type=tf.int32)
            index = tf.where(wanted >= 0, wanted, top)
            score = tf.gather(scores, index, axis=1)
        weights = tf.reduce_mean(tape.gradient(score, maps), axis=(1, 2))
        return tf.nn.relu(tf.reduce_sum(maps * weights[:, None, None, :], axis=-1)), index

    return cached_for_model(
        model, ("gradcam", layer_name), lambda: tf.function(run, input_signature=signature)
    )


def gradcam(
    model: keras.Model,
    image: np.ndarray,
    preprocess: Preprocess,
    class_index: int | None = None,
    layer_name: str | None = None,
    alpha: float = 0.5,
) -> tuple[np.ndarray, int]:
    """Grad-CAM overlay (default: last conv layer, top class); returns (uint8 image, class)."""
    cam, index = gradcam_map(model, image, preprocess, class_index, layer_name)
    return _overlay(image, cam, alpha), index


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def predict_top_k(
    model: keras.Model,
    image: np.ndarray,
    preprocess: Preprocess,
    class_names: Sequence[str],
    k: int = 5,
) -> list[tuple[str, float]]:
    """Top-k (class name, probability); logits are softmaxed so the UI shows probabilities."""
    forward = _compiled(model, _prediction_model(model, None), ("prediction", None))
    scores = forward(_to_batch(model, image, preprocess))
    scores = keras.ops.convert_to_numpy(scores).astype(np.float64)
    if scores.ndim != 2:
        raise ValueError(f"Model output has shape {scores.shape}; expected (batch, classes)")
    scores = scores[0]
    if len(class_names) != scores.size:
        raise ValueError(f"Got {len(class_names)} class names for {scores.size} model outputs")
    is_probability = scores.min() >= 0 and abs(scores.sum() - 1.0) < 1e-3
    probs = scores if is_probability else _softmax(scores)
    top = np.argsort(-probs, kind="stable")[: max(k, 0)]
    return [(class_names[i], float(probs[i])) for i in top]
