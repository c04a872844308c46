"""Give freed memory back to the system after a large decode.

glibc keeps freed blocks in per-thread arenas, so a server that decoded a few large images
stays at its peak for good. Fewer arenas and an explicit trim bring it back down.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def limit_arenas(count: int = 2) -> bool:
    """Like MALLOC_ARENA_MAX=count, set from inside the process; False off glibc."""
    libc = _libc()
    return bool(libc and libc.mallopt(M_ARENA_MAX, count))


def give_back_memory() -> None:
    """Return free heap pages to the system (a no-op off glibc)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
