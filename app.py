"""ConvNet Playground: ``python app.py`` locally, and the Hugging Face Space's entry point.

Host and port come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (Gradio reads them itself).
"""

from __future__ import annotations

import logging

from convenet.images import MAX_FILE_BYTES
from ui.app import CSS, build_app
from ui.common import AppState

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

state = AppState()
demo = build_app(state)

if __name__ == "__main__":
    # Quick searches share a generous limit; slow views queue behind a limit of their own.
    demo.queue(default_concurrency_limit=2, max_size=256).launch(
        max_file_size=MAX_FILE_BYTES,
        allowed_paths=[str(state.source.root)],  # the dataset images, nothing else
        css=CSS,
        show_error=True,
    )
