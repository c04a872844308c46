"""Where ``python app.py``'s start goes: Gradio's import, ours (imports and building the app),
and Gradio's launch until the server listens. Prints one JSON line; run by
``bench_startup_memory.py`` in a fresh interpreter with the app's environment.

    python benchmarks/start_phases.py
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(REPO))
    from ui.gradio_compat.stubs import skip_stub_rewrite

    skip_stub_rewrite()  # first, as app.py's gradio_compat.install: no type stubs rewritten

    began = time.perf_counter()
    import gradio.blocks  # everything Gradio brings (FastAPI, pandas, the MCP SDK ...)

    imported = time.perf_counter()
    launch = gradio.blocks.Blocks.launch
    marks: dict[str, float] = {}

    def timed_launch(self: gradio.blocks.Blocks, *args: object, **kwargs: object) -> object:
        marks["launch"] = time.perf_counter()
        kwargs["prevent_thread_lock"] = True  # return once the server listens
        return launch(self, *args, **kwargs)

    gradio.blocks.Blocks.launch = timed_launch
    os.chdir(REPO)
    runpy.run_path(str(REPO / "app.py"), run_name="__main__")
    listening = time.perf_counter()
    phases = {
        "gradio_import": imported - began,
        "ours": marks["launch"] - imported,
        "launch": listening - marks["launch"],
    }
    print(json.dumps(phases), flush=True)
    os._exit(0)  # the server thread would keep the process alive


if __name__ == "__main__":
    main()
