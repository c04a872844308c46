"""The edge: every value a client sends is checked here once, before any handler or component.

Gradio checks that a file reference was uploaded only when it carries its ``meta`` field, and
components then open whatever path they are given. ``GuardedBlocks`` checks every input of every
event, called by name or by function index: files must be this app's uploads and decode within
the memory budget; whole numbers are whole; text is short. A refusal is one
plain sentence, the same for a missing, a protected and a forbidden file, so nothing about the
server's disk can be learnt from it.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import math
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr

from convenet.data.catalog import current_owner
from convenet.errors import ImageLoadError
from convenet.playground import Playground
from convenet.settings import SETTINGS
from ui.gradio_compat.events import Call, Event, HookedBlocks, api_input_type, holds_state
from ui.gradio_compat.files import upload_folder
from ui.server import MISTAKES, client_address, current_visitor

log = logging.getLogger("convenet")

NOT_AVAILABLE = "That file is not available to this app; please upload the image again."
FILE_COMPONENTS = (gr.Image, gr.File)
MAX_PATH_CHARS = 1024
MAX_FILES = SETTINGS.own_max_images  # files in one multi-file upload


class Refused(gr.Error):
    """A client's input that the edge turned away; the message is safe to show.

    A refusal is logged as one warning line (``MISTAKES``): the client's mistake, not a fault.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, print_exception=False)
        MISTAKES.note(f"Refused: {message}")


@functools.cache  # asked on every event: read each handler's annotations once
def _wants_click(fn: Any) -> bool:
    """Whether a handler takes a SelectData (Gradio builds it from the click's event data)."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an unresolvable annotation: Gradio reads them the same way
        return False
    return any(isinstance(t, type) and issubclass(t, gr.SelectData) for t in hints.values())


def short(value: str, limit: int = 60) -> str:
    """A user-chosen name as it may be echoed back: bounded in length."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def input_kind(block: Any) -> str:
    """What a component accepts from a client: a file, a whole number, a number, or anything.

    A multi-file box ("files") takes archives and images that the handler opens itself, one
    by one within its limits (``convenet.data.own_images``); the edge checks that each is an upload.
    """
    if isinstance(block, gr.File) and block.file_count != "single":
        return "files"
    if isinstance(block, FILE_COMPONENTS):
        return "file"
    if isinstance(block, gr.Number):
        return "integer" if block.precision == 0 else "number"
    if isinstance(block, gr.Dataset):  # the examples table sends the clicked row's index
        return "integer"
    if isinstance(block, gr.Slider):
        return "number"
    return api_input_type(block) or "any"


def _is_file_ref(value: Any) -> bool:
    return isinstance(value, dict) and ("path" in value or "url" in value)


def _walk(value: Any) -> Iterable[Any]:
    """Every value inside ``value``; file references are yielded whole, not entered."""
    yield value
    if _is_file_ref(value):
        return
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item)


class Edge:
    """The checks; a client's file reference may only point into Gradio's upload folder
    (the examples are copied there at start)."""

    @staticmethod
    def upload_folder() -> Path:
        # Read at each call: Gradio reads GRADIO_TEMP_DIR at call time too.
        return upload_folder().resolve()

    def files(self, refs: Any) -> None:
        """A list of uploads (any kind: the handler checks what is inside), or a refusal."""
        refs = [refs] if _is_file_ref(refs) else refs
        if not isinstance(refs, list) or not 0 < len(refs) <= MAX_FILES:
            raise Refused(f"Send between 1 and {MAX_FILES} uploaded files.")
        for ref in refs:
            self.uploaded(ref)

    def uploaded(self, ref: Any) -> Path:
        """The path of a file this app received as an upload, or a refusal."""
        if not _is_file_ref(ref):
            raise Refused("Send an image as an uploaded file (gradio_client.handle_file).")
        path, url = ref.get("path"), ref.get("url")
        if isinstance(url, str) and url.strip().lower().startswith("data:"):
            raise Refused("Images inlined as data: URLs are not accepted; upload the file.")
        if not isinstance(path, str) or not path or len(path) > MAX_PATH_CHARS or "\0" in path:
            raise Refused(NOT_AVAILABLE)
        if "://" in path or path.startswith(("data:", "//")):
            raise Refused("This app does not fetch images from URLs; upload the file instead.")
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.upload_folder()):
            raise Refused(NOT_AVAILABLE)
        if not resolved.is_file():
            raise Refused(NOT_AVAILABLE)
        return resolved

    def file(self, ref: Any) -> None:
        """An uploaded (or the app's own) image that decodes within budget, or a refusal."""
        resolved = self.uploaded(ref)
        name = ref.get("orig_name") if isinstance(ref.get("orig_name"), str) else resolved.name
        try:
            Playground.check_upload(resolved, short(Path(name).name or "the image"))
        except ImageLoadError as exc:
            raise Refused(str(exc)) from None

    def value(self, kind: str, label: str, raw: Any) -> Any:
        """``raw`` checked for a component of ``kind``; whole floats become ints."""
        for item in _walk(raw):
            if isinstance(item, str) and len(item) > SETTINGS.max_text_chars:
                raise Refused(f"{label}: text is limited to {SETTINGS.max_text_chars} characters.")
            if _is_file_ref(item) and kind not in ("file", "files"):
                raise Refused(f"{label} does not take a file.")
            if isinstance(item, float) and not math.isfinite(item):
                raise Refused(f"{label} must be a finite number.")
        if raw is None:
            return raw
        if kind == "file":
            self.file(raw)
        elif kind == "files":
            self.files(raw)
        elif kind == "integer":
            whole = isinstance(raw, int) or (isinstance(raw, float) and raw.is_integer())
            if isinstance(raw, bool) or not whole:
                raise Refused(f"{label} must be a whole number, got {short(repr(raw), 30)}.")
            return int(raw)
        elif kind == "number" and (isinstance(raw, bool) or not isinstance(raw, int | float)):
            raise Refused(f"{label} must be a number, got {short(repr(raw), 30)}.")
        return raw


def _labels(event: Event) -> list[str]:
    """A name a person recognises for each input: the parameter name or the component label."""
    try:
        params = list(inspect.signature(event.fn).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        params = []
    labels = []
    for i, block in enumerate(event.inputs):
        label = getattr(block, "label", None)
        if api_input_type(block) is not None and i < len(params):
            label = params[i]
        labels.append(str(label or f"Input {i + 1}"))
    return labels


UNPARSED = "One of the inputs is not in the form this call takes; see the API page."


def _unparsed(event: Event, inputs: list[Any]) -> str:
    """The plain sentence for inputs a component would not take: which choice box was sent
    a value it does not offer, if that is what happened."""
    for block, label, value in zip(event.inputs, _labels(event), inputs, strict=False):
        choices = getattr(block, "choices", None)
        if not choices or getattr(block, "allow_custom_value", False):
            continue
        offered = [choice[1] if isinstance(choice, tuple | list) else choice for choice in choices]
        sent = value if isinstance(value, list) else [value]
        if any(item not in offered for item in sent if item is not None):
            return f"{label}: choose one of the options this box offers."
    return UNPARSED


def _address(request: Any) -> str:
    return client_address(request, SETTINGS.trust_proxy) if request is not None else ""


class GuardedBlocks(HookedBlocks):
    """gr.Blocks whose every event checks its inputs at the edge before anything runs."""

    edge: Edge | None = None

    def client_inputs(self, event: Event, inputs: list[Any]) -> list[Any]:
        if self.edge is None:
            return inputs
        if len(inputs) > len(event.inputs):
            raise Refused(
                f"This call takes {len(event.inputs)} inputs, but {len(inputs)} were sent."
            )
        # Inputs left off the end take the defaults the page starts with, so a script
        # written before an input was added keeps working.
        inputs += [getattr(b, "value", None) for b in event.inputs[len(inputs) :]]
        labels = _labels(event)
        for i, block in enumerate(event.inputs):
            if not holds_state(block):
                inputs[i] = self.edge.value(input_kind(block), labels[i], inputs[i])
        return inputs

    def unparsed(self, event: Event, inputs: list[Any], error: Exception) -> Exception:
        # A component's own check or parser: its message may show type reprs, server
        # internals or the client's own text (as HTML).
        return error if isinstance(error, Refused) else Refused(_unparsed(event, inputs))

    @contextmanager
    def calling(self, call: Call) -> Iterator[None]:
        if self.edge is not None and not call.clicked and _wants_click(call.event.fn):
            raise Refused("This call answers a click on the page; it cannot be made alone.")
        # The session this call is for: a session's own datasets exist for its calls only.
        owner = current_owner.set(call.session_hash)
        visitor = current_visitor.set(_address(call.request))
        try:
            yield
        except gr.Error as exc:
            # Shown as HTML in the page: a client's text inside a message stays text.
            exc.message = html.escape(str(exc.message), quote=False)
            exc.print_exception = False
            raise
        except Exception:  # outside our handlers (which say their own sentence): a fault
            log.exception("Unexpected error in %s", call.event.name)
            raise gr.Error(
                "Something went wrong on our side; please try again.", print_exception=False
            ) from None
        finally:
            current_owner.reset(owner)
            current_visitor.reset(visitor)
