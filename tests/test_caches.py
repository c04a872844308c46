"""On-disk caches stay within their caps and heal: a damaged entry is found when read, removed
and rebuilt once, and the visitor never sees a path."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from convenet.explain import featurevis
from convenet.features import onnx_runtime
from convenet.settings import SETTINGS

MODEL = "efficientnet_lite0"


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CONVENET_CACHE", str(tmp_path))
    onnx_runtime.SESSIONS.clear()
    yield tmp_path
    onnx_runtime.SESSIONS.clear()


@pytest.mark.slow
def test_a_truncated_onnx_graph_is_exported_again(
    cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A graph cut short (a full disk, a killed export) is noticed when loaded and exported
    again, rather than leaving the model on the slow Keras path for good."""
    assert onnx_runtime.onnx_extractor(MODEL, "avg", "imagenet") is not None
    (graph,) = cache.joinpath("onnx").glob(f"{MODEL}-avg-*.onnx")
    whole = graph.stat().st_size
    graph.write_bytes(graph.read_bytes()[: whole // 3])
    onnx_runtime.SESSIONS.clear()  # as after a restart
    with caplog.at_level(logging.WARNING, "convenet"):
        healed = onnx_runtime.onnx_extractor(MODEL, "avg", "imagenet")
    assert healed is not None
    assert graph.stat().st_size > whole // 2  # a whole graph again (exports differ a little)
    assert "exporting it again" in caplog.text
    assert str(cache) not in caplog.text


# -- feature-visualization pictures --------------------------------------------------------------


def noise(rng: np.random.Generator) -> np.ndarray:
    """A picture that does not compress, of a random size: 12-50 KB as PNG."""
    side = int(rng.integers(64, 129))
    return rng.integers(0, 256, (side, side, 3), dtype=np.uint8)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_a_randomized_flood_of_pictures_stays_within_the_cap(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """400 requests for random channels and step counts (a quarter of them asked again):
    the pictures and their index on disk never pass the 1 MB cap by more than 512 KB, and the most
    recently used ones are kept."""
    rng = np.random.default_rng(0)
    monkeypatch.setattr(featurevis, "visualize_channel", lambda *a, **k: noise(rng))
    capped = dataclasses.replace(SETTINGS, featurevis_cache_mb=1)
    monkeypatch.setattr(featurevis, "SETTINGS", capped, raising=False)
    asked: list[tuple[int, int]] = []
    peak = 0
    for _ in range(400):
        if asked and rng.random() < 0.25:
            channel, steps = asked[int(rng.integers(len(asked)))]
        else:
            channel, steps = int(rng.integers(0, 1280)), int(rng.choice([16, 96, 384, 512]))
            asked.append((channel, steps))
        featurevis.visualize_channel_cached("m", None, "top", channel, None, 128, steps)
        peak = max(peak, folder_bytes(cache))
    print(f"{len(asked)} pictures asked for; peak {peak} B on disk for a 1 MB cap")
    assert peak <= (1 << 20) + (512 << 10), f"{peak} B on disk"  # and its index, log
    channel, steps = asked[-1]
    last = featurevis.picture_key("m", "top", channel, 128, steps)
    assert last in featurevis.picture_store()


def test_a_damaged_cached_picture_is_made_again_once(
    cache: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(1)
    made: list[np.ndarray] = []

    def visualize(*_args: object, **_kwargs: object) -> np.ndarray:
        made.append(noise(rng))
        return made[-1]

    monkeypatch.setattr(featurevis, "visualize_channel", visualize)
    args = ("m", None, "top", 7, None, 128, 96)
    featurevis.visualize_channel_cached(*args)
    key = featurevis.picture_key("m", "top", 7, 128, 96)
    featurevis.picture_store().set(key, b"\x89PNG\r\n\x1a\n garbage, not a picture")
    with caplog.at_level(logging.WARNING, "convenet"):
        healed = featurevis.visualize_channel_cached(*args)
    np.testing.assert_array_equal(healed, made[-1])
    assert len(made) == 2 and "making it again" in caplog.text
    assert str(cache) not in caplog.text
    np.testing.assert_array_equal(featurevis.visualize_channel_cached(*args), healed)
    assert len(made) == 2  # healed for good: the third call reads the cache
