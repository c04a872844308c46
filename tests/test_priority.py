"""Slow work runs in threads at a raised nice value, and the threads it starts inherit it."""

from __future__ import annotations

import contextvars
import inspect
import os
import sys
import threading
from pathlib import Path

import pytest

from convenet.priority import INCREMENT, backgrounded, in_background, in_background_thread
from convenet.settings import MAX_NICE, background_nice

pytestmark = [
    pytest.mark.quick,
    pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's"),
]

WHO = contextvars.ContextVar("who", default="nobody")


def nice_of(native_id: int) -> int:
    """The thread's nice value as the kernel reports it: field 19 of /proc/self/task/TID/stat."""
    stat = Path(f"/proc/self/task/{native_id}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])  # fields after "(comm)" start at field 3


def expected(base: int) -> int:
    assert base < MAX_NICE, "run these tests below the lowest priority"
    return min(MAX_NICE, base + INCREMENT)


def test_background_work_runs_at_a_raised_nice_value_and_the_caller_keeps_its_own() -> None:
    base = nice_of(threading.get_native_id())
    tid, flagged = in_background(lambda: (threading.get_native_id(), in_background_thread()))
    assert tid != threading.get_native_id()
    assert nice_of(tid) == expected(base)
    assert flagged and not in_background_thread()
    assert nice_of(threading.get_native_id()) == base
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the calling thread, untouched


def test_threads_that_background_work_starts_inherit_its_nice_value() -> None:
    """What TensorFlow's and ONNX Runtime's own thread pools rely on."""
    base = nice_of(threading.get_native_id())

    def start_one() -> int:
        seen: list[int] = []
        child = threading.Thread(target=lambda: seen.append(nice_of(threading.get_native_id())))
        child.start()
        child.join()
        return seen[0]

    assert in_background(start_one) == expected(base)


def test_the_callers_context_goes_along_and_errors_come_back() -> None:
    token = WHO.set("session-1")
    try:
        assert in_background(WHO.get) == "session-1"
    finally:
        WHO.reset(token)
    with pytest.raises(ZeroDivisionError):
        in_background(lambda: 1 / 0)


def test_background_work_that_asks_for_more_runs_in_its_own_thread() -> None:
    """No second pool slot (a full pool would deadlock), no second raise."""

    def outer() -> tuple[int, int]:
        return threading.get_native_id(), in_background(threading.get_native_id)

    first, second = in_background(outer)
    assert first == second


def test_backgrounded_keeps_the_signature_and_name_gradio_reads() -> None:
    def view(model: str, layer: str = "top_conv") -> str:
        """A view."""
        return f"{model}/{layer}/{nice_of(threading.get_native_id())}"

    wrapped = backgrounded(view)
    assert wrapped.__name__ == "view" and wrapped.__doc__ == "A view."
    assert inspect.signature(wrapped) == inspect.signature(view)
    base = nice_of(threading.get_native_id())
    assert wrapped("lite0") == f"lite0/top_conv/{expected(base)}"


def test_onnx_runtime_sessions_for_slow_work_make_no_threads_of_their_own(monkeypatch) -> None:
    """A session's worker threads would keep the priority of whoever made it first: slow work
    asks for a session that runs in its calling (low-priority) thread only."""
    from convenet.features import onnx_runtime

    asked: list[tuple] = []
    monkeypatch.setattr(onnx_runtime, "onnx_enabled", lambda: True)
    monkeypatch.setattr(onnx_runtime.SESSIONS, "get", lambda key, build: asked.append(key))
    onnx_runtime.onnx_extractor("efficientnet_lite0", "avg", "imagenet")
    in_background(onnx_runtime.onnx_extractor, "efficientnet_lite0", "avg", "imagenet")
    in_background(onnx_runtime.onnx_extractor, "efficientnet_lite0", "avg", "imagenet", 2)
    assert [threads for *_, threads in asked] == [0, 1, 2]


@pytest.mark.parametrize(("raw", "nice"), [(None, 5), ("0", 0), (" 19 ", 19)])
def test_the_increment_is_a_setting(monkeypatch, raw: str | None, nice: int) -> None:
    if raw is None:
        monkeypatch.delenv("CONVENET_BACKGROUND_NICE", raising=False)
    else:
        monkeypatch.setenv("CONVENET_BACKGROUND_NICE", raw)
    assert background_nice() == nice


@pytest.mark.parametrize("raw", ["20", "-5", "ten"])
def test_a_wrong_increment_stops_with_one_sentence(monkeypatch, raw: str) -> None:
    monkeypatch.setenv("CONVENET_BACKGROUND_NICE", raw)
    with pytest.raises(SystemExit, match="CONVENET_BACKGROUND_NICE"):
        background_nice()


def test_a_slow_groups_generator_handler_is_refused_when_the_app_is_built() -> None:
    """A generator would run later in the caller's thread: refuse it rather than lose the
    lower priority without a word."""
    import gradio as gr

    from ui.server import run_slow_groups_in_background

    def steps(text: str):
        yield text

    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(steps, box, box, concurrency_id="heavy")
    with pytest.raises(TypeError, match="steps: a slow group's handler must be a plain"):
        run_slow_groups_in_background(demo)
