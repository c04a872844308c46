"""One bounded, thread-safe LRU whose values are built once per key, for models and sessions.

Building (a Keras model, an ONNX session) takes seconds and memory: two requests for the same
key build it once, and only the few most recently used are kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class BuildOnceLRU(Generic[T]):
    """``get(key, build)`` returns the kept value or builds it (once, even when asked twice).

    At most ``maxsize`` values are kept, and, with ``weigh``, at most ``max_bytes`` of them (the
    newest value always stays, however large).
    """

    def __init__(
        self,
        maxsize: int,
        weigh: Callable[[T], int] | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.maxsize = maxsize
        self._weigh = weigh
        self.max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = build()
            with self._lock:
                self._items[key] = value
                self._bytes += self._weight(value)
                while len(self._items) > 1 and self._over():
                    self._bytes -= self._weight(self._items.popitem(last=False)[1])
            return value

    def _weight(self, value: T) -> int:
        return self._weigh(value) if self._weigh else 0

    def _over(self) -> bool:
        too_heavy = self.max_bytes is not None and self._bytes > self.max_bytes
        return len(self._items) > self.maxsize or too_heavy

    @property
    def nbytes(self) -> int:
        """What the kept values weigh together (0 without ``weigh``)."""
        return self._bytes

    def discard(self, doomed: Callable[[Hashable], bool]) -> None:
        """Drop the kept values whose key ``doomed`` picks (what belonged to a deleted dataset)."""
        with self._lock:
            for key in [key for key in self._items if doomed(key)]:
                self._bytes -= self._weight(self._items.pop(key))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)
