"""Retrieval recipes against hand-computed references on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest

from convenet.features.extract import View
from convenet.search.evaluation import evaluate_retrieval
from convenet.search.recipes import (
    BEST_BY_DEPTH,
    RECIPE_VIEWS,
    RECIPES,
    Expansion,
    Recipe,
    base_vectors,
    build_best_by_depth,
    database_vectors,
    depth_index,
    evaluate_recipe,
    expand,
    fused_layers,
    get_recipe,
    layers_alike,
    leave_one_out,
    load_choice,
    query_vectors,
    recipe_at,
)

pytestmark = pytest.mark.quick

LAYERS = ("a", "b", "c", "d")
# Three unit vectors: x0 . x1 = 0.8, x1 . x2 = 0.6, x0 . x2 = 0.
X = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], np.float32)


def unit(*rows: list[float]) -> np.ndarray:
    x = np.array(rows, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def views_of(table: dict[tuple[View, str], list]) -> callable:
    return lambda view, layer: np.array(table[view, layer], np.float32)


def test_plain_is_the_average_pooled_layer_unchanged() -> None:
    views = views_of({(View(), "b"): [[3.0, 4.0], [1.0, 2.0]]})
    database, queries = leave_one_out(RECIPES["plain"], views, LAYERS, "b")
    np.testing.assert_array_equal(database, [[3, 4], [1, 2]])
    np.testing.assert_array_equal(queries, database)


def test_gem_reads_the_gem_pooled_view() -> None:
    views = views_of({(View(), "a"): [[1.0, 1.0]], (View("gem"), "a"): [[2.0, 5.0]]})
    np.testing.assert_array_equal(base_vectors(RECIPES["gem"], views, LAYERS, "a"), [[2, 5]])


def test_flip_averages_the_image_and_its_mirror() -> None:
    views = views_of({(View(), "a"): [[1.0, 3.0]], (View(flip=True), "a"): [[3.0, 5.0]]})
    np.testing.assert_array_equal(base_vectors(RECIPES["flip"], views, LAYERS, "a"), [[2, 4]])


def test_fuse_takes_the_next_two_layers_or_the_last_three() -> None:
    assert fused_layers(LAYERS, "a") == ("a", "b", "c")
    assert fused_layers(LAYERS, "c") == ("b", "c", "d")
    assert fused_layers(LAYERS, "d") == ("b", "c", "d")
    views = views_of(
        {(View(), "a"): [[3.0, 4.0]], (View(), "b"): [[0.0, 2.0]], (View(), "c"): [[5.0]]}
    )
    got = base_vectors(RECIPES["fuse"], views, LAYERS, "a")
    np.testing.assert_allclose(got, [[0.6, 0.8, 0.0, 1.0, 1.0]])


def test_dba_one_neighbour_alpha_one() -> None:
    recipe = Recipe("t", "", dba=Expansion(1, 1.0))
    # x0 + 0.8 x1, x1 + 0.8 x0, x2 + 0.6 x1
    expected = unit([1.64, 0.48], [1.6, 0.6], [0.48, 1.36])
    np.testing.assert_allclose(database_vectors(recipe, X), expected, atol=1e-6)


def test_dba_weights_are_similarity_to_the_power_alpha() -> None:
    recipe = Recipe("t", "", dba=Expansion(2, 3.0))
    # x0: 0.8^3 x1 + 0^3 x2; x1: 0.8^3 x0 + 0.6^3 x2; x2: 0.6^3 x1 + 0^3 x0
    expected = unit([1.4096, 0.3072], [1.312, 0.816], [0.1728, 1.1296])
    np.testing.assert_allclose(database_vectors(recipe, X), expected, atol=1e-6)


def test_negative_similarity_weighs_nothing() -> None:
    out = expand(np.array([[2.0, 0.0]]), np.array([[-1.0, 0.0]]), Expansion(1, 1.0))
    np.testing.assert_allclose(out, [[1.0, 0.0]])


def test_qe_expands_the_query_and_leaves_the_database_alone() -> None:
    recipe = Recipe("t", "", qe=Expansion(2, 3.0))
    database = database_vectors(recipe, X)
    np.testing.assert_allclose(database, X, atol=1e-7)  # already unit length: unchanged
    upload = np.array([[2.0, 0.0]], np.float32)  # x0's direction; its neighbours: x0 (1), x1 (0.8)
    query = query_vectors(recipe, upload, X, database)
    np.testing.assert_allclose(query, unit([2.4096, 0.3072]), atol=1e-6)  # q + x0 + 0.8^3 x1
    assert database.shape == X.shape
    # A dataset image is left out of its own neighbours: x0 expands with x1 and x2 only.
    own = query_vectors(recipe, X[:1], X, database, np.array([0]))
    np.testing.assert_allclose(own, unit([1.4096, 0.3072]), atol=1e-6)


def test_dba_query_of_a_dataset_image_is_its_database_row() -> None:
    recipe = Recipe("t", "", dba=Expansion(2, 1.0))
    database, queries = leave_one_out(recipe, views_of({(View(), "a"): X.tolist()}), LAYERS, "a")
    np.testing.assert_allclose(queries, database, atol=1e-7)
    upload = query_vectors(recipe, np.array([[1.0, 0.0]]), X, database)
    np.testing.assert_allclose(upload, unit([2.64, 0.48]), atol=1e-6)  # q + x0 + 0.8 x1


def test_evaluate_plain_matches_evaluate_retrieval() -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(12, 5)).astype(np.float32)
    labels = np.repeat(np.arange(3), 4)
    views = views_of({(View(), "c"): feats.tolist()})
    got = evaluate_recipe(RECIPES["plain"], views, LAYERS, "c", labels, "cosine", 3)
    assert got == evaluate_retrieval(feats, labels, "cosine", 3)


def test_registry_names_describes_and_reads_the_measured_choice() -> None:
    assert list(RECIPES) == ["plain", "gem", "rmac", "ms", "flip", "fuse", "dba", "qe", "best"]
    assert all(recipe.description.endswith(".") for recipe in RECIPES.values())
    choice = load_choice()
    best = RECIPES["best"]
    assert best.pooling == choice["best"]["pooling"] and best.flip == choice["best"]["flip"]
    assert (best.dba is not None) == choice["best"]["dba"]
    assert RECIPES["dba"].dba == Expansion(**choice["dba"])
    assert set(RECIPE_VIEWS) >= {view for recipe in RECIPES.values() for view in recipe.views}
    assert set(RECIPE_VIEWS) >= {view for recipe in BEST_BY_DEPTH for view in recipe.views}
    with pytest.raises(ValueError, match="Unknown recipe 'magic'; choose one of: plain, gem"):
        get_recipe("magic")


def test_rmac_reads_the_rmac_view_and_is_named_so() -> None:
    views = views_of({(View(), "a"): [[1.0, 1.0]], (View("rmac"), "a"): [[7.0, 2.0]]})
    np.testing.assert_array_equal(base_vectors(RECIPES["rmac"], views, LAYERS, "a"), [[7, 2]])
    assert RECIPES["rmac"].steps == "R-MAC"
    assert Recipe("t", "", "rmac", flip=True, dba=Expansion(1, 1.0)).steps == "R-MAC + flip + DBA"


def test_depth_index_places_any_number_of_layers_onto_the_measured_depths() -> None:
    assert [depth_index(LAYERS, layer, 4) for layer in LAYERS] == [0, 1, 2, 3]
    assert [depth_index(LAYERS, layer, 8) for layer in LAYERS] == [0, 2, 5, 7]
    assert [depth_index(LAYERS, layer, 2) for layer in LAYERS] == [0, 0, 1, 1]
    assert depth_index(("only",), "only", 8) == 0


CHOICE = {
    "chosen_on": "somewhere",
    "dba": {"neighbors": 2, "alpha": 1.0},
    "qe": {"neighbors": 1, "alpha": 1.0},
    "best": {"pooling": "gem", "flip": False, "fuse": False, "dba": True, "qe": False},
    "best_by_depth": [
        {"pooling": "rmac", "flip": True, "fuse": False, "dba": False, "qe": False},
        {"pooling": "avg", "flip": False, "fuse": True, "dba": True, "qe": False},
    ],
}


def test_best_is_the_combination_measured_at_each_depth() -> None:
    first, last = build_best_by_depth(CHOICE)
    assert (first.name, first.steps, last.steps) == ("best", "R-MAC + flip", "fuse + DBA")
    assert first.description == (
        "The steps that searched best at this depth (curated layer 1 of 2) on somewhere."
    )
    assert build_best_by_depth({**CHOICE, "best_by_depth": []}) == ()


def test_best_as_searched_follows_the_layer_and_the_other_recipes_do_not() -> None:
    layers = ("a", "b", "c", "d", "e", "f", "g", "h")
    assert len(BEST_BY_DEPTH) == len(load_choice()["best_by_depth"]) == 8
    for i, layer in enumerate(layers):
        assert recipe_at("best", layers, layer) is BEST_BY_DEPTH[i]
        assert recipe_at("gem", layers, layer) is RECIPES["gem"]
    with pytest.raises(ValueError, match="Unknown recipe"):
        recipe_at("magic", layers, "a")


def test_layers_search_alike_only_with_the_same_steps_and_the_same_layers_read() -> None:
    layers = ("a", "b", "c", "d", "e", "f", "g", "h")
    assert layers_alike("fuse", layers, "h") == ("f", "g")
    assert layers_alike("plain", layers, "h") == ()
    fused_at = [i for i, recipe in enumerate(BEST_BY_DEPTH) if recipe.fuse]
    alike = layers_alike("best", layers, "h")
    # The last three read f, g and h; each counts only where best takes the same steps there.
    same = [
        layers[i]
        for i in (5, 6)
        if i in fused_at and BEST_BY_DEPTH[i].steps == BEST_BY_DEPTH[7].steps
    ]
    assert alike == (tuple(same) if 7 in fused_at else ())
