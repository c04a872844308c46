"""Choose the DBA and QE parameters and the ``best`` recipe from measurements, honestly.

Everything is chosen on one dataset (``--tune``, default stamps200) and reported on the other,
which it never saw: the DBA and QE parameters that maximise their own recipe, then the
combination of steps (pooling x flip x fuse x DBA x QE) that maximises the mean over the
offline models of the best layer's leave-one-out precision@10 (cosine). The choice is written
to ``convenet/data/recipes.json``; the table of every recipe on both datasets is printed as
Markdown (``--json`` for machines). Features a view needs are computed once into the cache.

    python scripts/choose_recipe.py             # tune on stamps200, write the choice
    python scripts/choose_recipe.py --tune clipart200 --dry-run   # the reverse, as a check

The table's ``layer`` is each recipe's best layer, and ``gain`` compares with plain's best.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
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


def mean_score(pg: Playground, dataset: str, models: list[str], recipe: Recipe) -> float:
    return sum(best_layer(pg, dataset, model, recipe)[0] for model in models) / len(models)


def choose(pg: Playground, dataset: str, models: list[str]) -> dict:
    """The parameters and the combination that search best on ``dataset``."""
    grid = [Expansion(n, alpha) for n, alpha in itertools.product(NEIGHBORS, ALPHAS)]
    dba = max(grid, key=lambda e: mean_score(pg, dataset, models, Recipe("dba", "", dba=e)))
    qe = max(grid, key=lambda e: mean_score(pg, dataset, models, Recipe("qe", "", qe=e)))
    combos = [
        Recipe("best", "", pooling, flip, fuse, dba if use_dba else None, qe if use_qe else None)
        for pooling, flip, fuse, use_dba, use_qe in itertools.product(
            ("avg", "gem"), *[(False, True)] * 4
        )
    ]
    best = max(combos, key=lambda recipe: mean_score(pg, dataset, models, recipe))
    return {
        "chosen_on": dataset,
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


def table(pg: Playground, models: list[str], recipes: dict[str, Recipe]) -> list[dict]:
    """Every recipe's best-layer precision@10 per dataset and model, and its gain over plain."""
    rows = []
    for dataset, model in itertools.product(DATASETS, models):
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", default="stamps200", choices=DATASETS)
    parser.add_argument("--dry-run", action="store_true", help="report the choice, write nothing")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    pg = Playground(PRECOMPUTED_DIR)
    models = [spec.key for spec in MODELS.values() if spec.offline]
    choice = choose(pg, args.tune, models)
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
