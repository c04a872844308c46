"""The model registry is plain data that matches the real architectures."""

from __future__ import annotations

import pytest

from convenet.errors import UnknownNameError
from convenet.models.loading import build_model, resolve
from convenet.models.registry import (
    DEFAULT_MODEL,
    MODELS,
    KerasDownload,
    PackageFile,
    get_model_spec,
)

pytestmark = pytest.mark.quick


def test_models_are_ordered_by_complexity() -> None:
    depths = [spec.depth for spec in MODELS.values()]
    assert depths == sorted(depths)
    assert DEFAULT_MODEL in MODELS and MODELS[DEFAULT_MODEL].offline


def test_every_model_has_eight_described_layers() -> None:
    for spec in MODELS.values():
        assert len(spec.layers) == 8, spec.key
        assert len(set(spec.layer_names)) == 8
        assert spec.layers[0].description.startswith("early")
        assert spec.layers[-1].description.startswith("last")


def test_lookup_by_key_title_and_errors() -> None:
    assert get_model_spec("VGG16").key == "vgg16"
    assert get_model_spec(" efficientnet-lite0 ").key == "efficientnet_lite0"
    with pytest.raises(UnknownNameError, match="Unknown model 'alexnet'; choose one of: .*vgg16"):
        get_model_spec("alexnet")
    with pytest.raises(UnknownNameError, match="Unknown layer 'nope' for model VGG16; choose"):
        get_model_spec("vgg16").layer("nope")


def test_specs_name_their_weight_source_and_channel_order() -> None:
    """Every property is a named field: nothing is read from the spelling of a key."""
    for spec in MODELS.values():
        assert isinstance(spec.weights, KerasDownload | PackageFile)
        assert spec.offline == isinstance(spec.weights, PackageFile)
        if isinstance(spec.weights, PackageFile):
            assert len(spec.weights.sha256) == 64 and spec.weights.module.isidentifier()
        assert spec.channel_order in ("RGB", "BGR")
        assert str(spec.year) == spec.summary[:4]
    caffe = {key for key, spec in MODELS.items() if spec.channel_order == "BGR"}
    assert caffe == {"vgg16", "vgg19", "resnet50"}
    coefficients = [
        (spec.builder_args["width"], spec.builder_args["depth"], spec.input_size)
        for spec in MODELS.values()
        if spec.builder == "convenet.models.efficientnet_lite.build"
    ]
    assert coefficients == [(1.0, 1.0, 224), (1.0, 1.1, 240), (1.1, 1.2, 260)]


@pytest.mark.slow
@pytest.mark.parametrize("key", list(MODELS))
def test_entries_match_architecture(key: str) -> None:
    """Parameters, depth, input size and curated layers agree with the real model (no weights)."""
    import keras

    spec = MODELS[key]
    model = build_model(spec, None)
    try:
        assert model.count_params() == spec.params
        assert len(model.layers) == spec.depth
        assert model.input_shape[1] == spec.input_size
        for name in spec.layer_names:
            assert len(model.get_layer(name).output.shape) == 4
        assert callable(resolve(spec.preprocess))
    finally:
        del model
        keras.backend.clear_session()


def test_each_model_says_in_one_line_what_sets_it_apart() -> None:
    """The three Lite siblings differ only in width, depth and input size, and say so; every
    other model names its idea; all short enough for the line under a phone's model box."""
    lines = {key: spec.in_one_line for key, spec in MODELS.items()}
    assert lines["efficientnet_lite0"] == "1.0x width, 1.0x depth, 224 px input"
    assert lines["efficientnet_lite2"] == "1.1x width, 1.2x depth, 260 px input"
    assert lines["resnet50"] == "residual connections make very deep nets trainable"
    assert len(set(lines.values())) == len(lines)
    assert all(0 < len(line) <= 60 for line in lines.values())
