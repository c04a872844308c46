"""ConvNet Playground: ``python app.py`` locally, and the Hugging Face Space's entry point.

Host and port come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (Gradio reads them itself).
"""

from __future__ import annotations

import logging

from convenet.featurevis_gallery import FEATUREVIS_DIR
from convenet.memory import limit_arenas
from ui.app import CSS, HEAD, build_app
from ui.common import AppState
from ui.server import serve

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
limit_arenas()  # freed memory goes back to the system after a large upload

state = AppState()
demo = build_app(state)

if __name__ == "__main__":
    # allowed: the dataset images and the shipped channel pictures, nothing else
    serve(demo, allowed=[str(state.source.root), str(FEATUREVIS_DIR)], css=CSS, head=HEAD)
