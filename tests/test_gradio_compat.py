"""Gradio's internals behind one door (``ui/gradio_compat``): each patch against the Gradio
installed, so a release that changes what a patch relies on fails here, by name, first.

Each test checks what the patch reads or replaces still exists with the parameters it expects,
and that the patch's effect can be seen through Gradio's own code path. Also: nothing else in
``ui/`` or ``app.py`` touches a Gradio internal, and the version check's one sentence.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import gradio as gr
import gradio_client
import pytest
from gradio import routes
from gradio.context import LocalContext
from gradio.events import EventData
from gradio.mcp import GradioMCPServer
from gradio.queueing import Event as QueuedEvent
from gradio.queueing import ProcessTime, Queue
from gradio.routes import App
from gradio.state_holder import SessionState, StateHolder

from tests.app_server import REPO
from ui import gradio_compat
from ui.gradio_compat import events, files, mcp_results, queue, sessions, stubs

pytestmark = pytest.mark.quick


def parameters(fn: Any) -> list[str]:
    return list(inspect.signature(fn).parameters)


# --- only the door -------------------------------------------------------------------------

# Names of Gradio internals (besides any ``_private`` attribute) that the door uses: outside
# it, reading, writing or overriding one is a use of Gradio's private API.
INTERNAL_NAMES = {
    "fns",
    "blocks",
    "keep_in_cache",
    "stateful",
    "api_visibility",  # as an attribute: the keyword argument of an event is public
    "concurrency_id",  # likewise
    "preprocess_data",
    "process_api",
    "postprocess_output_data",
    "create_app",
    "state_holder",
    "StateHolder",
    "config_for_block",
    "get_events",
    "process_events",
    "push",
    "event_queue_per_concurrency_id",
    "active_jobs",
    "default_concurrency_limit",
    "ANAYLTICS_CACHE_FREQUENCY",
    "session_data",
    "blocks_config",
    "config_values",
    "event_id",
}
PUBLIC_CLIENT = set(gradio_client.__all__)
# gr.X is public unless X is one of Gradio's modules (``gradio.__all__`` leaves out ``gr.api``).
PRIVATE_GR = {
    name
    for name, value in vars(gr).items()
    if name.startswith("_") or (isinstance(value, ModuleType) and name not in gr.__all__)
}
GRADIO_MODULES = {f"gradio.{name}" for name in PRIVATE_GR}


def private_uses(path: Path) -> list[str]:
    """Each use of a Gradio internal in ``path``: an import of a Gradio module other than
    ``gradio`` itself (or of ``gradio_client``'s), ``gr.`` and one of its modules, a Gradio
    module named in a string, an attribute named in ``INTERNAL_NAMES`` or starting with ``_``
    (on anything but ``self`` and ``cls``), or a method overriding one by an internal name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [
                f"{where} import {a.name}"
                for a in node.names
                if a.name.startswith(("gradio.", "gradio_client."))
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {a.name for a in node.names}
            if (
                node.module == "gradio"
                or node.module.startswith(("gradio.", "gradio_client."))
                or (node.module == "gradio_client" and names - PUBLIC_CLIENT)
            ):
                found.append(f"{where} from {node.module} import {', '.join(sorted(names))}")
        elif isinstance(node, ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else ""
            if owner == "gr" and node.attr in PRIVATE_GR:
                found.append(f"{where} gr.{node.attr}")
            elif node.attr in INTERNAL_NAMES or (
                node.attr.startswith("_")
                and not node.attr.startswith("__")
                and owner not in ("self", "cls")
            ):
                found.append(f"{where} .{node.attr}")
        elif isinstance(node, ast.Constant) and node.value in GRADIO_MODULES:
            found.append(f"{where} {node.value!r}")  # patched by name: an import hook, setattr
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
            node.name in INTERNAL_NAMES
        ):
            found.append(f"{where} def {node.name}")
    return found


def outside_the_door() -> list[Path]:
    door = REPO / "ui" / "gradio_compat"
    return [REPO / "app.py"] + [
        path for path in sorted((REPO / "ui").rglob("*.py")) if not path.is_relative_to(door)
    ]


def test_only_the_door_uses_gradio_internals() -> None:
    assert [use for path in outside_the_door() for use in private_uses(path)] == []


def test_the_scan_sees_the_uses_inside_the_door() -> None:
    """Not vacuous: the same scan finds what the door itself does, of each kind."""
    door = sorted((REPO / "ui" / "gradio_compat").glob("*.py"))
    text = "\n".join(use for path in door for use in private_uses(path))
    for expected in (
        "from gradio.routes import App",
        "from gradio import processing_utils",
        ".fns",
        "._queue",
        ".api_visibility",
        "def preprocess_data",
        ".push",
        "'gradio.component_meta'",
    ):
        assert expected in text, expected


def test_the_scan_passes_gradios_documented_api(tmp_path: Path) -> None:
    code = tmp_path / "public.py"
    code.write_text(
        "import gradio as gr\nfrom gradio_client import Client, handle_file\n"
        "with gr.Blocks() as demo:\n    box = gr.Textbox(label='x')\n"
        "    box.submit(print, box, box, api_visibility='private', concurrency_id='g')\n"
        "self._own = gr.Error('x').message\n"
    )
    assert private_uses(code) == []
    code.write_text("from gradio_client.utils import traverse\nimport gradio.utils\ngr.utils\n")
    assert len(private_uses(code)) == 3


# --- the version check ---------------------------------------------------------------------


@pytest.mark.parametrize("version", ["6.30.0", "6.31.0", "6.31.1"])
def test_the_tested_versions_start_without_a_word(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="convenet"):
        gradio_compat.check_version(version)
    assert caplog.records == []


def test_the_installed_gradio_is_supported() -> None:
    gradio_compat.check_version()
    assert f"{gr.__version__.split('.')[0]}.{gr.__version__.split('.')[1]}" in (
        gradio_compat.TESTED
    )


@pytest.mark.parametrize("version", ["6.29.1", "5.50.0", "7.0.0", "7.0.0b1", "not-a-version"])
def test_an_unsupported_gradio_is_refused_in_one_sentence(version: str) -> None:
    with pytest.raises(SystemExit) as refused:
        gradio_compat.check_version(version)
    sentence = str(refused.value.code)
    assert f"Gradio {gradio_compat.SUPPORTED}" in sentence and version in sentence
    assert sentence.count(". ") == 0 and "\n" not in sentence


def test_a_newer_minor_than_tested_starts_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="convenet"):
        gradio_compat.check_version("6.40.0")
    assert "newer than the versions tested" in caplog.text


def test_the_app_refuses_an_old_gradio_without_a_traceback(tmp_path: Path) -> None:
    """``python app.py`` with Gradio 5 found first: one sentence on stderr, exit status 1, and
    Gradio never imported (the check runs before anything imports it)."""
    info = tmp_path / "gradio-5.50.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gradio\nVersion: 5.50.0\n")
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "CONVENET_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == gradio_compat.supported_sentence("5.50.0")


def test_app_py_installs_the_door_before_it_imports_the_ui() -> None:
    """One explicit call, before any ``ui`` module that imports Gradio; ``import ui`` itself
    patches nothing (see the stub test below)."""
    body = ast.parse((REPO / "app.py").read_text()).body
    installs = [
        i
        for i, node in enumerate(body)
        if isinstance(node, ast.Expr)
        and ast.unparse(node.value).startswith("gradio_compat.install(")
    ]
    ui_imports = [
        i
        for i, node in enumerate(body)
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("ui.")
        and node.module != "ui.gradio_compat"
    ]
    assert len(installs) == 1 and ui_imports and installs[0] < min(ui_imports)
    assert ast.unparse(body[installs[0]].value) == (
        "gradio_compat.install(lean_sessions=SETTINGS.lean_sessions)"
    )


# --- stubs ---------------------------------------------------------------------------------

_DEFINE_A_COMPONENT = """
import sys
sys.path[:0] = [{repo!r}, {folder!r}]
{first}
import gradio.component_meta as meta
import own_component
from gradio import routes
from gradio.mcp import GradioMCPServer
print(meta.create_or_modify_pyi.__module__)
print(routes.StateHolder.__name__)
print(getattr(GradioMCPServer.postprocess_output_data, "sends_json", False))
"""

INSTALL = "from ui import gradio_compat; gradio_compat.install(lean_sessions={lean})"


@pytest.mark.slow  # three fresh interpreters importing Gradio: ~11 s
@pytest.mark.parametrize(
    ("first", "patched"),
    [
        (INSTALL.format(lean=True), [stubs.__name__, "LeanStateHolder", "True"]),
        (INSTALL.format(lean=False), [stubs.__name__, "StateHolder", "True"]),
        ("import ui", ["gradio.component_meta", "StateHolder", "False"]),
    ],
)
def test_install_applies_the_patches_and_importing_ui_does_not(
    tmp_path: Path, first: str, patched: list[str]
) -> None:
    """After ``install`` Gradio writes no ``.pyi`` beside a module that defines a component
    (its own ~80 cost ~1 s of each start), MCP results are JSON, and sessions are lean unless
    asked not to be. ``import ui`` alone changes nothing: the same script then does write the
    stub, so the check can see the difference."""
    (tmp_path / "own_component.py").write_text(
        "import gradio as gr\n\n\nclass OwnBox(gr.Textbox):\n    pass\n"
    )
    script = _DEFINE_A_COMPONENT.format(repo=str(REPO), folder=str(tmp_path), first=first)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == patched
    assert (tmp_path / "own_component.pyi").exists() is (first == "import ui")


def test_gradios_stub_writer_is_where_the_skip_looks() -> None:
    import gradio.component_meta as meta

    assert meta.__name__ == stubs.MODULE
    assert parameters(getattr(meta, stubs.FUNCTION)) == ["component_class", "class_name", "events"]


def test_skipping_twice_adds_one_finder() -> None:
    before = list(sys.meta_path)
    stubs.skip_stub_rewrite()  # Gradio is loaded already here: nothing to do
    assert sys.meta_path == before


# --- MCP results ---------------------------------------------------------------------------


@pytest.fixture()
def mcp_server(monkeypatch: pytest.MonkeyPatch) -> GradioMCPServer:
    """An MCP server for a one-tool app, on Gradio's own result handling until a test patches
    it (restored after)."""
    monkeypatch.setattr(
        GradioMCPServer, "postprocess_output_data", GradioMCPServer.postprocess_output_data
    )

    def facts(name: str) -> dict:
        """Facts about a name.

        Args:
            name: any name.
        """
        return {"name": name, "known": False, "nothing": None}

    with gr.Blocks() as demo:
        gr.api(facts, api_name="facts")
    return GradioMCPServer(demo)


def test_gradios_mcp_results_are_reprs_that_json_rejects(mcp_server: GradioMCPServer) -> None:
    """What the patch is for: if this fails, Gradio sends JSON itself and the patch can go."""
    (text,) = mcp_server.postprocess_output_data([{"known": False, "nothing": None}], "http://h")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.text)


def test_mcp_dict_and_list_results_are_json(mcp_server: GradioMCPServer, tmp_path: Path) -> None:
    assert parameters(GradioMCPServer.postprocess_output_data) == ["self", "data", "root_url"]
    mcp_results.send_json_results()
    mcp_results.send_json_results()  # once: a second call wraps nothing
    assert GradioMCPServer.postprocess_output_data.__wrapped__.__name__ == "postprocess_output_data"
    picture = tmp_path / "p.png"
    from PIL import Image

    Image.new("RGB", (4, 4)).save(picture)
    file = {
        "path": str(picture),
        "url": f"/gradio_api/file={picture}",
        "meta": {"_type": "gradio.FileData"},
    }
    result = {"known": False, "nothing": None, "pic": dict(file)}
    contents = mcp_server.postprocess_output_data(
        [result, [1, "a"], "plain", dict(file)], "http://h"
    )
    assert json.loads(contents[0].text) == {
        "known": False,
        "nothing": None,
        "pic": {**file, "url": f"http://h/gradio_api/file={picture}"},  # absolute, as Gradio's
    }
    assert json.loads(contents[1].text) == [1, "a"]
    assert contents[2].text == "plain"
    assert [c.type for c in contents[3:]] == ["image", "text"]  # a picture: still Gradio's


# --- sessions ------------------------------------------------------------------------------


@pytest.fixture()
def restored_state_holder() -> Iterator[None]:
    before = routes.StateHolder
    yield
    routes.StateHolder = before


def test_lean_sessions_reach_the_app_gradio_builds(restored_state_holder: None) -> None:
    """Gradio's app makes its state holder from ``routes.StateHolder``; a session state starts
    from ``blocks.default_config`` and ``blocks.blocks``, and configs come from
    ``config_for_block(key, [], block)``."""
    assert parameters(SessionState.__init__) == ["self", "blocks"]
    assert parameters(StateHolder.__getitem__) == ["self", "session_id"]
    with gr.Blocks() as demo:
        box = gr.Textbox("x")
    state = SessionState(demo)
    assert parameters(state.blocks_config.config_for_block)[:3] == ["_id", "rendered_ids", "block"]
    assert routes.StateHolder is StateHolder  # nothing installed it in this process
    sessions.use_lean_sessions()
    app = App.create_app(demo)
    assert isinstance(app.state_holder, sessions.LeanStateHolder)
    session = app.state_holder["a-client"]
    assert (
        isinstance(session, sessions.LeanSessionState) and app.state_holder["a-client"] is session
    )
    assert session.config_values.computed() == 0
    assert session.config_values[box._id] == state.config_values[box._id]


# --- events --------------------------------------------------------------------------------


class Recording(events.HookedBlocks):
    seen: list[Any]

    def client_inputs(self, event: events.Event, inputs: list[Any]) -> list[Any]:
        self.seen.append(("inputs", event.name, list(inputs)))
        return [v.upper() if isinstance(v, str) else v for v in inputs]

    def unparsed(self, event: events.Event, inputs: list[Any], error: Exception) -> Exception:
        self.seen.append(("unparsed", type(error).__name__))
        return ValueError("refused")

    @contextmanager
    def calling(self, call: events.Call) -> Iterator[None]:
        self.seen.append(("call", call.event.name, call.session_hash, call.clicked))
        yield


def echo(text: str) -> str:
    return text


@pytest.fixture()
def hooked() -> Recording:
    with events.no_app_until_launch(), Recording() as demo:
        box = gr.Textbox()
        number = gr.Number(precision=0)
        box.submit(echo, box, box, api_name="echo")
        number.submit(lambda n: n, number, number, api_name="number")
    demo.seen = []
    return demo


def test_every_call_passes_the_hooks(hooked: Recording) -> None:
    """Gradio's event path still goes through ``process_api`` then ``preprocess_data``, with
    the arguments the hooks read."""
    assert parameters(gr.Blocks.preprocess_data) == [
        "self",
        "block_fn",
        "inputs",
        "state",
        "explicit_call",
    ]
    assert {"block_fn", "request", "session_hash", "event_data", "explicit_call"} <= set(
        parameters(gr.Blocks.process_api)
    )
    click = EventData(None, {"index": 2, "value": "v"})
    out = asyncio.run(
        hooked.process_api(
            block_fn=0,
            inputs=["hi"],
            state=SessionState(hooked),
            session_hash="s1",
            event_data=click,
        )
    )
    assert out["data"] == ["HI"]
    assert hooked.seen == [("call", "echo", "s1", True), ("inputs", "echo", ["hi"])]


def test_the_apps_own_calls_skip_the_input_hook(hooked: Recording) -> None:
    out = asyncio.run(hooked.process_api(0, ["hi"], SessionState(hooked), explicit_call=True))
    assert out["data"] == ["hi"]
    assert hooked.seen == [("call", "echo", None, False)]


def test_what_a_component_cannot_parse_goes_to_the_unparsed_hook(hooked: Recording) -> None:
    with pytest.raises(ValueError, match="refused"):
        asyncio.run(hooked.process_api(1, [{"not": "a number"}], SessionState(hooked)))
    assert hooked.seen[-1][0] == "unparsed"


def test_the_types_a_gr_api_function_declares() -> None:
    def tool(picture: gr.FileData, count: int, name: str) -> str:
        return name

    with gr.Blocks() as demo:
        gr.api(tool, api_name="tool")
        state = gr.State()
        box = gr.Textbox()
    (fn,) = demo.fns.values()
    assert [events.api_input_type(b) for b in fn.inputs] == ["file", "integer", "any"]
    assert events.api_input_type(box) is None
    assert events.holds_state(state) and not events.holds_state(box)


def test_only_the_named_events_are_on_the_api_page() -> None:
    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(echo, box, box, api_name="shown")
        box.change(echo, box, box, api_name="internal")
    assert set(demo.get_api_info()["named_endpoints"]) == {"/shown", "/internal"}
    events.keep_off_api_page(demo, {"shown"})
    assert set(demo.get_api_info()["named_endpoints"]) == {"/shown"}
    assert {fn.api_name for fn in demo.fns.values()} == {"shown", "internal"}  # still callable


def test_wrapped_handlers_are_the_ones_gradio_calls() -> None:
    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(echo, box, box, concurrency_id="slow")
        box.change(echo, box, box, concurrency_id="quick")
    events.wrap_handlers(demo, {"slow"}, lambda fn: lambda text: fn(text) + "!")
    state = SessionState(demo)
    assert asyncio.run(demo.process_api(0, ["a"], state))["data"] == ["a!"]
    assert asyncio.run(demo.process_api(1, ["a"], state))["data"] == ["a"]


def test_no_fastapi_app_is_built_before_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradio builds its throwaway apps through ``App.create_app`` (so without the context,
    building Blocks calls it), and the context puts back what it found."""
    built = []
    original = App.create_app
    monkeypatch.setattr(
        App, "create_app", staticmethod(lambda *a, **k: built.append(1) or original(*a, **k))
    )
    with gr.Blocks():
        gr.Textbox()
    assert built
    built.clear()
    patched = App.create_app
    with events.no_app_until_launch(), gr.Blocks():
        gr.Textbox()
    assert built == [] and App.create_app is patched


def test_the_files_components_keep_cached_are_listed(tmp_path: Path) -> None:
    picture = tmp_path / "example.png"
    from PIL import Image

    Image.new("RGB", (4, 4)).save(picture)
    with gr.Blocks() as demo:
        image = gr.Image(value=str(picture))
    kept = events.files_kept_in_cache(demo)
    assert kept == {str(Path(image.value["path"]).resolve())}
    assert Path(next(iter(kept))).read_bytes() == picture.read_bytes()


# --- queue ---------------------------------------------------------------------------------


@pytest.fixture()
def queued() -> tuple[gr.Blocks, Any]:
    """A demo whose queue holds three events of one group (two sessions) and runs one."""
    with events.no_app_until_launch(), gr.Blocks() as demo:
        box = gr.Textbox()
        box.submit(echo, box, box, concurrency_id="g", concurrency_limit=5)
    q = demo._queue
    (block_fn,) = demo.fns.values()
    q.create_event_queue_for_fn(block_fn)
    q.active_jobs = [None, None]
    waiting_events = [QueuedEvent(s, block_fn, None, None) for s in ("a", "a", "b")]
    q.event_queue_per_concurrency_id["g"].queue.extend(waiting_events)
    running = QueuedEvent("c", block_fn, None, None)
    q.active_jobs[0] = [running]
    return demo, running


def test_the_queue_has_what_the_hooks_read(queued: tuple[gr.Blocks, Any]) -> None:
    assert parameters(Queue.push) == ["self", "body", "request", "username"]
    assert parameters(Queue.get_events) == ["self"]
    assert parameters(QueuedEvent.__init__) == ["self", "session_hash", "fn", "request", "username"]
    demo, _ = queued
    assert [(w.session_hash, w.group) for w in queue.waiting(demo)] == [
        ("a", "g"),
        ("a", "g"),
        ("b", "g"),
        ("c", "g"),
    ]


def test_the_chosen_event_is_the_one_gradio_runs_next(queued: tuple[gr.Blocks, Any]) -> None:
    demo, _ = queued
    picked: list[queue.Waiting] = []
    ran: list[tuple[str | None, float]] = []
    queue.before_picking(
        demo,
        lambda events: len(events) - 1,
        picked.append,
        lambda waiting, seconds: ran.append((waiting.session_hash, seconds)),
    )
    events_, batch, group = demo._queue.get_events()
    assert (events_[0].session_hash, group) == ("b", "g")
    assert [w.session_hash for w in picked] == ["b"]
    # Gradio's own processing runs the event (its client is gone: nothing to send) and the
    # hook hears how long it took
    assert parameters(Queue.process_events) == ["self", "events", "batch", "begin_time", "fn"]
    events_[0].alive = False
    demo._queue.set_server_app(App.create_app(demo))
    asyncio.run(demo._queue.process_events(events_, batch, 0.0, events_[0].fn))
    assert [name for name, _ in ran] == ["b"] and 0 <= ran[0][1] < 5


def test_a_group_at_its_limit_is_not_weighed(queued: tuple[gr.Blocks, Any]) -> None:
    """Gradio asks for the next event every millisecond while one waits and a worker is free;
    a group that cannot start one then must not cost a choice over its whole list."""
    demo, _ = queued
    asked: list[int] = []
    queue.before_picking(demo, lambda events: asked.append(len(events)) or 0, id, print)
    group = demo._queue.event_queue_per_concurrency_id["g"]
    group.current_concurrency = group.concurrency_limit
    for _ in range(100):
        assert demo._queue.get_events() is None
    assert asked == []
    group.current_concurrency = group.concurrency_limit - 1
    assert demo._queue.get_events()[2] == "g"
    assert asked == [3]


def test_a_check_runs_before_gradio_queues_an_event(queued: tuple[gr.Blocks, Any]) -> None:
    from gradio.data_classes import PredictBodyInternal

    demo, _ = queued
    checked: list[Any] = []

    def check(session: str | None, request: Any) -> None:
        checked.append((session, request))
        if session == "greedy":
            raise RuntimeError("refused")

    queue.before_queueing(demo, check)
    body = PredictBodyInternal(session_hash="ok", data=[], fn_index=None, event_data=None)
    # Gradio's own push runs after the check: it answers a call without a function index.
    assert asyncio.run(demo._queue.push(body, "request", None))[0] is False
    with pytest.raises(RuntimeError, match="refused"):
        asyncio.run(demo._queue.push(body.model_copy(update={"session_hash": "greedy"}), "r", None))
    assert checked == [("ok", "request"), ("greedy", "r")]


def test_a_running_event_knows_when_its_client_has_gone(queued: tuple[gr.Blocks, Any]) -> None:
    demo, running = queued
    assert queue.client_waiting(demo)()  # outside an event: always waiting
    token = LocalContext.event_id.set(running._id)
    try:
        alive = queue.client_waiting(demo)
        assert alive()
        running.alive = False  # what Gradio does when the page or stream closes
        assert not alive()
    finally:
        LocalContext.event_id.reset(token)


def test_queue_limits_are_set_on_gradios_queue(queued: tuple[gr.Blocks, Any]) -> None:
    demo, _ = queued
    queue.set_queue_limits(demo, default_limit=3, max_size=7, analytics_every=11)
    q = demo._queue
    assert (q.default_concurrency_limit, q.max_size, q.ANAYLTICS_CACHE_FREQUENCY) == (3, 7, 11)


def test_estimates_follow_recent_runs_not_one_slow_first_run(
    queued: tuple[gr.Blocks, Any],
) -> None:
    demo, _ = queued
    queue.estimate_from_recent_runs(demo)
    timing = demo._queue.process_time_per_fn["some function"]
    assert isinstance(timing, ProcessTime)
    for seconds in (58.9, 4.2, 4.1, 4.3):
        timing.add(seconds)
    assert timing.avg_time == pytest.approx(4.25)  # Gradio's own mean: 17.9 s
    assert timing.count == 4


# --- files ---------------------------------------------------------------------------------


def test_files_go_where_gradio_serves_uploads_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    folder = files.upload_folder()
    assert folder == tmp_path / "gradio"
    source = tmp_path / "a.txt"
    source.write_text("content")
    copy = Path(files.cache_file(source))
    assert copy.is_relative_to(folder) and copy.read_text() == "content"
    assert files.cache_file(source) == str(copy)  # content-addressed: the same copy again
