"""Gradio's private queue (``Blocks._queue``): its limits, and hooks where the UI's policies go.

Gradio's public ``queue()`` sets two of the limits but builds one more FastAPI app; it offers no
hook before an event is queued, none on which waiting event runs next (first come, first
served), and no way for a running handler to learn that its client has gone.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import Any

import gradio as gr
from gradio import queueing
from gradio.context import LocalContext

log = logging.getLogger("convenet")


@dataclass(frozen=True)
class Waiting:
    """An event queued or running, as the queue's policies read it."""

    session_hash: str | None
    request: Any  # the client's request: its headers and socket address
    group: str  # its concurrency group


def _waiting(event: Any) -> Waiting:
    return Waiting(event.session_hash, event.request, str(event.concurrency_id))


def set_queue_limits(
    demo: gr.Blocks, default_limit: int, max_size: int, analytics_every: int
) -> None:
    """Limits on the queue ``gr.Blocks()`` made: workers of events that name no concurrency
    group, events waiting at most, and how many events pass between two updates of the
    monitoring page's summary (Gradio's default: every event)."""
    queue = demo._queue
    queue.default_concurrency_limit = default_limit
    queue.max_size = max_size
    if not hasattr(queue, "ANAYLTICS_CACHE_FREQUENCY"):  # Gradio's spelling
        raise AttributeError("Gradio's queue no longer has ANAYLTICS_CACHE_FREQUENCY")
    queue.ANAYLTICS_CACHE_FREQUENCY = analytics_every


def waiting(demo: gr.Blocks) -> list[Waiting]:
    """Every event queued or running now."""
    queue = demo._queue
    found = [
        _waiting(event)
        for event_queue in list(queue.event_queue_per_concurrency_id.values())
        for event in list(event_queue.queue)
    ]
    found += [_waiting(event) for job in list(queue.active_jobs) for event in job or []]
    return found


def before_queueing(demo: gr.Blocks, check: Callable[[str | None, Any], None]) -> None:
    """``check(session_hash, request)`` runs before Gradio queues each event; it refuses the
    event by raising (an ``HTTPException`` reaches the client as its status)."""
    queue = demo._queue
    push = queue.push

    async def checked_push(body: Any, request: Any, username: str | None) -> Any:
        check(getattr(body, "session_hash", None), request)
        return await push(body, request, username)

    queue.push = checked_push


def before_picking(
    demo: gr.Blocks,
    choose: Callable[[list[Waiting]], int],
    picked: Callable[[Waiting], None],
    finished: Callable[[Waiting, float], None],
) -> None:
    """Gradio runs the first event of a group's list next (picked under its queue lock):
    ``choose`` says which of a group's waiting events that is, ``picked`` hears of each
    event as it starts and ``finished`` when it has ended, with the seconds it ran."""
    queue = demo._queue
    pick = queue.get_events
    process = queue.process_events

    def chosen_first() -> Any:
        # Gradio asks every millisecond while events wait and a worker is free: a group at its
        # limit is left alone, or its whole list is weighed on each of those asks (12 % of the
        # interpreter lock's time in bench_soak.py's class, while searches waited for it).
        for event_queue in list(queue.event_queue_per_concurrency_id.values()):
            events = event_queue.queue
            limit = event_queue.concurrency_limit
            if len(events) > 1 and (limit is None or event_queue.current_concurrency < limit):
                events.insert(0, events.pop(choose([_waiting(e) for e in events])))
        started = pick()
        if started:
            picked(_waiting(started[0][0]))
        return started

    async def timed(events: list[Any], *rest: Any) -> None:
        began = time.monotonic()
        try:
            await process(events, *rest)
        finally:
            try:
                finished(_waiting(events[0]), time.monotonic() - began)
            except Exception:  # a policy's fault must not replace the event's own outcome
                log.exception("The queue's policy failed after an event")

    queue.get_events = chosen_first
    queue.process_events = timed


def client_waiting(demo: gr.Blocks) -> Callable[[], bool]:
    """For the event running in this context: whether its client still waits (Gradio marks an
    event dead when its page or stream goes away). Always true outside a queued event."""
    event_id = LocalContext.event_id.get(None)
    queue = demo._queue

    def alive() -> bool:
        for job in list(queue.active_jobs):
            for event in job or []:
                if event._id == event_id:
                    return bool(event.alive)
        return True

    return alive


RECENT_RUNS = 5  # runs a progress estimate is the median of


class RecentProcessTime(queueing.ProcessTime):
    """Gradio's per-function timing record, with ``avg_time`` the median of the last runs:
    Gradio's mean of every run let one slow first run (a model's first use) make the why-match
    panel promise 58.9 s for work that took 4.2 s."""

    def __init__(self) -> None:
        super().__init__()
        self.recent: deque[float] = deque(maxlen=RECENT_RUNS)

    def add(self, time: float) -> None:
        super().add(time)
        self.recent.append(time)
        self.avg_time = median(self.recent)


def estimate_from_recent_runs(demo: gr.Blocks) -> None:
    """Progress estimates of ``demo``'s jobs follow their functions' recent runs."""
    demo._queue.process_time_per_fn.default_factory = RecentProcessTime
