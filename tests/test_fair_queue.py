"""The order in which one worker of a concurrency group serves waiting events (ui.server
FairQueue), simulated with the run times the soak measured: a 16-step picture about 0.5 s,
a 384-step one about 12 s."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from ui.gradio_compat.queue import Waiting
from ui.server import FairQueue

pytestmark = pytest.mark.quick

GROUP = "featurevis"


def event(address: str, session: str) -> Waiting:
    request = SimpleNamespace(headers={}, client=SimpleNamespace(host=address))
    return Waiting(session, request, GROUP)


def serve(
    queued: list[tuple[Waiting, float]], fair: FairQueue | None = None
) -> list[tuple[str, float]]:
    """Run every queued (event, seconds) on one worker as ``fair`` picks them: the
    (session, finished at) of each, in the order they ran."""
    fair, clock, done = fair or FairQueue(), 0.0, []
    waiting = list(queued)
    while waiting:
        index = fair.next_index([e for e, _ in waiting])
        picked, seconds = waiting.pop(index)
        fair.served(picked)
        clock += seconds
        fair.finished(picked, seconds)
        done.append((str(picked.session_hash), clock))
    return done


def test_a_class_of_short_pictures_gets_its_share_of_time_beside_long_ones() -> None:
    """One visitor queued six long pictures first; six learners behind one school address ask
    for a short one each. Turns per job would finish the last learner after 75 s (a long
    picture between each two short ones); shares of time finish every learner within one
    long picture and the class's own work (12 + 6 x 0.5 s)."""
    greedy = [(event("127.0.0.2", "greedy"), 12.0) for _ in range(6)]
    learners = [(event("127.0.0.4", f"learner{n}"), 0.5) for n in range(6)]
    done = dict(serve(greedy + learners))
    last_learner = max(t for s, t in done.items() if s.startswith("learner"))
    assert last_learner <= 12.0 + 6 * 0.5


def test_visitors_with_equal_jobs_take_turns() -> None:
    """Equal work: one job each in turn, whoever queued more (the oldest first within)."""
    queued = [(event("127.0.0.2", f"a{n}"), 1.0) for n in range(3)]
    queued += [(event("127.0.0.3", f"b{n}"), 1.0) for n in range(3)]
    assert [s for s, _ in serve(queued)] == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_within_one_address_each_session_gets_its_share() -> None:
    """A class behind one address: four learners' single pictures wait for one of the greedy
    session's pictures, not for one each."""
    queued = [(event("127.0.0.4", "greedy"), 4.0) for _ in range(5)]
    queued += [(event("127.0.0.4", f"learner{n}"), 0.5) for n in range(4)]
    order = [s for s, _ in serve(queued)]
    assert order[:6] == ["greedy", "learner0", "learner1", "learner2", "learner3", "greedy"]


def test_a_running_job_counts_before_gradio_reports_its_end() -> None:
    """Gradio frees a worker before it says the job has ended: the next pick already counts
    the time the running job has had, so a long job's owner does not start a second one."""
    fair = FairQueue()
    other, long_job = event("127.0.0.3", "other"), event("127.0.0.2", "long")
    fair.served(other)
    fair.finished(other, 0.02)
    fair.served(long_job)
    time.sleep(0.06)  # running, not yet reported
    waiting = [event("127.0.0.2", "long"), event("127.0.0.3", "other")]
    assert fair.next_index(waiting) == 1


def test_time_spent_away_is_not_saved_up() -> None:
    """A visitor who comes back after another had the worker to themselves for a while
    starts about level with them: the one there all along waits for a job or two of the
    returning visitor's, not for a burst of six saved-up turns."""
    fair = FairQueue()
    serve([(event("127.0.0.5", "early"), 1.0)], fair)
    serve([(event("127.0.0.6", "regular"), 1.0) for _ in range(20)], fair)
    back = [(event("127.0.0.5", f"back{n}"), 1.0) for n in range(6)]
    order = [s for s, _ in serve([*back, (event("127.0.0.6", "regular"), 1.0)], fair)]
    assert order.index("regular") <= 2, order
