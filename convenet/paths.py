"""Where convenet keeps its files, so every module agrees on one place."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DATA_DIR = PACKAGE_DIR / "data"
PRECOMPUTED_DIR = REPO_DIR / "precomputed"


def cache_dir() -> Path:
    """Writable cache (converted weights, computed features); CONVENET_CACHE overrides it."""
    root = Path(os.environ.get("CONVENET_CACHE", Path.home() / ".cache" / "convenet"))
    root.mkdir(parents=True, exist_ok=True)
    return root
