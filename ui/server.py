"""Serving the app to the public: request-size caps, a fair queue, and temporary-file cleanup.

Everything here protects other users from one client: a request cannot carry more than its
cap, one browser session or address cannot hold more than a few queue places, and uploads and
generated files do not pile up on disk.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import HTTPException
from starlette.middleware import Middleware

from convenet.priority import Abandoned, backgrounded, reset_wanted, wanted_while
from convenet.settings import SETTINGS, Settings
from ui.gradio_compat.events import files_kept_in_cache, wrap_handlers
from ui.gradio_compat.files import upload_folder
from ui.gradio_compat.queue import (
    Waiting,
    before_picking,
    before_queueing,
    client_waiting,
    estimate_from_recent_runs,
    set_queue_limits,
    waiting,
)
from ui.groups import BACKGROUND_GROUPS

log = logging.getLogger("convenet")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuse a request body over its cap (uploads have a larger one)."""

    def __init__(self, app: Callable, settings: Settings = SETTINGS) -> None:
        self.app = app
        self.upload_bytes = settings.max_upload_mb * 1024 * 1024
        self.body_bytes = settings.max_body_kb * 1024

    def limit_for(self, path: str) -> int:
        """Uploads, and MCP calls (which carry images inline), get the upload cap."""
        big = path.rstrip("/").endswith("/upload") or "/mcp" in path
        return self.upload_bytes if big else self.body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > limit:
            await self.refuse(send, limit)
            return
        if limit == self.body_bytes:  # small bodies: read whole, so the refusal is clean
            chunks, seen, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunks.append(message.get("body", b""))
                seen += len(chunks[-1])
                more = message.get("more_body", False)
                if seen > limit:
                    await self.refuse(send, limit)
                    return
            body = b"".join(chunks)
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        await self.stream(scope, receive, send, limit)

    async def stream(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Uploads stream through, counted; over the cap the app stops reading them."""
        seen = 0
        started = False

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge
            return message

        async def watched(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await self.refuse(send, limit)

    @staticmethod
    async def refuse(send: Send, limit: int) -> None:
        size = f"{limit >> 20} MB" if limit >= 1 << 20 else f"{limit >> 10} KB"
        body = json.dumps({"detail": f"This request is larger than this app accepts ({size})."})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


def client_address(request: Any, trust_proxy: bool) -> str:
    """The client's address: behind the Space's proxy, the one it reports; else the socket's.

    The proxy appends the address it saw to X-Forwarded-For, so the last entry is the one to
    trust; earlier entries are whatever the client wrote.
    """
    if trust_proxy:
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded.strip():
            return forwarded.split(",")[-1].strip()
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "unknown"


current_visitor: ContextVar[str] = ContextVar("current_visitor", default="")


class MistakeLog:
    """Visitors' mistakes, one warning line each, but at most ``LINES`` per visitor (client
    address) every ``WINDOW_S`` seconds: a script repeating a bad call cannot fill the log.
    What was left out is counted and said on that visitor's next logged line. The visitor of
    the current event is ``current_visitor`` (set by ``ui.guard``)."""

    LINES = 5
    WINDOW_S = 60.0
    REMEMBERED = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # visitor -> (window start, lines logged in it, lines left out since the last one)
        self._seen: OrderedDict[str, tuple[float, int, int]] = OrderedDict()

    def note(self, text: str, visitor: str | None = None) -> None:
        """Log ``text`` for ``visitor`` (default: the caller of the current event)."""
        who = current_visitor.get() if visitor is None else visitor
        if not who:  # no client (a script, a test, the command line): every line
            log.warning("%s", text)
            return
        now = time.monotonic()
        with self._lock:
            start, lines, hidden = self._seen.pop(who, (now, 0, 0))
            if now - start > self.WINDOW_S:
                start, lines = now, 0
            quiet = lines >= self.LINES
            self._seen[who] = (start, lines + 1, 0) if not quiet else (start, lines, hidden + 1)
            while len(self._seen) > self.REMEMBERED:
                self._seen.popitem(last=False)
        if not quiet:
            more = f" ({hidden} more from this visitor not logged)" if hidden else ""
            log.warning("%s%s", text, more)


MISTAKES = MistakeLog()


def cap_requests_per_client(demo: gr.Blocks, settings: Settings = SETTINGS) -> None:
    """Cap the queued and running requests of one session and of one address (HTTP 429)."""

    def check(session: str | None, request: Any) -> None:
        address = client_address(request, settings.trust_proxy)
        same_session = same_address = 0
        for event in waiting(demo):
            if session is not None and event.session_hash == session:
                same_session += 1
            if client_address(event.request, settings.trust_proxy) == address:
                same_address += 1
        if same_session >= settings.client_requests or same_address >= settings.address_requests:
            MISTAKES.note("Too many requests at once from one client; refused one", address)
            raise HTTPException(
                status_code=429,
                detail="Too many of your requests are waiting already; "
                "please wait for them to finish, then try again.",
            )

    before_queueing(demo, check)


class FairQueue:
    """Fair shares of each concurrency group's time, in place of first come, first served:
    the next event is that of the address that has had the least of the group's time, among
    its sessions the one that has had least, and within a session the oldest (start-time
    fair queuing: an account starts at the group's clock, the least served account's level,
    so time unused while away is not saved up). A backlog of one visitor, or of many sessions
    from one address, delays another visitor's single job by about one job; and a class that
    asks for short pictures beside one visitor's long ones gets its half of the time, not
    one turn per long picture. (Gradio itself drops the queued events of a client whose page
    or stream closes.)
    """

    REMEMBERED = 4096  # visitors' accounts kept; the longest-forgotten go first
    TURN_S = 1e-3  # charged as a job starts, so equal visitors alternate while jobs run

    def __init__(self, settings: Settings = SETTINGS) -> None:
        self.trust_proxy = settings.trust_proxy
        self._spent: OrderedDict[tuple[str, ...], float] = OrderedDict()  # seconds, virtual
        # the level of the last job started: per group for addresses, per group and address
        # for the sessions behind it
        self._clock: dict[tuple[str, ...], float] = {}
        self._running: dict[tuple[str, ...], list[float]] = {}  # start times of running jobs

    def _keys(self, event: Waiting) -> tuple[tuple[str, ...], tuple[str, ...]]:
        address = client_address(event.request, self.trust_proxy)
        return (event.group, address), (event.group, address, str(event.session_hash))

    def _charged(self, key: tuple[str, ...]) -> float:
        """What an account was charged, at least its clock (time away is not saved up)."""
        return max(self._clock.get(key[:-1], 0.0), self._spent.get(key, 0.0))

    def _level(self, key: tuple[str, ...]) -> float:
        """An account's level: what it was charged plus what its running jobs have run so far
        (Gradio frees a worker before it reports the job's end)."""
        now = time.monotonic()
        return self._charged(key) + sum(now - start for start in self._running.get(key, ()))

    def next_index(self, events: list[Waiting]) -> int:
        """Which of a group's waiting events is the fair one to run next."""

        def level(item: tuple[int, Waiting]) -> tuple[float, float, int]:
            address, session = self._keys(item[1])
            return self._level(address), self._level(session), item[0]

        return min(enumerate(events), key=level)[0]

    def served(self, event: Waiting) -> None:
        """An event starts: the clocks move to its address's and its session's levels."""
        now = time.monotonic()
        for key in self._keys(event):
            level = self._charged(key)
            self._clock[key[:-1]] = level
            self._spent[key] = level + self.TURN_S
            self._spent.move_to_end(key)
            self._running.setdefault(key, []).append(now)
        while len(self._spent) > self.REMEMBERED:
            forgotten, _ = self._spent.popitem(last=False)
            self._running.pop(forgotten, None)

    def finished(self, event: Waiting, seconds: float) -> None:
        """An event has run ``seconds``: its address and session are charged for them."""
        for key in self._keys(event):
            starts = self._running.get(key)
            if starts:
                starts.pop(0)
                if not starts:
                    del self._running[key]
            self._spent[key] = self._spent.get(key, 0.0) + seconds

    def install(self, demo: gr.Blocks) -> None:
        """Gradio's queue runs the event this picks next in each group."""
        before_picking(demo, self.next_index, self.served, self.finished)


KEEP_FOLDERS = ("deep_links",)  # shared links' saved views: small, and meant to last


def sweep_temp_files(folder: Path, max_age_s: float, keep: set[str]) -> int:
    """Delete files under ``folder`` older than ``max_age_s`` (and emptied folders)."""
    removed = 0
    now = time.time()
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.relative_to(folder).parts[0] in KEEP_FOLDERS:
            continue
        try:
            if path.is_symlink() or path.is_file():
                if str(path.resolve()) in keep or now - path.lstat().st_mtime < max_age_s:
                    continue
                path.unlink()
                removed += 1
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        except OSError:
            continue  # in use, or removed by Gradio meanwhile
    return removed


def start_temp_sweeper(demo: gr.Blocks, settings: Settings = SETTINGS) -> threading.Thread:
    """Uploads (aborted ones too) and generated files go after ``temp_ttl_s`` seconds."""
    folder = upload_folder()

    def loop() -> None:
        while True:
            time.sleep(settings.temp_sweep_s)
            if folder.is_dir():
                removed = sweep_temp_files(folder, settings.temp_ttl_s, files_kept_in_cache(demo))
                if removed:
                    log.info("Removed %d old temporary files", removed)

    thread = threading.Thread(target=loop, name="temp-sweeper", daemon=True)
    thread.start()
    return thread


ABANDONED = "Stopped: nobody was waiting for this any more."


def stops_when_abandoned(fn: Callable[..., Any], demo: gr.Blocks) -> Callable[..., Any]:
    """``fn`` whose step loops (convenet.priority.still_wanted) stop once its client has gone."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        token = wanted_while(client_waiting(demo))
        try:
            return fn(*args, **kwargs)
        except Abandoned:
            log.info("Stopped %s: its client has gone", getattr(fn, "__name__", "a slow view"))
            raise gr.Error(ABANDONED, print_exception=False) from None
        finally:
            reset_wanted(token)

    return run


def run_slow_groups_in_background(demo: gr.Blocks) -> None:
    """Every handler of a slow concurrency group runs in a low-priority thread, so the CPU
    goes to searches first; queues alone keep searches from waiting behind slow views, not
    from sharing the cores with them. Its step loops stop when its client goes away."""

    def in_background(fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn):
            # the wrapper waits for a return value: a generator or coroutine would do its
            # work later in the caller's thread, at the usual priority, without a word
            raise TypeError(f"{fn.__name__}: a slow group's handler must be a plain function")
        return backgrounded(stops_when_abandoned(fn, demo))

    wrap_handlers(demo, BACKGROUND_GROUPS, in_background)


# Gradio summarises its event log (the last 10,000 events, in pandas) for its monitoring page
# after every event by default: 5-9 ms an event here (200 to 10,000 events logged; measured while
# other jobs ran), more than a whole search's own work.
ANALYTICS_EVERY = 500


def configure_queue(demo: gr.Blocks) -> None:
    """Our queue settings on the queue ``gr.Blocks()`` made (``demo.queue()`` would build one
    more app).

    Events that name no concurrency group share two workers; searches and the slow views have
    groups of their own (see ``ui.search_tab``, ``ui.search_panels``, ``ui.explorer_tab``).
    The monitoring summary is brought up to date every ``ANALYTICS_EVERY`` events.
    """
    set_queue_limits(demo, default_limit=2, max_size=256, analytics_every=ANALYTICS_EVERY)


def serve(demo: gr.Blocks, allowed: list[str], css: str, head: str) -> None:
    """Launch ``demo`` with every protection on; blocks until the server stops."""
    configure_queue(demo)
    estimate_from_recent_runs(demo)
    cap_requests_per_client(demo)
    FairQueue().install(demo)
    start_temp_sweeper(demo)
    demo.launch(
        max_file_size=SETTINGS.max_file_mb * 1024 * 1024,
        allowed_paths=allowed,
        css=css,
        head=head,
        show_error=False,  # only our own plain messages (gr.Error) reach a user
        mcp_server=True,  # the tools in ui/tools.py, for agents
        app_kwargs={"middleware": [Middleware(BodyLimit)]},
    )
