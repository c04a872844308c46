"""ModelInspector: everything the Model Explorer shows about one model, one method per view.

It holds the spec, the loaded model, its preprocessing and channel order, and checks what a
client asks for (layer names, channel ranges) in one place, so the UI only lays out answers.
TensorFlow loads on the first view that needs the network, never on import.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from convenet.data.datasets import ImageFolder
from convenet.data.images import ImageSource, load_image
from convenet.explain.colormap import colormap as colormap  # re-exported: UI maps' colours
from convenet.explain.convolution import (
    ConvStep,
    Field,
    PixelLook,
    first_convolution,
    look_at_pixel,
    receptive_fields,
    walk_first_convolution,
)
from convenet.explain.featurevis_gallery import FEATUREVIS_DIR as FEATUREVIS_DIR  # app serves it
from convenet.explain.featurevis_gallery import (
    FEATUREVIS_SIZE,
    FEATUREVIS_STEPS,
    class_means,
    precomputed_featurevis_path,
    shipped_channels,
    top_activating_images,
)
from convenet.explain.peaks import MIN_PATCH as MIN_PATCH  # the UI says when a frame shows
from convenet.explain.peaks import LayerPeaks, patch
from convenet.lru import BuildOnceLRU
from convenet.models.imagenet import class_names
from convenet.models.loading import load_model, preprocess_for
from convenet.models.registry import ModelSpec


class DatasetFeatures(Protocol):
    """What the Explorer reads of the datasets (a Playground is one): named here, so the
    inspector never imports the facade that builds it."""

    def datasets(self) -> list[str]: ...

    def dataset(self, name: str) -> ImageFolder: ...

    def check_index(self, name: str, index: int, what: str = "query_index") -> int: ...

    def channel_peaks(
        self, dataset: str, model: str, progress: Any = None
    ) -> dict[str, LayerPeaks]: ...

    def features(
        self, dataset: str, model: str, layer: str, progress: Any = None, view: Any = ...
    ) -> np.ndarray: ...


Fraction = Callable[[float], None]
MAX_FILTERS = 64
MAX_MAPS = 32
SPREAD_BINS = 16  # bars of a channel's activation histogram
STRONGEST_AT_PIXEL = 5  # channels named for a clicked pixel of a layer's map
TOP_IMAGES = 9
TOP_CLASSES = 5
# The step counts a picture may be optimised for: a few presets (the shipped pictures' among
# them), so the on-demand picture cache holds at most this many pictures per channel.
FEATUREVIS_STEP_PRESETS = (16, 64, 128, FEATUREVIS_STEPS)
INVERSION_STEPS = 150
INVERSION_TIME_LIMIT_S = 30.0  # said on the page: no request holds the slot longer
INVERSIONS_KEPT = 32
_INVERSIONS: BuildOnceLRU[tuple[np.ndarray, int, float, float]] = BuildOnceLRU(INVERSIONS_KEPT)


def as_int(value: Any, what: str) -> int:
    """A whole number from a UI or API value; anything else is a clear error, never rounded."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    if not float(value).is_integer():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class LayerSummary:
    name: str
    kind: str  # the Keras layer class
    shape: str  # "112x112x32"
    channels: int
    description: str  # what a curated layer sees; else why some views need a curated one
    curated: bool


@dataclass(frozen=True)
class TopImage:
    index: int
    path: Path
    label: str
    activation: float


@dataclass(frozen=True)
class Spot:
    """Where a channel fires most on one image: its peak value, the input it sees there
    (``box``: top, left, bottom, right at the model's input size) and that patch."""

    image: TopImage  # ``activation``: the channel's maximum on it, not its mean
    box: tuple[int, int, int, int]
    patch: np.ndarray


@dataclass(frozen=True)
class Prediction:
    class_index: int
    name: str  # unique among the top k (two ImageNet classes are called "crane")
    probability: float


@dataclass(frozen=True)
class Inversion:
    image: np.ndarray
    steps: int
    relative_error: float
    seconds: float


class ModelInspector:
    """One model as the Explorer sees it (``Playground.inspect(model)``)."""

    def __init__(self, spec: ModelSpec, playground: DatasetFeatures) -> None:
        self.spec = spec
        self.playground = playground
        self.bgr_input = spec.channel_order == "BGR"  # caffe-style nets read BGR

    # -- what the model is --------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The loaded Keras model (cached by convenet.models.loading; loads TensorFlow on first
        use)."""
        return load_model(self.spec.key)

    @property
    def preprocess(self) -> Callable[[np.ndarray], np.ndarray]:
        return preprocess_for(self.spec.key)

    def _layer(self, name: str) -> Any:
        try:
            return self.model.get_layer(name)
        except ValueError:
            raise ValueError(
                f"{self.spec.title} has no layer named {name!r}; pick one from the layer list"
            ) from None

    def layer_choices(self) -> list[tuple[str, str]]:
        """Curated layers with their position, then every other conv layer in model order."""
        from convenet.explain.explorer import conv_layers

        n = len(self.spec.layers)
        fields = self.receptive_fields()
        curated = [
            (f"{item.name} · {i + 1} of {n} · sees {fields[item.name].size} px", item.name)
            for i, item in enumerate(self.spec.layers)
        ]
        names = set(self.spec.layer_names)
        others = [
            (f"{name} ({type(self.model.get_layer(name)).__name__})", name)
            for name in conv_layers(self.model)
            if name not in names
        ]
        return curated + others

    def layer_table(self, text: str = "") -> list[dict]:
        """Every layer; ``text`` keeps rows whose name or type contains it (any case)."""
        from convenet.explain.explorer import layer_table

        wanted = text.strip().lower()
        fields = self.receptive_fields()
        return [
            {**row, "sees": fields[row["name"]].size}
            for row in layer_table(self.model)
            if wanted in row["name"].lower() or wanted in row["type"].lower()
        ]

    def receptive_fields(self) -> dict[str, Field]:
        """What one pixel of each layer sees of the input (computed once per model)."""
        return _fields_of(self.spec.key)

    def convolution_step(
        self, image: np.ndarray, channel: Any, row: Any = None, col: Any = None
    ) -> ConvStep:
        """The first convolution at one output pixel of one channel (the map's centre when no
        pixel is named), computed by hand from the model's weights."""
        conv, _, _ = first_convolution(self.model)
        channel = self.check_channel(conv.name, channel)
        height, width = (int(n) for n in conv.output.shape[1:3])
        row = height // 2 if row is None else as_int(row, "Row")
        col = width // 2 if col is None else as_int(col, "Column")
        return walk_first_convolution(self.model, image, self.preprocess, channel, row, col)

    def channel_count(self, layer: str) -> int:
        """Channels of a layer with HxWxC maps; other layers have no channels to show."""
        chosen = self._layer(layer)
        shape = chosen.output.shape
        if len(shape) != 4:
            raise ValueError(
                f"Layer {layer!r} outputs shape {tuple(shape[1:])}, not feature maps; "
                "pick a convolutional layer"
            )
        return int(shape[-1])

    def check_channel(self, layer: str, channel: Any) -> int:
        n = self.channel_count(layer)
        channel = as_int(channel, "Channel")
        if not 0 <= channel < n:
            raise ValueError(
                f"Channel {channel} is out of range: layer {layer!r} has {n} channels "
                f"(0 to {n - 1})"
            )
        return channel

    def check_curated(self, layer: str, why: str) -> str:
        if layer not in self.spec.layer_names:
            self._layer(layer)  # an unknown layer says so first
            raise ValueError(
                f"{why} needs a curated layer of {self.spec.title} (the first "
                f"{len(self.spec.layers)} in the layer list), whose features are stored for "
                f"every dataset; {layer!r} is not one of them."
            )
        return layer

    def layer_summary(self, layer: str) -> LayerSummary:
        chosen = self._layer(layer)
        curated = {item.name: item.description for item in self.spec.layers}
        return LayerSummary(
            name=layer,
            kind=type(chosen).__name__,
            shape="x".join(str(d) for d in chosen.output.shape[1:]),
            channels=self.channel_count(layer),
            description=curated.get(layer, "not a curated layer: top images need one of those"),
            curated=layer in curated,
        )

    # -- weights ------------------------------------------------------------------------
    def filters(self, layer: str) -> tuple[np.ndarray, str, list[tuple[int, int, float]]]:
        """(picture, what it shows, strongest input->output connections of a 1x1 layer)."""
        from convenet.explain.explorer import (
            CONV_TYPES,
            WEIGHTS_SHOWN,
            filter_grid,
            filter_kind,
            is_pointwise,
            strongest_connections,
        )

        chosen = self._layer(layer)
        if not isinstance(chosen, CONV_TYPES):
            raise ValueError(
                f"Layer {layer!r} is a {type(chosen).__name__}, which has no filters to show; "
                "pick a convolution layer (the layer list holds them all)"
            )
        grid, total = filter_grid(self.model, layer, MAX_FILTERS, bgr_input=self.bgr_input)
        if is_pointwise(chosen):
            matrix = chosen.kernel.numpy()[0, 0]
            n_in = matrix.shape[0]
            shown = f"{min(total, WEIGHTS_SHOWN)} of {total} outputs x "
            shown += f"{min(n_in, WEIGHTS_SHOWN)} of {n_in} inputs"
            return (
                grid,
                f"{total} filters ({shown}): {filter_kind(chosen)}.",
                strongest_connections(matrix),
            )
        return (
            grid,
            f"{total} filters (showing {min(total, MAX_FILTERS)}), {filter_kind(chosen)}.",
            [],
        )

    # -- one image ----------------------------------------------------------------------
    def image(self, dataset: str, index: Any, upload: ImageSource | None) -> tuple[np.ndarray, str]:
        """The uploaded image if there is one, else the dataset image; sized for the model."""
        if upload:
            return load_image(upload, self.spec.input_size), "Your image"
        pg = self.playground
        folder = pg.dataset(dataset)
        i = pg.check_index(
            dataset, as_int(0 if index is None else index, "Image number"), "Image number"
        )
        label = folder.classes[folder.labels[i]]
        return load_image(folder.paths[i], self.spec.input_size), f"{dataset} image {i} ({label})"

    def activations(
        self, layer: str, image: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """(labelled grid of the strongest maps, mean-activation overlay, their channels)."""
        from convenet.explain.explorer import activation_grid, mean_activation_overlay

        self.channel_count(layer)
        grid, order = activation_grid(
            self.model, layer, image, self.preprocess, MAX_MAPS, labels=True
        )
        return grid, mean_activation_overlay(self.model, layer, image, self.preprocess), order

    def look_at_pixel(self, layer: str, image: np.ndarray, y: Any, x: Any) -> PixelLook:
        """What the pixel of ``layer`` nearest to input pixel (y, x) sees (its receptive field,
        outlined on the layer's mean-activation overlay) and which channels are strongest there."""
        from convenet.explain.explorer import layer_activations, overlay_of_maps

        self.channel_count(layer)
        height, width = np.asarray(image).shape[:2]
        y, x = as_int(y, "Row"), as_int(x, "Column")
        if not (0 <= y < height and 0 <= x < width):
            raise ValueError(f"Pixel ({y}, {x}) is outside the {height}x{width} image.")
        (maps,) = layer_activations(self.model, [layer], image, self.preprocess)
        field = self.receptive_fields()[layer]
        base = overlay_of_maps(image, maps)  # one forward pass for the maps and the picture
        return look_at_pixel(maps, base, layer, field, y, x, STRONGEST_AT_PIXEL)

    @staticmethod
    def class_name(index: int) -> str:
        """The ImageNet class ``index`` (0 to 999), as predictions and Grad-CAM number them."""
        return class_names()[index]

    def predictions(self, image: np.ndarray, k: int = TOP_CLASSES) -> list[Prediction]:
        """Top-k ImageNet classes, names made unique so a label never hides another."""
        from convenet.explain.explorer import predict_top_k

        indices = [str(i) for i in range(1000)]
        top = predict_top_k(self.model, image, self.preprocess, indices, k)
        names, seen, out = class_names(), set(), []
        for index_name, probability in top:
            i = int(index_name)
            name = names[i] if names[i] not in seen else f"{names[i]} (class {i})"
            seen.add(name)
            out.append(Prediction(i, name, probability))
        return out

    def gradcam(self, image: np.ndarray, class_index: Any = None) -> tuple[np.ndarray, int, str]:
        """(overlay, class explained, layer) at the last convolution layer."""
        from convenet.explain.explorer import conv_layers, gradcam

        wanted = None if class_index in (None, "") else as_int(class_index, "Class")
        last = conv_layers(self.model)[-1]
        overlay, used = gradcam(self.model, image, self.preprocess, wanted, layer_name=last)
        return overlay, used, last

    def invert(self, layer: str, image: np.ndarray, progress: Fraction | None = None) -> Inversion:
        """What the layer keeps of the image (convenet.explain.featurevis.invert_layer), bounded by
        INVERSION_TIME_LIMIT_S and cached per (model, layer, image)."""
        from convenet.explain.featurevis import invert_layer

        self.channel_count(layer)
        digest = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()

        def build() -> tuple[np.ndarray, int, float, float]:
            start = time.monotonic()
            out = invert_layer(
                self.model,
                layer,
                image,
                self.preprocess,
                steps=INVERSION_STEPS,
                time_limit_s=INVERSION_TIME_LIMIT_S,
                progress=progress,
            )
            return (*out, time.monotonic() - start)

        picture, steps, error, seconds = _INVERSIONS.get((self.spec.key, layer, digest), build)
        return Inversion(picture, steps, error, seconds)

    # -- one channel --------------------------------------------------------------------
    def shipped_channels(self, layer: str) -> list[int]:
        """Channels of the layer with a shipped picture, ascending."""
        return shipped_channels(self.spec.key, layer)

    def gallery(self, layer: str) -> list[tuple[Path, int]]:
        """The layer's shipped channel pictures, (file, channel), for the grid."""
        return [
            (precomputed_featurevis_path(self.spec.key, layer, c), c)
            for c in self.shipped_channels(layer)
        ]

    def feature_visualization(
        self,
        layer: str,
        channel: Any,
        steps: Any = FEATUREVIS_STEPS,
        progress: Fraction | None = None,
    ) -> tuple[np.ndarray, bool]:
        """(picture, shipped?) of a channel: the shipped one where it exists, else computed."""
        channel = self.check_channel(layer, channel)
        steps = as_int(steps, "Steps")
        if steps not in FEATUREVIS_STEP_PRESETS:
            *first, last = (str(n) for n in FEATUREVIS_STEP_PRESETS)
            raise ValueError(f"Steps can be {', '.join(first)} or {last}, not {steps}")
        shipped = precomputed_featurevis_path(self.spec.key, layer, channel)
        if steps == FEATUREVIS_STEPS and shipped.is_file():
            return load_image(shipped), True
        from convenet.explain.featurevis import visualize_channel_cached

        image = visualize_channel_cached(
            self.spec.key,
            self.model,
            layer,
            channel,
            self.preprocess,
            size=FEATUREVIS_SIZE,
            steps=steps,
            progress=progress,
        )
        return image, False

    def _stored_channel(
        self, dataset: str, layer: str, channel: Any, progress: Any
    ) -> tuple[np.ndarray, int]:
        self.check_curated(layer, "The images that excite a channel")
        feats = self.playground.features(dataset, self.spec.key, layer, progress)
        channel = as_int(channel, "Channel")
        if not 0 <= channel < feats.shape[1]:
            raise ValueError(
                f"Channel {channel} is out of range: layer {layer!r} has {feats.shape[1]} "
                f"channels (0 to {feats.shape[1] - 1})"
            )
        return feats, channel

    def top_images(
        self,
        dataset: str,
        layer: str,
        channel: Any,
        k: int = TOP_IMAGES,
        progress: Any = None,
        least: bool = False,
    ) -> list[TopImage]:
        """The k dataset images with the highest pooled activation of the channel (with
        ``least``, the lowest: the images it ignores)."""
        feats, channel = self._stored_channel(dataset, layer, channel, progress)
        folder = self.playground.dataset(dataset)
        return [
            TopImage(
                int(i), folder.paths[i], folder.classes[folder.labels[i]], float(feats[i, channel])
            )
            for i in top_activating_images(feats, channel, k, least)
        ]

    def strongest_spots(
        self, dataset: str, layer: str, channel: Any, progress: Any = None
    ) -> list[Spot]:
        """The images where the channel fires most strongly (its maximum, as Microscope ranks
        dataset examples), each cropped around that spot: instant from the shipped peaks,
        else after one pass of the model over the dataset."""
        self.check_curated(layer, "The images that excite a channel")
        channel = self.check_channel(layer, channel)
        peaks = self.playground.channel_peaks(dataset, self.spec.key, progress)[layer]
        folder = self.playground.dataset(dataset)
        field = self.receptive_fields()[layer]
        size = self.spec.input_size
        spots = []
        for index, value, (row, col) in zip(
            peaks.images[channel].tolist(),
            peaks.values[channel].tolist(),
            peaks.cells[channel].tolist(),
            strict=True,
        ):
            path = folder.paths[index]
            found = TopImage(index, path, folder.classes[folder.labels[index]], value)
            image = load_image(path, size)
            spots.append(
                Spot(found, field.box(row, col, size, size), patch(image, field, (row, col)))
            )
        return spots

    def activation_spread(
        self, dataset: str, layer: str, channel: Any, bins: int = SPREAD_BINS
    ) -> tuple[np.ndarray, np.ndarray]:
        """(counts, edges): a histogram of the channel's pooled activation over every image of
        the dataset, from the stored features (no model run)."""
        feats, channel = self._stored_channel(dataset, layer, channel, None)
        counts, edges = np.histogram(np.asarray(feats[:, channel], np.float64), bins=bins)
        return counts, edges

    def class_activation(self, layer: str, channel: Any) -> dict[str, dict[str, float]]:
        """{dataset: {class: mean pooled activation of the channel}} over the shipped datasets."""
        out = {}
        for dataset in self.playground.datasets():
            feats, c = self._stored_channel(dataset, layer, channel, None)
            folder = self.playground.dataset(dataset)
            means = class_means(feats[:, c : c + 1], folder.labels, len(folder.classes))[:, 0]
            out[dataset] = {name: float(m) for name, m in zip(folder.classes, means, strict=True)}
        return out


@functools.cache
def _fields_of(key: str) -> dict[str, Field]:
    """Receptive fields of a model's layers: fixed by its architecture, so computed once."""
    return receptive_fields(load_model(key))
