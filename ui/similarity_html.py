"""The "Which layers see alike?" heatmap: linear CKA between every model x layer, as a table a
learner can read cell by cell (hover: the two layers and what the number means in words)."""

from __future__ import annotations

import html

import numpy as np

from convenet.models.registry import MODELS


def in_words(value: float) -> str:
    """What a CKA value says, for the hover text."""
    if value >= 0.9:
        return "they arrange the images almost the same way"
    if value >= 0.6:
        return "they arrange the images much alike"
    if value >= 0.3:
        return "they agree on some of how the images relate"
    return "they see the images in unrelated ways"


def _short(key: str, layer: str) -> str:
    title = MODELS[key].title.replace("EfficientNet-", "")
    return f"{title} L{MODELS[key].layer_names.index(layer) + 1}"


def similarity_html(dataset: str, pairs: list[tuple[str, str]], matrix: np.ndarray) -> str:
    """One row and one column per (model, layer); a cell's blue deepens with CKA; a click on a
    cell shows its two layers side by side on the current query."""
    header = "".join(
        f"<th scope='col' title='{html.escape(f'{MODELS[k].title} {name}')}'>"
        f"{html.escape(_short(k, name))}</th>"
        for k, name in pairs
    )
    rows = []
    for i, (row_key, row_layer) in enumerate(pairs):
        cells = []
        for j, (key, layer) in enumerate(pairs):
            value = float(matrix[i, j])
            title = (
                f"{MODELS[row_key].title} {row_layer} vs {MODELS[key].title} {layer}: "
                f"CKA {value:.2f}, {in_words(value)}. Click to see both side by side."
            )
            cells.append(
                f"<td style='background:rgba(30, 90, 200, {value:.2f})'><button class='cn-cell' "
                f"data-left='{row_key}:{html.escape(row_layer)}' "
                f"data-right='{key}:{html.escape(layer)}' "
                f"title='{html.escape(title)}' aria-label='{html.escape(title)}'>"
                f"<span class='cn-sr'>{value:.2f}</span></button></td>"
            )
        name = html.escape(_short(row_key, row_layer))
        rows.append(f"<tr><th scope='row'>{name}</th>{''.join(cells)}</tr>")
    name = html.escape(dataset)
    return (  # the sentence stays outside the scrolled table, so a phone shows all of it
        f"<p>How alike two layers see the images of {name} (linear CKA of their features: 1 = "
        "the same arrangement of the images up to rotation and scale, 0 = unrelated). Lite0/1/2 "
        "are one design at three widths, depths and input sizes; L1 is the first curated layer, "
        "L8 the last. Hover a cell for the two layers in words; click it to see their top "
        "results for the current query side by side.</p>"
        f"<div class='cn-scroll'><table class='cn-heatmap cn-cka'><caption class='cn-sr'>Linear "
        f"CKA between layers on {name}</caption>"
        f"<thead><tr><th scope='col'>layer</th>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


CLICK_PAIR_JS = """
element.addEventListener('click', (event) => {
  const cell = event.target.closest('[data-left][data-right]');
  if (cell) trigger('click', {left: cell.dataset.left, right: cell.dataset.right});
});
"""
