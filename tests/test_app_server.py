"""The harness finds a started app where it really serves: Gradio takes the next port when the
one asked for is busy at that instant (CI lost two Space rehearsals to this: asked 36957, the
app served on 36958 while the test waited 300 s on the first)."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from tests.app_server import app_process, serving_url

pytestmark = pytest.mark.quick


def test_the_log_names_the_port_the_app_took(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    assert serving_url(log) is None  # no log yet
    log.write_text("INFO convenet: starting\n")
    assert serving_url(log) is None  # not serving yet: nothing to ask
    log.write_text("INFO convenet: ...\n* Running on local URL:  http://0.0.0.0:36958\n")
    assert serving_url(log) == "http://127.0.0.1:36958/"


@pytest.mark.slow
def test_an_app_whose_port_was_taken_is_still_found(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        env = {"GRADIO_SERVER_PORT": str(taken)}
        with app_process(tmp_path, timeout=120, extra_env=env) as app:
            assert not app.url.endswith(f":{taken}/")
            with urllib.request.urlopen(app.url, timeout=10) as response:
                assert response.status == 200
