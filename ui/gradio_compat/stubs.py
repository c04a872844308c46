"""Import Gradio without rewriting its type stubs: about a second of every start.

Gradio's ``ComponentMeta`` calls ``create_or_modify_pyi`` for every component class it defines:
it reads and ``ast``-parses the class's source file and rewrites the ``.pyi`` beside it. That is
a tool for Gradio's own developers (the stubs ship in the wheel and only type checkers read
them); at run time it costs ~1 s of the ~3 s ``import gradio`` takes here and writes ``.pyi``
files next to any module that defines a component. ``skip_stub_rewrite`` makes that call a no-op
for the ``gradio.component_meta`` loaded afterwards; nothing else in Gradio changes.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

MODULE = "gradio.component_meta"
FUNCTION = "create_or_modify_pyi"


def no_stub_rewrite(*_args: object, **_kwargs: object) -> None:
    """Stand-in for Gradio's stub writer: the installed stubs stay as shipped."""


class _StubSkippingFinder(importlib.abc.MetaPathFinder):
    """Finds ``gradio.component_meta`` as usual and swaps the stub writer once it has run."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            if hasattr(module, FUNCTION):  # a Gradio without it needs nothing skipped
                setattr(module, FUNCTION, no_stub_rewrite)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def skip_stub_rewrite() -> None:
    """Skip Gradio's stub rewriting; works only before its first import (later calls do nothing)."""
    if MODULE in sys.modules or any(isinstance(f, _StubSkippingFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _StubSkippingFinder())
