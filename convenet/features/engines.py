"""What a precompute engine is: the types the local and the Ray engine share with the shard
writer, in a module of their own so that neither imports the other."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

Image = tuple[str, str]
"""(path relative to the images folder, class: its first folder, or "" for a loose image)."""
Shard = tuple[list[Image], dict[str, np.ndarray], dict[int, str]]
Engine = Callable[[Iterator[Image]], Iterator[Shard]]
"""Turns the images still to do into shards, one per ``shard_size`` images in order: (those
images, the per-layer features of the readable ones, why each other one could not be read, by
its position among them)."""
