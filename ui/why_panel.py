"""Why do these match? The query and one result side by side, each with where the layer's
features agree with the other image, and the channels that carry the match.

A thin layer over ``Playground.why_match`` (``convenet.explain.why_match``). The panel is built
where the results are (``WhyPanel``) and wired once the search tab's controls exist
(``connect``); after it has been shown once it follows every new search, explaining the first
result again.
"""

from __future__ import annotations

import base64
import html
import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from convenet.models.registry import get_model_spec
from convenet.playground import PairExplanation, Playground
from convenet.search.metrics import METRIC_LABELS
from ui.common import friendly
from ui.groups import WHY
from ui.search_panels import Follower, View

# Explanations have workers of their own (ui.groups.WHY). After a search, the panel on screen is
# explained again in the panels' own group: ui.search_tab.follow_searches.
WHY_GROUP = WHY.events()

CHANNELS_SHOWN = 6
THUMB_PX = 72

CHANNELS_CSS = """
.why-channels { display: flex; flex-wrap: wrap; gap: 10px; margin: 0; padding: 0;
  list-style: none; }
.why-channels li { width: 128px; font-size: 0.8em; line-height: 1.3; }
.why-channels img, .why-channels .why-none { width: 72px; height: 72px; display: block;
  border-radius: 4px; margin-bottom: 4px; }
.why-channels .why-none { border: 1px dashed #9ca3af; color: #4b5563; font-size: 0.75em;
  display: flex; align-items: center; justify-content: center; text-align: center; }
.why-channels a { color: #1d4ed8; margin: 0; padding: 0; }
.why-scale { display: inline-block; width: 120px; height: 0.8em; vertical-align: -0.05em;
  margin: 0 0.4em; border-radius: 2px;
  background: linear-gradient(to right, #440154, #3b528b, #21918c, #5cc863, #fde725); }
"""


@lru_cache(maxsize=256)
def thumbnail_uri(path: Path) -> str:
    """A shipped feature visualization as a small inline JPEG (the page needs no file route)."""
    with Image.open(path) as picture:
        small = picture.convert("RGB").resize((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


SCALE_HTML = (
    '<p>One colour scale for both images: dark purple <span class="why-scale"></span> bright '
    "yellow, from the spots that add nothing to the match (or pull the images apart) to the "
    "spot that adds most.</p>"
)


def channels_html(pair: PairExplanation, layer: str) -> str:
    """The colour scale, then the top channels as cards: picture (where one is shipped), share
    of the match, link to the channel in the Model Explorer."""
    cosine = pair.explanation.cosine
    if not pair.channels:
        return f"{SCALE_HTML}<p>No channel adds to this match at this layer.</p>"
    cards = []
    for channel in pair.channels:
        name = f"channel {channel.index}"
        picture = (
            f'<img src="{thumbnail_uri(channel.featurevis)}" '
            f'alt="Feature visualization of {name} of {html.escape(layer)}">'
            if channel.featurevis is not None
            else '<span class="why-none">no picture shipped</span>'
        )
        part = f" ({100 * channel.share / cosine:.0f} % of it)" if cosine > 0 else ""
        cards.append(
            f"<li>{picture}<strong>{name}</strong><br>adds {channel.share:+.3f}{part}<br>"
            f'<a href="{html.escape(channel.link)}" target="_blank" rel="noopener">'
            "open in the Model Explorer</a></li>"
        )
    return (
        f"{SCALE_HTML}<p><strong>The channels that add most to the match</strong> (each adds "
        "the product of the two images' normalised values; all channels together add up to "
        f'the cosine):</p><ul class="why-channels">{"".join(cards)}</ul>'
    )


def summary_markdown(
    pair: PairExplanation, model: str, layer: str, metric: str, recipe: str
) -> str:
    """The match score in words, what the colours mean, and what it does not explain."""
    spec = get_model_spec(model)
    caveats = []
    if metric != "cosine":
        caveats.append(
            f"the search ranks by {METRIC_LABELS[metric].lower()}, which compares the same "
            "vectors in another way"
        )
    if recipe != "plain":
        caveats.append(f"the {recipe} recipe changes the vectors; this explains the plain ones")
    note = f" ({'; '.join(caveats)})" if caveats else ""
    return (
        f"**Cosine similarity {pair.explanation.cosine:.3f}** between the two images' "
        f"average-pooled features at `{layer}` of {spec.title}{note}. {pair.meaning}"
    )


def overlay_image(label: str, elem_id: str) -> gr.Image:
    """One side of the pair; no corner buttons, which would cover the label on a phone."""
    return gr.Image(
        label=label, interactive=False, height=260, min_width=150, buttons=[], elem_id=elem_id
    )


class WhyPanel:
    """The panel's components; build it inside the results column, then ``connect`` it."""

    def __init__(self) -> None:
        with gr.Accordion(
            "Why do these match? The query and a result, side by side",
            open=False,
            elem_id="why-panel",
        ) as self.accordion:
            with gr.Row(equal_height=False):
                self.rank = gr.Dropdown(
                    [("Result 1", 1)], value=1, label="Result to explain", min_width=200, scale=3
                )
                self.button = gr.Button(
                    "Why do these match?", variant="primary", min_width=160, scale=1
                )
            with gr.Row():
                self.query = overlay_image("Query", "why-query")
                self.result = overlay_image("Result", "why-result")
            self.summary = gr.Markdown(elem_id="why-summary")
            self.channels = gr.HTML(css_template=CHANNELS_CSS, elem_id="why-channels")
        self.shown = gr.State(False)

    def connect(self, pg: Playground, view: View) -> Follower:
        """Wire the panel to the search tab; returns what follows each new search."""

        @friendly
        def explain(
            dataset: str,
            model: str,
            layer: str,
            metric: str,
            recipe: str,
            query_index: float | None,
            upload: str | None,
            hits: list[int],
            rank: Any,
        ) -> tuple[Any, ...]:
            if not hits:  # opened (by a link) before the first search: it follows that search
                waiting = "The first result is explained as soon as the search is done."
                return gr.skip(), gr.skip(), waiting, gr.skip(), True
            if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= len(hits):
                raise ValueError("Search first, then choose one of the results to explain")
            folder = pg.dataset(dataset)
            result_index = hits[rank - 1]
            query: dict[str, Any] = (
                {"query_image": Path(upload)} if upload else {"query_index": int(query_index or 0)}
            )
            pair = pg.why_match(
                dataset, model, layer, result_index, channels=CHANNELS_SHOWN, **query
            )
            result_class = folder.classes[folder.labels[result_index]]
            if upload:
                query_label = "Query: your image"
            else:
                index = int(query_index or 0)
                query_label = f"Query: {folder.classes[folder.labels[index]]} #{index}"
            return (
                gr.update(value=pair.query_overlay, label=query_label),
                gr.update(
                    value=pair.result_overlay,
                    label=f"Result {rank}: {result_class} #{result_index}",
                ),
                summary_markdown(pair, model, layer, metric, recipe),
                channels_html(pair, layer),
                True,
            )

        def results_listed(dataset: str, hits: list[int]) -> Any:
            folder = pg.dataset(dataset)
            choices = [
                (f"Result {rank}: {folder.classes[folder.labels[i]]}", rank)
                for rank, i in enumerate(hits or [], start=1)
            ]
            return gr.update(choices=choices or [("Result 1", 1)], value=1)

        inputs = [
            *[view.dataset, view.current_model, view.current_layer, view.metric, view.recipe],
            *[view.query_index, view.upload, view.hits, self.rank],
        ]
        outputs = [self.query, self.result, self.summary, self.channels, self.shown]
        gr.on(
            [self.button.click, self.rank.input, self.accordion.expand],
            explain,
            inputs,
            outputs,
            api_name="why_panel",
            **WHY_GROUP,
        )

        def follow(shown: bool, *values: Any) -> tuple[Any, ...]:
            """The new results listed, the first one chosen, and explained if on screen."""
            dataset, hits = values[0], values[7]
            listed = results_listed(dataset, hits)
            if not shown:
                return listed, *(gr.skip() for _ in outputs)
            return listed, *explain(*values, 1)

        return Follower(follow, [self.shown, *inputs[:-1]], [self.rank, *outputs])
