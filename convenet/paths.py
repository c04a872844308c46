"""Where convenet keeps its files, so every module agrees on one place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from convenet.settings import cache_root

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DATA_DIR = PACKAGE_DIR / "data"
PRECOMPUTED_DIR = REPO_DIR / "precomputed"


def cache_dir() -> Path:
    """Writable cache (converted weights, computed features); CONVENET_CACHE overrides it.

    If that folder cannot be created (read-only home), a per-user temporary folder serves, so
    the app still starts; what it caches is then lost at reboot.
    """
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        root = Path(tempfile.gettempdir()) / f"convenet-cache-{os.getuid()}"
        root.mkdir(parents=True, exist_ok=True)
    return root
