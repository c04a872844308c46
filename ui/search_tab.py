"""Semantic Search tab: pick dataset, model, layer and metric; see what the layer finds similar.

Events here name the component that shows their progress (``show_progress_on``): Gradio's page
keeps a loading status for every component that ever showed one, and at each status message of
every later event copies each of those on screen, whole value and all (200 pictures for the
dataset's gallery, 50 tiles for the results). So searches show their progress on the headline
above the results, the galleries and the layout boxes never do, and a click costs the page a few
small copies instead of big ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from convenet.lessons import LESSONS
from ui import search_events
from ui.common import (
    DEFAULT_MODEL,
    AppState,
    default_layer,
)
from ui.groups import FOLLOW, SEARCH
from ui.lessons_html import PANELS, lessons_html
from ui.own_images import OwnImagesBox
from ui.search_events import (
    CONTROLS,
    RESULTS,
    bound,
    layer_update,
    mark_query,
    on_layer_change,
    on_model_change,
    on_part_change,
    on_upload,
    restore,
    run_search,
    search_clicked,
    show_dataset,
    upload_refused,
)
from ui.search_layout import search_layout
from ui.search_panels import Follower, View, build_panels
from ui.side_by_side import build_side_by_side
from ui.view_state import LINK_PARTS, LiveView, ViewState


@dataclass
class SearchTab:
    """The search tab's controls, and hooks that change its view from other events."""

    dataset: gr.Dropdown
    model: gr.Dropdown
    layer: gr.Dropdown
    current_model: gr.State
    change_view: Callable[..., None]
    open_dataset: Callable[..., None]
    own: OwnImagesBox


def lessons_accordion() -> tuple[gr.Accordion, gr.HTML]:
    """The lessons, closed: in the page's header row (``ui.app``), beside the copy-link button,
    so on a phone they cost no line of their own above the results."""
    with gr.Accordion(
        f"Lessons: {len(LESSONS)} things to notice", open=False, elem_id="cn-lessons-box"
    ) as box:
        lessons = gr.HTML(lessons_html(), elem_id="cn-lessons")
    return box, lessons


def build_search_tab(
    state: AppState,
    demo: gr.Blocks,
    link_note: gr.Markdown,
    lessons: tuple[gr.Accordion, gr.HTML],
) -> SearchTab:
    """The tab; ``link_note`` (by the copy-link button) says when the view cannot travel;
    ``lessons`` (made in the header) open with the links that name one."""
    pg = state.playground
    live = gr.State(LiveView(ViewState(state.default_dataset)))
    lessons_box, lessons_html_box = lessons
    laid = search_layout(state)
    dataset = laid.dataset
    own = laid.own
    model = laid.model
    layer = laid.layer
    metric = laid.metric
    recipe = laid.recipe
    notice = laid.notice
    query_picture = laid.query_picture
    upload = laid.upload
    upload_notice = laid.upload_notice
    examples = laid.examples
    query_index = laid.query_index
    link = laid.link
    refusal = laid.refusal
    summary = laid.summary
    results = laid.results
    legend = laid.legend
    k = laid.k
    csv_button = laid.csv_button
    json_button = laid.json_button
    why = laid.why
    category = laid.category
    dataset_images = laid.dataset_images
    hits = gr.State([])
    visible = gr.State([])
    current_model = gr.State(DEFAULT_MODEL)
    current_layer = gr.State(default_layer(DEFAULT_MODEL))
    view = View(
        *[dataset, model, layer, metric, recipe, query_index, upload, notice],
        *[current_model, current_layer, hits, layer_update],
    )
    named = {
        "dataset": dataset,
        "model": model,
        "layer": layer,
        "metric": metric,
        "recipe": recipe,
        "k": k,
        "query_index": query_index,
        "upload": upload,
        "notice": notice,
        "upload_notice": upload_notice,
        "current_model": current_model,
        "current_layer": current_layer,
    }
    controls = [named[name] for name in CONTROLS]
    shown = {
        "query_picture": query_picture,
        "summary": summary,
        "legend": legend,
        "results": results,
        "hits": hits,
        "csv": csv_button,
        "json": json_button,
        "link": link,
        "link_note": link_note,
    }
    search_outputs = [shown[name] for name in RESULTS]
    search: dict[str, Any] = SEARCH.events()
    search["show_progress_on"] = summary  # see the module's docstring
    unfollowed: list[Any] = []  # searches wired before the panels that follow them existed
    follow: list[Callable[[Any], None]] = []

    def followed(searched: Any) -> None:
        """Mirror the view in the page URL and update the panels once the results are in."""
        searched.then(None, link, None, js=URL_JS, trigger_mode="always_last")
        searched.then(  # no progress on the gallery: see tests/test_page_cost.py
            mark_query,
            [query_index, upload, visible],
            dataset_images,
            show_progress="hidden",
            show_progress_on=summary,
            api_visibility="private",
            trigger_mode="always_last",
        )
        if follow:
            follow[0](searched)
        else:
            unfollowed.append(searched)

    def search_after(event: Any) -> None:
        """Chain a search (of the session's view, whatever the boxes say) after ``event``.

        One that is asked for while the last is running runs after it (Gradio's default drops
        it): it searches the newest view, which the running one may have missed.
        """
        run = bound(run_search, state)
        chained = {**search, "trigger_mode": "always_last", "api_visibility": "private"}
        followed(event.then(run, live, search_outputs, **chained))

    def change_view(
        trigger: Callable[..., Any], fn: Callable[..., Any], inputs: list[Any], **named: Any
    ) -> Any:
        """``trigger`` (an event method) changes the view through ``fn(state, live, *inputs)``;
        every control then shows the view, and the search follows. Returns the change.

        A second use of the same control while the first is under way runs too, never dropped
        (Gradio's default drops it; "always_last" ran it without its search): each change
        applies to the newest view, so the last choice is the one that holds.
        """
        named.setdefault("trigger_mode", "multiple")
        changed = trigger(bound(fn, state), [live, *inputs], controls, **named)
        search_after(changed)
        return changed

    def search_on_click(gallery: gr.Gallery, shown: gr.State, api_name: str) -> None:
        """A click on one of ``gallery``'s images (``shown``: their dataset indices) makes it the
        query and searches with it, in one event."""
        outputs = [*controls, *search_outputs]
        clicked = bound(search_clicked, state)
        followed(
            gallery.select(
                clicked,
                [live, shown],
                outputs,
                api_name=api_name,
                trigger_mode="multiple",  # see change_view
                **search,
            )
        )

    panel_followers, similarity, accordions = build_panels(pg, view, change_view)
    side_by_side = build_side_by_side(pg, state.default_dataset, view)
    side_by_side.show_pair(similarity)
    followers = [*panel_followers, side_by_side.follower, why.connect(pg, view)]
    follow.append(follow_searches(followers))
    for searched in unfollowed:  # the panels' own clicks searched before they were all built
        follow[0](searched)
    gallery_outputs = [category, dataset_images, visible]
    accordions.update(side=side_by_side.panel, why=why.accordion)
    opened = [lessons_box, lessons_html_box, *(accordions[name] for name in PANELS)]
    search_after(
        demo.load(
            bound(restore, state),
            [live, upload],
            [*controls, *gallery_outputs, *opened],
            api_name="restore_view",
            show_progress_on=summary,  # see the module's docstring
        )
    )

    def open_dataset(trigger: Callable[..., Any], **named: Any) -> None:
        """When ``trigger`` (an event method) has chosen a dataset: show its images, search."""
        search_after(
            trigger(
                bound(search_events.open_dataset, state),
                [live, dataset],
                [*controls, *gallery_outputs],
                show_progress_on=summary,  # see the module's docstring
                **named,
            )
        )

    open_dataset(dataset.input, api_name="dataset_images")
    category.input(
        bound(show_dataset, state),
        [dataset, category],
        [category, dataset_images, visible],
        api_name="filter_class",
        show_progress_on=category,  # see the module's docstring
    )
    change_view(model.input, on_model_change, [model], api_name="layers_for_model")
    change_view(layer.input, on_layer_change, [layer], api_name="layer_changed")
    change_view(metric.input, on_part_change("metric"), [metric], api_name="metric_changed")
    change_view(recipe.input, on_part_change("recipe"), [recipe], api_name="recipe_changed")
    change_view(k.release, on_part_change("k"), [k], api_name="k_changed")
    search_on_click(dataset_images, visible, "pick_query")
    search_on_click(results, hits, "pick_result")
    # The edge refuses a file that is not an image before this runs: its sentence stays next
    # to the box, which shows the last query again; the search does not run.
    accepted = upload.upload(
        bound(on_upload, state), [live, upload], controls, api_name="upload_changed"
    )
    accepted.failure(
        bound(upload_refused, state), [live, refusal], controls, js=REFUSAL_JS, **PRIVATE
    )
    search_after(accepted)
    change_view(upload.clear, on_upload, [upload], **PRIVATE)
    if examples is not None:  # clicking an example fills the upload box: search with it
        change_view(examples.load_input_event.then, on_upload, [upload], **PRIVATE)

    return SearchTab(dataset, model, layer, current_model, change_view, open_dataset, own)


PRIVATE: dict[str, Any] = {"api_visibility": "private"}
# The edge's refusal reaches the page as an error toast; its sentence is read from there.
REFUSAL_JS = """
async (live, refusal) => {
  const said = () => [...document.querySelectorAll(".toast-body.error [data-testid=toast-text]")];
  for (let wait = 0; wait < 20 && !said().length; wait++) {
    await new Promise((done) => setTimeout(done, 100));
  }
  const texts = said();
  return [live, texts.length ? texts[texts.length - 1].textContent : ""];
}
"""


def follow_searches(followers: list[Follower]) -> Callable[[Any], None]:
    """One event after a search updates every panel that follows the query.

    One event, not one per panel: each queued event costs the page a round of status updates
    (every component on screen is copied), which delayed the next click. A panel whose update
    fails says so in a warning; the others are still updated.
    """
    inputs = [component for f in followers for component in f.inputs]
    outputs = [component for f in followers for component in f.outputs]

    def follow(*values: Any) -> tuple[Any, ...]:
        updates: list[Any] = []
        start = 0
        for f in followers:
            part = values[start : start + len(f.inputs)]
            start += len(f.inputs)
            try:
                got = f.fn(*part)
            except gr.Error as exc:
                gr.Warning(exc.message)
                got = tuple(gr.skip() for _ in f.outputs)
            updates += list(got) if len(f.outputs) > 1 else [got]
        return tuple(updates)

    def after(event: Any) -> None:
        event.success(
            follow,
            inputs,
            outputs,
            api_visibility="private",
            **FOLLOW.events(),
            trigger_mode="always_last",  # panels follow the newest search, not a dropped one
        )

    return after


# The URL names the view whose results are on screen, and nothing else of it (an upload cannot
# travel in a link, so the URL then names no query); another tab's parameters are left alone.
URL_JS = f"""
(link) => {{
  if (!link) return [];
  const url = new URL(window.location.href);
  const view = new URLSearchParams(link);
  for (const key of {list(LINK_PARTS)!r}) {{
    if (view.has(key)) url.searchParams.set(key, view.get(key));
    else url.searchParams.delete(key);
  }}
  window.history.replaceState(null, "", url);
  return [];
}}
"""
