"""Raw HTTP calls to a running app, as an attacker makes them: no gradio_client in the way.

Every call can leave from a chosen loopback address (127.0.0.2, ...), so a test can play two
clients at two addresses on one machine.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | Iterable[bytes] | None = None,
    headers: dict[str, str] | None = None,
    source: str | None = None,
    timeout: float = 60.0,
) -> Reply:
    """One HTTP request to the app at ``url``, optionally from loopback address ``source``."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname,
        parts.port,
        timeout=timeout,
        source_address=(source, 0) if source else None,
    )
    try:
        streamed = body is not None and not isinstance(body, bytes)
        connection.request(method, path, body=body, headers=headers or {}, encode_chunked=streamed)
        response = connection.getresponse()
        return Reply(response.status, response.read().decode("utf-8", "replace"))
    finally:
        connection.close()


def submit(url: str, api_name: str, data: list, source: str | None = None) -> Reply:
    """POST /gradio_api/call/<api_name>: the reply holds the event id (or a refusal)."""
    body = json.dumps({"data": data}).encode()
    return request(
        url,
        "POST",
        f"/gradio_api/call/{api_name}",
        body,
        {"Content-Type": "application/json"},
        source,
    )


def upload(url: str, path: Path) -> str:
    """Upload ``path`` as a browser does; return the server-side path Gradio answers with."""
    boundary = "convenetboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    reply = request(
        url,
        "POST",
        "/gradio_api/upload",
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    if reply.status != 200:
        raise RuntimeError(f"upload refused ({reply.status}): {reply.body[:200]}")
    return reply.json()[0]


def outcome(stream: str) -> tuple[str, Any]:
    """('complete', data) or ('error', message) from an event stream's last event."""
    event, data = "", None
    for line in stream.splitlines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ").strip()
        elif line.startswith("data: "):
            data = json.loads(line.removeprefix("data: "))
    if event == "error":
        return "error", (data or {}).get("error") if isinstance(data, dict) else data
    return event, data


def call(url: str, api_name: str, data: list, source: str | None = None) -> tuple[str, Any]:
    """Submit, then read the result: ('complete', outputs), ('error', message) or (HTTP code)."""
    reply = submit(url, api_name, data, source)
    if reply.status != 200:
        return str(reply.status), reply.body
    event_id = reply.json()["event_id"]
    stream = request(url, "GET", f"/gradio_api/call/{api_name}/{event_id}", source=source)
    return outcome(stream.body)


def call_by_index(url: str, fn_index: int, data: list) -> tuple[str, Any]:
    """Call a function by its index through the browser's queue route (no api_name needed)."""
    session = uuid.uuid4().hex
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None}
    reply = request(
        url,
        "POST",
        "/gradio_api/queue/join",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
    )
    if reply.status != 200:
        return str(reply.status), reply.body
    stream = request(url, "GET", f"/gradio_api/queue/data?session_hash={session}")
    for line in stream.body.splitlines():
        if not line.startswith("data: "):
            continue
        message = json.loads(line.removeprefix("data: "))
        if message.get("msg") == "process_completed":
            output = message.get("output") or {}
            if message.get("success"):
                return "complete", output.get("data")
            return "error", output.get("error")
    return "no-answer", stream.body[-300:]


def config(url: str) -> dict:
    return request(url, "GET", "/config").json()
