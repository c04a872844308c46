"""One size cap over the cache's rebuildable files (convenet.disk_cap): the least recently used
go first, what was just written or read stays, manifests and half-written files are never
touched, and the feature store applies it when it writes."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import pytest

from convenet import disk_cap
from convenet.data.store import feature_path
from convenet.playground import Playground
from convenet.settings import SETTINGS
from tests.test_playground import _small_root, tiny

pytestmark = pytest.mark.quick

MB = 1 << 20


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONVENET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def cached(cache: Path, name: str, size: int, age_s: float) -> Path:
    path = cache / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    used = time.time() - age_s
    os.utime(path, (used, used))
    return path


def test_the_least_recently_used_go_until_the_rest_fits(cache: Path) -> None:
    oldest = cached(cache, "onnx/a-avg-1.onnx", MB, age_s=300)
    old = cached(cache, "features/e/m.safetensors", MB, age_s=200)
    recent = cached(cache, "features/d/m.safetensors", MB, age_s=100)
    kept = [
        cached(cache, "features/manifest.json", MB, age_s=900),
        cached(cache, "onnx/partial-99-c-avg-2.onnx", MB, age_s=900),  # still being written
        # converted weights: every graph's name is their digest, and there are three
        cached(cache, "weights/b.weights.h5", MB, age_s=900),
    ]
    new = cached(cache, "onnx/c-avg-2.onnx", MB, age_s=0)
    assert disk_cap.make_room(new, cap_mb=2) == [oldest, old]
    assert all(p.exists() for p in (recent, new, *kept))
    assert disk_cap.make_room(new, cap_mb=2) == []  # within the cap: nothing more goes


def test_a_file_read_lately_outlives_one_written_lately(cache: Path) -> None:
    read = cached(cache, "onnx/a-avg-1.onnx", MB, age_s=300)
    written = cached(cache, "features/d/m.safetensors", MB, age_s=100)
    disk_cap.mark_used(read)
    new = cached(cache, "onnx/b-map-2.onnx", MB, age_s=0)
    assert disk_cap.make_room(new, cap_mb=2) == [written]
    assert read.exists()


def test_what_was_just_written_stays_even_alone_over_the_cap(
    cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = cached(cache, "onnx/a-avg-1.onnx", MB, age_s=10)
    big = cached(cache, "onnx/b-avg-1.onnx", 3 * MB, age_s=0)
    assert disk_cap.make_room(big, cap_mb=2) == [other]
    assert big.exists() and "raise CONVENET_CACHE_MB" in caplog.text


def test_a_file_it_may_not_remove_is_left_and_the_rest_still_fits(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared cache: a file of another owner cannot be removed (the system refuses, as it
    does to anyone but root); the next one goes instead, and nothing reaches the caller."""
    locked = cached(cache, "onnx/a-avg-1.onnx", MB, age_s=300)
    old = cached(cache, "onnx/b-avg-1.onnx", MB, age_s=200)
    new = cached(cache, "onnx/c-avg-1.onnx", MB, age_s=0)
    unlink = Path.unlink

    def refused(path: Path, missing_ok: bool = False) -> None:
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refused)
    assert disk_cap.make_room(new, cap_mb=2) == [old]
    assert locked.exists()


def test_the_feature_store_makes_room_when_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Features computed for a dataset are written into the cache and the oldest file goes;
    the features read back the same. (The model's own graph stays in the usual cache: only
    the capped cache is this test's folder.)"""
    cache = tmp_path / "cache"
    monkeypatch.setattr(disk_cap, "cache_dir", lambda: cache)
    monkeypatch.setattr(disk_cap, "SETTINGS", dataclasses.replace(SETTINGS, cache_mb=1))
    stale = cached(cache, "onnx/unused-avg-0.onnx", 2 * MB, age_s=3600)
    root, features = _small_root(tmp_path), cache / "features"
    first = Playground(root, features, tiny(root))
    computed = first.features("tiny", "efficientnet_lite0", "top_conv")
    assert feature_path(features, "tiny", "efficientnet_lite0").is_file()
    assert not stale.exists()
    again = Playground(root, features, tiny(root))
    np.testing.assert_array_equal(
        again.features("tiny", "efficientnet_lite0", "top_conv"), computed
    )
