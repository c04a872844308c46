"""Why do two images match? Where one layer's features agree, and which channels carry it.

The search ranks images by comparing globally average-pooled vectors, so the explanation splits
exactly that comparison, the cosine similarity of the two pooled vectors, into parts. With F the
(h, w, c) feature map of one image, p its mean over positions and q the other image's pooled
vector:

    cos(p, q) = sum_c p_c q_c / (|p| |q|)              (a share per channel)
              = mean_ij <F_ij, q / |q|> / |p|          (a share per position)

The per-position shares are the heatmap of that image; their mean is the cosine itself, for the
query and for the result alike, so both heatmaps are drawn on one colour scale. Feature maps come
from ONNX Runtime (the unpooled graph, exported once like the pooled ones), so an explanation
never loads TensorFlow into the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from convenet.data.images import ImageSource, load_image
from convenet.explain.colormap import colormap
from convenet.explain.featurevis_gallery import precomputed_featurevis_path
from convenet.features.extract import extract_arrays
from convenet.models.loading import get_model_spec

MAX_CHANNELS = 20  # the most top channels one explanation lists
MEANING = (
    "Bright yellow marks the parts of each image whose features point the same way as the other "
    "image's whole-image feature vector, so they pull the two together; dark purple marks parts "
    "that add nothing or pull them apart. Each map's average brightness is the match score."
)


def unit(vector: np.ndarray) -> np.ndarray:
    """The vector scaled to length 1 (last axis); a zero vector stays zero."""
    norm = np.linalg.norm(vector, axis=-1, keepdims=True)
    return np.divide(vector, norm, out=np.zeros_like(vector), where=norm > 0)


def channel_shares(pooled_a: np.ndarray, pooled_b: np.ndarray) -> np.ndarray:
    """Per-channel products of the two L2-normalised pooled vectors; they sum to the cosine."""
    return unit(np.asarray(pooled_a, np.float64)) * unit(np.asarray(pooled_b, np.float64))


def position_shares(maps: np.ndarray, other_pooled: np.ndarray) -> np.ndarray:
    """(h, w) share of each position of ``maps`` in its cosine with ``other_pooled``.

    Each position's feature vector projected on the other image's unit vector, divided by the
    length of this image's pooled vector: the mean over positions is exactly the cosine.
    """
    maps = np.asarray(maps, np.float64)
    norm = np.linalg.norm(maps.mean(axis=(0, 1)))
    if norm == 0:
        return np.zeros(maps.shape[:2])
    return maps @ unit(np.asarray(other_pooled, np.float64)) / norm


@dataclass(frozen=True)
class MatchExplanation:
    """The cosine of two pooled vectors, split by position (one map per image) and by channel."""

    cosine: float
    query_heat: np.ndarray
    result_heat: np.ndarray
    channels: np.ndarray

    def top_channels(self, n: int) -> list[int]:
        """The ``n`` channels that add most to the match (ties: lower channel first); only
        channels that add to it, so a dissimilar pair may list fewer."""
        order = np.argsort(-self.channels, kind="stable")[:n]
        return [int(c) for c in order if self.channels[c] > 0]

    @property
    def heat_top(self) -> float:
        """The top of the colour scale both heatmaps share: their largest share (1 if none)."""
        top = max(float(self.query_heat.max()), float(self.result_heat.max()))
        return top if top > 0 else 1.0


def explain_maps(query_maps: np.ndarray, result_maps: np.ndarray) -> MatchExplanation:
    """Split the match of two images' feature maps (h, w, c; sizes may differ) into parts."""
    query_pooled = np.asarray(query_maps, np.float64).mean(axis=(0, 1))
    result_pooled = np.asarray(result_maps, np.float64).mean(axis=(0, 1))
    channels = channel_shares(query_pooled, result_pooled)
    return MatchExplanation(
        cosine=float(channels.sum()),
        query_heat=position_shares(query_maps, result_pooled),
        result_heat=position_shares(result_maps, query_pooled),
        channels=channels,
    )


def heat_overlay(image: np.ndarray, heat: np.ndarray, top: float, alpha: float = 0.6) -> np.ndarray:
    """Blend ``heat`` (0 to ``top`` on the colour scale; below 0 counts as 0), bilinearly
    resized to the image, over the RGB uint8 image."""
    height, width = image.shape[:2]
    scaled = Image.fromarray(np.asarray(heat, np.float32), mode="F")
    up = np.asarray(scaled.resize((width, height), Image.Resampling.BILINEAR), np.float64)
    coloured = colormap(np.clip(up / top, 0.0, 1.0)).astype(np.float64)
    blended = alpha * coloured + (1.0 - alpha) * image.astype(np.float64)
    return np.round(blended).astype(np.uint8)


def explorer_link(model: str, layer: str, channel: int) -> str:
    """The Model Explorer view of one channel, as a link relative to the app's page."""
    return f"?tab=explorer&model={model}&layer={layer}&channel={channel}"


@dataclass(frozen=True)
class Channel:
    """One channel that carries the match: its share of the cosine, its picture, its link."""

    index: int
    share: float
    featurevis: Path | None
    link: str

    def picture(self) -> np.ndarray | None:
        """The shipped feature visualization as RGB pixels, or None where none is shipped."""
        return None if self.featurevis is None else load_image(self.featurevis)


@dataclass(frozen=True)
class PairExplanation:
    """What the app shows: the numbers, both images with their heatmaps, the top channels."""

    explanation: MatchExplanation
    query_overlay: np.ndarray
    result_overlay: np.ndarray
    channels: list[Channel]

    @property
    def meaning(self) -> str:
        """What the heatmaps' colours mean, in words for the page and the API."""
        return MEANING


def explain_pair(
    model: str,
    layer: str,
    query: ImageSource,
    result: ImageSource,
    channels: int = 5,
) -> PairExplanation:
    """Why the layer finds ``result`` like ``query`` (dataset images or an outside one; the
    facade, ``Playground.why_match``, names them by index). Both images take one forward pass."""
    spec = get_model_spec(model)
    spec.layer(layer)
    if isinstance(channels, bool) or not isinstance(channels, int):
        raise ValueError(f"channels must be a whole number from 1 to {MAX_CHANNELS}")
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(f"channels must be a whole number from 1 to {MAX_CHANNELS}")
    pixels = np.stack([load_image(query, spec.input_size), load_image(result, spec.input_size)])
    maps = extract_arrays(spec.key, pixels.astype(np.float32), (layer,), "map")[layer]
    found = explain_maps(maps[0], maps[1])
    top = found.heat_top
    listed = []
    for channel in found.top_channels(channels):
        picture = precomputed_featurevis_path(spec.key, layer, channel)
        listed.append(
            Channel(
                channel,
                float(found.channels[channel]),
                picture if picture.is_file() else None,
                explorer_link(spec.key, layer, channel),
            )
        )
    return PairExplanation(
        found,
        heat_overlay(pixels[0], found.query_heat, top),
        heat_overlay(pixels[1], found.result_heat, top),
        listed,
    )
