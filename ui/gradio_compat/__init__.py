"""Where the app reaches into Gradio's private internals, each patch in a module of its own
with a test that fails if Gradio changes underneath it (tests/test_gradio_compat.py).

The server edge (``ui.server``, ``ui.guard``, ``ui.sessions``) still patches Gradio's routes,
queue and session holder where it lives; moving those here is the next step (issue 24).
"""
