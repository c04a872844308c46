"""What one API call costs the server beyond its own work.

Lean sessions: a new session computes no block config until one is read, and reads the same
configs as Gradio's own session state when it is (deep links and component updates). The
monitoring summary: brought up to date every few hundred events, not after each one.
"""

from __future__ import annotations

import gradio as gr
import pytest
from gradio.state_holder import SessionState

from ui.app import build_app
from ui.gradio_compat.sessions import (
    LazyConfigs,
    LeanSessionState,
)
from ui.server import ANALYTICS_EVERY, configure_queue

pytestmark = pytest.mark.quick


@pytest.fixture(scope="module")
def demo() -> gr.Blocks:
    return build_app()


def test_a_new_session_computes_no_config(demo: gr.Blocks) -> None:
    lean = LeanSessionState(demo)
    assert isinstance(lean.config_values, LazyConfigs)
    assert lean.config_values.computed() == 0
    assert len(lean.config_values) == len(SessionState(demo).config_values) > 100


def test_read_configs_equal_gradios_in_the_same_order(demo: gr.Blocks) -> None:
    lean, eager = LeanSessionState(demo), SessionState(demo)
    assert list(lean.components) == list(eager.components)
    assert list(lean.config_values) == list(eager.config_values)
    assert lean.config_values.computed() == len(eager.config_values)


def test_component_updates_land_as_in_gradios_session(demo: gr.Blocks) -> None:
    """A value written into one config (what a deep link stores), and a block replaced by an
    update, read back as Gradio's own session state has them, whenever the rest is filled."""
    lean, eager = LeanSessionState(demo), SessionState(demo)
    textbox = next(k for k, b in demo.blocks.items() if isinstance(b, gr.Textbox))
    markdown = next(k for k, b in demo.blocks.items() if isinstance(b, gr.Markdown))
    for state in (lean, eager):
        state._update_value_in_config(textbox, "typed by the user")
        state[markdown] = gr.Markdown("replaced")
    assert lean.config_values.computed() == 2
    assert lean.config_values[textbox]["props"]["value"] == "typed by the user"
    assert list(lean.components) == list(eager.components)


def test_a_sessions_events_in_several_threads_read_configs_safely(demo: gr.Blocks) -> None:
    """Events of one session run in worker threads at once: one saving a deep link (reads all)
    while others read and update single configs never see a config go missing."""
    from concurrent.futures import ThreadPoolExecutor

    lean, eager = LeanSessionState(demo), SessionState(demo)
    keys = list(eager.config_values)

    def read_one(i: int) -> None:
        key = keys[i % len(keys)]
        assert key in lean.config_values
        lean._update_value_in_config(key, f"value {key}")

    with ThreadPoolExecutor(8) as pool:
        work = [pool.submit(read_one, i) for i in range(4 * len(keys))]
        work += [pool.submit(lambda: list(lean.components)) for _ in range(16)]
        for done in work:
            done.result()
    for key in keys:
        eager._update_value_in_config(key, f"value {key}")
    assert list(lean.components) == list(eager.components)


def test_reading_a_block_that_is_not_there_is_a_key_error(demo: gr.Blocks) -> None:
    configs = LeanSessionState(demo).config_values
    assert -1 not in configs
    with pytest.raises(KeyError):
        configs[-1]


def test_the_monitoring_summary_is_not_rebuilt_after_every_event(
    demo: gr.Blocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = demo._queue
    configure_queue(demo)
    frames = []
    build = queue._get_df
    monkeypatch.setattr(queue, "_get_df", lambda records: frames.append(1) or build(records))
    records = [{"function": "search", "status": "success", "process_time": 0.01}]
    for events in range(1, 2 * ANALYTICS_EVERY + 1):
        queue.events_recorded = events
        summary = queue.compute_analytics_summary(records)
    assert len(frames) == 2
    assert summary["functions"]["search"]["total_requests"] >= 1


def test_gradios_own_sessions_are_a_setting_for_comparisons() -> None:
    from convenet.settings import read_settings

    assert read_settings({}).lean_sessions is True
    assert read_settings({"CONVENET_LEAN_SESSIONS": "0"}).lean_sessions is False
