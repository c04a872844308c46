"""Gradio front end: a thin layer over ``convenet.playground``; all logic lives in the core."""

from ui.gradio_import import install as _skip_gradio_stub_rewrite

_skip_gradio_stub_rewrite()  # before any ui module imports Gradio: ~1 s of every start
