"""Every use of Gradio's private internals, behind one door.

The rest of ``ui/`` and ``app.py`` use Gradio's documented API only (``gradio.__all__``, the
arguments of components and events, ``gr.Request``); what that API does not offer is done here,
so a Gradio release (a security fix included) means reading this package and running
``tests/test_gradio_compat.py``, whose tests fail when Gradio changes underneath a patch:

- ``stubs``: Gradio's ``.pyi`` stub writer skipped at import (~1 s of each start).
- ``mcp_results``: an MCP tool's dict or list result sent as JSON text, not a Python repr.
- ``sessions``: sessions whose block configs are computed when first read.
- ``events``: two hooks on every event (the edge in ``ui.guard``), the API page's list,
  wrapping handlers, no FastAPI apps built before ``launch``, files Gradio keeps cached.
- ``queue``: the queue's limits, a check before each event is queued, the choice of the next
  event to run, whether a running event's client still waits.
- ``files``: Gradio's upload folder and its file cache.

``install`` applies the process-wide patches; ``app.py`` calls it before anything imports
Gradio. The other modules are named functions the UI calls on its own ``Blocks``.
"""

from __future__ import annotations

import logging
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

log = logging.getLogger("convenet")

SUPPORTED = ">=6.30,<7"  # the patches follow Gradio 6's internals from 6.30 on
TESTED = ("6.30", "6.31")  # minors the suite has passed on (docs/testing.md)


def supported_sentence(installed: str | None) -> str:
    """The one sentence that says which Gradio this app runs on, and how to get one."""
    found = f"Gradio {installed} is installed" if installed else "Gradio is not installed"
    return (
        f"ConvNet Playground runs on Gradio {SUPPORTED} (tested on {', '.join(TESTED)}), but "
        f'{found}; install a supported one with: pip install "gradio{SUPPORTED}"'
    )


def check_version(installed: str | None = None) -> None:
    """Refuse to start outside ``SUPPORTED`` (one sentence, no traceback); warn on a newer
    minor than tested, whose internals the patches' tests have not yet been run against."""
    if installed is None:
        try:
            installed = metadata.version("gradio")
        except metadata.PackageNotFoundError:
            raise SystemExit(supported_sentence(None)) from None
    try:
        version = Version(installed)
    except InvalidVersion:
        raise SystemExit(supported_sentence(installed)) from None
    if not SpecifierSet(SUPPORTED).contains(version, prereleases=True):
        raise SystemExit(supported_sentence(installed))
    if f"{version.major}.{version.minor}" not in TESTED:
        log.warning(
            "Gradio %s is newer than the versions tested (%s); if something breaks, "
            "tests/test_gradio_compat.py names the patch",
            installed,
            ", ".join(TESTED),
        )


def install(*, lean_sessions: bool = True) -> None:
    """Check Gradio's version and apply the process-wide patches; call before Gradio is first
    imported (the stub skip needs that) and before the app is built. Calling again is harmless.

    ``lean_sessions=False`` keeps Gradio's own sessions (``CONVENET_LEAN_SESSIONS=0``).
    """
    from ui.gradio_compat.stubs import skip_stub_rewrite

    check_version()
    skip_stub_rewrite()
    # Imported here, after the stub skip: these import Gradio.
    from ui.gradio_compat.mcp_results import send_json_results
    from ui.gradio_compat.sessions import use_lean_sessions

    send_json_results()
    if lean_sessions:
        use_lean_sessions()
