"""Agents: the app's MCP server, driven by a real MCP client against the running app."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator

import pytest
from gradio_client import Client
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.app_server import REPO, running_app
from ui.tools import TOOLS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_app(tmp_path_factory.mktemp("mcp")) as url:
        yield url


async def _session(url: str, work) -> object:
    async with (
        streamable_http_client(f"{url}gradio_api/mcp/") as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return await work(session)


def mcp(url: str, work) -> object:
    return asyncio.run(_session(url, work))


def answer(result) -> dict | list:
    """A tool's answer: one text item, JSON (``ui.gradio_compat.mcp_results``; Gradio's own
    is a Python repr, which ``json.loads`` rejects)."""
    assert not result.isError, result.content
    return json.loads(result.content[0].text)


def test_tool_list_is_small_and_described(app_url: str) -> None:
    tools = mcp(app_url, lambda s: s.list_tools()).tools
    assert sorted(t.name for t in tools) == sorted(TOOLS)
    for tool in tools:
        assert len(tool.description) > 60, tool.name
        for name, schema in tool.inputSchema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"


def test_search_tool_answers_like_the_api(app_url: str) -> None:
    args = {"dataset": "clipart200", "layer": "block6a_project_conv", "query_index": 7, "k": 10}
    via_mcp = answer(mcp(app_url, lambda s: s.call_tool("search", args)))
    via_api = Client(app_url, verbose=False).predict(**args, api_name="/search")
    assert json.loads(json.dumps(via_mcp)) == via_api
    assert len(via_mcp["results"]) == 10


def test_an_agent_sends_its_own_image_inline(app_url: str) -> None:
    """MCP clients pass images as data: URLs; the app uploads them itself and checks them."""
    data = base64.b64encode((REPO / "examples" / "cat.jpg").read_bytes()).decode()
    args = {"query": f"data:image/jpeg;base64,{data}"}
    out = answer(mcp(app_url, lambda s: s.call_tool("explain_prediction", args)))
    assert len(out["top5"]) == 5 and "cat" in out["top5"][0]["class"].lower()
    assert out["gradcam"]["url"].endswith(".png")
    listed = answer(mcp(app_url, lambda s: s.call_tool("list_models", {})))
    assert "efficientnet_lite0" in [model["key"] for model in listed]


def test_the_api_page_types_every_answer_field_by_field(app_url: str) -> None:
    """Each tool's answer is described by its fields (not "Any"), and no parameter reads
    "None | int | None"."""
    import contextlib
    import io

    client = Client(app_url, verbose=False)
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name, endpoint in endpoints.items():
        (answer,) = endpoint["returns"]
        assert answer["python_type"]["type"].startswith(("dict(", "list[dict(")), name
    assert "similarity: float" in endpoints["/search"]["returns"][0]["python_type"]["type"]
    page = io.StringIO()
    with contextlib.redirect_stdout(page):
        client.view_api()
    assert "None | int | None" not in page.getvalue() and ": Any" not in page.getvalue()


def test_internal_events_are_off_the_api_page_but_still_callable(app_url: str) -> None:
    client = Client(app_url, verbose=False)
    assert sorted(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == (
        sorted(f"/{name}" for name in TOOLS)
    )
    out = client.predict("efficientnet_lite0", "stem_conv", api_name="/filters")
    assert out[0]


def test_an_agent_learns_where_a_channel_fires(app_url: str) -> None:
    """show_channel names the nine images a channel fires on most strongly, with the input
    box each peak sees (from the shipped peaks: no model pass)."""
    args = {"model": "efficientnet_lite0", "layer": "block3b_project_conv", "channel": 4}
    out = answer(mcp(app_url, lambda s: s.call_tool("show_channel", args)))
    spots = out["strongest"]
    assert len(spots) == 9
    assert [s["peak"] for s in spots] == sorted((s["peak"] for s in spots), reverse=True)
    for spot in spots:
        top, left, bottom, right = spot["box"]
        assert 0 <= top <= bottom < 224 and 0 <= left <= right < 224
        assert (REPO / "precomputed" / "stamps200" / "images" / spot["image"]).is_file()
