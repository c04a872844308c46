"""What the Semantic Search tab says and draws: captions, the headline, the legend, the heatmap.

Plain functions of the engine's answers, kept apart from the layout so each reads on its own.
"""

from __future__ import annotations

import html

import gradio as gr

from convenet.calibration import SIMILARITY_MEANING
from convenet.playground import SearchResult
from convenet.plots import BAR_COLOURS
from convenet.registry import MODELS

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
    if result.query_label is None:
        return f"**Your image** · top {k} results (an upload has no class, so nothing is scored)."
    top = min(P_AT, k)
    name = plural(result.query_label)
    return (
        f"**{result.matches} of the {result.possible} other {name}** are in the top {k}; "
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
        html.escape(scores),
        f"<small>{html.escape(hint)}</small>",
    ]
    return f"<div class='cn-legend'>{'<br>'.join(line for line in lines if line)}</div>"


def heatmap_html(grid: dict[str, dict[str, float]], chance: float, k: int) -> str:
    """An accessible table: one row per model, one cell per curated layer, shaded by precision."""
    if not grid:
        return "<p>No features are available yet for this dataset.</p>"
    header = "".join(f"<th scope='col'>L{i + 1}</th>" for i in range(8))
    rows = []
    for key, layers in grid.items():
        spec = MODELS[key]
        cells = []
        for name, value in layers.items():
            strength = max(0.0, (value - chance) / max(1e-9, 1 - chance))
            colour = f"rgba(34, 139, 34, {0.1 + 0.8 * strength:.2f})" if value > chance else "#eee"
            below = " (at or below chance)" if value <= chance else ""
            cells.append(
                f"<td style='background:{colour}' title='{html.escape(name)}{below}'>"
                f"{value:.2f}</td>"
            )
        rows.append(f"<tr><th scope='row'>{html.escape(spec.title)}</th>{''.join(cells)}</tr>")
    return (
        f"<div class='cn-scroll'><table class='cn-heatmap'><caption>precision@{k} averaged over "
        f"every query (chance = {chance:.2f}; grey cells are at or below chance). Columns run "
        f"from the first curated layer (L1) to the last (L8); hover a cell for the layer's "
        f"name.</caption><thead><tr><th scope='col'>model</th>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


UPLOAD_NOT_SCORED = (
    "Your uploaded image has no class, and every score here counts results of the query's "
    "class, so there is nothing to compare. Click a dataset image to compare models on it."
)
