"""A weights mirror for tests: a folder served over HTTP on 127.0.0.1, as a real mirror is."""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from convenet.models.mirror import CHECKSUMS


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        """Keep the test output to the tests' own."""


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """Yield the base URL of an HTTP server that serves ``folder``; stop it afterwards."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(folder: Path) -> dict[str, str]:
    """List every file of ``folder`` in its SHA256SUMS, as ``sha256sum * > SHA256SUMS`` does."""
    sums = {p.name: sha256_of(p) for p in sorted(folder.iterdir()) if p.name != CHECKSUMS}
    text = "".join(f"{digest}  {name}\n" for name, digest in sums.items())
    (folder / CHECKSUMS).write_text(text)
    return sums
