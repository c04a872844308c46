"""What the Model Explorer's events do: module-level functions over a ModelInspector.

Each takes the Playground first (the layout binds it) and plain values after, so it can be read
and tested on its own; the inspector checks names and ranges, these only word the answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from convenet.inspector import (
    INVERSION_TIME_LIMIT_S,
    as_int,
)
from convenet.models.registry import MODELS, get_model_spec
from convenet.playground import BROWSE_MAX, Playground
from ui.common import friendly, layer_choices, model_update
from ui.convolution_html import convolution_html
from ui.explorer_channel import CHANNEL_HINT, channel_link

STATUS_WORDS = {
    "bundled": "bundled (works offline)",
    "cached": "cached (downloaded before)",
    "download": "downloads on first use",
    "missing": "missing (package not installed)",
}


def model_rows() -> list[list[Any]]:
    """One row per model, simplest first, with what it is and whether it works offline."""
    return [
        [
            spec.title,
            spec.summary,
            f"{spec.params / 1e6:.1f}M",
            spec.depth,
            f"{spec.input_size}x{spec.input_size}",
            STATUS_WORDS[Playground.weights_status(spec.key)],
        ]
        for spec in MODELS.values()
    ]


@friendly
def explorer_models() -> list[list[Any]]:
    return model_rows()


@friendly
def curated_layers(model: str, layer: str | None, current: str, token: int) -> tuple[Any, ...]:
    """The registry's layers of a model whose weights can be had, before it loads.

    A model that cannot load here is not shown at all: the views keep the current model,
    under its own name, and one sentence says why.
    """
    spec = get_model_spec(model)
    if spec.key == current:  # a dropdown may send its event twice
        return current, gr.skip(), gr.skip(), current, gr.skip()
    problem = Playground.weights_problem(spec.key)
    if problem:
        return current, gr.skip(), problem, current, gr.skip()
    value = layer if layer in spec.layer_names else spec.layer_names[0]
    choices = gr.update(choices=layer_choices(spec.key), value=value)
    return model_update(spec.key), choices, "", spec.key, token + 1


@friendly
def explorer_layers(pg: Playground, model: str, layer: str | None) -> Any:
    """Curated layers plus every other conv layer; loading the model surfaces weight errors."""
    inspector = pg.inspect(model)
    choices = inspector.layer_choices()
    value = layer if layer in {name for _, name in choices} else inspector.spec.layer_names[0]
    return gr.update(choices=choices, value=value)


@friendly
def layer_table(pg: Playground, model: str, text: str | None) -> list[list[Any]]:
    """Every layer of the model; ``text`` keeps rows whose name or type contains it."""
    return [
        [
            r["index"],
            r["name"],
            r["type"],
            r["output_shape"],
            r["parameters"],
            "yes" if r["trainable"] else "no",
            r["sees"],
        ]
        for r in pg.inspect(model).layer_table(text or "")
    ]


@friendly
def pick_layer_row(evt: gr.SelectData) -> str:
    row = getattr(evt, "row_value", None) or []
    if len(row) < 2:
        raise ValueError("Click a row of the layer table to choose its layer")
    return row[1]


@friendly
def layer_info(pg: Playground, model: str, layer: str, channel: Any) -> tuple[Any, ...]:
    """What the layer is, the channel range for it, and a cleared channel page."""
    inspector = pg.inspect(model)
    about = inspector.layer_summary(layer)
    sees = inspector.receptive_fields()[layer].size
    text = (
        f"**{layer}** · {about.kind} · output {about.shape} · {about.channels} channels · "
        f"each pixel sees {sees}x{sees} px of the input · {about.description}"
    )
    try:
        keep = as_int(channel, "Channel")
    except ValueError:
        keep = 0
    n = about.channels
    number = gr.update(value=keep if 0 <= keep < n else 0, info=f"0 to {n - 1}")
    return text, number, None, CHANNEL_HINT, [], "", "", "", [], ""


@friendly
def filters(pg: Playground, model: str, layer: str) -> tuple[np.ndarray, str]:
    grid, text, strongest = pg.inspect(model).filters(layer)
    if strongest:
        pairs = ", ".join(f"in {i} → out {o} ({w:+.2f})" for i, o, w in strongest)
        text += f" Strongest connections: {pairs}."
    return grid, text


@friendly
def show_dataset(pg: Playground, dataset: str) -> tuple[list[tuple[str, str]], int, None]:
    """The first BROWSE_MAX images (a position in the gallery is the image's number; the
    "Image number" box reaches any other)."""
    folder = pg.dataset(dataset)
    items = [
        (str(p), folder.classes[label])
        for p, label in zip(folder.paths[:BROWSE_MAX], folder.labels, strict=False)
    ]
    return items, 0, None


@friendly
def pick_image(evt: gr.SelectData) -> tuple[int, None]:
    return as_int(getattr(evt, "index", None), "Image number"), None


@friendly
def activations(
    pg: Playground, model: str, layer: str, dataset: str, index: Any, upload: str | None
) -> tuple[np.ndarray, np.ndarray, str]:
    inspector = pg.inspect(model)
    image, what = inspector.image(dataset, index, upload and Path(upload))
    grid, overlay, order = inspector.activations(layer, image)
    n = inspector.channel_count(layer)
    text = (
        f"{what} · **{layer}**: the {len(order)} most active of {n} channels, strongest "
        "first, each scaled on its own (bright = strong; the corner number is the channel). "
        f"Strongest: {', '.join(str(c) for c in order[:8])}. Right: the mean of all "
        "channels over the image, where the layer as a whole responds; click a spot of it to "
        "see what one pixel of the layer sees, and its strongest channels."
    )
    return grid, overlay, text


@friendly
def invert(
    pg: Playground,
    model: str,
    layer: str,
    dataset: str,
    index: Any,
    upload: str | None,
    progress: gr.Progress = gr.Progress(),
) -> tuple[np.ndarray, np.ndarray, str]:
    """What the layer keeps of the image: the original and its reconstruction side by side."""
    inspector = pg.inspect(model)
    image, what = inspector.image(dataset, index, upload and Path(upload))
    result = inspector.invert(
        layer, image, lambda done: progress(done, desc="Reconstructing from the layer")
    )
    text = (
        f"{what}, rebuilt from **{layer}**'s activations alone ({result.steps} steps, "
        f"{result.seconds:.0f} s; activations matched to {result.relative_error:.0%} error). "
        "Early layers give the photo back; late layers keep the parts they recognise and lose "
        f"their exact look. Takes up to {INVERSION_TIME_LIMIT_S:.0f} s; repeats are instant."
    )
    return image, result.image, text


@friendly
def predictions(
    pg: Playground, model: str, dataset: str, index: Any, upload: str | None
) -> tuple[dict[str, float], Any]:
    inspector = pg.inspect(model)
    image, _ = inspector.image(dataset, index, upload and Path(upload))
    top = inspector.predictions(image)
    choices = [(f"{p.name} ({p.probability:.0%})", p.class_index) for p in top]
    return {p.name: p.probability for p in top}, gr.update(choices=choices, value=choices[0][1])


@friendly
def gradcam_view(
    pg: Playground, model: str, dataset: str, index: Any, upload: str | None, class_index: Any
) -> tuple[np.ndarray, str]:
    inspector = pg.inspect(model)
    image, what = inspector.image(dataset, index, upload and Path(upload))
    overlay, used, last_conv = inspector.gradcam(image, class_index)
    text = (
        f"{what}: Grad-CAM for **{inspector.class_name(used)}** at {last_conv} — bright areas are "
        "where the evidence for this class lies."
    )
    return overlay, text


@friendly
def convolution(
    pg: Playground,
    model: str,
    dataset: str,
    index: Any,
    upload: str | None,
    channel: Any,
    pixel: list[int] | None,
) -> str:
    """How the first convolution computes one pixel of ``channel`` (``pixel``: [row, col], or
    None for the map's centre) on the Explorer's image."""
    inspector = pg.inspect(model)
    image, what = inspector.image(dataset, index, upload and Path(upload))
    row, col = pixel if pixel else (None, None)
    return convolution_html(image, inspector.convolution_step(image, channel, row, col), what)


def pick_spot(evt: gr.SelectData) -> list[int]:
    """The input pixel [y, x] a click on the mean-activation picture chose."""
    where = getattr(evt, "index", None)
    if not (isinstance(where, list | tuple) and len(where) == 2):
        raise ValueError("Click a spot of the mean activation picture to choose a pixel")
    x, y = (as_int(v, "Pixel") for v in where)
    return [y, x]


@friendly
def look_at_pixel(
    pg: Playground,
    model: str,
    layer: str,
    dataset: str,
    index: Any,
    upload: str | None,
    spot: list[int] | None,
) -> tuple[Any, str]:
    """The layer's pixel at ``spot`` (from ``pick_spot``), the input it sees (outlined) and
    its strongest channels, each a link to its page."""
    if not spot:
        return gr.skip(), ""
    inspector = pg.inspect(model)
    image, what = inspector.image(dataset, index, upload and Path(upload))
    look = inspector.look_at_pixel(layer, image, *spot)
    size = look.field.size
    top, left, bottom, right = look.box
    channels = ", ".join(
        f"[{channel}]({channel_link(model, layer, channel)}) ({value:.2f})"
        for channel, value in look.strongest
    )
    text = (
        f"{what} · pixel (row {look.row}, column {look.col}) of **{layer}** sees a "
        f"{size} x {size} px square of the input (its receptive field, outlined; here rows "
        f"{top}-{bottom}, columns {left}-{right} of the image). Strongest channels there: "
        f"{channels}. Deeper layers see more of the image with each pixel."
    )
    return look.picture, text


def pick_pixel(evt: gr.EventData) -> list[int]:
    """The map pixel a click sent; anything else is refused plainly."""
    data = getattr(evt, "_data", None)
    values = [data.get(key) for key in ("row", "col")] if isinstance(data, dict) else []
    if len(values) != 2 or not all(isinstance(v, int) and 0 <= v < 4096 for v in values):
        raise ValueError("Click a pixel of the activation map to choose it")
    return values
