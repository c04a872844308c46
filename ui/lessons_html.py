"""The Lessons list: each step a link that opens its whole view (the current one marked), and
what a link may open besides the view: one panel of the Search tab (``?panel=``)."""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from convenet.lessons import LESSONS

# The Search tab's panels by the name a link opens them with, in the order they are wired.
PANELS = ("overview", "map", "similarity", "compare", "side", "why")


def lessons_html(current: int | None = None) -> str:
    """Numbered steps, each its title as a link and one sentence of what to notice; opened by a
    lesson's link, the current step comes first with a link to the next, the list folded (on
    a phone the view then starts a few lines down, not a screen)."""
    items = []
    for number, lesson in enumerate(LESSONS, start=1):
        here = " class='cn-lesson-here' aria-current='step'" if number == current else ""
        items.append(
            f"<li{here}><a href='{html.escape(lesson.link(number))}' target='_self'>"
            f"{html.escape(lesson.title)}</a>: {html.escape(lesson.sentence)}</li>"
        )
    steps = f"<ol class='cn-lessons'>{''.join(items)}</ol>"
    if current is None:
        return (
            "<p>Each step opens a view that shows one idea; read the sentence, then play with "
            f"it.</p>{steps}"
        )
    lesson = LESSONS[current - 1]
    following = (
        f" <a href='{html.escape(LESSONS[current].link(current + 1))}' target='_self'>Next: "
        f"{html.escape(LESSONS[current].title)} →</a>"
        if current < len(LESSONS)
        else ""
    )
    return (
        f"<p class='cn-lesson-now'><b>Step {current} of {len(LESSONS)}: "
        f"{html.escape(lesson.title)}.</b> {html.escape(lesson.sentence)}{following}</p>"
        f"<details><summary>All {len(LESSONS)} steps</summary>{steps}</details>"
    )


def opened_by_link(params: dict[str, str]) -> tuple[tuple[Any, ...], str]:
    """What a link opens besides its view: the lessons (``lesson=N``, that step marked) and one
    panel (``panel=NAME``), as updates for the lessons box, its list and each of ``PANELS``;
    and a sentence naming a panel or lesson this page does not have ("" if none)."""
    said = []
    lesson, panel = params.get("lesson"), params.get("panel")
    number = int(lesson) if lesson and lesson.isdigit() else None
    if lesson is not None and not (number and 1 <= number <= len(LESSONS)):
        said.append(f"lesson {lesson[:20]}")
        number = None
    if panel is not None and panel not in PANELS:
        said.append(f"panel {panel[:20]}")
    lessons = (gr.Accordion(open=True), lessons_html(number)) if number else (gr.skip(), gr.skip())
    panels = tuple(gr.Accordion(open=True) if name == panel else gr.skip() for name in PANELS)
    sentence = (
        f"This link asked for {' and '.join(said)}, which this page does not have." if said else ""
    )
    return (*lessons, *panels), sentence
