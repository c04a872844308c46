"""Tools for scripts and agents: the documented API, and the app's MCP tool list.

Each is a typed function whose docstring Gradio turns into the API page's and the MCP tool's
description. Everything else the page calls is kept off both lists (``ui.app.build_app``).
TensorFlow is imported only inside the tools that run a network.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from convenet.lessons import lesson_records
from convenet.models.registry import DEFAULT_MODEL, MODELS, get_model_spec
from ui.api import uploaded_path
from ui.api_types import (
    ChannelAnswer,
    LessonEntry,
    ModelEntry,
    PredictionAnswer,
    WhyAnswer,
    resolved,
)
from ui.common import AppState, default_layer, friendly
from ui.gradio_compat.files import upload_folder
from ui.groups import FEATUREVIS, HEAVY
from ui.why_panel import WHY_GROUP

TOOLS = ("search", "list_models", "explain_prediction", "show_channel", "why_match", "lessons")
TOP_CLASSES = 5
TOP_IMAGES = 9


def picture_file(image: np.ndarray, stem: str) -> dict:
    """Save a picture where Gradio serves uploads from (and sweeps them): a file an agent gets."""
    folder = upload_folder() / "tools"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}-{uuid.uuid4().hex[:12]}.png"
    Image.fromarray(image).save(path)
    return gr.FileData(path=str(path), orig_name=path.name, mime_type="image/png").model_dump()


def register_tools(state: AppState) -> None:
    """Add the tools besides ``/search`` (see ui.api)."""
    pg = state.playground

    def query_path(query: Any) -> Path | None:
        """The uploaded file (already checked at the edge), if any."""
        if query is None:
            return None
        return Path(query["path"] if isinstance(query, dict) else query.path)

    @friendly
    def list_models() -> list[ModelEntry]:
        """List the CNNs this app searches with, simplest first, with their curated layers.

        Returns:
            One entry per model: `key` (pass it as `model` to the other tools), `title`,
            `year`, `input_size`, `parameters`, `weights` ("bundled" works offline; "download"
            needs the internet once; "missing" cannot run here) and `layers`, the eight
            curated layers from first to last, each a `name` (pass it as `layer`) and what it
            tends to respond to.
        """
        return [
            {
                "key": spec.key,
                "title": spec.title,
                "year": spec.year,
                "input_size": spec.input_size,
                "parameters": spec.params,
                "weights": pg.weights_status(spec.key),
                "layers": [{"name": item.name, "sees": item.description} for item in spec.layers],
            }
            for spec in MODELS.values()
        ]

    @friendly
    def explain_prediction(
        model: str = DEFAULT_MODEL,
        dataset: str = state.default_dataset,
        query_index: int | None = 0,
        query: gr.FileData = None,  # type: ignore[assignment]  # no Optional: MCP needs the plain file type
        class_index: int = None,  # type: ignore[assignment]  # shown as "int | None", not twice None
    ) -> PredictionAnswer:
        """Say what a CNN thinks an image shows, and where in the image it sees it.

        Args:
            model: a model key from list_models, for example "efficientnet_lite0".
            dataset: the dataset holding the image, "stamps200" or "clipart200".
            query_index: which image of the dataset (0 to 199); ignored when `query` is given.
            query: your own image instead (an uploaded file, or a data: URL for MCP clients).
            class_index: the ImageNet class (0 to 999) to explain; default: the top one.

        Returns:
            `top5`: the five most likely ImageNet classes with `class`, `class_index` and
            `probability`; `explained`: the class that `gradcam` explains; `gradcam`: a PNG
            of the image with the Grad-CAM heatmap over it (bright = where the evidence for
            that class lies, at the model's last convolution layer).
        """
        inspector = pg.inspect(model)
        image, _ = inspector.image(dataset, query_index, query_path(query))
        top = inspector.predictions(image, TOP_CLASSES)
        overlay, used, last = inspector.gradcam(image, class_index)
        return {
            "top5": [
                {
                    "class": p.name,
                    "class_index": p.class_index,
                    "probability": round(p.probability, 4),
                }
                for p in top
            ],
            "explained": {"class": inspector.class_name(used), "class_index": used, "layer": last},
            "gradcam": picture_file(overlay, f"gradcam-{inspector.spec.key}"),
        }

    @friendly
    def show_channel(
        model: str = DEFAULT_MODEL,
        layer: str = "top_conv",
        channel: int = 0,
        dataset: str = state.default_dataset,
    ) -> ChannelAnswer:
        """Show what one channel of a layer responds to: a picture optimised to make it fire,
        and the dataset images that excite it most.

        Args:
            model: a model key from list_models, for example "efficientnet_lite0".
            layer: one of the model's curated layers (see list_models).
            channel: the channel number, from 0 to the layer's channel count minus one.
            dataset: whose images to rank, "stamps200" or "clipart200".

        Returns:
            `feature_visualization`: a PNG (shipped with the app where one exists, else
            computed, which takes several seconds); `top_images`: the nine images with the
            highest average activation of the channel, each with `image`, `class` and
            `activation`; `strongest`: the nine images where it fires most strongly (its
            peak), each with `image`, `class`, `peak` and `box` (top, left, bottom, right: the
            input pixels that spot sees, in the image's centre square resized to the model's
            input size, as the model sees it).
        """
        inspector = pg.inspect(model)
        top = inspector.top_images(dataset, layer, channel, TOP_IMAGES)
        picture, _ = inspector.feature_visualization(layer, channel)
        images_dir = pg.images_dir(dataset)
        return {
            "feature_visualization": picture_file(
                picture, f"channel-{inspector.spec.key}-{channel}"
            ),
            "top_images": [
                {
                    "image": t.path.relative_to(images_dir).as_posix(),
                    "class": t.label,
                    "activation": round(t.activation, 4),
                }
                for t in top
            ],
            "strongest": [
                {
                    "image": s.image.path.relative_to(images_dir).as_posix(),
                    "class": s.image.label,
                    "peak": round(s.image.activation, 4),
                    "box": list(s.box),
                }
                for s in inspector.strongest_spots(dataset, layer, channel)
            ],
        }

    @friendly
    def why_match(
        dataset: str = state.default_dataset,
        model: str = DEFAULT_MODEL,
        layer: str = default_layer(DEFAULT_MODEL),
        query_index: int | None = 0,
        query: gr.FileData = None,  # type: ignore[assignment]  # no Optional: MCP needs the plain file type
        result_index: int = 1,
        channels: int = 5,
    ) -> WhyAnswer:
        """Show why one layer of a CNN finds two images alike: where their features agree, and
        which channels carry the match.

        Args:
            dataset: the dataset, "stamps200" or "clipart200".
            model: a model key from list_models, for example "efficientnet_lite0".
            layer: one of the model's curated layers (see list_models).
            query_index: the dataset image used as the query (0 to 199); ignored when `query`
                is given.
            query: your own image as the query (an uploaded file, or a data: URL for MCP
                clients).
            result_index: the dataset image to compare it with (0 to 199), for example the
                `index` of a result of search.
            channels: how many of the channels that add most to the match to list (1 to 20).

        Returns:
            `cosine`: the cosine similarity of the two images' average-pooled features, the
            number a cosine search ranks by; `meaning`: what the colours mean;
            `query_heatmap` and `result_heatmap`: PNGs of each image with its heatmap over it
            (one colour scale for both; each map's mean is the cosine); `channels`: for each
            top channel its `channel` number, its `share` of the cosine (the shares of all
            channels add up to it), `feature_visualization` (a PNG where the app ships one,
            else null) and `explorer_link` (that channel in the Model Explorer, relative to
            the app's address).
        """
        spec = get_model_spec(model)
        upload = None if query is None else uploaded_path(query)
        pair = pg.why_match(
            dataset,
            spec.key,
            layer,
            result_index,
            query_index=None if upload else query_index,
            query_image=upload,
            channels=channels,
        )
        return {
            "dataset": dataset,
            "model": spec.key,
            "layer": layer,
            "query_index": None if upload else query_index,
            "result_index": result_index,
            "cosine": round(pair.explanation.cosine, 4),
            "meaning": pair.meaning,
            "query_heatmap": picture_file(pair.query_overlay, f"why-query-{spec.key}"),
            "result_heatmap": picture_file(pair.result_overlay, f"why-result-{spec.key}"),
            "channels": [
                {
                    "channel": channel.index,
                    "share": round(channel.share, 4),
                    "feature_visualization": None
                    if (picture := channel.picture()) is None
                    else picture_file(picture, f"channel-{channel.index}"),
                    "explorer_link": channel.link,
                }
                for channel in pair.channels
            ],
        }

    @friendly
    def lessons() -> list[LessonEntry]:
        """The guided lessons: short steps, each one sentence of what to notice in a CNN and
        the link that opens the view showing it.

        Returns:
            One entry per step, in order: `number`, `title`, `sentence`, `link` (a query
            string to append to the app's address: it sets the dataset, model, layer, metric,
            recipe and query, and opens the panel or tab the step is about) and `claim`: for
            a step whose sentence states a number, the figure it says is reached (`at_least`)
            and the one measured on the shipped data now (`measured`); null otherwise.
        """
        return lesson_records(pg)

    gr.api(resolved(lessons), api_name="lessons")
    gr.api(resolved(list_models), api_name="list_models")
    gr.api(resolved(explain_prediction), api_name="explain_prediction", **HEAVY.events())
    gr.api(resolved(show_channel), api_name="show_channel", **FEATUREVIS.events())
    gr.api(resolved(why_match), api_name="why_match", **WHY_GROUP)
