"""The session's warm cache: what one app built reaches the next app's cache as a link, files
still being written stay out, and a file written into through its link is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app_server import WarmCache

pytestmark = pytest.mark.quick


def built(cache: Path, name: str, data: bytes) -> Path:
    path = cache / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture()
def warm(tmp_path: Path) -> WarmCache:
    cache = WarmCache()
    cache.root = tmp_path / "warm"
    return cache


def test_what_one_app_built_is_linked_into_the_next(warm: WarmCache, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    graph = built(first, "onnx/lite0-avg.onnx", b"graph")
    built(first, "onnx/partial-1234-lite0-gem.onnx", b"half a graph")
    built(first, "features/pets/features.safetensors", b"this app's own dataset")
    warm.harvest(first)
    warm.seed(second)
    linked = second / "onnx" / "lite0-avg.onnx"
    assert linked.read_bytes() == b"graph" and linked.samefile(graph)
    assert sorted(p.name for p in second.rglob("*") if p.is_file()) == ["lite0-avg.onnx"]


def test_an_app_keeps_its_own_file_over_a_warm_one(warm: WarmCache, tmp_path: Path) -> None:
    built(tmp_path / "first", "weights/lite0.weights.h5", b"converted")
    warm.harvest(tmp_path / "first")
    own = built(tmp_path / "restarted", "weights/lite0.weights.h5", b"its own")
    warm.seed(tmp_path / "restarted")
    assert own.read_bytes() == b"its own"


def test_writing_into_a_shared_file_is_reported(warm: WarmCache, tmp_path: Path) -> None:
    built(tmp_path / "first", "weights/lite0.weights.h5", b"converted")
    warm.harvest(tmp_path / "first")
    warm.seed(tmp_path / "second")
    assert warm.changed() == []
    (tmp_path / "second" / "weights" / "lite0.weights.h5").write_bytes(b"damaged")
    assert warm.changed() == ["weights/lite0.weights.h5"]


def test_without_a_root_apps_keep_the_cache_they_are_given(tmp_path: Path) -> None:
    cold = WarmCache()
    built(tmp_path / "first", "onnx/lite0-avg.onnx", b"graph")
    cold.harvest(tmp_path / "first")
    cold.seed(tmp_path / "second")
    assert not (tmp_path / "second").exists()
