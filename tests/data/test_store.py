"""Feature files and the manifest: round trips, validation, corruption and checksums."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from convenet.data.store import (
    MANIFEST_NAME,
    CorruptFeatureFileError,
    feature_path,
    is_valid,
    load_manifest,
    read_feature_file,
    record_in_manifest,
    sha256_file,
    verify_file,
    verify_root,
    write_feature_file,
)

pytestmark = pytest.mark.quick

META = {
    "dataset": "toy",
    "model": "m1",
    "pooling": "avg",
    "preprocessing": "caffe",
    "input_size": 224,
    "images": ["a/1.jpg", "a/2.jpg", "b/3.jpg"],
    "labels": ["a", "a", "b"],
    "convenet_version": "0.1.0",
}
RELPATH = "toy/features/m1.safetensors"


def _features(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"conv1": rng.normal(size=(3, 8)), "conv5": rng.normal(size=(3, 16))}


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A store with one recorded feature file; returns the store root."""
    path = feature_path(tmp_path, "toy", "m1")
    write_feature_file(path, _features(), META)
    record_in_manifest(tmp_path, path)
    return tmp_path


def _flip_last_byte(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))


def test_round_trip_is_float16_and_keeps_meta(tmp_path: Path):
    path = feature_path(tmp_path, "toy", "m1")
    original = _features()
    write_feature_file(path, original, META)
    loaded = read_feature_file(path)
    assert loaded.meta == META
    assert set(loaded.features) == set(original)
    for layer, values in original.items():
        assert loaded.features[layer].dtype == np.float16
        np.testing.assert_allclose(loaded.features[layer], values, rtol=1e-3, atol=1e-3)


def test_write_leaves_no_temp_file_and_replaces_atomically(tmp_path: Path, monkeypatch):
    path = feature_path(tmp_path, "toy", "m1")
    write_feature_file(path, _features(0), META)
    before = path.read_bytes()
    assert os.listdir(path.parent) == [path.name]

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_feature_file(path, _features(1), META)
    assert os.listdir(path.parent) == [path.name]
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("features", "meta", "message"),
    [
        ({"a": np.zeros((3, 2)), "b": np.zeros((2, 2))}, META, "disagree"),
        ({"a": np.zeros(3)}, META, "expected \\(n_images, dim\\)"),
        ({}, META, "no layers"),
        ({"a": np.zeros((3, 2))}, {**META, "images": ["x"]}, "1 images"),
        ({"a": np.full((3, 2), 1e6)}, META, "not finite in float16"),
    ],
)
def test_write_rejects_bad_input(tmp_path: Path, features, meta, message):
    path = feature_path(tmp_path, "toy", "m1")
    with pytest.raises(ValueError, match=message):
        write_feature_file(path, features, meta)
    assert not path.parent.exists() or os.listdir(path.parent) == []


def _no_meta(path: Path) -> None:
    path.write_bytes(save({"a": np.zeros((1, 2), np.float16)}))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def _pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps({"conv1": np.zeros((3, 8))}))


def _float32(path: Path) -> None:
    tensors = {"a": np.zeros((3, 2), np.float32)}
    path.write_bytes(save(tensors, metadata={"convenet": json.dumps(META)}))


@pytest.mark.parametrize("mapped", [False, True])
@pytest.mark.parametrize("damage", [_truncate, _no_meta, _pickle, _float32])
def test_corrupt_file_raises_naming_it(stored: Path, damage, mapped: bool):
    path = stored / RELPATH
    damage(path)
    with pytest.raises(CorruptFeatureFileError, match=str(path)):
        read_feature_file(path, mapped=mapped)


def test_a_mapped_file_reads_as_the_loaded_one_without_a_copy(stored: Path):
    loaded = read_feature_file(stored / RELPATH)
    mapped = read_feature_file(stored / RELPATH, mapped=True)
    assert mapped.meta == loaded.meta and list(mapped.features) == list(loaded.features)
    for layer, values in loaded.features.items():
        assert isinstance(mapped.features[layer], np.memmap)  # pages read on use, not at load
        assert mapped.features[layer].dtype == np.float16
        np.testing.assert_array_equal(mapped.features[layer], values)
    with pytest.raises(ValueError, match="read-only"):
        mapped.features["conv1"][0, 0] = 1


def test_missing_file_is_not_reported_as_corrupt(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        read_feature_file(feature_path(tmp_path, "toy", "m1"))


def test_manifest_records_checksum_and_shape(stored: Path):
    entry = load_manifest(stored)["files"][RELPATH]
    assert entry["sha256"] == sha256_file(stored / RELPATH)
    assert entry["bytes"] == (stored / RELPATH).stat().st_size
    assert entry["layers"] == {"conv1": 8, "conv5": 16}
    assert (entry["n_images"], entry["pooling"], entry["model"]) == (3, "avg", "m1")
    assert verify_file(stored, RELPATH)
    assert verify_root(stored) == []


def test_manifest_checksum_catches_a_flipped_byte(stored: Path):
    _flip_last_byte(stored / RELPATH)
    assert not verify_file(stored, RELPATH)
    assert verify_root(stored) == [RELPATH]
    assert not is_valid(stored, "toy", "m1", ["conv1"])


def test_verify_root_reports_unlisted_files(stored: Path):
    other = feature_path(stored, "toy", "m2")
    write_feature_file(other, _features(), META)
    assert verify_root(stored) == ["toy/features/m2.safetensors"]


def test_is_valid(stored: Path, tmp_path: Path):
    assert is_valid(stored, "toy", "m1", ["conv1", "conv5"])
    assert not is_valid(stored, "toy", "m1", ["conv1", "conv9"])
    assert not is_valid(stored, "toy", "m2", ["conv1"])
    unlisted = tmp_path / "unlisted"
    write_feature_file(feature_path(unlisted, "toy", "m1"), _features(), META)
    assert not is_valid(unlisted, "toy", "m1", ["conv1"])


def test_record_updates_an_existing_entry(stored: Path):
    path = stored / RELPATH
    write_feature_file(path, {"conv1": np.ones((3, 4))}, META)
    assert not verify_file(stored, RELPATH)
    record_in_manifest(stored, path)
    assert verify_file(stored, RELPATH)
    assert load_manifest(stored)["files"][RELPATH]["layers"] == {"conv1": 4}


def test_manifest_missing_or_broken(tmp_path: Path):
    assert load_manifest(tmp_path) == {"format": 1, "files": {}}
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ValueError, match=MANIFEST_NAME):
        load_manifest(tmp_path)


def test_paths_cannot_leave_the_store(stored: Path):
    with pytest.raises(ValueError, match="dataset"):
        feature_path(stored, "..", "m1")
    manifest = load_manifest(stored)
    manifest["files"]["../../etc/x.safetensors"] = manifest["files"][RELPATH]
    (stored / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="Invalid feature path"):
        verify_root(stored)
    with pytest.raises(ValueError, match="not inside"):
        record_in_manifest(stored / "elsewhere", stored / RELPATH)


def test_variants_live_beside_the_plain_file(stored: Path):
    plain = feature_path(stored, "toy", "m1")
    gem = feature_path(stored, "toy", "m1", "gem-flip")
    assert plain.name == "m1.safetensors" and gem.name == "m1.gem-flip.safetensors"
    write_feature_file(gem, _features(1), {**META, "pooling": "gem", "flip": True})
    record_in_manifest(stored, gem)
    assert verify_root(stored) == []
    assert is_valid(stored, "toy", "m1", ["conv1"], "gem-flip")
    assert not is_valid(stored, "toy", "m1", ["conv1"], "flip")
    assert read_feature_file(plain).meta["pooling"] == "avg"  # the plain file is untouched
    for bad in ("../x", "a.b", ""):
        with pytest.raises(ValueError, match="Invalid variant"):
            feature_path(stored, "toy", "m1", bad)


def test_the_shipped_store_describes_how_its_features_were_made():
    """The manifest and every file's header name the model's preprocessing as the registry
    does today (a dotted path that resolves), and every file passes its checksum."""
    from convenet.models.loading import resolve
    from convenet.models.registry import get_model_spec
    from convenet.paths import PRECOMPUTED_DIR

    entries = load_manifest(PRECOMPUTED_DIR)["files"]
    assert len(entries) >= 18 and verify_root(PRECOMPUTED_DIR) == []
    for relpath, entry in entries.items():
        preprocess = get_model_spec(entry["model"]).preprocess
        header = read_feature_file(PRECOMPUTED_DIR / relpath).meta
        assert entry["preprocessing"] == header["preprocessing"] == preprocess, relpath
        assert callable(resolve(preprocess))
