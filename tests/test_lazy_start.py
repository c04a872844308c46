"""The app starts and answers dataset-image searches without TensorFlow; the Explorer loads it.

Whether TensorFlow is in the server process is read from /proc/<pid>/maps: importing it maps
its shared library (libtensorflow_framework), so no debug hook in the app is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from gradio_client import Client

from tests.app_server import app_process, tensorflow_loaded

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/maps"),
]


def test_dataset_search_leaves_tensorflow_out_until_a_model_is_needed(tmp_path: Path) -> None:
    with app_process(tmp_path) as app:
        client = Client(app.url, verbose=False)
        out = client.predict(query_index=3, api_name="/search")
        assert len(out["results"]) == 50
        assert not tensorflow_loaded(app.process.pid)
        client.predict("efficientnet_lite0", "top_conv", api_name="/explorer_layers")
        assert tensorflow_loaded(app.process.pid)  # the check above can see TensorFlow


def test_the_ui_never_imports_keras_or_tensorflow() -> None:
    """The UI reaches models through the core; only the core decides when TensorFlow loads."""
    import ast

    from tests.app_server import REPO

    banned = ("keras", "tensorflow")
    found = []
    for path in sorted((REPO / "ui").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in banned]
    assert found == []


def test_building_the_app_leaves_the_fastapi_app_to_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    """gr.Blocks() and its ``with`` end each build a FastAPI app that launch() replaces (~0.3 s
    of the start apiece); building ours must build none, and still give the queue our limits."""
    from gradio.routes import App

    from ui.app import build_app
    from ui.server import configure_queue

    built = []
    original = App.create_app
    monkeypatch.setattr(
        App, "create_app", staticmethod(lambda *a, **k: built.append(1) or original(*a, **k))
    )
    demo = build_app()
    assert built == []
    assert App.create_app is not original  # the build put back what it found
    configure_queue(demo)
    assert (demo._queue.default_concurrency_limit, demo._queue.max_size) == (2, 256)
