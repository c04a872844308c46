"""Quick and slow work have workers of their own, so a search never queues behind a slow view,
and slow work runs at a lower CPU priority, so a search does not wait for the CPU behind it.

Gradio runs each concurrency group's events on that group's workers; events of other groups
cannot hold them. (tests/test_load.py checks the behaviour on a running app; tests/test_priority.py
the low-priority threads.)
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.quick

SLOW = {
    "heavy": ("quality", "projection", "compare", "side_by_side", "explain_prediction"),
    "featurevis": ("featurevis", "show_channel", "invert"),
    "why": ("why_match", "why_panel"),
    "follow": ("follow",),  # the open panels' update after each search
    "explorer": (
        "explorer_layers",
        "filters",
        "activations",
        "predictions",
        "gradcam",
        "channel_page",
    ),
}


@pytest.fixture(scope="module")
def events() -> list[tuple[str, str, str, object, object]]:
    """(API name, function name, concurrency group, limit, handler) of every event of the app."""
    from ui.app import build_app

    return [
        (
            str(fn.api_name),
            getattr(fn.fn, "__name__", ""),
            fn.concurrency_id,
            fn.concurrency_limit,
            fn.fn,
        )
        for fn in build_app().fns.values()
    ]


def test_searches_have_a_group_of_their_own(events) -> None:
    searching = {(function, limit) for _, function, group, limit, _ in events if group == "search"}
    assert searching == {("search", 8), ("run_search", 8), ("search_clicked", 8)}


@pytest.mark.parametrize("group", SLOW)
def test_every_slow_view_is_in_a_small_group_apart_from_searches(events, group) -> None:
    where = {api_name: g for api_name, _, g, _, _ in events}
    for name in SLOW[group]:
        assert where[name] == group, f"{name} runs in {where[name]!r}, not {group!r}"
    limits = {limit for _, _, g, limit, _ in events if g == group}
    assert limits and limits <= {1, 2, "default"}


def test_slow_views_run_at_low_priority_and_searches_do_not(events) -> None:
    """Their handlers are wrapped by ``convenet.priority.backgrounded`` (whose threads
    tests/test_priority.py checks); a search and an upload run where Gradio runs them."""
    background = {name for name, _, _, _, fn in events if getattr(fn, "background", False)}
    for group in SLOW:
        assert set(SLOW[group]) <= background, f"{group} views run at the usual priority"
    searching = {name for name, _, group, _, _ in events if group == "search"}
    assert searching and not searching & background


def test_every_group_is_a_record_and_each_event_has_its_limit(events) -> None:
    """A group is named once (``ui.groups``): every event of a named group runs with that
    record's workers, and only events that name no group share the default workers."""
    from ui.groups import GROUPS

    records = {group.id: group.limit for group in GROUPS}
    used = {(group, limit) for _, _, group, limit, _ in events}
    named = {(group, limit) for group, limit in used if group in records}
    assert named == {(group, records[group]) for group, _ in named}
    assert {group for group, _ in named} == set(records)  # every record is used
    unnamed = {group for group, _ in used} - set(records)
    assert all(not str(group) or str(group).isdigit() for group in unnamed), unnamed


def test_a_weighed_lru_keeps_within_its_bytes() -> None:
    """Values weighed by ``weigh`` are evicted oldest first once they pass ``max_bytes``;
    the newest always stays, even alone over the limit."""
    from convenet.lru import BuildOnceLRU

    cache: BuildOnceLRU[bytes] = BuildOnceLRU(100, weigh=len, max_bytes=10)
    for key in range(5):
        cache.get(key, lambda: b"x" * 4)
    assert len(cache) == 2 and cache.nbytes == 8
    cache.get("big", lambda: b"y" * 25)
    assert len(cache) == 1 and cache.nbytes == 25
    cache.discard(lambda key: key == "big")
    assert len(cache) == 0 and cache.nbytes == 0
