"""A user's mistake is one warning line and one plain sentence; a fault keeps its traceback."""

from __future__ import annotations

import json
import logging

import gradio as gr
import pytest

from ui.common import friendly

pytestmark = pytest.mark.quick


@friendly
def handler(kind: str) -> str:
    if kind == "mistake":
        raise ValueError("k must be between 1 and 199, got 0")
    if kind == "fault":
        raise RuntimeError("a bug in the app")
    return "fine"


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "convenet"]


def test_a_mistake_is_one_warning_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="convenet"), pytest.raises(gr.Error) as info:
        handler("mistake")
    assert info.value.message == "k must be between 1 and 199, got 0"
    assert not info.value.print_exception
    (record,) = records(caplog)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == "handler: k must be between 1 and 199, got 0"


def test_a_fault_logs_its_traceback_and_shows_one_sentence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="convenet"), pytest.raises(gr.Error) as info:
        handler("fault")
    assert info.value.message == "Something went wrong on our side; please try again."
    (record,) = records(caplog)
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "RuntimeError: a bug in the app" in caplog.text  # the traceback is in the log


@friendly
def uses_a_library(text: str) -> object:
    return json.loads(text)  # the standard library's ValueError: not a sentence for a visitor


def test_a_library_value_error_is_a_fault_not_a_users_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only our own checks speak to the visitor: a ValueError from inside a library is a bug
    of ours (its text may name internals), so it logs its traceback and shows one sentence."""
    with caplog.at_level(logging.INFO, logger="convenet"), pytest.raises(gr.Error) as info:
        uses_a_library("not a number")
    assert info.value.message == "Something went wrong on our side; please try again."
    (record,) = records(caplog)
    assert record.levelno == logging.ERROR and record.exc_info is not None
