"""Gradio's upload folder and file cache: where the app puts files that Gradio serves and sweeps.

``gradio.utils.get_upload_folder`` reads ``GRADIO_TEMP_DIR`` at each call, and Gradio serves a
file only from there (or from ``allowed_paths``); neither is in its documented API.
"""

from __future__ import annotations

from pathlib import Path

from gradio import processing_utils
from gradio import utils as gradio_utils


def upload_folder() -> Path:
    """Gradio's folder for uploads and generated files (read at each call, as Gradio does)."""
    return Path(gradio_utils.get_upload_folder())


def cache_file(path: Path | str) -> str:
    """A content-addressed copy of ``path`` in the upload folder, which Gradio serves."""
    return processing_utils.save_file_to_cache(str(path), str(upload_folder()))
