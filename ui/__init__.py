"""Gradio front end: a thin layer over ``convenet.playground``; all logic lives in the core."""
