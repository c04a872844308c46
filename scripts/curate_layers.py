"""Print the curated-layer data for convenet/models/registry.py from each Keras model's structure.

Run once when adding a model: builds the architecture without weights (no download), picks the
first conv, the last conv and six evenly spaced conv layers between them, and prints plain data
to paste into the registry, so the registry stays a table rather than code that builds models.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

CONV_TYPES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")


def curate(model: keras.Model, n: int = 8) -> list[str]:
    """First conv, last conv, and evenly spaced spatial conv layers with weights between them."""
    convs = [
        layer.name
        for layer in model.layers
        if type(layer).__name__ in CONV_TYPES
        and type(layer).__name__ != "DepthwiseConv2D"  # per-channel filters: less telling
        and layer.trainable_weights
        and "_se_" not in layer.name  # squeeze-excitation convs act on 1x1 maps
        and min(layer.output.shape[1:3]) > 1  # 1x1 convs on pooled maps are classifiers
    ]
    if len(convs) <= n:
        return convs
    picks = [round(i * (len(convs) - 1) / (n - 1)) for i in range(n)]
    return [convs[i] for i in picks]


def main(names: list[str]) -> None:
    for name in names:
        constructor = getattr(keras.applications, name)
        model = constructor(weights=None)
        print(name, model.input_shape[1], model.count_params(), len(model.layers), curate(model))


if __name__ == "__main__":
    main(sys.argv[1:])
