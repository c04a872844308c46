"""Choose the DBA and QE parameters and the ``best`` recipe from measurements, honestly.

The choice is made on the datasets named by ``--tune`` (default: both shipped datasets): the
DBA and QE parameters that maximise their own recipe, then the combination of steps (pooling x
flip x fuse x DBA x QE) that maximises the mean over those datasets and the offline models of
the best layer's leave-one-out precision@10 (cosine). The choice is written to
``convenet/data/recipes.json``; the table of every recipe on both datasets is printed as
Markdown (``--json`` for machines). Features a view needs are computed once into the cache.

A choice made on the images it is measured on flatters itself, so ``--check`` makes the choice
on each dataset alone and measures it on the other one, which it never saw.

    python scripts/choose_recipe.py             # tune on both datasets, write the choice
    python scripts/choose_recipe.py --check     # held-out check: tune on one, measure the other

The table's ``layer`` is each recipe's best layer, and ``gain`` compares with plain's best.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convenet.models.registry import MODELS  # noqa: E402
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402
from convenet.playground import Playground  # noqa: E402
from convenet.search.recipes import (  # noqa: E402
    CHOICE_FILE,
    Expansion,
    Recipe,
    build_recipes,
    evaluate_recipe,
)

DATASETS = ("stamps200", "clipart200")
NEIGHBORS = (1, 2, 3, 5, 7, 10, 15)
ALPHAS = (1.0, 3.0)
K = 10
METRIC = "cosine"


def best_layer(pg: Playground, dataset: str, model: str, recipe: Recipe) -> tuple[float, str]:
    """(precision@10, layer) of the recipe's best curated layer."""
    spec = MODELS[model]
    labels = pg.dataset(dataset).labels
    views = pg.views(dataset, model)
    scores = {
        layer: evaluate_recipe(recipe, views, spec.layer_names, layer, labels, METRIC, K).p_at_k
        for layer in spec.layer_names
    }
    layer = max(scores, key=scores.get)
    return scores[layer], layer


def mean_score(pg: Playground, datasets: Sequence[str], models: list[str], recipe: Recipe) -> float:
    """The best layer's precision@10, averaged over ``datasets`` x ``models``."""
    pairs = list(itertools.product(datasets, models))
    return sum(best_layer(pg, dataset, model, recipe)[0] for dataset, model in pairs) / len(pairs)


def choose(pg: Playground, datasets: Sequence[str], models: list[str]) -> dict:
    """The parameters and the combination that search best on ``datasets``."""
    grid = [Expansion(n, alpha) for n, alpha in itertools.product(NEIGHBORS, ALPHAS)]
    dba = max(grid, key=lambda e: mean_score(pg, datasets, models, Recipe("dba", "", dba=e)))
    qe = max(grid, key=lambda e: mean_score(pg, datasets, models, Recipe("qe", "", qe=e)))
    combos = [
        Recipe("best", "", pooling, flip, fuse, dba if use_dba else None, qe if use_qe else None)
        for pooling, flip, fuse, use_dba, use_qe in itertools.product(
            ("avg", "gem"), *[(False, True)] * 4
        )
    ]
    best = max(combos, key=lambda recipe: mean_score(pg, datasets, models, recipe))
    return {
        "chosen_on": " and ".join(datasets),
        "models": models,
        "dba": {"neighbors": dba.neighbors, "alpha": dba.alpha},
        "qe": {"neighbors": qe.neighbors, "alpha": qe.alpha},
        "best": {
            "pooling": best.pooling,
            "flip": best.flip,
            "fuse": best.fuse,
            "dba": best.dba is not None,
            "qe": best.qe is not None,
        },
    }


def table(
    pg: Playground,
    models: list[str],
    recipes: dict[str, Recipe],
    datasets: Sequence[str] = DATASETS,
) -> list[dict]:
    """Every recipe's best-layer precision@10 per dataset and model, and its gain over plain."""
    rows = []
    for dataset, model in itertools.product(datasets, models):
        plain, _ = best_layer(pg, dataset, model, recipes["plain"])
        for recipe in recipes.values():
            score, layer = best_layer(pg, dataset, model, recipe)
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "recipe": recipe.name,
                    "steps": recipe.steps,
                    "p_at_10": round(score, 4),
                    "layer": layer,
                    "gain": round(score / plain - 1, 4),
                }
            )
    return rows


def held_out(pg: Playground, models: list[str]) -> list[dict]:
    """``best`` chosen on each dataset alone, measured on the other one."""
    rows = []
    for tuned, other in itertools.permutations(DATASETS):
        choice = choose(pg, (tuned,), models)
        print(json.dumps(choice), file=sys.stderr)
        recipes = build_recipes(choice)
        picked = {name: recipes[name] for name in ("plain", "best")}
        rows += table(pg, models, picked, (other,))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tune", default="both", choices=("both", *DATASETS), help="the datasets to choose on"
    )
    parser.add_argument("--dry-run", action="store_true", help="report the choice, write nothing")
    parser.add_argument(
        "--check", action="store_true", help="choose on each dataset, measure on the other"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pg = Playground(PRECOMPUTED_DIR)
    models = [spec.key for spec in MODELS.values() if spec.offline]
    if args.check:
        rows = held_out(pg, models)
    else:
        choice = choose(pg, DATASETS if args.tune == "both" else (args.tune,), models)
        print(json.dumps(choice), file=sys.stderr)
        if not args.dry_run:
            CHOICE_FILE.write_text(json.dumps(choice, indent=2) + "\n", encoding="utf-8")
        rows = table(pg, models, build_recipes(choice))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("| dataset | model | recipe | p@10 | layer | gain vs plain |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['dataset']} | {MODELS[row['model']].title} | `{row['recipe']}` "
            f"| {row['p_at_10']:.3f} | {row['layer']} | {row['gain']:+.1%} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
