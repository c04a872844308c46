"""The model registry is plain data that matches the real architectures."""

from __future__ import annotations

import pytest

from convenet.models import get_model_spec, resolve
from convenet.registry import DEFAULT_MODEL, MODELS


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
    with pytest.raises(ValueError, match="Unknown model 'alexnet'; choose one of: .*vgg16"):
        get_model_spec("alexnet")
    with pytest.raises(ValueError, match="Unknown layer 'nope' for model VGG16"):
        get_model_spec("vgg16").layer("nope")


@pytest.mark.slow
@pytest.mark.parametrize("key", list(MODELS))
def test_entries_match_architecture(key: str) -> None:
    """Parameters, depth, input size and curated layers agree with the real model (no weights)."""
    import keras

    spec = MODELS[key]
    model = resolve(spec.constructor)(weights=None)
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
