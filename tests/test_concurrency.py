"""Quick and slow work have workers of their own, so a search never queues behind a slow view.

Gradio runs each concurrency group's events on that group's workers; events of other groups
cannot hold them. (tests/test_load.py checks the behaviour on a running app.)
"""

from __future__ import annotations

import pytest

SLOW = {
    "heavy": ("quality", "projection", "compare", "side_by_side", "explain_prediction"),
    "featurevis": ("featurevis", "show_channel", "invert"),
    "why": ("why_match", "why_panel"),
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
def events() -> list[tuple[str, str, str, object]]:
    """(API name, function name, concurrency group, limit) of every event of the app."""
    from ui.app import build_app

    return [
        (
            str(fn.api_name),
            getattr(fn.fn, "__name__", ""),
            fn.concurrency_id,
            fn.concurrency_limit,
        )
        for fn in build_app().fns.values()
    ]


def test_searches_have_a_group_of_their_own(events) -> None:
    searching = {(function, limit) for _, function, group, limit in events if group == "search"}
    assert searching == {("search", 8), ("run_search", 8), ("search_clicked", 8)}


@pytest.mark.parametrize("group", SLOW)
def test_every_slow_view_is_in_a_small_group_apart_from_searches(events, group) -> None:
    where = {api_name: g for api_name, _, g, _ in events}
    for name in SLOW[group]:
        assert where[name] == group, f"{name} runs in {where[name]!r}, not {group!r}"
    limits = {limit for _, _, g, limit in events if g == group}
    assert limits and limits <= {1, 2, "default"}
