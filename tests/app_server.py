"""Start the real app (``python app.py``) on 127.0.0.1 for integration, browser and load tests.

Run as ``python -m tests.app_server`` (with CONVENET_CACHE set) it builds the warm artefacts
that :class:`WarmCache` links into every app the test suite starts.
"""

from __future__ import annotations

import hashlib
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


class WarmCache:
    """What first use builds for the offline models (their converted weights and their ONNX
    graphs for every pooling), built once per test session and hard-linked into each app's cache.

    Without it every app the suite starts re-pays the Keras conversion and the ONNX export on its
    first upload or model switch. Links are safe because the app replaces a cache file (write
    beside, then rename) and never writes into one; ``changed`` checks that at the session's end.
    Until ``root`` is set (the suite's conftest does) apps start with the cache they are given.
    """

    def __init__(self) -> None:
        self.root: Path | None = None
        self._digests: dict[Path, str] | None = None

    def _build(self, root: Path) -> None:
        """In a process of its own, so TensorFlow and the export's memory stay out of pytest."""
        done = subprocess.run(
            [sys.executable, "-m", "tests.app_server"],
            cwd=REPO,
            env={**os.environ, "CONVENET_CACHE": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"building the warm cache failed:\n{done.stderr[-3000:]}")
        self._digests = {path: _sha256(path) for path in sorted(root.rglob("*")) if path.is_file()}

    def seed(self, cache: Path) -> None:
        """Link the warm files into ``cache`` (building them on the session's first call)."""
        if self.root is None:
            return
        if self._digests is None:
            self._build(self.root)
        for source in self._digests:
            target = cache / source.relative_to(self.root)
            if not target.exists():  # an app restarted on its cache keeps what it has
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(source, target)

    def changed(self) -> list[str]:
        """Warm files whose bytes differ from what was built: an app that wrote into a link."""
        return [
            str(path.relative_to(self.root))
            for path, digest in (self._digests or {}).items()
            if _sha256(path) != digest
        ]


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


WARM = WarmCache()


def build_warm_artefacts() -> None:
    """Convert the offline models' weights and export their graphs into CONVENET_CACHE."""
    from convenet.models.registry import MODELS
    from convenet.search.onnx_export import export_graph
    from convenet.search.onnx_features import POOLINGS

    for spec in MODELS.values():
        if spec.offline:
            for pooling in POOLINGS:
                export_graph(spec, pooling)


@dataclass(frozen=True)
class AppProcess:
    """A started app: its base URL and its process (benchmarks read the pid's memory)."""

    url: str
    process: subprocess.Popen


@contextmanager
def running_app(
    cache: Path, timeout: float = 240.0, extra_env: dict | None = None, cold: bool = False
) -> Iterator[str]:
    """Yield the base URL of a freshly started app; stop it afterwards, whatever happened."""
    with app_process(cache, timeout, extra_env, cold=cold) as app:
        yield app.url


@contextmanager
def app_process(
    cache: Path,
    timeout: float = 240.0,
    extra_env: dict | None = None,
    wrapper: Sequence[str] = (),
    poll_s: float = 0.5,
    cold: bool = False,
) -> Iterator[AppProcess]:
    """Like running_app, but yield the process too, once the app answers HTTP.

    ``wrapper`` prefixes the command (fault tests run the app with fewer privileges);
    ``poll_s`` is how often to ask (benchmarks timing the start ask more often); ``cold``
    leaves ``cache`` as it is, where otherwise the session's warm files are linked into it.
    The start-up warm-up is off (CONVENET_WARMUP=0) unless ``extra_env`` turns it on.
    """
    if not cold:
        WARM.seed(cache)
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "CONVENET_HUB_OFFLINE": "1",
        "CONVENET_CACHE": str(cache),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CONVENET_WARMUP": "0",
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


if __name__ == "__main__":
    from convenet.settings import quiet_tensorflow

    quiet_tensorflow()
    build_warm_artefacts()
