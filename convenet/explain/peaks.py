"""Where each channel fires most: the dataset images that excite it most strongly, and the spot
of each (Microscope's dataset examples, shown as patches cropped around that spot).

One pass over a dataset per model (every curated layer's maps at once) keeps, for every
channel, its ``k`` strongest images by their maximum activation and the map cell of that
maximum; a patch is the input that cell sees (its receptive field), widened to a minimum so a
3-pixel field still shows its surroundings. Shipped datasets ship their peaks
(``scripts/build_peaks.py``), checked against the features they came from; other
datasets compute them once, on a channel page's first opening.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convenet.data.images import ImageSource
from convenet.explain.convolution import Field, outline
from convenet.features.extract import BATCH_SIZE, Progress, decoded_batches, extract_arrays
from convenet.models.registry import get_model_spec

log = logging.getLogger("convenet")

PEAKS_FILE = "peaks.safetensors"
PEAKS_KEPT = 9  # images per channel: the channel page's top-9
MIN_PATCH = 64  # input pixels a patch spans at least, so a small field keeps its context
PARTS = ("images", "values", "cells")


@dataclass(frozen=True)
class LayerPeaks:
    """One layer's strongest images per channel, strongest first."""

    images: np.ndarray  # (channels, k) image indices in the dataset
    values: np.ndarray  # (channels, k) the channel's maximum activation on each
    cells: np.ndarray  # (channels, k, 2) the (row, col) of that maximum in the layer's map
    grid: tuple[int, int]  # the layer's map height and width

    def sane(self) -> bool:
        """Whether the parts fit together (a file's are checked before any is used)."""
        return (
            self.values.shape == self.images.shape
            and self.cells.shape == (*self.images.shape, 2)
            and bool((self.images >= 0).all() and (self.cells >= 0).all())
            and bool((self.cells < np.asarray(self.grid)).all())
        )

    def tensors(self, prefix: str) -> dict[str, np.ndarray]:
        parts = {
            "images": self.images.astype(np.int32),
            "values": self.values.astype(np.float16),  # as precise as the stored features
            "cells": self.cells.astype(np.int16),
            "grid": np.asarray(self.grid, np.int32),
        }  # contiguous: safetensors writes an array's buffer as it lies in memory
        return {f"{prefix}/{part}": np.ascontiguousarray(a) for part, a in parts.items()}


Kept = tuple[np.ndarray, np.ndarray, np.ndarray]  # values, image indices, flat cells: (k, c)


def strongest(values: np.ndarray, images: np.ndarray, cells: np.ndarray, k: int) -> Kept:
    """Of (n, channels) maxima, their images and flat map cells: each channel's ``k`` largest,
    strongest first (ties: the row that came first, so the earlier image)."""
    order = np.argsort(-values, axis=0, kind="stable")[:k]
    return tuple(np.take_along_axis(a, order, axis=0) for a in (values, images, cells))


def layer_peaks(kept: Kept, grid: tuple[int, int]) -> LayerPeaks:
    """The kept rows as a layer's peaks: per channel, with (row, col) cells."""
    values, images, cells = kept
    return LayerPeaks(
        np.ascontiguousarray(images.T, np.int32),
        np.ascontiguousarray(values.T, np.float32),
        np.stack(np.divmod(cells.T, grid[1]), axis=-1).astype(np.int32),
        grid,
    )


def dataset_peaks(
    model: str,
    sources: Sequence[ImageSource],
    layers: Sequence[str],
    k: int = PEAKS_KEPT,
    progress: Progress | None = None,
) -> dict[str, LayerPeaks]:
    """Every curated layer's peaks over ``sources`` in one pass of the model (its unpooled
    maps, a batch at a time). Only the ``k`` strongest images per channel so far are kept, so
    memory stays that of one batch, however large the dataset."""
    spec = get_model_spec(model)
    kept: dict[str, Kept] = {}
    grids: dict[str, tuple[int, int]] = {}
    done = 0
    for batch in decoded_batches(sources, spec.input_size, BATCH_SIZE):
        for name, maps in extract_arrays(spec.key, batch, layers, "map").items():
            n, height, width, channels = maps.shape
            flat = maps.reshape(n, height * width, channels)
            where = flat.argmax(axis=1)  # (n, channels)
            values = np.take_along_axis(flat, where[:, None, :], axis=1)[:, 0]
            images = np.broadcast_to(np.arange(done, done + n)[:, None], values.shape)
            new = (values, images, where)
            if name in kept:  # the kept rows first: a tie keeps the earlier image
                new = tuple(np.concatenate(pair) for pair in zip(kept[name], new, strict=True))
            kept[name] = strongest(*new, k)
            grids[name] = (height, width)
        done += len(batch)
        if progress is not None:
            progress(done, len(sources))
    return {name: layer_peaks(rows, grids[name]) for name, rows in kept.items()}


def save_peaks(per_model: dict[str, dict[str, LayerPeaks]], digests: dict[str, str]) -> bytes:
    """A dataset's peaks for several models as one safetensors file (keys "model/layer/part");
    its metadata holds each model's feature digest, which tells a stale file."""
    from safetensors.numpy import save

    tensors = {
        key: value
        for model, layers in per_model.items()
        for layer, peaks in layers.items()
        for key, value in peaks.tensors(f"{model}/{layer}").items()
    }
    return save(tensors, metadata=digests)


def read_peaks(path: Path, model: str, digest: str) -> dict[str, LayerPeaks]:
    """One model's shipped peaks, if the file has them for exactly these features (``digest``);
    {} otherwise, or when the file cannot be read (then they are computed, as for any dataset)."""
    if not path.is_file():
        return {}
    from safetensors import safe_open

    found: dict[str, LayerPeaks] = {}
    try:
        with safe_open(str(path), "numpy") as handle:
            if (handle.metadata() or {}).get(model) != digest:
                return {}
            layers = {key.split("/")[1] for key in handle.keys() if key.startswith(f"{model}/")}  # noqa: SIM118
            for layer in layers:
                part = {p: handle.get_tensor(f"{model}/{layer}/{p}") for p in (*PARTS, "grid")}
                peaks = LayerPeaks(
                    part["images"], part["values"], part["cells"], tuple(part["grid"].tolist())
                )
                if not peaks.sane():
                    raise ValueError(f"{model}/{layer}: its parts do not fit together")
                found[layer] = peaks
    except Exception as exc:  # a damaged file: any parse error; the peaks are computed instead
        log.warning("Shipped peaks %s cannot be read (%s); computing them.", path, exc)
        return {}
    return found


def patch(image: np.ndarray, field: Field, cell: tuple[int, int]) -> np.ndarray:
    """The square of ``image`` (at the model's input size) around what map cell ``cell`` sees:
    its receptive field, or ``MIN_PATCH`` pixels when the field is smaller (the field then
    outlined inside, the rest dimmed)."""
    height, width = image.shape[:2]
    row, col = cell
    box = field.box(row, col, height, width)
    centre = (field.start + row * field.jump, field.start + col * field.jump)
    side = min(max(field.size, MIN_PATCH), height, width)
    top = int(np.clip(round(centre[0] - side / 2), 0, height - side))
    left = int(np.clip(round(centre[1] - side / 2), 0, width - side))
    picture = outline(image, box, centre) if field.size < side else np.asarray(image, np.uint8)
    return picture[top : top + side, left : left + side]
