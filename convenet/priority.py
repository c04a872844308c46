"""Slow work at a lower CPU priority, so that quick requests sharing the cores stay quick.

On a small machine a search (a few milliseconds of CPU) shares the cores with seconds-long work:
Keras views, feature visualization, first-use feature extraction. Queues cannot help there
(each kind has workers of its own); the kernel's scheduler can. Linux gives every thread its
own nice value, and a thread inherits its creator's, so slow work runs in threads of one pool
whose threads raise their nice value once, when they start: the thread pools that TensorFlow
and ONNX Runtime create from them (their worker threads), and the subprocesses they start,
inherit it. A thread may raise its nice value without privileges but never lower it again,
hence threads of their own rather than a change and a change back.

Where nice values cannot be set (another OS), the work still runs, at the usual priority.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from convenet.settings import MAX_NICE, background_nice

log = logging.getLogger("convenet")

INCREMENT = background_nice()  # read once, at start: a wrong value stops the app there
WORKERS = 16  # more than the slow concurrency groups' limits together; threads start lazily

P = ParamSpec("P")
R = TypeVar("R")

_local = threading.local()


def thread_nice(native_id: int | None = None) -> int:
    """The nice value of one thread of this process (this thread by default)."""
    return os.getpriority(os.PRIO_PROCESS, native_id or threading.get_native_id())


def _lower_this_thread() -> None:
    """Pool initializer: raise this thread's nice value (and so its future children's)."""
    _local.background = True
    try:
        tid = threading.get_native_id()
        # At +5, CFS weighs a thread 335 against a nice-0 one's 1024: about a third of a share.
        raised = min(MAX_NICE, thread_nice(tid) + INCREMENT)
        os.setpriority(os.PRIO_PROCESS, tid, raised)
    except (AttributeError, OSError) as exc:  # no per-thread nice here: same work, same speed
        log.debug("Cannot lower a background thread's priority: %s", exc)


def in_background_thread() -> bool:
    """Whether this thread is one of the background pool's (threads that they start inherit
    the nice value, not this answer)."""
    return getattr(_local, "background", False)


_POOL = ThreadPoolExecutor(WORKERS, "background", initializer=_lower_this_thread)


class Abandoned(BaseException):
    """Nobody waits for this work any more (the page was closed, the client went away).

    A BaseException, like asyncio's CancelledError, so that a handler's catch-all for faults
    lets it through: it is neither the visitor's mistake nor the app's fault.
    """


_wanted: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "wanted", default=None
)


def wanted_while(check: Callable[[], bool]) -> contextvars.Token:
    """Slow work started in this context asks ``check`` at each step whether to go on."""
    return _wanted.set(check)


def reset_wanted(token: contextvars.Token) -> None:
    """Undo ``wanted_while``."""
    _wanted.reset(token)


def still_wanted() -> None:
    """Raise Abandoned when the request this work is for has gone; a step loop calls it
    between steps, so work nobody waits for stops within one step."""
    check = _wanted.get()
    if check is not None and not check():
        raise Abandoned


def in_background(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``fn(*args, **kwargs)`` run in a low-priority thread; the caller waits for its result.

    The caller's context variables go along (the session a call is for, Gradio's progress).
    Called from a background thread, ``fn`` runs right there (no pool slot is held twice).
    """
    if in_background_thread():
        return fn(*args, **kwargs)
    context = contextvars.copy_context()
    return _POOL.submit(context.run, fn, *args, **kwargs).result()


def backgrounded(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` that always runs in the low-priority pool (same signature, name and hints)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return in_background(fn, *args, **kwargs)

    run.background = True  # type: ignore[attr-defined]
    return run
