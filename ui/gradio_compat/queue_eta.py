"""Progress estimates that follow today's durations: Gradio estimates a job's time as the
mean of every run of its function so far, so one slow first run (a model's first use) made
the why-match panel promise 58.9 s for work that took 4.2 s. The estimate here is the median
of the last few runs: one outlier no longer sets it, and it follows a change within a few."""

from __future__ import annotations

from collections import deque
from statistics import median

from gradio import queueing

RECENT = 5  # runs the estimate is the median of


class RecentProcessTime(queueing.ProcessTime):
    """Gradio's per-function timing record, with ``avg_time`` the median of the last runs."""

    def __init__(self) -> None:
        super().__init__()
        self.recent: deque[float] = deque(maxlen=RECENT)

    def add(self, time: float) -> None:
        super().add(time)
        self.recent.append(time)
        self.avg_time = median(self.recent)


def install(queue: queueing.Queue) -> None:
    """Estimate ``queue``'s jobs from their functions' recent runs."""
    queue.process_time_per_fn.default_factory = RecentProcessTime
