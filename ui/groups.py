"""The queue's concurrency groups, one record each: which events share workers, how many, and
whether their handlers run at a lower CPU priority (``ui.server.run_slow_groups_in_background``).

Searches have workers of their own, so a crowd in the slow views never holds a search; the slow
groups run in low-priority threads, so the cores go to searches first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Group:
    """One concurrency group: its name in Gradio's queue and its workers."""

    id: str
    limit: int
    background: bool  # slow work: handlers run at a lower CPU priority and stop when abandoned
    why: str

    def events(self) -> dict[str, Any]:
        """The keyword arguments that put an event in this group."""
        return {"concurrency_id": self.id, "concurrency_limit": self.limit}


SEARCH = Group("search", 8, False, "searches and the search API")
FOLLOW = Group("follow", 2, True, "the open panels redrawn after each search")
HEAVY = Group(
    "heavy", 1, True, "panels drawn on open (map, similarity, side by side), Grad-CAM API"
)
EXPLORER = Group("explorer", 2, True, "the Model Explorer's Keras views")
FEATUREVIS = Group("featurevis", 1, True, "feature visualization (an optimisation loop)")
WHY = Group(
    "why", 2, True, "why-match explanations (a model's first builds its ONNX session, seconds)"
)
OWN_IMAGES = Group("own_images", 1, True, "extracting the features of a visitor's own images")

GROUPS: tuple[Group, ...] = (SEARCH, FOLLOW, HEAVY, EXPLORER, FEATUREVIS, WHY, OWN_IMAGES)
BACKGROUND_GROUPS: tuple[str, ...] = tuple(group.id for group in GROUPS if group.background)
