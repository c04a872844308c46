"""What a recipe and each of its steps alone change at the searched view, said on the page: a
trick can cost P@10, and with fuse the last layers search alike."""

from __future__ import annotations

import html

import pytest

from convenet.models.loading import get_model_spec
from convenet.paths import PRECOMPUTED_DIR
from convenet.playground import Playground
from convenet.search.recipes import RECIPES, evaluate_recipe, recipe_at, single_steps
from ui.search_handlers import recipe_effects

pytestmark = pytest.mark.quick
MODEL, DATASET = "efficientnet_lite0", "clipart200"
LAYERS = get_model_spec(MODEL).layer_names


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Playground:
    return Playground(PRECOMPUTED_DIR, tmp_path_factory.mktemp("feature-cache"))


def direct(pg: Playground, recipe: str, layer: str) -> float:
    """P@10 by the evaluation module's own path (not the Playground's cache)."""
    labels = pg.dataset(DATASET).labels
    views = pg.views(DATASET, MODEL)
    chosen = recipe_at(recipe, LAYERS, layer)
    return evaluate_recipe(chosen, views, LAYERS, layer, labels, "cosine", 10).p_at_k


@pytest.mark.parametrize(
    ("recipe", "layer"), [("best", "top_conv"), ("flip", "block4c_expand_conv")]
)
def test_each_change_is_the_leave_one_out_difference(pg: Playground, recipe: str, layer: str):
    effects = pg.step_effects(DATASET, MODEL, layer, "cosine", recipe, 10)
    steps = single_steps(recipe_at(recipe, LAYERS, layer))
    names = [recipe, *steps] if steps != (recipe,) else list(steps)
    assert [name for name, _ in effects] == names
    plain = direct(pg, "plain", layer)
    for name, change in effects:
        assert change == pytest.approx(direct(pg, name, layer) - plain, abs=1e-6)
    assert any(abs(change) > 0.001 for _, change in effects)  # not all zero: a real difference


def test_plain_has_no_effects_and_best_names_its_steps(pg: Playground) -> None:
    assert pg.step_effects(DATASET, MODEL, "top_conv", "cosine", "plain") == []
    assert " + ".join(RECIPES[s].steps for s in single_steps(RECIPES["best"])) == (
        RECIPES["best"].steps
    )


def test_with_fuse_the_last_three_layers_search_alike(pg: Playground) -> None:
    last = LAYERS[-1]
    assert pg.searches_alike(MODEL, last, "fuse") == tuple(LAYERS[-3:-1])
    assert pg.searches_alike(MODEL, LAYERS[0], "fuse") == ()
    assert pg.searches_alike(MODEL, last, "plain") == ()
    a, b = (
        pg.search(DATASET, MODEL, layer, "cosine", query_index=5, k=10, recipe="fuse")
        for layer in (last, LAYERS[-3])
    )
    assert [h.index for h in a.hits] == [h.index for h in b.hits]  # what the sentence claims


def test_the_sentence_says_what_adds_and_what_costs() -> None:
    effects = [("best", 0.05), ("gem", -0.01), ("flip", 0.004), ("dba", 0.04)]
    assert recipe_effects(effects, (), "top_conv") == (
        "Here, P@10 over every query: best adds 0.05 over plain "
        "(alone: GeM costs 0.01, flip changes less than 0.01, DBA adds 0.04)."
    )
    alike = recipe_effects([], ("block6a_expand_conv", "block6d_project_conv"), "top_conv")
    assert "top_conv searches exactly like block6a_expand_conv and block6d_project_conv" in alike
    assert recipe_effects([], (), "top_conv") == ""


def test_the_overview_says_when_fuse_makes_cells_equal(pg: Playground) -> None:
    from ui.search_handlers import heatmap_html
    from ui.search_panels import alike_cells, alike_groups

    fused = pg.quality(DATASET, "cosine", 10, recipe="fuse")
    values = list(fused[MODEL].values())
    assert values[-1] == values[-2] == values[-3]  # what the sentence claims
    said = alike_cells(pg, fused, "fuse")
    assert said == (
        " With fuse, each model's last 3 layers (L6-L8) read the same layers with the same "
        "steps, so they are one cell: one search, not 3."
    )
    merged = alike_groups(pg, fused, "fuse")
    assert merged[MODEL] == LAYERS[-3:]
    page = heatmap_html(fused, 0.1, 10, said, merged)
    assert html.escape(said.strip()) in page
    row = page.split("<tbody>")[1].split("</tr>")[0]  # Lite0's row
    assert row.count("<td") == len(LAYERS) - 2  # L6-L8 are one cell
    assert "colspan='3'" in row and f"data-layer='{LAYERS[-1]}'" in row
    assert f"data-layer='{LAYERS[-2]}'" not in row
    plain = heatmap_html(pg.quality(DATASET, "cosine", 10, recipe="plain"), 0.1, 10)
    assert plain.split("<tbody>")[1].split("</tr>")[0].count("<td") == len(LAYERS)
    assert alike_cells(pg, pg.quality(DATASET, "cosine", 10, recipe="plain"), "plain") == ""


def test_layers_that_search_alike_are_one_choice_of_the_layer_box() -> None:
    from ui.common import layer_choices

    assert [value for _, value in layer_choices(MODEL)] == list(LAYERS)
    fused = layer_choices(MODEL, "fuse")
    assert [value for _, value in fused] == [*LAYERS[:5], LAYERS[-1]]
    assert fused[-1][0] == f"{LAYERS[-1]} · 6-8 of 8, one search with fuse"
    chosen = layer_choices(MODEL, "fuse", LAYERS[-3])  # the view's layer stays the box's value
    assert [value for _, value in chosen] == list(LAYERS[:6])
    assert chosen[-1][0] == f"{LAYERS[-3]} · 6-8 of 8, one search with fuse"
