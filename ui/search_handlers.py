"""What the Semantic Search tab says and draws: captions, the headline, the legend, the heatmap.

Plain functions of the engine's answers, kept apart from the layout so each reads on its own.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
from pathlib import Path

import gradio as gr

from convenet.models.registry import MODELS
from convenet.playground import BAR_COLOURS, SIMILARITY_MEANING, SearchResult
from convenet.search.recipes import RECIPES, STEP_NAMES
from ui.gradio_compat.files import upload_folder

P_AT = 10  # the k of the overview heatmap and the comparison: the one number shared by all views

WEIGHTED_MEANING = "matches near the top count more (rank 1 weighs 1, the last rank 1/k)"


def caption(rank: int, similarity: float, label: str, match: bool) -> str:
    """Rank and percentage first: a long class name may wrap under a small tile."""
    return f"#{rank} {similarity:.0f}%{' ✓' if match else ''} {label}"


def picked(shown: list[int], evt: gr.SelectData | None) -> int:
    """The dataset index of the clicked tile; a call without a click is refused plainly."""
    index = getattr(evt, "index", None)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(shown or []):
        raise ValueError("Click one of the images shown to choose it")
    return shown[index]


def plural(label: str) -> str:
    """Class folders are already plural nouns with underscores: 'hoofed_mammals' reads as is."""
    return label.replace("_", " ")


def summary_markdown(result: SearchResult, k: int) -> str:
    """How many of the possible matches were found, and where.

    A raw "16/50" reads as failure when only 19 other images of the class exist.
    """
    if not result.labelled:
        return f"**Top {k} results** (these images have no classes, so nothing is scored)."
    if result.query_label is None:
        return f"**Your image** · top {k} results (an upload has no class, so nothing is scored)."
    top = min(P_AT, k)
    name = plural(result.query_label)
    return (
        f"**{result.matches} of the {result.possible:,} other {name}** are in the top {k}; "
        f"**{result.matches_in_top(top)} of the top {top}** are {name}."
    )


def scores_text(result: SearchResult, k: int) -> str:
    """P@10 (the number every other view uses) and the weighted score, with what it weighs."""
    if result.query_label is None:
        return ""
    top = min(P_AT, k)
    return (
        f"P@{top} = {result.matches_in_top(top) / top:.2f} (the score the overview and the "
        f"comparison use) · rank-weighted score = {result.weighted_score:.2f}: "
        f"{WEIGHTED_MEANING}."
    )


def swatch(colour: tuple[int, int, int], text: str) -> str:
    r, g, b = colour
    return (
        f"<span class='cn-swatch' style='background: rgb({r}, {g}, {b})'></span>{html.escape(text)}"
    )


P_AT_MEANING = (
    f"precision at {P_AT}: the share of the top {P_AT} results that are of the query's class "
    "(1.00: all of them; a random ranking scores the dataset's chance level)"
)


def term_meanings() -> dict[str, str]:
    """The words a learner meets under the results, each with a sentence shown on hover:
    the scores, and each recipe step (named as ``Recipe.steps`` names them)."""
    steps = {
        recipe.steps: recipe.description for recipe in RECIPES.values() if "+" not in recipe.steps
    }
    return {
        f"P@{P_AT}": P_AT_MEANING,
        "rank-weighted score": f"like P@k, but {WEIGHTED_MEANING}",
        "recipe": (
            "the search recipe: how each image's features become the one vector that is "
            "ranked; hover each step for what it does"
        ),
        **steps,
    }


def recipe_effects(effects: list[tuple[str, float]], alike: tuple[str, ...], layer: str) -> str:
    """What the chosen recipe and each of its steps alone change in P@10 at this view, in words
    (a trick can cost), and which layers the recipe makes search alike; "" when neither."""

    def change(name: str, delta: float) -> str:
        label = STEP_NAMES.get(name, name)  # a one-step recipe by its step's name ("GeM")
        if abs(delta) < 0.005:  # shown to two decimals: "adds 0.00" would say nothing
            return f"{label} changes less than 0.01"
        return f"{label} {'adds' if delta > 0 else 'costs'} {abs(delta):.2f}"

    sentences = []
    if effects:
        (whole, delta), steps = effects[0], effects[1:]
        sentences.append(
            f"Here, P@{P_AT} over every query: {change(whole, delta)} over plain"
            + (f" (alone: {', '.join(change(n, d) for n, d in steps)})." if steps else ".")
        )
    if alike:
        sentences.append(
            f"With fuse, {layer} searches exactly like {' and '.join(alike)}: "
            "they read the same three layers."
        )
    return " ".join(sentences)


def explained(text: str) -> str:
    """``text`` as HTML with every known term hoverable (one pass: a sentence shown on hover is
    never searched for terms itself)."""
    meanings = term_meanings()
    pattern = re.compile(
        r"(?<![\w@])(" + "|".join(re.escape(html.escape(t)) for t in meanings) + r")(?![\w@])"
    )
    by_escaped = {html.escape(term): sentence for term, sentence in meanings.items()}

    def abbr(found: re.Match[str]) -> str:
        title = html.escape(by_escaped[found[1]], quote=True)
        return f"<abbr title='{title}' tabindex='0'>{found[1]}</abbr>"

    return pattern.sub(abbr, html.escape(text))


def legend_html(has_class: bool, scores: str, hint: str) -> str:
    """The colours the bars actually use, what 100 % and 0 % mean (hover), then the scores."""
    if has_class:
        keys = (
            f"{swatch(BAR_COLOURS['match'], 'same class as the query')} "
            f"{swatch(BAR_COLOURS['other'], 'another class')}"
        )
    else:
        keys = swatch(BAR_COLOURS["unknown"], "your image has no class, so every bar is blue")
    meaning = html.escape(SIMILARITY_MEANING, quote=True)
    lines = [
        f"{keys} · <span class='cn-meaning' title='{meaning}' tabindex='0'>what the % mean</span>",
        explained(scores),
        f"<small>{explained(hint)}</small>",
    ]
    return f"<div class='cn-legend'>{'<br>'.join(line for line in lines if line)}</div>"


def heatmap_html(
    grid: dict[str, dict[str, float]],
    chance: float,
    k: int,
    alike: str = "",
    merged: dict[str, tuple[str, ...]] | None = None,
) -> str:
    """An accessible table: one row per model, one cell per curated layer, shaded by precision;
    ``merged`` names, per model, the neighbouring layers a recipe makes search alike: they are
    one cell (a click searches the deepest), and ``alike`` says why."""
    if not grid:
        return "<p>No features are available yet for this dataset.</p>"
    header = "".join(f"<th scope='col'>L{i + 1}</th>" for i in range(8))
    rows = []
    for key, layers in grid.items():
        spec = MODELS[key]
        group = (merged or {}).get(key, ())
        names = list(layers)
        cells = []
        for name, value in layers.items():
            if name in group[:-1]:
                continue  # shown by the group's last cell
            strength = max(0.0, (value - chance) / max(1e-9, 1 - chance))
            colour = f"rgba(34, 139, 34, {0.1 + 0.8 * strength:.2f})" if value > chance else "#eee"
            below = " (at or below chance)" if value <= chance else ""
            title = f"{name}{below}: mean P@{k} = {value:.2f}. Click to search with it."
            span = ""
            if group and name == group[-1]:
                first, last = names.index(group[0]) + 1, names.index(name) + 1
                span = f" colspan='{len(group)}'"
                title = (
                    f"L{first}-L{last} ({', '.join(group)}) search alike with this recipe{below}: "
                    f"mean P@{k} = {value:.2f}. Click to search with {name}."
                )
            cells.append(
                f"<td{span} style='background:{colour}'><button class='cn-cell' "
                f"data-model='{key}' data-layer='{html.escape(name)}' "
                f"title='{html.escape(title)}'>{value:.2f}</button></td>"
            )
        rows.append(f"<tr><th scope='row'>{html.escape(spec.title)}</th>{''.join(cells)}</tr>")
    return (  # the sentence stays outside the scrolled table, so a phone shows all of it
        f"<p>precision@{k} averaged over every query (chance = {chance:.2f}; grey cells are at "
        f"or below chance). Columns run from the first curated layer (L1) to the last (L8); "
        f"hover a cell for the layer's name, click it to search with that model and layer."
        f"{html.escape(alike)}</p>"
        f"<div class='cn-scroll'><table class='cn-heatmap'><caption class='cn-sr'>precision@{k} "
        f"of every model and layer</caption>"
        f"<thead><tr><th scope='col'>model</th>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


UPLOAD_NOT_SCORED = (
    "Your uploaded image has no class, and every score here counts results of the query's "
    "class, so there is nothing to compare. Click a dataset image to compare models on it."
)


def bar_button(model: str, layer: str, value: float, classes: str, title: str) -> str:
    """One clickable bar: its height is the score, a click switches the search to it."""
    return (
        f"<button class='cn-bar {classes}' data-model='{html.escape(model)}' "
        f"data-layer='{html.escape(layer)}' title='{html.escape(title)}' "
        f"style='--h: {max(2.0, 100 * value):.0f}%'><span>{value:.1f}</span></button>"
    )


def compare_charts_html(rows: list[dict], current: tuple[str, str], chance: float) -> str:
    """One small bar chart per model: this query's P@10 at each curated layer, best in green,
    and a dashed line at chance (what a random ranking scores on this dataset)."""
    by_model: dict[str, list[dict]] = {}
    for row in rows:
        by_model.setdefault(row["key"], []).append(row)
    said = f"chance: {chance:.2f}, what a random ranking scores here"
    chance_line = (
        f"<div class='cn-chance' style='bottom: {100 * chance:.1f}%' title='{said}' "
        f"aria-label='{said}'></div>"
    )
    charts = []
    for key, layers in by_model.items():
        best = max(layers, key=lambda r: r["p_at_k"])
        bars = "".join(
            bar_button(
                key,
                r["layer"],
                r["p_at_k"],
                " ".join(
                    name
                    for name, on in (("best", r is best), ("current", (key, r["layer"]) == current))
                    if on
                ),
                f"{r['layer']} ({r['description']}): P@{P_AT} = {r['p_at_k']:.2f}. "
                "Click to search with it.",
            )
            for r in layers
        )
        ticks = "".join(f"<span>L{i + 1}</span>" for i in range(len(layers)))
        charts.append(
            f"<figure class='cn-chart'><figcaption>{html.escape(MODELS[key].title)} · best "
            f"{html.escape(best['layer'])} ({best['p_at_k']:.1f})</figcaption>"
            f"<div class='cn-bars'>{bars}{chance_line}</div>"
            f"<div class='cn-ticks'>{ticks}</div></figure>"
        )
    return f"<div class='cn-charts'>{''.join(charts)}</div>"


CLICK_BAR_JS = """
element.addEventListener('click', (event) => {
  const bar = event.target.closest('[data-model][data-layer]');
  if (bar) trigger('click', {model: bar.dataset.model, layer: bar.dataset.layer});
});
"""


EXPORT_FIELDS = ("rank", "image", "class", "similarity", "distance", "same_class", "index")


def export_files(result: SearchResult, images_dir: Path) -> tuple[str, str]:
    """CSV and JSON files of the results, named by their content so repeats cost nothing.

    They live in the upload folder, whose old files the server sweeps away.
    """
    rows = result.rows(images_dir)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    contents = {"csv": text.getvalue(), "json": json.dumps(rows, indent=1)}
    folder = upload_folder() / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, content in contents.items():
        digest = hashlib.sha256(content.encode()).hexdigest()[:16]
        path = folder / f"results-{digest}.{suffix}"
        if not path.exists():
            path.write_text(content)
        paths.append(str(path))
    return paths[0], paths[1]
