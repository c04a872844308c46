"""The app starts and answers dataset-image searches without TensorFlow; an upload loads it.

Whether TensorFlow is in the server process is read from /proc/<pid>/maps: importing it maps
its shared library (libtensorflow_framework), so no debug hook in the app is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from tests.app_server import app_process

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/maps"),
]


def tensorflow_loaded(pid: int) -> bool:
    return "libtensorflow_framework" in Path(f"/proc/{pid}/maps").read_text()


def test_dataset_search_leaves_tensorflow_out_until_an_upload(tmp_path: Path, photo_file) -> None:
    with app_process(tmp_path) as app:
        client = Client(app.url, verbose=False)
        out = client.predict(query_index=3, api_name="/search")
        assert len(out["results"]) == 50
        assert not tensorflow_loaded(app.process.pid)
        out = client.predict(query=handle_file(str(photo_file)), k=5, api_name="/search")
        assert len(out["results"]) == 5
        assert tensorflow_loaded(app.process.pid)  # the check above can see TensorFlow
