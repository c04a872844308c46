"""MCP tool results as JSON text.

Gradio's MCP server sends each output of a tool as one text item made with ``str(output)``: a
dict or list becomes a Python repr (single quotes, ``None``, ``True``) that an agent's
``json.loads`` rejects. Here such an output is ``json.dumps``-ed first (its files' URLs made
absolute, as Gradio does); pictures and plain strings go through Gradio's own handling.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from gradio import processing_utils
from gradio.mcp import GradioMCPServer
from gradio_client import utils as client_utils

Postprocess = Callable[[Any, Any, str], list[Any]]


def is_structured(output: Any) -> bool:
    """A dict or list that Gradio would send as its repr (not a picture or a file)."""
    return (
        isinstance(output, dict | list)
        and GradioMCPServer.get_svg(output) is None
        and not client_utils.is_file_obj_with_meta(output)
    )


def _as_json(postprocess: Postprocess) -> Postprocess:
    @functools.wraps(postprocess)
    def postprocess_output_data(self: Any, data: Any, root_url: str) -> list[Any]:
        data = [
            json.dumps(processing_utils.add_root_url(output, root_url, None), default=str)
            if is_structured(output)
            else output
            for output in data
        ]
        return postprocess(self, data, root_url)

    postprocess_output_data.sends_json = True  # type: ignore[attr-defined]
    return postprocess_output_data


def send_json_results() -> None:
    """Every MCP server made from now on sends dict and list results as JSON (once)."""
    current = GradioMCPServer.postprocess_output_data
    if not getattr(current, "sends_json", False):
        GradioMCPServer.postprocess_output_data = _as_json(current)  # type: ignore[method-assign]
