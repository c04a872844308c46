"""Model Explorer tab: the models, a layer's filters and feature maps, a channel, class evidence.

A thin layer over ``convenet.explorer`` and ``convenet.featurevis``. Views refresh through three
counters held in gr.State (model loaded, layer chosen, image chosen): a handler that changes one
bumps its counter, and every view listens to the counters it depends on, so each view runs once
per change and never with a model and a layer that do not belong together.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from convenet.featurevis_gallery import (
    FEATUREVIS_SIZE,
    FEATUREVIS_STEPS,
    precomputed_featurevis_path,
)
from convenet.imagenet import class_names
from convenet.images import load_image
from convenet.models import get_model_spec, load_model, preprocess_for, weights_status
from convenet.registry import DEFAULT_MODEL, MODELS, ModelSpec
from ui.common import (
    AppState,
    dataset_dropdown,
    friendly,
    image_upload,
    layer_choices,
    model_problem,
    progress_callback,
)
from ui.search_tab import SearchTab, layer_update

# convenet.explorer and convenet.featurevis import TensorFlow (seconds, hundreds of MiB): the
# handlers import them when a model is actually needed, so the app starts without it, and the
# UI never imports Keras itself: models and layers pass through as opaque values.
KerasModel = Any
KerasLayer = Any

FEATUREVIS_MAX_STEPS = 256
MAX_FILTERS = 64
MAX_MAPS = 32
TOP_IMAGES = 9
TOP_CLASSES = 5
# Keras VGG16/VGG19/ResNet50 use caffe preprocessing: their first layer reads BGR.
BGR_MODELS = frozenset({"vgg16", "vgg19", "resnet50"})
# Class indices as names, so the two ImageNet classes called "crane" stay distinct.
_INDEX_NAMES = [str(i) for i in range(1000)]

STATUS_WORDS = {
    "bundled": "bundled (works offline)",
    "cached": "cached (downloaded before)",
    "download": "downloads on first use",
    "missing": "missing (package not installed)",
}
MODEL_HEADERS = ["model", "summary", "parameters", "depth (layers)", "input size", "weights"]
LAYER_HEADERS = ["index", "name", "type", "output shape", "parameters", "trainable"]

INTRO = """
Look inside one model, layer by layer. **Filters** are the layer's weights; **activations** show
where each filter fires on an image; a **channel's feature visualization** is a picture optimised
to make that one channel fire, shown next to the dataset images that excite it most; **class
evidence** shows what the model thinks the image is, and where in the image it sees it.
"""


def as_int(value: Any, what: str) -> int:
    """A whole number from a UI or API value; anything else is a clear error, never rounded."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    if not float(value).is_integer():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    return int(value)


def model_rows() -> list[list[Any]]:
    """One row per model, simplest first, with what it is and whether it works offline."""
    return [
        [
            spec.title,
            spec.summary,
            f"{spec.params / 1e6:.1f}M",
            spec.depth,
            f"{spec.input_size}x{spec.input_size}",
            STATUS_WORDS[weights_status(spec)],
        ]
        for spec in MODELS.values()
    ]


def load(model: str) -> tuple[ModelSpec, KerasModel]:
    spec = get_model_spec(model)
    return spec, load_model(spec.key)


def get_layer(spec: ModelSpec, model: KerasModel, name: str) -> KerasLayer:
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(
            f"{spec.title} has no layer named {name!r}; pick one from the layer list"
        ) from None


def channel_count(layer: KerasLayer) -> int:
    """Channels of a layer with HxWxC feature maps; other layers have no channels to show."""
    shape = layer.output.shape
    if len(shape) != 4:
        raise ValueError(
            f"Layer {layer.name!r} outputs shape {tuple(shape[1:])}, not feature maps; "
            "pick a convolutional layer"
        )
    return int(shape[-1])


def check_channel(channel: Any, layer: KerasLayer) -> int:
    n = channel_count(layer)
    channel = as_int(channel, "Channel")
    if not 0 <= channel < n:
        raise ValueError(
            f"Channel {channel} is out of range: layer {layer.name!r} has {n} channels "
            f"(0 to {n - 1})"
        )
    return channel


def layer_dropdown_choices(spec: ModelSpec, model: KerasModel) -> list[tuple[str, str]]:
    """Curated layers with what they see, then every other conv layer in model order."""
    from convenet.explorer import conv_layers

    curated = set(spec.layer_names)
    others = [
        (f"{name} ({type(model.get_layer(name)).__name__})", name)
        for name in conv_layers(model)
        if name not in curated
    ]
    return layer_choices(spec.key) + others


def build_explorer_tab(state: AppState, search_tab: SearchTab, tabs: gr.Tabs, tab: gr.Tab) -> None:
    """Fill the Model Explorer ``tab``; ``tabs`` lets "use in Semantic Search" switch tabs."""
    pg = state.playground

    def chosen_image(
        spec: ModelSpec, dataset: str, index: Any, upload: str | None
    ) -> tuple[np.ndarray, str]:
        """The uploaded image if there is one, else the dataset image; sized for the model."""
        if upload:
            return load_image(Path(upload), spec.input_size), "Your image"
        folder = pg.dataset(dataset)
        i = pg.check_index(
            dataset, as_int(0 if index is None else index, "Image number"), "Image number"
        )
        label = folder.classes[folder.labels[i]]
        return load_image(folder.paths[i], spec.input_size), f"{dataset} image {i} ({label})"

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
        problem = model_problem(spec.key)
        if problem:
            return current, gr.skip(), problem, current, gr.skip()
        value = layer if layer in spec.layer_names else spec.layer_names[0]
        choices = gr.update(choices=layer_choices(spec.key), value=value)
        return spec.key, choices, "", spec.key, token + 1

    @friendly
    def explorer_layers(model: str, layer: str | None) -> Any:
        """Curated layers plus every other conv layer; loading the model surfaces weight errors."""
        spec, keras_model = load(model)
        choices = layer_dropdown_choices(spec, keras_model)
        value = layer if layer in {name for _, name in choices} else spec.layer_names[0]
        return gr.update(choices=choices, value=value)

    @friendly
    def layer_table(model: str, text: str | None) -> list[list[Any]]:
        """Every layer of the model; ``text`` keeps rows whose name or type contains it."""
        from convenet.explorer import layer_table as core_layer_table

        _, keras_model = load(model)
        wanted = (text or "").strip().lower()
        return [
            [
                row["index"],
                row["name"],
                row["type"],
                row["output_shape"],
                row["parameters"],
                "yes" if row["trainable"] else "no",
            ]
            for row in core_layer_table(keras_model)
            if wanted in row["name"].lower() or wanted in row["type"].lower()
        ]

    @friendly
    def pick_layer_row(evt: gr.SelectData) -> str:
        row = getattr(evt, "row_value", None) or []
        if len(row) < 2:
            raise ValueError("Click a row of the layer table to choose its layer")
        return row[1]

    @friendly
    def layer_info(model: str, layer: str, channel: Any) -> tuple[Any, ...]:
        """What the layer is, the channel range for it, and cleared per-channel views."""
        spec, keras_model = load(model)
        chosen = get_layer(spec, keras_model, layer)
        n = channel_count(chosen)
        curated = {item.name: item.description for item in spec.layers}
        where = curated.get(layer, "not a curated layer: top images need one of those")
        text = (
            f"**{layer}** · {type(chosen).__name__} · output "
            f"{'x'.join(str(d) for d in chosen.output.shape[1:])} · {n} channels · {where}"
        )
        try:
            keep = as_int(channel, "Channel")
        except ValueError:
            keep = 0
        number = gr.update(value=keep if 0 <= keep < n else 0, info=f"0 to {n - 1}")
        hint = "Press **Show channel** to see what this channel responds to."
        return text, number, None, hint, [], ""

    @friendly
    def filters(model: str, layer: str) -> tuple[np.ndarray, str]:
        from convenet.explorer import CONV_TYPES, filter_grid, filter_kind

        spec, keras_model = load(model)
        chosen = get_layer(spec, keras_model, layer)
        if not isinstance(chosen, CONV_TYPES):
            raise ValueError(
                f"Layer {layer!r} is a {type(chosen).__name__}, which has no filters to show; "
                "pick a convolution layer (the layer list holds them all)"
            )
        grid, total = filter_grid(keras_model, layer, MAX_FILTERS, bgr_input=spec.key in BGR_MODELS)
        how = filter_kind(chosen)
        return grid, f"{total} filters (showing {min(total, MAX_FILTERS)}), {how}."

    @friendly
    def show_dataset(dataset: str) -> tuple[list[tuple[str, str]], int, None]:
        folder = pg.dataset(dataset)
        items = [
            (str(path), folder.classes[label])
            for path, label in zip(folder.paths, folder.labels, strict=True)
        ]
        return items, 0, None

    @friendly
    def pick_image(evt: gr.SelectData) -> tuple[int, None]:
        return as_int(getattr(evt, "index", None), "Image number"), None

    @friendly
    def activations(
        model: str, layer: str, dataset: str, index: Any, upload: str | None
    ) -> tuple[np.ndarray, np.ndarray, str]:
        from convenet.explorer import activation_grid, mean_activation_overlay

        spec, keras_model = load(model)
        n = channel_count(get_layer(spec, keras_model, layer))
        image, what = chosen_image(spec, dataset, index, upload)
        preprocess = preprocess_for(spec.key)
        grid, order = activation_grid(keras_model, layer, image, preprocess, MAX_MAPS, labels=True)
        overlay = mean_activation_overlay(keras_model, layer, image, preprocess)
        text = (
            f"{what} · **{layer}**: the {len(order)} most active of {n} channels, strongest "
            "first, each scaled on its own (bright = strong; the corner number is the channel). "
            f"Strongest: {', '.join(str(c) for c in order[:8])}. Right: the mean of all "
            "channels over the image, where the layer as a whole responds."
        )
        return grid, overlay, text

    @friendly
    def featurevis(
        model: str, layer: str, channel: Any, steps: Any, progress: gr.Progress = gr.Progress()
    ) -> tuple[np.ndarray, str]:
        spec, keras_model = load(model)
        channel = check_channel(channel, get_layer(spec, keras_model, layer))
        steps = as_int(steps, "Steps")
        if not 1 <= steps <= FEATUREVIS_MAX_STEPS:
            raise ValueError(f"Steps must be between 1 and {FEATUREVIS_MAX_STEPS}, got {steps}")
        shipped = precomputed_featurevis_path(spec.key, layer, channel)
        about = f"Channel {channel} of {layer}: a picture optimised to make this channel fire"
        if steps == FEATUREVIS_STEPS and shipped.is_file():
            return load_image(shipped), f"{about} (precomputed)."
        from convenet.featurevis import visualize_channel_cached

        start = time.monotonic()
        image = visualize_channel_cached(
            spec.key,
            keras_model,
            layer,
            channel,
            preprocess_for(spec.key),
            size=FEATUREVIS_SIZE,
            steps=steps,
            progress=lambda done: progress(done, desc="Optimising the picture"),
        )
        return image, f"{about} ({steps} steps, {time.monotonic() - start:.0f} s)."

    @friendly
    def channel_top_images(
        dataset: str, model: str, layer: str, channel: Any, progress: gr.Progress = gr.Progress()
    ) -> tuple[list[tuple[str, str]], str]:
        spec = get_model_spec(model)
        if layer not in spec.layer_names:
            _, keras_model = load(model)
            get_layer(spec, keras_model, layer)  # an unknown layer says so first
            return [], (
                f"The images that excite a channel need a curated layer of {spec.title} (the "
                f"first {len(spec.layers)} in the layer list), whose features are stored for the "
                f"whole dataset; {layer!r} is not one of them."
            )
        from convenet.explorer import top_activating_images

        channel = as_int(channel, "Channel")
        feats = pg.features(
            dataset, spec.key, layer, progress_callback(progress, "Extracting features")
        )
        folder = pg.dataset(dataset)
        best = top_activating_images(feats, channel, TOP_IMAGES)
        items = [
            (str(folder.paths[i]), f"{folder.classes[folder.labels[i]]} · {feats[i, channel]:.2f}")
            for i in best
        ]
        text = (
            f"The {len(items)} {dataset} images with the highest average activation of channel "
            f"{channel} in {layer} (number: that activation)."
        )
        return items, text

    @friendly
    def predictions(
        model: str, dataset: str, index: Any, upload: str | None
    ) -> tuple[dict[str, float], Any]:
        from convenet.explorer import predict_top_k

        spec, keras_model = load(model)
        image, _ = chosen_image(spec, dataset, index, upload)
        top = predict_top_k(keras_model, image, preprocess_for(spec.key), _INDEX_NAMES, TOP_CLASSES)
        names = class_names()
        label: dict[str, float] = {}
        for index_name, probability in top:
            name = names[int(index_name)]
            label[name if name not in label else f"{name} (class {index_name})"] = probability
        choices = [(f"{names[int(i)]} ({p:.0%})", int(i)) for i, p in top]
        return label, gr.update(choices=choices, value=choices[0][1])

    @friendly
    def gradcam_view(
        model: str, dataset: str, index: Any, upload: str | None, class_index: Any
    ) -> tuple[np.ndarray, str]:
        from convenet.explorer import conv_layers, gradcam

        spec, keras_model = load(model)
        image, what = chosen_image(spec, dataset, index, upload)
        wanted = None if class_index in (None, "") else as_int(class_index, "Class")
        last_conv = conv_layers(keras_model)[-1]
        overlay, used = gradcam(
            keras_model, image, preprocess_for(spec.key), wanted, layer_name=last_conv
        )
        text = (
            f"{what}: Grad-CAM for **{class_names()[used]}** at {last_conv} — bright areas are "
            "where the evidence for this class lies."
        )
        return overlay, text

    @friendly
    def use_in_search(model: str, layer: str) -> tuple[str, Any, str, str, gr.Tabs]:
        spec = get_model_spec(model)
        if layer not in spec.layer_names:
            raise ValueError(
                f"Semantic Search uses the curated layers of {spec.title}, whose features are "
                f"stored for every dataset: {', '.join(spec.layer_names)}. {layer!r} is not one "
                "of them; pick one of those first."
            )
        tab = gr.Tabs(selected="search")
        return spec.key, layer_update(spec.key, layer), spec.key, layer, tab

    # -- layout -------------------------------------------------------------------------
    gr.Markdown(INTRO)
    with gr.Accordion("The models, from simplest to most complex", open=True):
        models_table = gr.Dataframe(
            value=model_rows(),
            headers=MODEL_HEADERS,
            interactive=False,
            wrap=True,
            label="Models",
            column_widths=["12%", "48%", "9%", "9%", "9%", "13%"],
        )
    with gr.Row():
        model = gr.Dropdown(
            state.model_choices(), value=DEFAULT_MODEL, label="Model", info="In order of depth"
        )
        layer = gr.Dropdown(
            layer_choices(DEFAULT_MODEL),
            value=MODELS[DEFAULT_MODEL].layer_names[0],
            label="Layer",
            info="Curated layers first, then every other convolution layer",
            allow_custom_value=True,  # any layer picked in the layer table
        )
    model_notice = gr.Markdown(elem_id="explorer-notice")
    layer_md = gr.Markdown()
    with gr.Accordion("More info: every layer of this model", open=False):
        layer_filter = gr.Textbox(
            label="Filter by name or type", placeholder="e.g. conv, dwconv, ReLU"
        )
        layers_table = gr.Dataframe(
            headers=LAYER_HEADERS,
            interactive=False,
            label="Layers (click a row to explore that layer)",
            max_height=400,
        )
        use_button = gr.Button("Use this layer in Semantic Search")
        gr.Markdown("<small>Semantic Search works with the curated layers only.</small>")
    with gr.Row():
        with gr.Column(scale=2):
            gr.Markdown("### Filters")
            filter_image = gr.Image(label="Filters", interactive=False, format="png", height=300)
            filter_md = gr.Markdown()
        with gr.Column(scale=3):
            gr.Markdown("### Image to explore")
            with gr.Row():
                dataset = dataset_dropdown(state, label="Dataset")
                index = gr.Number(value=0, precision=0, minimum=0, label="Image number")
            images = gr.Gallery(
                label="Click an image to explore it",
                columns=10,
                height=220,
                allow_preview=False,
                elem_id="explorer-dataset-gallery",
            )
            upload = image_upload("Or use your own image", height=160)
    gr.Markdown("### Activations")
    with gr.Row():
        maps_image = gr.Image(label="Feature maps", interactive=False, format="png")
        overlay_image = gr.Image(label="Mean activation", interactive=False, format="png")
    maps_md = gr.Markdown()
    gr.Markdown("### One channel: feature visualization and the images that excite it")
    with gr.Row():
        channel = gr.Number(value=0, precision=0, label="Channel", info="0 and up")
        steps = gr.Slider(
            16,
            FEATUREVIS_MAX_STEPS,
            value=FEATUREVIS_STEPS,
            step=16,
            label="Optimisation steps",
            info=f"More is sharper and slower; the shipped pictures use {FEATUREVIS_STEPS}",
        )
        channel_button = gr.Button("Show channel", variant="primary")
    with gr.Row():
        with gr.Column(scale=1):
            vis_image = gr.Image(
                label="Feature visualization", interactive=False, format="png", height=260
            )
            vis_md = gr.Markdown()
        with gr.Column(scale=2):
            top_gallery = gr.Gallery(
                label=f"{TOP_IMAGES} dataset images that excite it most",
                columns=5,
                height=260,
                allow_preview=False,
            )
            top_md = gr.Markdown()
    gr.Markdown("### Class evidence")
    with gr.Row():
        with gr.Column():
            top_classes = gr.Label(num_top_classes=TOP_CLASSES, label="Top-5 ImageNet classes")
            class_choice = gr.Dropdown(
                [], label="Explain class", allow_custom_value=True, info="One of the top 5"
            )
        with gr.Column():
            cam_image = gr.Image(label="Grad-CAM", interactive=False, format="png")
            cam_md = gr.Markdown()

    # -- events -------------------------------------------------------------------------
    opened = gr.State(False)
    model_token = gr.State(0)  # bumped when the model is chosen
    model_ready = gr.State(0)  # bumped once it loaded (weights available)
    layer_token = gr.State(0)
    image_token = gr.State(0)
    image_inputs = [dataset, index, upload]
    private: dict[str, Any] = {"api_visibility": "private"}
    # The views that run Keras share two workers, so a crowd in the Explorer cannot take the CPU
    # from searches (which have workers of their own: the "search" group).
    keras_view: dict[str, Any] = {"concurrency_id": "explorer", "concurrency_limit": 2}

    def bump(token: gr.State, event: Any) -> None:
        event.success(lambda n: n + 1, token, token, **private)

    tab.select(explorer_models, None, models_table, api_name="explorer_models")
    tab.select(lambda: True, None, opened, **private)
    bump(model_token, opened.change(show_dataset, dataset, [images, index, upload], **private))
    current_model = gr.State(DEFAULT_MODEL)
    model.input(
        curated_layers,
        [model, layer, current_model, model_token],
        [model, layer, model_notice, current_model, model_token],
        api_name="curated_layers",
    )
    loaded = model_token.change(
        explorer_layers, [model, layer], layer, api_name="explorer_layers", **keras_view
    )
    bump(model_ready, loaded)
    bump(layer_token, loaded)
    bump(layer_token, layer.input(lambda: None, None, None, **private))
    bump(layer_token, layers_table.select(pick_layer_row, None, layer, api_name="pick_layer_row"))
    bump(
        image_token,
        dataset.input(
            show_dataset, dataset, [images, index, upload], api_name="explorer_dataset_images"
        ),
    )
    bump(image_token, images.select(pick_image, None, [index, upload], api_name="pick_image"))
    for event in (index.submit, upload.upload, upload.clear):
        bump(image_token, event(lambda: None, None, None, **private))

    gr.on(
        [model_ready.change, layer_filter.input],
        layer_table,
        [model, layer_filter],
        layers_table,
        api_name="layer_table",
    )
    gr.on(
        [layer_token.change],
        layer_info,
        [model, layer, channel],
        [layer_md, channel, vis_image, vis_md, top_gallery, top_md],
        api_name="layer_info",
    )
    gr.on(
        [layer_token.change],
        filters,
        [model, layer],
        [filter_image, filter_md],
        api_name="filters",
        **keras_view,
    )
    gr.on(
        [layer_token.change, image_token.change],
        activations,
        [model, layer, *image_inputs],
        [maps_image, overlay_image, maps_md],
        api_name="activations",
        **keras_view,
    )
    cam_inputs = [model, *image_inputs, class_choice]
    gr.on(
        [model_ready.change, image_token.change],
        predictions,
        [model, *image_inputs],
        [top_classes, class_choice],
        api_name="predictions",
        **keras_view,
    ).success(gradcam_view, cam_inputs, [cam_image, cam_md], **private, **keras_view)
    class_choice.input(
        gradcam_view, cam_inputs, [cam_image, cam_md], api_name="gradcam", **keras_view
    )
    channel_triggers = [channel_button.click, channel.submit]
    gr.on(
        channel_triggers,
        channel_top_images,
        [dataset, model, layer, channel],
        [top_gallery, top_md],
        api_name="channel_top_images",
        **keras_view,
    )
    gr.on(
        channel_triggers,
        featurevis,
        [model, layer, channel, steps],
        [vis_image, vis_md],
        api_name="featurevis",
        concurrency_id="featurevis",
        concurrency_limit=1,
    )
    search_tab.search_after(  # the search tab shows results for the chosen layer at once
        use_button.click(
            use_in_search,
            [model, layer],
            [
                *[search_tab.model, search_tab.layer],
                *[search_tab.current_model, search_tab.current_layer, tabs],
            ],
            api_name="use_layer_in_search",
        )
    )
