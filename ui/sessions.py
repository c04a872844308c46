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
    """A session's block configs: each computed on first read, all of them before iteration."""

    def __init__(self, blocks_config: Any, keys: Iterable[int]) -> None:
        super().__init__()
        self._blocks_config = blocks_config
        self._order = list(keys)
        self._pending = set(self._order)

    def _compute(self, key: int) -> Any:
        self._pending.discard(key)
        value = self._blocks_config.config_for_block(key, [], self._blocks_config.blocks[key])
        super().__setitem__(key, value)
        return value

    def __missing__(self, key: int) -> Any:
        if key not in self._pending:
            raise KeyError(key)
        return self._compute(key)

    def __setitem__(self, key: int, value: Any) -> None:
        self._pending.discard(key)
        super().__setitem__(key, value)

    def __contains__(self, key: object) -> bool:
        return key in self._pending or super().__contains__(key)

    def fill(self) -> None:
        """Every config, in the blocks' order (as Gradio builds them), then any added ones."""
        if not self._pending:
            return
        done = dict(super().items())
        super().clear()
        for key in self._order:
            super().__setitem__(key, done.pop(key) if key in done else self._compute(key))
        super().update(done)

    def items(self) -> Any:
        self.fill()
        return super().items()

    def values(self) -> Any:
        self.fill()
        return super().values()

    def keys(self) -> Any:
        self.fill()
        return super().keys()

    def __iter__(self) -> Iterator[int]:
        self.fill()
        return super().__iter__()

    def __len__(self) -> int:
        return super().__len__() + len(self._pending)

    def computed(self) -> int:
        """How many configs this session has computed so far."""
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
