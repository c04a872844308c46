"""Model loading: bounded LRU cache, and one clear sentence when weights cannot be had."""

from __future__ import annotations

from pathlib import Path

import pytest

from convenet import models
from convenet.errors import WeightsUnavailableError
from convenet.registry import MODELS


def test_lru_cache_is_bounded_and_builds_once(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []

    def fake_construct(spec, weights):
        built.append(spec.key)
        return object()

    monkeypatch.setattr(models, "_construct", fake_construct)
    cache = models.ModelCache(maxsize=2)
    specs = list(MODELS.values())
    first = cache.get(specs[0], None)
    assert cache.get(specs[0], None) is first
    cache.get(specs[1], None)
    cache.get(specs[0], None)  # refreshes specs[0]; specs[1] is now least recent
    cache.get(specs[2], None)
    assert len(cache) == 2
    cache.get(specs[0], None)
    assert built == [specs[0].key, specs[1].key, specs[2].key]


def test_missing_keras_weights_give_one_sentence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # nothing cached
    spec = MODELS["vgg16"]
    assert models.weights_status(spec) == "download"

    def no_network(weights=None):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(models, "resolve", lambda dotted: no_network)
    with pytest.raises(WeightsUnavailableError) as info:
        models._construct(spec, "imagenet")
    message = str(info.value)
    assert "VGG16 could not be downloaded" in message
    assert "EfficientNet-Lite0" in message and "\n" not in message


def test_cached_keras_weights_are_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = MODELS["mobilenet"]
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / spec.weights_file).write_bytes(b"x")
    assert models.weights_status(spec) == "cached"
