"""Start the real app (``python app.py``) on 127.0.0.1 for integration, browser and load tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class AppProcess:
    """A started app: its base URL and its process (benchmarks read the pid's memory)."""

    url: str
    process: subprocess.Popen


@contextmanager
def running_app(
    cache: Path, timeout: float = 240.0, extra_env: dict | None = None
) -> Iterator[str]:
    """Yield the base URL of a freshly started app; stop it afterwards, whatever happened."""
    with app_process(cache, timeout, extra_env) as app:
        yield app.url


@contextmanager
def app_process(
    cache: Path,
    timeout: float = 240.0,
    extra_env: dict | None = None,
    wrapper: Sequence[str] = (),
    poll_s: float = 0.5,
) -> Iterator[AppProcess]:
    """Like running_app, but yield the process too, once the app answers HTTP.

    ``wrapper`` prefixes the command (fault tests run the app with fewer privileges);
    ``poll_s`` is how often to ask (benchmarks timing the start ask more often).
    """
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "CONVENET_HUB_OFFLINE": "1",
        "CONVENET_CACHE": str(cache),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "GRADIO_TEMP_DIR": str(cache / "gradio-tmp"),  # this app's uploads, apart from others'
        **(extra_env or {}),
    }
    log = open(cache / "app.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [*wrapper, sys.executable, "app.py"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app exited early:\n{(cache / 'app.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("app did not start in time")
            time.sleep(poll_s)
        yield AppProcess(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def tensorflow_loaded(pid: int) -> bool:
    """Whether a process has imported TensorFlow: importing it maps libtensorflow_framework."""
    return "libtensorflow_framework" in Path(f"/proc/{pid}/maps").read_text()


def call_http(url: str, api_name: str, data: list, timeout: float = 60.0) -> str:
    """Call an endpoint over plain HTTP (submit, then read the event stream): no gradio_client,
    so no client-side file handling or overhead gets in the way."""
    request = urllib.request.Request(
        f"{url}gradio_api/call/{api_name}",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(
        f"{url}gradio_api/call/{api_name}/{event_id}", timeout=timeout
    ) as r:
        return r.read().decode()
