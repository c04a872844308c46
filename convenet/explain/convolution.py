"""How a convolution computes, on the real model, and what each layer's pixels can see.

``walk_first_convolution`` takes the model's first convolution apart at one output pixel of one
channel: the input window (after the model's own preprocessing and padding), the kernel, their
products and sum, the batch normalisation that follows folded into a scale and a shift, the
activation, and the output, which is that pixel of the channel's activation map.

``receptive_fields`` walks the layers in order with the standard recurrence (Araujo et al.,
"Computing receptive fields of CNNs", Distill 2019): a layer with kernel k, stride s and
dilation d grows the field by (k - 1) * d * jump and multiplies the jump (input pixels between
two neighbouring outputs) by s; 'same' padding shifts where the first output looks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Preprocess = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ConvStep:
    """One output pixel of the first convolution, computed by hand from the model's weights."""

    layer: str
    channel: int
    row: int
    col: int
    box: tuple[int, int, int, int]  # the input rows and columns the window covers: top, left,
    # bottom, right (inclusive), some of them padding outside the image
    window: np.ndarray  # (k, k, 3): the preprocessed input under the kernel (0 in the padding)
    kernel: np.ndarray  # (k, k, 3)
    products: np.ndarray  # window * kernel
    total: float  # their sum (plus the convolution's own bias, if it has one)
    scale: float  # the batch normalisation that follows, folded: gamma / sqrt(var + eps)
    shift: float  # beta - mean * scale
    activation: str  # its name, e.g. "ReLU6"
    output: float  # activation(total * scale + shift)
    activation_map: np.ndarray  # (h, w): the whole channel as the model computes it


@dataclass(frozen=True)
class Field:
    """What one pixel of a layer sees of the input: ``size`` pixels square, neighbouring
    pixels ``jump`` input pixels apart, pixel 0's centre at ``start`` (may be negative)."""

    size: int
    jump: int
    start: float

    def box(self, row: int, col: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right), inclusive, of the input pixels ``(row, col)`` can see,
        clipped to the image."""
        half = (self.size - 1) / 2
        cy, cx = self.start + row * self.jump, self.start + col * self.jump
        return (
            max(0, int(np.ceil(cy - half))),
            max(0, int(np.ceil(cx - half))),
            min(height - 1, int(np.floor(cy + half))),
            min(width - 1, int(np.floor(cx + half))),
        )

    def cell(self, y: float, x: float, height: int, width: int) -> tuple[int, int]:
        """The (row, col) of a ``height`` x ``width`` map whose field is centred nearest to
        input pixel (y, x): where a click on the picture lands in the layer."""
        row = int(np.clip(np.round((y - self.start) / self.jump), 0, height - 1))
        col = int(np.clip(np.round((x - self.start) / self.jump), 0, width - 1))
        return row, col


@dataclass(frozen=True)
class PixelLook:
    """One pixel of a layer's maps: the input it can see and the channels strongest there."""

    layer: str
    row: int
    col: int
    box: tuple[int, int, int, int]  # top, left, bottom, right (inclusive), clipped to the image
    field: Field
    strongest: list[tuple[int, float]]  # (channel, activation) at the pixel, strongest first
    picture: np.ndarray  # the image with the field outlined and the pixel's centre marked


def look_at_pixel(
    maps: np.ndarray, base: np.ndarray, layer: str, field: Field, y: float, x: float, top: int
) -> PixelLook:
    """What the layer's pixel nearest to input pixel (y, x) sees: ``maps`` are the layer's
    (h, w, c) activations for an image of ``base``'s size (the model's input), on which the
    field is outlined (the image itself, or its mean-activation overlay)."""
    height, width = base.shape[:2]
    row, col = field.cell(y, x, maps.shape[0], maps.shape[1])
    box = field.box(row, col, height, width)
    values = maps[row, col]
    order = np.argsort(-values, kind="stable")[:top]
    return PixelLook(
        layer,
        row,
        col,
        box,
        field,
        [(int(c), float(values[c])) for c in order],
        outline(base, box, (field.start + row * field.jump, field.start + col * field.jump)),
    )


def outline(
    image: np.ndarray, box: tuple[int, int, int, int], centre: tuple[float, float]
) -> np.ndarray:
    """``image`` with ``box`` drawn as a 2-pixel yellow frame, the outside dimmed, and the
    field's centre as a small cross."""
    picture = np.asarray(image, np.float32).copy()
    top, left, bottom, right = box
    inside = np.zeros(picture.shape[:2], bool)
    inside[top : bottom + 1, left : right + 1] = True
    picture[~inside] *= 0.45
    yellow = np.array([255, 214, 0], np.float32)
    for t in range(2):
        picture[max(top - t, 0), left : right + 1] = yellow
        picture[min(bottom + t, picture.shape[0] - 1), left : right + 1] = yellow
        picture[top : bottom + 1, max(left - t, 0)] = yellow
        picture[top : bottom + 1, min(right + t, picture.shape[1] - 1)] = yellow
    cy = int(np.clip(round(centre[0]), 0, picture.shape[0] - 1))
    cx = int(np.clip(round(centre[1]), 0, picture.shape[1] - 1))
    picture[cy, max(cx - 3, 0) : cx + 4] = yellow
    picture[max(cy - 3, 0) : cy + 4, cx] = yellow
    return np.round(picture).astype(np.uint8)


def _sources(layer: Any) -> list[Any]:
    """The layers whose outputs ``layer`` reads (Keras 3 functional graph)."""
    inputs = layer.input if isinstance(layer.input, list | tuple) else [layer.input]
    return [tensor._keras_history.operation for tensor in inputs]


def _same_padding(size: int, kernel: int, stride: int) -> int:
    """TensorFlow's 'same': the padding before the first row (the larger half goes after)."""
    out = -(-size // stride)
    return max((out - 1) * stride + kernel - size, 0) // 2


def receptive_fields(model: Any) -> dict[str, Field]:
    """Every layer's field in input pixels. Merges (add, concatenate) keep their largest
    input's field: their inputs are aligned on the same grid."""
    fields: dict[str, Field] = {}
    for layer in model.layers:
        sources = [] if not layer._inbound_nodes else _sources(layer)
        known = [fields[s.name] for s in sources if s.name in fields]
        if not known:
            fields[layer.name] = Field(1, 1, 0.0)
            continue
        field = max(known, key=lambda f: f.size)
        kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
        if kernel is not None:
            k, s = int(kernel[0]), int(layer.strides[0])
            d = int(getattr(layer, "dilation_rate", (1,))[0])
            k_eff = (k - 1) * d + 1
            size_in = int(layer.input.shape[1])
            pad = _same_padding(size_in, k_eff, s) if layer.padding == "same" else 0
            field = Field(
                field.size + (k_eff - 1) * field.jump,
                field.jump * s,
                field.start + ((k_eff - 1) / 2 - pad) * field.jump,
            )
        elif type(layer).__name__ == "ZeroPadding2D":
            top = int(layer.padding[0][0])
            field = Field(field.size, field.jump, field.start - top * field.jump)
        fields[layer.name] = field
    return fields


def first_convolution(model: Any) -> tuple[Any, Any | None, Any | None]:
    """(the first Conv2D, the BatchNormalization right after it if any, the activation layer
    after those if any): the layers a walk-through computes by hand."""
    layers = list(model.layers)
    for i, layer in enumerate(layers):
        if type(layer).__name__ == "Conv2D":
            following = layers[i + 1 : i + 3]
            bn = next((x for x in following if type(x).__name__ == "BatchNormalization"), None)
            act = next((x for x in following if type(x).__name__ in ("ReLU", "Activation")), None)
            return layer, bn, act
    raise ValueError("This model has no plain convolution layer to walk through.")


def walk_first_convolution(
    model: Any, image: np.ndarray, preprocess: Preprocess, channel: int, row: int, col: int
) -> ConvStep:
    """The first convolution of ``model`` at output pixel (row, col) of ``channel``, by hand."""
    from convenet.explain.explorer import activation_model  # Keras: only when used

    conv, bn, act = first_convolution(model)
    last = act or bn or conv
    maps = activation_model(model, [last.name])  # built once per model, then cached
    x = preprocess(np.asarray(image, np.float32)[None])
    out = np.asarray(maps([x], training=False))[0, :, :, channel]
    height, width = out.shape
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"Pixel ({row}, {col}) is outside the {height}x{width} map.")
    kernel = np.asarray(conv.kernel)[:, :, :, channel]
    k, s = kernel.shape[0], int(conv.strides[0])
    size = x.shape[1]
    pad = _same_padding(size, k, s) if conv.padding == "same" else 0
    top, left = row * s - pad, col * s - pad
    padded = np.pad(x[0], ((k, k), (k, k), (0, 0)))  # zeros where the window leaves the image
    window = padded[top + k : top + 2 * k, left + k : left + 2 * k, :]
    products = window * kernel
    total = float(products.sum()) + (float(np.asarray(conv.bias)[channel]) if conv.use_bias else 0)
    scale, shift = 1.0, 0.0
    if bn is not None:
        gamma = float(np.asarray(bn.gamma)[channel]) if bn.scale else 1.0
        beta = float(np.asarray(bn.beta)[channel]) if bn.center else 0.0
        mean = float(np.asarray(bn.moving_mean)[channel])
        var = float(np.asarray(bn.moving_variance)[channel])
        scale = gamma / float(np.sqrt(var + bn.epsilon))
        shift = beta - mean * scale
    normalised = np.float32(total * scale + shift)
    output = (
        float(np.asarray(act(np.full((1, 1, 1, 1), normalised)))[0, 0, 0, 0])
        if act
        else (float(normalised))
    )
    name = "none"
    if act is not None:
        name = f"ReLU{act.max_value:g}" if getattr(act, "max_value", None) else act.name
    return ConvStep(
        conv.name,
        channel,
        row,
        col,
        (top, left, top + k - 1, left + k - 1),
        window,
        kernel,
        products,
        total,
        scale,
        shift,
        name,
        output,
        out,
    )
