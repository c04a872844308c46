"""ConvNet Playground: ``python app.py`` locally, and the Hugging Face Space's entry point.

Host and port come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (Gradio reads them itself).
``--images DIR [--name NAME]`` (repeatable; ``CONVENET_IMAGES`` on a Space) serves folders with
one sub-folder per class as datasets next to the shipped ones.
"""

from __future__ import annotations

import argparse
import logging

from convenet.inspector import FEATUREVIS_DIR
from convenet.memory import limit_arenas
from convenet.settings import SETTINGS, quiet_tensorflow
from convenet.warmup import start_warmup
from ui import gradio_compat

# First, before anything imports Gradio: its version is checked, and Gradio's internals are
# patched only here (ui/gradio_compat). CONVENET_LEAN_SESSIONS=0 keeps Gradio's own sessions.
gradio_compat.install(lean_sessions=SETTINGS.lean_sessions)

from ui.app import CSS, HEAD, build_app  # noqa: E402
from ui.common import AppState  # noqa: E402
from ui.folders import compute_at_start, folder_datasets, parse_folder_args  # noqa: E402
from ui.server import serve  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
limit_arenas()  # freed memory goes back to the system after a large upload
quiet_tensorflow()  # before Keras is first imported (lazily, on the first model built)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parse_folder_args(parser)
    return parser.parse_known_args()[0]  # a Space or a test runner may pass its own


folders = folder_datasets(_arguments().images)
state = AppState(folders=folders)
compute_at_start(state.playground, folders)
demo = build_app(state)

if __name__ == "__main__":
    # allowed: the dataset images (shipped and served folders), the shipped channel pictures
    allowed = [str(state.source.root), str(FEATUREVIS_DIR), *(str(spec.root) for spec in folders)]
    start_warmup(state.playground)  # first uses cost what later ones do (CONVENET_WARMUP=0: off)
    serve(demo, allowed=allowed, css=CSS, head=HEAD)
