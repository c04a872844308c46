"""MCP tool answers as JSON text: Gradio's MCP server writes a tool's dict or list answer with
``str()``, a Python literal (single quotes, ``None``) that an agent's ``json.loads`` rejects."""

from __future__ import annotations

import json
from typing import Any

from gradio import processing_utils
from gradio.mcp import GradioMCPServer

_ORIGINAL = GradioMCPServer.postprocess_output_data


def postprocess_output_data(self: GradioMCPServer, data: Any, root_url: str) -> list[Any]:
    """Gradio's own, after every dict or list answer is made JSON text (file addresses in it
    made absolute first, as Gradio does for the answers it keeps)."""
    data = processing_utils.add_root_url(data, root_url, None)
    as_json = [json.dumps(item) if isinstance(item, dict | list) else item for item in data]
    return _ORIGINAL(self, as_json, root_url)


def install() -> None:
    """Answer MCP tool calls with JSON text (later calls do nothing)."""
    GradioMCPServer.postprocess_output_data = postprocess_output_data  # type: ignore[method-assign]
