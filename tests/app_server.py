"""Start the real app (``python app.py``) on 127.0.0.1 for integration, browser and load tests."""

from __future__ import annotations

import hashlib
import json
import os
import re
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


SERVING = re.compile(r"Running on local URL:\s+https?://[^\s/]+:(\d+)")


def serving_url(log: Path) -> str | None:
    """Where the app serves, once its log says so (None before). Gradio takes the next port
    when the asked one is busy at that instant (seen twice in CI, in the Space rehearsal:
    asked 36957, served 36958), and only its log says so; asking the asked port before that
    could reach whatever else holds it."""
    found = SERVING.search(log.read_text(errors="replace")) if log.exists() else None
    return f"http://127.0.0.1:{found.group(1)}/" if found else None


def free_port() -> int:
    (port,) = free_ports(1)
    return port


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: every socket is held until all are chosen (one after another,
    the system may hand the same port out twice, and a server started second then moves to
    the next port, where nobody waits for it)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


WARM_FOLDERS = ("weights", "onnx")  # what first use builds that every other app can use as is


class WarmCache:
    """The converted weights and ONNX graphs apps build on first use, kept for the session and
    hard-linked into each later app's cache, so no app re-pays a Keras conversion or an export.

    The first app that needs one builds it, as a user's first start would, and gives it back when
    it stops (``harvest``): a session builds each file once, and only those its apps use (building
    all nine graphs up front took 8 minutes of a busy machine). Links are safe because the app
    replaces a cache file (write beside, then rename) and never writes into one; ``changed``
    checks that at the session's end. Until ``root`` is set (the suite's conftest does) apps
    start with the cache they are given.
    """

    def __init__(self) -> None:
        self.root: Path | None = None
        self.digests: dict[Path, str] = {}

    def seed(self, cache: Path) -> None:
        """Link the session's warm files into an app's cache before it starts."""
        for source in self.digests:
            target = cache / source.relative_to(self.root)
            if not target.exists():  # an app restarted on its cache keeps what it has
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(source, target)

    def harvest(self, cache: Path) -> None:
        """Keep what a stopped app built (never a ``partial-`` file still being written)."""
        if self.root is None:
            return
        for folder in WARM_FOLDERS:
            for path in sorted((cache / folder).glob("*")):
                target = self.root / folder / path.name
                if path.is_file() and not path.name.startswith("partial-") and not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(path, target)
                    self.digests[target] = _sha256(target)

    def changed(self) -> list[str]:
        """Warm files whose bytes differ from what was kept: an app that wrote into a link."""
        return [
            str(path.relative_to(self.root))
            for path, digest in self.digests.items()
            if _sha256(path) != digest
        ]


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


WARM = WarmCache()


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
    leaves ``cache`` as it is (an empty one stays empty, a first start), where otherwise the
    session's warm files are linked into it and what the app builds is kept for later apps.
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
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app exited early:\n{(cache / 'app.log').read_text()[-3000:]}")
            url = serving_url(cache / "app.log")
            try:
                if url is not None:
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
        stop(process)
        log.close()
        if not cold:
            WARM.harvest(cache)


def stop(process: subprocess.Popen) -> None:
    """End a started server: politely, then for good after 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
