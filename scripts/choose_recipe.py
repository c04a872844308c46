"""Choose the DBA and QE parameters and the ``best`` recipe at every depth from measurements.

The choice is made on the shipped datasets only: the DBA and QE parameters that maximise their
own recipe, then, at each curated layer's depth, the combination of steps (pooling avg / GeM /
R-MAC / multi-scale GeM x flip x fuse x DBA x QE, 64 candidates) with the highest leave-one-out
precision@10 (cosine) at that layer, averaged over both datasets and the offline models;
``best`` is then the best known recipe at the layer a learner searches. A combination that is
best averaged over every layer is kept for layers the choice cannot place. Written to
``convenet/data/recipes.json``.

A choice measured where it was made flatters itself, so the same choice is also made on each
dataset alone and measured on the other one, which it never saw. Every figure goes to
``convenet/data/recipe_scores.json`` and the tables of docs/retrieval.md are rewritten from it.

    python scripts/choose_recipe.py            # choose, write the choice, results and docs
    python scripts/choose_recipe.py --dry-run  # print the tables, write nothing
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convenet.models.registry import MODELS  # noqa: E402
from convenet.paths import PRECOMPUTED_DIR, REPO_DIR  # noqa: E402
from convenet.playground import Playground  # noqa: E402
from convenet.search.recipes import (  # noqa: E402
    CHOICE_FILE,
    Expansion,
    Recipe,
    build_best_by_depth,
    build_recipes,
    evaluate_recipe,
)

DATASETS = ("stamps200", "clipart200")
POOLINGS = ("avg", "gem", "rmac", "ms")
NEIGHBORS = (1, 2, 3, 5, 7, 10, 15)
ALPHAS = (1.0, 3.0)
K = 10
METRIC = "cosine"
RESULTS = CHOICE_FILE.with_name("recipe_scores.json")
PAGE = REPO_DIR / "docs" / "retrieval.md"
START = "<!-- recipe tables: written by scripts/choose_recipe.py -->"
END = "<!-- end of recipe tables -->"


class Scores:
    """Leave-one-out precision@10 of a recipe at every curated layer, each computed once."""

    def __init__(self, pg: Playground) -> None:
        self.pg = pg
        self.cache: dict[tuple, np.ndarray] = {}

    def at_layers(self, dataset: str, model: str, recipe: Recipe) -> np.ndarray:
        key = (dataset, model, recipe.combination)
        if key not in self.cache:
            spec = MODELS[model]
            labels = self.pg.dataset(dataset).labels
            views = self.pg.views(dataset, model)
            self.cache[key] = np.array(
                [
                    evaluate_recipe(
                        recipe, views, spec.layer_names, layer, labels, METRIC, K
                    ).p_at_k
                    for layer in spec.layer_names
                ]
            )
        return self.cache[key]

    def mean(self, datasets: Sequence[str], models: Sequence[str], recipe: Recipe) -> np.ndarray:
        """Precision@10 per depth, averaged over ``datasets`` x ``models``."""
        pairs = itertools.product(datasets, models)
        return np.mean([self.at_layers(d, m, recipe) for d, m in pairs], axis=0)


def combination(recipe: Recipe) -> dict:
    return {
        "pooling": recipe.pooling,
        "flip": recipe.flip,
        "fuse": recipe.fuse,
        "dba": recipe.dba is not None,
        "qe": recipe.qe is not None,
    }


def choose(scores: Scores, datasets: Sequence[str], models: Sequence[str]) -> dict:
    """The parameters, the combination per depth and the one for every layer, on ``datasets``."""
    grid = [Expansion(n, alpha) for n, alpha in itertools.product(NEIGHBORS, ALPHAS)]

    def overall(recipe: Recipe) -> float:
        return float(scores.mean(datasets, models, recipe).mean())

    dba = max(grid, key=lambda e: overall(Recipe("dba", "", dba=e)))
    qe = max(grid, key=lambda e: overall(Recipe("qe", "", qe=e)))
    combos = [
        Recipe("best", "", pooling, flip, fuse, dba if use_dba else None, qe if use_qe else None)
        for pooling, flip, fuse, use_dba, use_qe in itertools.product(
            POOLINGS, *[(False, True)] * 4
        )
    ]
    table = np.array([scores.mean(datasets, models, recipe) for recipe in combos])
    return {
        "chosen_on": " and ".join(datasets),
        "models": list(models),
        "dba": {"neighbors": dba.neighbors, "alpha": dba.alpha},
        "qe": {"neighbors": qe.neighbors, "alpha": qe.alpha},
        "best": combination(combos[int(table.mean(axis=1).argmax())]),
        "best_by_depth": [combination(combos[int(i)]) for i in table.argmax(axis=0)],
    }


def measure(scores: Scores, choice: dict, datasets: Sequence[str], models: Sequence[str]) -> list:
    """Every recipe of ``choice`` at every layer: P@10, and its gain over plain there."""
    recipes = build_recipes(choice)
    by_depth = build_best_by_depth(choice)
    rows = []
    for dataset, model in itertools.product(datasets, models):
        spec = MODELS[model]
        plain = scores.at_layers(dataset, model, recipes["plain"])
        for name, recipe in recipes.items():
            per_layer = [by_depth[i] if name == "best" else recipe for i in range(len(plain))]
            values = [
                float(scores.at_layers(dataset, model, r)[i]) for i, r in enumerate(per_layer)
            ]
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "recipe": name,
                    "layers": list(spec.layer_names),
                    "steps": [r.steps for r in per_layer],
                    "p_at_10": [round(v, 4) for v in values],
                    "gain": [round(v / p - 1, 4) for v, p in zip(values, plain, strict=True)],
                }
            )
    return rows


def _cell(row: dict, at: int = -1) -> str:
    return f"{row['p_at_10'][at]:.3f} ({row['gain'][at]:+.1%})".replace("-", "−")


def _title(model: str) -> str:
    return MODELS[model].title.replace("EfficientNet-", "")


def render(results: dict) -> str:
    """The Markdown tables of docs/retrieval.md, from the results file alone."""
    rows, models = results["rows"], results["choice"]["models"]
    columns = list(itertools.product(DATASETS, models))
    lines = [
        "Leave-one-out precision@10 (cosine) at `top_conv`, the layer a search starts at, and the "
        "gain over `plain` at that layer:",
        "",
        "| recipe | " + " | ".join(f"{d} {_title(m)}" for d, m in columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for name in dict.fromkeys(row["recipe"] for row in rows):
        cells = {(r["dataset"], r["model"]): r for r in rows if r["recipe"] == name}
        text = [_cell(cells[column]) for column in columns]
        if name == "best":
            text = [f"**{cell}**" for cell in text]
        lines.append(f"| `{name}` | " + " | ".join(text) + " |")
    lines += [
        "",
        "`best` at each depth (the curated layers of Lite0, Lite1 and Lite2 in order) and its "
        "gain over `plain` at that layer:",
        "",
        "| depth | Lite0 layer | `best` there | "
        + " | ".join(f"{d} {_title(m)}" for d, m in columns)
        + " |",
        "| --- | --- | --- |" + " --- |" * len(columns),
    ]
    best = {(r["dataset"], r["model"]): r for r in rows if r["recipe"] == "best"}
    first = best[columns[0]]
    for i, layer in enumerate(first["layers"]):
        cells = " | ".join(_cell(best[column], i) for column in columns)
        lines.append(f"| {i + 1} | `{layer}` | {first['steps'][i]} | {cells} |")
    lines += [
        "",
        "Chosen on one dataset alone, measured on the other one at `top_conv`:",
        "",
        "| chosen on | `best` at `top_conv` | measured on | "
        + " | ".join(_title(m) for m in models)
        + " |",
        "| --- | --- | --- |" + " --- |" * len(models),
    ]
    for held in results["held_out"]:
        cells = {r["model"]: r for r in held["rows"] if r["recipe"] == "best"}
        steps = cells[models[0]]["steps"][-1]
        lines.append(
            f"| `{held['chosen_on']}` | {steps} | `{held['measured_on']}` | "
            + " | ".join(f"{cells[m]['gain'][-1]:+.1%}".replace("-", "−") for m in models)
            + " |"
        )
    return "\n".join(lines)


def rewrite_page(results: dict, page: Path = PAGE) -> None:
    """Put the tables between the page's markers."""
    text = page.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{page} has no {START!r} ... {END!r} block")
    block = f"{START}\n{render(results)}\n{END}"
    page.write_text(pattern.sub(lambda _: block, text), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the tables, write nothing")
    args = parser.parse_args()
    scores = Scores(Playground(PRECOMPUTED_DIR))
    models = [spec.key for spec in MODELS.values() if spec.offline]
    depths = {len(MODELS[model].layers) for model in models}
    if len(depths) != 1:
        raise SystemExit(f"the offline models have different numbers of curated layers: {depths}")
    choice = choose(scores, DATASETS, models)
    held_out = []
    for tuned, other in itertools.permutations(DATASETS):
        alone = choose(scores, (tuned,), models)
        held_out.append(
            {
                "chosen_on": tuned,
                "measured_on": other,
                "choice": alone,
                "rows": measure(scores, alone, (other,), models),
            }
        )
    results = {
        "choice": choice,
        "rows": measure(scores, choice, DATASETS, models),
        "held_out": held_out,
    }
    print(render(results))
    if not args.dry_run:
        CHOICE_FILE.write_text(json.dumps(choice, indent=2) + "\n", encoding="utf-8")
        RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        rewrite_page(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
