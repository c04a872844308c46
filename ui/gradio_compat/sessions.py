"""Sessions that cost nothing until they are used: a plain API call should not pay for the page.

Gradio keeps one ``SessionState`` per session hash, up to ``state_session_capacity`` (10,000)
of them, and each one starts by computing the config of every block of the app (its
constructor's signature read back, ~200 blocks here): about 9 ms of CPU and 300 KB kept per
session. A browser pays that once, but every plain HTTP or ``gradio_client`` call without a
session hash is a new session, so each search cost ~3x its own work, and 10,000 anonymous
calls held ~3 GB. Only two things read those configs: a deep link being saved
(``SessionState.components``) and a handler that returns a component update. Here each block's
config is computed when first read, so a session that does neither holds none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from gradio import routes
from gradio.state_holder import SessionState, StateHolder


class LazyConfigs(dict):
    """A session's block configs: each computed on first read; iterating reads them all.

    Safe for a session's events running in several threads at once: keys are only ever added,
    and two threads that miss the same config both compute it (the same value).
    """

    def __init__(self, blocks_config: Any, keys: Iterable[int]) -> None:
        super().__init__()
        self._blocks_config = blocks_config
        self._order = tuple(keys)  # Gradio's order: the blocks'
        self._known = frozenset(self._order)

    def __missing__(self, key: int) -> Any:
        if key not in self._known:
            raise KeyError(key)
        value = self._blocks_config.config_for_block(key, [], self._blocks_config.blocks[key])
        return super().setdefault(key, value)

    def __contains__(self, key: object) -> bool:
        return key in self._known or super().__contains__(key)

    def _all(self) -> dict[int, Any]:
        """Every config, in the blocks' order, then any added ones (a snapshot)."""
        added = [key for key in list(super().keys()) if key not in self._known]
        return {key: self[key] for key in (*self._order, *added)}

    def items(self) -> Any:
        return self._all().items()

    def values(self) -> Any:
        return self._all().values()

    def keys(self) -> Any:
        return self._all().keys()

    def __iter__(self) -> Iterator[int]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._known) + sum(1 for key in list(super().keys()) if key not in self._known)

    def computed(self) -> int:
        """How many configs this session has computed (or been given) so far."""
        return super().__len__()


class _NoBlocks:
    """What ``SessionState.__init__`` reads of a Blocks, with no block to compute a config for."""

    def __init__(self, blocks: Any) -> None:
        self.default_config = blocks.default_config
        self.blocks: dict[int, Any] = {}


class LeanSessionState(SessionState):
    """Gradio's session state (its own ``__init__`` runs), with configs computed on demand."""

    def __init__(self, blocks: Any) -> None:
        super().__init__(_NoBlocks(blocks))
        keys = [key for key in self.blocks_config.blocks if key in blocks.blocks]
        self.config_values = LazyConfigs(self.blocks_config, keys)


class LeanStateHolder(StateHolder):
    """Gradio's store of sessions, whose new sessions are lean."""

    def __getitem__(self, session_id: str) -> SessionState:
        if session_id not in self.session_data:
            self.session_data[session_id] = LeanSessionState(self.blocks)
        return super().__getitem__(session_id)


def use_lean_sessions() -> None:
    """Apps built from now on (at ``launch``) keep lean sessions."""
    routes.StateHolder = LeanStateHolder
