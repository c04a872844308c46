"""ImageNet class names, to turn a 1000-way prediction into readable labels."""

from __future__ import annotations

import json
from functools import cache

from convenet.paths import DATA_DIR

CLASSES_FILE = DATA_DIR / "imagenet_classes.json"


@cache
def _names() -> tuple[str, ...]:
    names = json.loads(CLASSES_FILE.read_text(encoding="utf-8"))
    if not (isinstance(names, list) and len(names) == 1000):
        raise ValueError(f"{CLASSES_FILE} must list 1000 class names")
    return tuple(names)


def class_names() -> list[str]:
    """The 1000 ImageNet class names in model output order (read once, then cached)."""
    return list(_names())
