"""Each patch of Gradio's internals (ui/gradio_compat) still fits the Gradio installed: the
thing it replaces exists with the shape it expects, and the patch has its effect."""

from __future__ import annotations

import inspect

import gradio as gr
import pytest
from gradio import queueing
from gradio.mcp import GradioMCPServer

from ui.gradio_compat import mcp_json, queue_eta

pytestmark = pytest.mark.quick


def test_mcp_answers_are_postprocessed_where_the_patch_expects() -> None:
    params = list(inspect.signature(mcp_json._ORIGINAL).parameters)
    assert params == ["self", "data", "root_url"]
    mcp_json.install()
    assert GradioMCPServer.postprocess_output_data is mcp_json.postprocess_output_data


def test_estimates_follow_recent_runs_not_one_slow_first_run() -> None:
    with gr.Blocks() as demo:
        gr.Markdown("x")
    queue = demo._queue
    assert isinstance(queue, queueing.Queue)
    queue_eta.install(queue)
    timing = queue.process_time_per_fn["some function"]
    assert isinstance(timing, queueing.ProcessTime)
    for seconds in (58.9, 4.2, 4.1, 4.3):
        timing.add(seconds)
    assert timing.avg_time == pytest.approx(4.25)  # Gradio's own mean: 17.9 s
    assert timing.count == 4
