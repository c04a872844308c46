"""On-disk caches stay within their caps and heal: a damaged entry is found when read, removed
and rebuilt once, and the visitor never sees a path."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from convenet.search import onnx_features

MODEL = "efficientnet_lite0"


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CONVENET_CACHE", str(tmp_path))
    onnx_features.SESSIONS.clear()
    yield tmp_path
    onnx_features.SESSIONS.clear()


@pytest.mark.slow
def test_a_truncated_onnx_graph_is_exported_again(
    cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A graph cut short (a full disk, a killed export) is noticed when loaded and exported
    again, rather than leaving the model on the slow Keras path for good."""
    assert onnx_features.onnx_extractor(MODEL, "avg", "imagenet") is not None
    (graph,) = cache.joinpath("onnx").glob(f"{MODEL}-avg-*.onnx")
    whole = graph.stat().st_size
    graph.write_bytes(graph.read_bytes()[: whole // 3])
    onnx_features.SESSIONS.clear()  # as after a restart
    with caplog.at_level(logging.WARNING, "convenet"):
        healed = onnx_features.onnx_extractor(MODEL, "avg", "imagenet")
    assert healed is not None
    assert graph.stat().st_size > whole // 2  # a whole graph again (exports differ a little)
    assert "exporting it again" in caplog.text
    assert str(cache) not in caplog.text
