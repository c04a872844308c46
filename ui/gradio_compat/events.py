"""Gradio's private event path: hooks on every event, and edits to the app's event list.

Gradio has no public hook that sees every input of every event, called by name or by function
index, before a component parses it; ``HookedBlocks`` overrides the two ``Blocks`` methods every
call goes through (``preprocess_data``, ``process_api``) and hands the UI plain values
(``Event``, ``Call``). The functions below edit ``Blocks.fns``, Gradio's list of events, which
has no public interface either.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.components.api_component import Api
from gradio.routes import App

Handler = Callable[..., Any]


@dataclass(frozen=True)
class Event:
    """An event listener as the hooks see it."""

    name: str
    fn: Handler | None  # the handler
    inputs: tuple[Any, ...]  # its input components, in order


@dataclass(frozen=True)
class Call:
    """One call of an event."""

    event: Event
    session_hash: str | None
    request: Any  # the client's gr.Request; None for a call made in this process
    clicked: bool  # it carries a click's data (an index and a value), as a page click does


def _event(block_fn: Any) -> Event:
    return Event(str(block_fn.name), block_fn.fn, tuple(block_fn.inputs))


_PROCESS_API = inspect.signature(gr.Blocks.process_api)


class HookedBlocks(gr.Blocks):
    """gr.Blocks whose every event passes three hooks, for a subclass to override:
    ``client_inputs`` (a client's raw inputs, before any component parses them),
    ``unparsed`` (when a component cannot parse them) and ``calling`` (around the whole call)."""

    def client_inputs(self, event: Event, inputs: list[Any]) -> list[Any]:
        """A client's inputs as the components are to parse them (not called for the app's
        own in-process calls)."""
        return inputs

    def unparsed(self, event: Event, inputs: list[Any], error: Exception) -> Exception:
        """What to raise when a component could not parse ``inputs``."""
        return error

    @contextmanager
    def calling(self, call: Call) -> Iterator[None]:
        """Around each call: parsing, the handler and its outputs."""
        yield

    async def preprocess_data(
        self, block_fn: Any, inputs: list[Any], state: Any, explicit_call: bool = False
    ) -> list[Any]:
        event = _event(block_fn)
        if not explicit_call:
            inputs = self.client_inputs(event, list(inputs))
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except Exception as error:
            replacement = self.unparsed(event, inputs, error)
            if replacement is error:
                raise
            raise replacement from None

    async def process_api(self, block_fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        named = _PROCESS_API.bind(self, block_fn, *args, **kwargs).arguments
        fn = self.fns[block_fn] if isinstance(block_fn, int) else block_fn
        data = getattr(named.get("event_data"), "_data", None)
        clicked = isinstance(data, dict) and "index" in data and "value" in data
        call = Call(_event(fn), named.get("session_hash"), named.get("request"), clicked)
        with self.calling(call):
            return await super().process_api(block_fn, *args, **kwargs)


def api_input_type(block: Any) -> str | None:
    """For an input of a ``gr.api`` function, the type its annotation declares to clients:
    "file", "integer" or "any"; None for any other component."""
    if not isinstance(block, Api):
        return None
    info = str(getattr(block, "_api_info", ""))
    if "'path'" in info:
        return "file"
    if "'integer'" in info:
        return "integer"
    return "any"


def holds_state(block: Any) -> bool:
    """Whether the component is a session's state (``gr.State``): never sent by a client."""
    return bool(getattr(block, "stateful", False))


def keep_off_api_page(demo: gr.Blocks, shown: Collection[str]) -> None:
    """Only the events named in ``shown`` appear on the API page and as MCP tools; the others
    stay callable by name (undocumented), as scripts written against them expect."""
    for fn in demo.fns.values():
        if fn.api_visibility == "public" and fn.api_name not in shown:
            fn.api_visibility = "undocumented"


def wrap_handlers(
    demo: gr.Blocks, groups: Collection[str], wrap: Callable[[Handler], Handler]
) -> None:
    """Replace the handler of every event in one of the concurrency ``groups`` by ``wrap(it)``."""
    for block_fn in demo.fns.values():
        if block_fn.concurrency_id in groups and block_fn.fn is not None:
            block_fn.fn = wrap(block_fn.fn)


@contextmanager
def no_app_until_launch() -> Iterator[None]:
    """Build the Blocks inside this: Gradio then skips the FastAPI apps it throws away.

    ``gr.Blocks()`` (through its default ``queue()``) and the end of its ``with`` block each
    build a whole FastAPI app (every route's pydantic models, ~0.3 s apiece here) that
    ``launch()`` replaces with the one it serves, so they only delay the start. In-process
    callers (``process_api``, tests, benchmarks) never use them.
    """
    build = App.create_app
    App.create_app = staticmethod(lambda *args, **kwargs: None)  # type: ignore[method-assign]
    try:
        yield
    finally:
        App.create_app = build  # type: ignore[method-assign]


def files_kept_in_cache(demo: gr.Blocks) -> set[str]:
    """The files (resolved paths) that the app's components keep in Gradio's cache: examples
    and the like, which a sweep of old temporary files must leave."""
    kept: set[str] = set()
    for block in demo.blocks.values():
        kept.update(str(Path(p).resolve()) for p in getattr(block, "keep_in_cache", ()))
    return kept
