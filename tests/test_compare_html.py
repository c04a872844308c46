"""The comparison charts' markup: chance is drawn on every chart, at its height."""

from __future__ import annotations

import re

import pytest

from ui.search_handlers import compare_charts_html

pytestmark = pytest.mark.quick


def test_every_chart_marks_chance_at_its_height() -> None:
    rows = [
        {"key": key, "layer": layer, "p_at_k": p, "description": "d"}
        for key in ("efficientnet_lite0", "efficientnet_lite1")
        for layer, p in (("stem_conv", 0.0), ("top_conv", 0.9))
    ]
    markup = compare_charts_html(rows, ("efficientnet_lite0", "top_conv"), 0.095)
    lines = re.findall(r"<div class='cn-chance' style='bottom: ([\d.]+)%' title='([^']+)'", markup)
    assert [float(bottom) for bottom, _ in lines] == [9.5, 9.5]  # one per model's chart
    assert "chance: 0.10, what a random ranking scores here" in lines[0][1]
    assert markup.count("cn-bar ") == 4


def test_scores_and_recipe_steps_explain_themselves_on_hover() -> None:
    """P@10, the rank-weighted score, the word recipe and each step of the recipe in use carry
    a sentence (an abbr title); a sentence is never itself scanned for terms."""
    from ui.search_handlers import legend_html

    markup = legend_html(
        True,
        "P@10 = 0.90 · rank-weighted score = 0.53",
        "EfficientNet-Lite0 · top_conv · cosine · recipe best (GeM + flip + fuse + DBA): x",
    )
    titled = dict(re.findall(r"<abbr title='([^']+)' tabindex='0'>([^<]+)</abbr>", markup))
    terms = set(titled.values())
    assert {"P@10", "rank-weighted score", "recipe", "GeM", "flip", "fuse", "DBA"} <= terms
    assert "<abbr" not in "".join(titled)  # no term wrapped inside another's sentence
