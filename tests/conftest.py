"""Shared fixtures: a private cache per test session, and small real images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CONVENET_HUB_OFFLINE", "1")  # no test touches the internet


@pytest.fixture(scope="session")
def photo() -> object:
    """A real photo (scikit-learn's sample of a Chinese temple) as an RGB array."""
    from sklearn.datasets import load_sample_image

    return load_sample_image("china.jpg")


@pytest.fixture()
def photo_file(tmp_path: Path, photo) -> Path:
    from PIL import Image

    path = tmp_path / "china.jpg"
    Image.fromarray(photo).save(path, quality=90)
    return path
