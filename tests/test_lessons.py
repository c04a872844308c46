"""The lessons never say more than the shipped data shows, and each link names a real view."""

from __future__ import annotations

from pathlib import Path

import pytest

from convenet.lessons import LESSONS, lesson_records
from convenet.models.registry import get_model_spec
from convenet.paths import PRECOMPUTED_DIR
from convenet.playground import Playground

pytestmark = pytest.mark.quick


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Playground:
    return Playground(PRECOMPUTED_DIR, tmp_path_factory.mktemp("lessons-cache"))


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.title for lesson in LESSONS])
def test_every_number_a_lesson_states_holds_on_the_shipped_data(lesson, pg: Playground) -> None:
    states_a_number = "{margin}" in lesson.text
    assert states_a_number == (lesson.measure is not None and lesson.margin != 0.0) or (
        lesson.margin == 0.0 and lesson.measure is not None
    )
    if lesson.measure is not None:
        assert lesson.measure(pg) >= lesson.margin, lesson.title
        assert str(lesson.margin) in lesson.sentence or lesson.margin == 0.0


def test_each_lesson_links_to_views_that_exist(pg: Playground) -> None:
    panels = {"side", "overview", "why", "similarity", "map", "compare"}
    for lesson in LESSONS:
        view = lesson.view
        spec = get_model_spec(view["model"])
        assert view["layer"] in spec.layer_names or view.get("tab") == "explorer"
        assert view.get("dataset", "stamps200") in pg.datasets()
        assert view.get("panel", "side") in panels


def test_six_to_eight_lessons_as_records_with_their_measured_claims(pg: Playground) -> None:
    records = lesson_records(pg)
    assert 6 <= len(records) <= 8
    assert [r["number"] for r in records] == list(range(1, len(records) + 1))
    for record in records:
        assert record["link"].startswith("?") and f"lesson={record['number']}" in record["link"]
        if record["claim"]:
            assert record["claim"]["measured"] >= record["claim"]["at_least"]
    assert Path(PRECOMPUTED_DIR).is_dir()
