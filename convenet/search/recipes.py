"""Retrieval recipes: the standard tricks that make image search better, as pure functions.

A recipe turns a dataset's stored feature views (pooling x mirrored or not, per layer) into the
database vectors that get ranked, and an image's own views into its query vector. Every step is
vectorised NumPy over (n, d) arrays, so a recipe costs about as much as switching the metric.

DBA and QE work on L2-normalised vectors and look for neighbours by cosine similarity. The
database is expanded once; a query is expanded with its own neighbours in the database and is
never added to it. Their parameters and the ``best`` combination come from
``convenet/data/recipes.json``, written by ``scripts/choose_recipe.py`` from measurements.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from convenet.errors import choose
from convenet.features.extract import View
from convenet.paths import DATA_DIR
from convenet.search.evaluation import RetrievalScores, evaluate_retrieval

CHOICE_FILE = DATA_DIR / "recipes.json"
FUSED_LAYERS = 3  # the chosen layer and the two curated layers after it

Views = Callable[[View, str], np.ndarray]  # (view, layer) -> (n, d) features
STEP_NAMES = {
    "gem": "GeM",
    "rmac": "R-MAC",
    "ms": "multi-scale",
    "flip": "flip",
    "fuse": "fuse",
    "dba": "DBA",
    "qe": "QE",
}


@dataclass(frozen=True)
class Expansion:
    """Replace a vector by the similarity^alpha-weighted mean of itself and its neighbours."""

    neighbors: int
    alpha: float


@dataclass(frozen=True)
class Recipe:
    """A combination of steps; ``plain`` is none of them (average pooling, one layer)."""

    name: str
    description: str
    pooling: str = "avg"
    flip: bool = False
    fuse: bool = False
    dba: Expansion | None = None
    qe: Expansion | None = None

    @property
    def views(self) -> tuple[View, ...]:
        """The stored feature views this recipe reads."""
        base = View(self.pooling)
        return (base, View(self.pooling, True)) if self.flip else (base,)

    @property
    def combination(self) -> tuple[object, ...]:
        """What the recipe does, without its name and words: equal ones search alike."""
        return self.pooling, self.flip, self.fuse, self.dba, self.qe

    @property
    def steps(self) -> str:
        """The steps in words, e.g. "GeM + flip + DBA"."""
        return " + ".join(STEP_NAMES[step] for step in single_steps(self)) or "plain"


def single_steps(recipe: Recipe) -> tuple[str, ...]:
    """The one-step recipes (``RECIPES``' gem, rmac, flip, fuse, dba, qe) that ``recipe``
    combines, in the order ``Recipe.steps`` names them: what each step is worth alone can be
    measured."""
    used = [(recipe.pooling, recipe.pooling != "avg"), ("flip", recipe.flip), ("fuse", recipe.fuse)]
    used += [("dba", recipe.dba is not None), ("qe", recipe.qe is not None)]
    return tuple(name for name, on in used if on)


def layers_alike(name: str, layers: Sequence[str], layer: str) -> tuple[str, ...]:
    """The other curated layers whose searches equal ``layer``'s under the recipe ``name``: with
    fuse, the last ``FUSED_LAYERS`` layers all read the same three (alike only where the
    recipe at each of them is the same too)."""

    def search(at: str) -> tuple[object, ...]:
        recipe = recipe_at(name, layers, at)
        return *recipe.combination, layers_read(recipe, layers, at)

    this = search(layer)
    return tuple(other for other in layers if other != layer and search(other) == this)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    x = np.asarray(x, np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def flip_average(x: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """The mean of an image's vector and its mirror image's: left-right invariance for free."""
    return (np.asarray(x, np.float32) + np.asarray(mirrored, np.float32)) / 2


def fused_layers(layers: Sequence[str], layer: str) -> tuple[str, ...]:
    """``layer`` and the next two curated layers (the last three for the last layers)."""
    start = min(list(layers).index(layer), max(len(layers) - FUSED_LAYERS, 0))
    return tuple(layers[start : start + FUSED_LAYERS])


def layers_read(recipe: Recipe, layers: Sequence[str], layer: str) -> tuple[str, ...]:
    """The curated layers a recipe reads to make ``layer``'s vectors."""
    return fused_layers(layers, layer) if recipe.fuse else (layer,)


def fuse(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate L2-normalised blocks, so every layer weighs the same whatever its scale."""
    return np.concatenate([l2_normalize(block) for block in blocks], axis=1)


def expand(
    queries: np.ndarray,
    database: np.ndarray,
    expansion: Expansion,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Each query row, normalised, plus its nearest database rows weighted by similarity^alpha.

    The query weighs 1 (its similarity to itself); negative similarities weigh 0. ``exclude``
    names, per query, the database row that is the query itself (leave-one-out). The result is
    L2-normalised. Ties go to the lower row index.
    """
    q, db = l2_normalize(queries), l2_normalize(database)
    sim = q @ db.T
    if exclude is not None:
        sim[np.arange(len(q)), exclude] = -np.inf
    count = min(expansion.neighbors, db.shape[0] - (exclude is not None))
    nearest = np.argsort(-sim, axis=1, kind="stable")[:, :count]
    weights = np.maximum(np.take_along_axis(sim, nearest, axis=1), 0.0) ** expansion.alpha
    return l2_normalize(q + np.einsum("qn,qnd->qd", weights, db[nearest]))


def base_vectors(recipe: Recipe, views: Views, layers: Sequence[str], layer: str) -> np.ndarray:
    """Pooled, flip-averaged and fused vectors, before any DBA or QE."""

    def one(name: str) -> np.ndarray:
        x = views(View(recipe.pooling), name)
        return flip_average(x, views(View(recipe.pooling, True), name)) if recipe.flip else x

    if recipe.fuse:
        return fuse([one(name) for name in layers_read(recipe, layers, layer)])
    x = one(layer)
    # float16 rows are a large dataset's memory map (Playground.features): kept, not copied.
    return x if x.dtype == np.float16 else np.asarray(x, np.float32)


def database_vectors(recipe: Recipe, base: np.ndarray) -> np.ndarray:
    """What gets ranked: DBA replaces every row by its expansion; QE alone only normalises."""
    if recipe.dba is not None:
        return expand(base, base, recipe.dba, np.arange(len(base)))
    return l2_normalize(base) if recipe.qe is not None else base


def query_vectors(
    recipe: Recipe,
    query_base: np.ndarray,
    base: np.ndarray,
    database: np.ndarray,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Queries in the database's space: DBA as the database had it, then alpha-QE.

    For dataset image i pass ``exclude=[i]``: it is then exactly its own database row before QE.
    """
    q = np.asarray(query_base, np.float32)
    if recipe.dba is not None and exclude is not None:
        q = database[exclude]  # what expanding it again would give, without a pass over base
    elif recipe.dba is not None:
        q = expand(q, base, recipe.dba)
    if recipe.qe is not None:
        q = expand(q, database, recipe.qe, exclude)
    return q


def leave_one_out(
    recipe: Recipe, views: Views, layers: Sequence[str], layer: str
) -> tuple[np.ndarray, np.ndarray]:
    """(database, queries) with every dataset image as a query, each left out of its own
    neighbours: what the app ranks when that image is clicked, for every image at once."""
    base = base_vectors(recipe, views, layers, layer)
    database = database_vectors(recipe, base)
    return database, query_vectors(recipe, base, base, database, np.arange(len(base)))


def evaluate_recipe(
    recipe: Recipe,
    views: Views,
    layers: Sequence[str],
    layer: str,
    labels: np.ndarray,
    metric: str = "cosine",
    k: int = 10,
    class_names: Sequence[str] | None = None,
) -> RetrievalScores:
    """Leave-one-out precision@k, mAP@k and weighted score of a recipe at one layer."""
    database, queries = leave_one_out(recipe, views, layers, layer)
    return evaluate_retrieval(database, labels, metric, k, class_names, queries=queries)


def load_choice(path: Path = CHOICE_FILE) -> dict:
    """The measured choice of DBA/QE parameters and of the ``best`` combination."""
    return json.loads(path.read_text(encoding="utf-8"))


def build_recipes(choice: dict) -> dict[str, Recipe]:
    """Every named recipe, with the measured parameters and ``best`` combination filled in."""
    dba, qe = Expansion(**choice["dba"]), Expansion(**choice["qe"])
    single = (
        Recipe("plain", "Global average pooling of one layer: what the playground always did."),
        Recipe("gem", "Generalised-mean pooling (p = 3), between average and max.", "gem"),
        Recipe(
            "rmac",
            "R-MAC: the maxima of the whole map and of 2x2 and 3x3 overlapping regions, each "
            "L2-normalised, added up, so a small object gets regions of its own.",
            "rmac",
        ),
        Recipe(
            "ms",
            "Multi-scale GeM: the image at 1, 1/√2 and 1/2 of the input size, GeM-pooled at each "
            "size, the three combined by their power mean (p = 3).",
            "ms",
        ),
        Recipe("flip", "The mean of the image's and its mirror image's vectors.", flip=True),
        Recipe(
            "fuse",
            "The chosen layer and the next two curated layers, each L2-normalised, side by side.",
            fuse=True,
        ),
        Recipe(
            "dba",
            f"Database-side augmentation: every image becomes the weighted mean of itself and "
            f"its {dba.neighbors} nearest neighbours (weights similarity^{dba.alpha:g}).",
            dba=dba,
        ),
        Recipe(
            "qe",
            f"Alpha query expansion: the query becomes the weighted mean of itself and its "
            f"{qe.neighbors} nearest results (weights similarity^{qe.alpha:g}).",
            qe=qe,
        ),
    )
    combined = _combination(
        choice["best"], dba, qe, f"The combination that searched best on {choice['chosen_on']}"
    )
    return {recipe.name: recipe for recipe in (*single, combined)}


def _combination(combo: dict, dba: Expansion, qe: Expansion, said: str) -> Recipe:
    """The ``best`` recipe of a combination in recipes.json, described as ``said: steps``."""
    recipe = Recipe(
        "best",
        "",
        combo["pooling"],
        combo["flip"],
        combo["fuse"],
        dba if combo["dba"] else None,
        qe if combo["qe"] else None,
    )
    return replace(recipe, description=f"{said}: {recipe.steps}.")


def build_best_by_depth(choice: dict) -> tuple[Recipe, ...]:
    """``best`` at each depth: position i of the curated layers (first to last) has its own
    measured combination, since the tricks that help the early layers are not those that help
    the last ones. Empty where the choice names none (``best`` then holds at every layer)."""
    dba, qe = Expansion(**choice["dba"]), Expansion(**choice["qe"])
    combos = choice.get("best_by_depth", [])
    return tuple(
        replace(
            _combination(combo, dba, qe, ""),
            description=f"The steps that searched best at this depth (curated layer {i + 1} of "
            f"{len(combos)}) on {choice['chosen_on']}.",
        )
        for i, combo in enumerate(combos)
    )


def depth_index(layers: Sequence[str], layer: str, positions: int) -> int:
    """``layer``'s place among ``layers`` scaled to ``positions`` places (first 0, last
    positions - 1), so a model with more or fewer curated layers maps onto the measured ones."""
    index, count = list(layers).index(layer), len(layers)
    return 0 if count == 1 else round(index * (positions - 1) / (count - 1))


_CHOICE = load_choice()
RECIPES: dict[str, Recipe] = build_recipes(_CHOICE)
BEST_BY_DEPTH: tuple[Recipe, ...] = build_best_by_depth(_CHOICE)
RECIPE_VIEWS: tuple[View, ...] = tuple(
    dict.fromkeys(view for recipe in (*RECIPES.values(), *BEST_BY_DEPTH) for view in recipe.views)
)


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; a clear error lists the valid ones."""
    return choose("recipe", name, RECIPES)


def recipe_at(name: str, layers: Sequence[str], layer: str) -> Recipe:
    """The recipe called ``name`` as it searches ``layer`` (one of the model's ``layers``):
    ``best`` is the combination measured best at that depth."""
    recipe = get_recipe(name)
    if recipe.name != "best" or not BEST_BY_DEPTH:
        return recipe
    return BEST_BY_DEPTH[depth_index(layers, layer, len(BEST_BY_DEPTH))]
