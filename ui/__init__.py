"""Gradio front end: a thin layer over ``convenet.playground``; all logic lives in the core.

Gradio's private internals are used only in ``ui.gradio_compat``, applied by ``app.py``.
"""
