"""Browser: a seeded random walk over both tabs hunts for a page that disagrees with itself.

After each action settles, the controls, the URL, the results' footer, the headline and the
``/search`` API for the same view must agree, and the page must hold no raw error text. The
actions are the ones a learner does (dropdowns, heatmap and compare cells, result and map
clicks, uploads good and bad, deep links good and bad, back and forward, the other tab) and
pairs of them less than 300 ms apart. A failure names the seed and the last actions, so
``CONVENET_WALK_SEED=<seed> pytest tests/test_random_walk.py`` replays it.

CI walks ``CONVENET_WALK_STEPS`` (default 100) actions at each of two widths, stopping early
once ``CONVENET_WALK_BUDGET_S`` (default 150) seconds have passed at a width (each action
waits for the page to settle, so a loaded machine walks fewer); a developer walks longer with,
for example, ``CONVENET_WALK_STEPS=1000 CONVENET_WALK_BUDGET_S=7200``.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from gradio_client import Client

from convenet.models.registry import MODELS
from convenet.search.metrics import METRIC_DESCRIPTIONS, METRIC_LABELS
from convenet.search.recipes import recipe_at
from tests.test_browser import WAIT_MS, open_app, thumbnails
from ui.search_events import recipe_named

pytestmark = [pytest.mark.slow, pytest.mark.browser]

from playwright.sync_api import Browser, Page  # noqa: E402
from playwright.sync_api import TimeoutError as ClickTimeout  # noqa: E402

SEED = int(os.environ.get("CONVENET_WALK_SEED", "26"))
STEPS = int(os.environ.get("CONVENET_WALK_STEPS", "100"))
BUDGET_S = float(os.environ.get("CONVENET_WALK_BUDGET_S", "150"))
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cat.jpg"
SETTLE_S = 60.0  # a search on a busy 2-core machine, or a model's first features
QUIET_S = 0.6  # the page counts as settled once nothing changed for this long
TILE_CLICK_MS = 10_000  # a tile that stays gone this long was redrawn away, as for a learner
GRACE = 3  # settled pages a disagreement must last through to count
RAW_ERROR = re.compile(
    r"Traceback|Exception|Errno|/tmp/|gradio-tmp|\bNone\b|decompression|not in the list of choices"
)
TITLES = {spec.title: key for key, spec in MODELS.items()}
METRIC_BY_LABEL = {label: name for name, label in METRIC_LABELS.items()}

# Each event the page sends, logged to the console (read back on a failure).
LOG_EVENTS_JS = """
const send = window.fetch;
window.fetch = (...args) => {
  if (String(args[0]).includes("queue/join")) console.log("sent " + args[1].body.slice(0, 160));
  return send(...args);
};
"""
SNAPSHOT_JS = """() => {
  const panel = [...document.querySelectorAll('[role=tabpanel]')].find((e) => e.offsetParent);
  const value = (label) => {
    const box = panel && panel.querySelector(`input[aria-label="${label}"]`);
    return box ? box.value : null;
  };
  const text = (selector) => {
    const e = document.querySelector(selector);
    return e ? e.innerText.trim() : "";
  };
  const busy = [...document.querySelectorAll('[data-testid=status-tracker]')].some(
    (e) => !e.classList.contains('hide') && e.offsetParent && !e.querySelector('.error'));
  return {
    url: location.search,
    dataset: value('Dataset'), model: value('Model'), layer: value('Layer'),
    metric: value('Distance metric'), recipe: value('Search recipe'),
    k: value('number input for Results shown (k)'),
    footer: text('#search-legend small'), summary: text('#search-summary'),
    notice: text('#search-notice'), upload_notice: text('#upload-notice'),
    link_note: text('#link-note'),
    first: text('#results-gallery button.thumbnail-item'),
    results: document.querySelectorAll('#results-gallery button.thumbnail-item').length,
    busy, body: document.body.innerText,
  };
}"""


@dataclass
class Walk:
    """One walk: the page, the API, the seeded choices and what was done so far."""

    page: Page
    api: Client
    url: str
    rng: random.Random
    replay: str  # how to walk the same way again
    bad_file: Path
    done: list[str] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)  # the pages opened, for back and forward
    at: int = 0
    sent: list[str] = field(default_factory=list)  # the events the page sent, for a failure

    def fail(self, why: str) -> None:
        steps = "\n  ".join(self.done[-12:])
        sent = "\n  ".join(self.sent[-16:])
        pytest.fail(
            f"{self.replay}; after {len(self.done)} actions:\n  {steps}\n{why}\n"
            f"the last events the page sent:\n  {sent}"
        )

    def goto(self, query: str) -> None:
        del self.links[self.at + 1 :]
        self.links.append(query)
        self.at = len(self.links) - 1
        self.page.goto(f"{self.url}{query}")

    def snapshot(self) -> dict[str, Any]:
        return self.page.evaluate(SNAPSHOT_JS)

    def settle(self) -> dict[str, Any]:
        """The page once nothing on it changed for QUIET_S (and nothing is loading)."""
        deadline = time.monotonic() + SETTLE_S
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            now = self.snapshot()
            if now != last or now["busy"]:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= QUIET_S:
                return now
            self.page.wait_for_timeout(150)
        self.fail(f"the page did not settle in {SETTLE_S:.0f} s")
        raise AssertionError  # unreachable: fail raises

    def search(self, view: dict[str, str]) -> dict[str, Any]:
        key = urlencode(sorted(view.items()))
        if key not in self.answers:
            self.answers[key] = self.api.predict(
                dataset=view["dataset"],
                model=view["model"],
                layer=view["layer"],
                metric=view["metric"],
                recipe=view["recipe"],
                k=int(view.get("k", "50")),
                query_index=int(view["query"]),
                api_name="/search",
            )
        return self.answers[key]


def agree(walk: Walk, shown: dict[str, Any]) -> list[str]:
    """Every way in which the settled page disagrees with itself or with the API."""
    problems = []
    view = {key: values[0] for key, values in parse_qs(shown["url"][1:]).items()}
    view.setdefault("k", "50")
    missing = {"dataset", "model", "layer", "metric", "recipe"} - set(view)
    if missing:
        return [f"the URL names no {', '.join(sorted(missing))}: {shown['url']}"]
    model = MODELS.get(view["model"])
    if model is None or view["layer"] not in model.layer_names:
        return [f"the URL holds a model and layer that do not go together: {shown['url']}"]
    boxes = {
        "dataset": shown["dataset"],
        "model": TITLES.get((shown["model"] or "").split(" (")[0].split(" - ")[0]),
        "layer": (shown["layer"] or "").split(" · ")[0],
        "metric": METRIC_BY_LABEL.get(shown["metric"] or ""),
        "recipe": shown["recipe"],
        "k": shown["k"],
    }
    for part, value in boxes.items():
        if value != view[part]:
            problems.append(f"the {part} box shows {value!r}, the URL {view[part]!r}")
    footer = (
        f"{model.title} · {view['layer']} · {METRIC_DESCRIPTIONS[view['metric']]} · "
        f"recipe {recipe_named(view['recipe'], model.key, view['layer'])}: "
        f"{recipe_at(view['recipe'], model.layer_names, view['layer']).description}"
    )
    # After it, a recipe other than plain says what it changes here (tests/test_recipe_effects.py).
    said_more = (f"{footer} Here, P@10", f"{footer} With fuse")
    if shown["footer"] != footer and not shown["footer"].startswith(said_more):
        problems.append(f"the results' footer says {shown['footer']!r}, the URL {footer!r}")
    if "query" not in view:  # an uploaded query
        if not shown["summary"].startswith("Your image"):
            problems.append(f"an upload's headline reads {shown['summary']!r}")
        if shown["results"] != int(view["k"]):
            problems.append(f"{shown['results']} results shown, k is {view['k']}")
        return problems
    out = walk.search(view)
    if shown["results"] != len(out["results"]):
        problems.append(f"{shown['results']} results shown, the API gives {len(out['results'])}")
    first = out["results"][0]
    caption = f"#1 {first['similarity']:.0f}%"
    if not (shown["first"].startswith(caption) and shown["first"].endswith(first["class"])):
        problems.append(f"the first result reads {shown['first']!r}, the API {caption} ...")
    if out["query_class"] is not None:
        name = out["query_class"].replace("_", " ")
        said = f"{out['matches']} of the {out['possible']:,} other {name}"
        if not shown["summary"].startswith(said):
            problems.append(f"the headline reads {shown['summary']!r}, the API {said!r}")
    return problems


def raw_errors(shown: dict[str, Any]) -> list[str]:
    found = RAW_ERROR.search(shown["body"])
    return [f"the page shows raw error text: {found[0]!r}"] if found else []


# -- actions: each does one thing a learner does and returns what it did, in words -------------
Action = Callable[[Walk], str]


def panel(walk: Walk) -> Any:
    return walk.page.get_by_role("tabpanel").filter(visible=True)


def pick_option(walk: Walk, label: str) -> str:
    """Open a dropdown of the search tab and click one of its options at random."""
    panel(walk).get_by_label(label, exact=True).click()
    options = walk.page.get_by_role("option")
    options.first.wait_for(timeout=WAIT_MS)
    names = options.all_inner_texts()
    name = walk.rng.choice(names)
    options.nth(names.index(name)).click()
    return f"{label}: {name.strip()}"


def choose_model(walk: Walk) -> str:
    return pick_option(walk, "Model")


def choose_layer(walk: Walk) -> str:
    return pick_option(walk, "Layer")


def choose_metric(walk: Walk) -> str:
    return pick_option(walk, "Distance metric")


def choose_recipe(walk: Walk) -> str:
    return pick_option(walk, "Search recipe")


def choose_dataset(walk: Walk) -> str:
    return pick_option(walk, "Dataset")


def type_k(walk: Walk) -> str:
    k = walk.rng.choice(range(10, 55, 5))
    box = walk.page.get_by_label("number input for Results shown (k)")
    box.fill(str(k))
    box.press("Enter")
    return f"k: typed {k}, Enter"


def click_tile(gallery: str) -> Action:
    def act(walk: Walk) -> str:
        tiles = thumbnails(walk.page, gallery)
        count = tiles.count()
        if not count:
            return f"{gallery}: no tile to click"
        n = walk.rng.randrange(count)
        try:
            tiles.nth(n).click(timeout=TILE_CLICK_MS)
        except ClickTimeout:  # a pair's first action redrew the gallery with fewer tiles
            return f"{gallery}: tile {n} of {count} went away before the click"
        return f"{gallery}: clicked tile {n}"

    act.__name__ = f"click_{gallery}"
    return act


def click_in(selector: str, what: str) -> Action:
    def act(walk: Walk) -> str:
        targets = walk.page.locator(selector)
        count = targets.count()
        if not count:
            return f"{what}: none on screen"
        n = walk.rng.randrange(count)
        target = targets.nth(n)
        said = target.get_attribute("data-layer") or target.get_attribute("data-index")
        target.scroll_into_view_if_needed()
        target.click(force=True)
        return f"{what}: clicked {target.get_attribute('data-model') or ''} {said}"

    act.__name__ = f"click_{what}"
    return act


def upload(walk: Walk, path: Path) -> str:
    box = walk.page.locator(".block", has_text="Or search with your own image")
    box.locator("input[type=file]").set_input_files(path)
    return f"upload {path.name}"


def upload_good(walk: Walk) -> str:
    return upload(walk, EXAMPLE)


def upload_bad(walk: Walk) -> str:
    return upload(walk, walk.bad_file)


def random_view(walk: Walk) -> dict[str, str]:
    key = walk.rng.choice(["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
    return {
        "dataset": walk.rng.choice(["stamps200", "clipart200"]),
        "model": key,
        "layer": walk.rng.choice(MODELS[key].layer_names),
        "metric": walk.rng.choice(list(METRIC_LABELS)),
        "recipe": walk.rng.choice(["plain", "gem", "flip"]),
        "query": str(walk.rng.randrange(200)),
    }


def link_good(walk: Walk) -> str:
    query = urlencode(random_view(walk))
    walk.goto(f"?{query}")
    return f"link ?{query}"


BAD_PARTS = {
    "dataset": "nosuch",
    "model": "vgg99",
    "layer": "zzz",
    "metric": "foo",
    "recipe": "nope",
    "query": "99999",
    "k": "7",
}


def link_bad(walk: Walk) -> str:
    view = random_view(walk)
    for part in walk.rng.sample(sorted(BAD_PARTS), walk.rng.randint(1, 3)):
        view[part] = BAD_PARTS[part]
    query = urlencode(view)
    walk.goto(f"?{query}")
    return f"bad link ?{query}"


def back(walk: Walk) -> str:
    if walk.at == 0:
        return "back: nothing to go back to"
    walk.at -= 1
    walk.page.go_back()
    return f"back to {walk.links[walk.at] or 'the first page'}"


def forward(walk: Walk) -> str:
    if walk.at == len(walk.links) - 1:
        return "forward: nothing to go forward to"
    walk.at += 1
    walk.page.go_forward()
    return f"forward to {walk.links[walk.at]}"


def other_tab(walk: Walk) -> str:
    walk.page.get_by_role("tab", name="Model Explorer").click()
    walk.page.wait_for_timeout(walk.rng.choice([100, 800]))
    walk.page.get_by_role("tab", name="Semantic Search").click()
    return "Model Explorer and back"


SINGLE: list[tuple[Action, int]] = [
    (choose_model, 3),
    (choose_layer, 4),
    (choose_metric, 3),
    (choose_recipe, 1),
    (choose_dataset, 1),
    (type_k, 2),
    (click_tile("dataset-gallery"), 4),
    (click_tile("results-gallery"), 3),
    (click_in("#quality-heatmap button.cn-cell", "heatmap cell"), 4),
    (click_in("#compare-charts .cn-bar", "compare bar"), 2),
    (click_in("#dataset-map circle", "map point"), 2),
    (upload_good, 1),
    (upload_bad, 1),
    (link_good, 1),
    (link_bad, 2),
    (back, 1),
    (forward, 1),
    (other_tab, 1),
]
# Pairs less than 300 ms apart: any action, then one whose single click or key fires its event.
FIRST = [choose_model, choose_layer, choose_metric, type_k, click_tile("dataset-gallery")]
FIRST += [click_in("#quality-heatmap button.cn-cell", "heatmap cell")]
SECOND = [click_tile("dataset-gallery"), click_tile("results-gallery"), type_k]
SECOND += [click_in("#quality-heatmap button.cn-cell", "heatmap cell")]
NAVIGATIONS = (link_good, link_bad, back, forward)


def open_panels(walk: Walk) -> None:
    """The overview, the comparison and the map opened (so drawn), so their cells can be
    clicked; a page restored by back/forward may have kept a panel open."""
    page = walk.page
    for title, drawn in (
        ("Which layer of which model searches best?", "#quality-heatmap button.cn-cell"),
        ("Compare models on this query", "#compare-charts .cn-bar"),
        ("Map of the dataset in this layer's feature space", "#dataset-map circle"),
    ):
        if not page.locator(drawn).first.is_visible():
            page.get_by_text(title).click()
    page.locator("#quality-heatmap button.cn-cell").first.wait_for(timeout=WAIT_MS)
    page.locator("#dataset-map circle").first.wait_for(timeout=WAIT_MS)


def step(walk: Walk) -> str:
    """One action, or two less than 300 ms apart."""
    if walk.rng.random() < 0.2:
        first, second = walk.rng.choice(FIRST), walk.rng.choice(SECOND)
        said = first(walk)
        done = time.monotonic()  # from the first action's last click to the second's
        said += f" + {second(walk)}"
        return f"{said} ({1000 * (time.monotonic() - done):.0f} ms apart)"
    actions, weights = zip(*SINGLE, strict=True)
    action = walk.rng.choices(actions, weights)[0]
    said = action(walk)
    if action in NAVIGATIONS:  # a page (re)opened: its panels start closed
        walk.settle()
        open_panels(walk)
    return said


def problems_after(walk: Walk, said: str, shown: dict[str, Any]) -> list[str]:
    """What is wrong with the settled page after the action ``said``."""
    problems = agree(walk, shown) + raw_errors(shown)
    if said.startswith("bad link") and not shown["notice"].startswith("This link asked for"):
        problems.append(f"a bad link opened without a word: notice {shown['notice']!r}")
    typed = re.findall(r"k: typed (\d+)", said)[-1:]  # the last one typed is the one that holds
    if typed and (shown["k"], "k=" in shown["url"]) != (typed[0], typed[0] != "50"):
        problems.append(f"k {typed[0]} typed, Enter pressed; the page shows k {shown['k']}")
    bad = walk.bad_file.name
    if said == f"upload {bad}" and bad not in shown["upload_notice"]:
        problems.append(f"a refused upload is not said by the box: {shown['upload_notice']!r}")
    return problems


def check(walk: Walk, said: str) -> None:
    """The page agrees with itself once settled; a disagreement must outlast a few quiet spells
    (between an event and the search it starts, the page may rest for a moment)."""
    for _ in range(GRACE):
        problems = problems_after(walk, said, walk.settle())
        if not problems:
            return
        walk.page.wait_for_timeout(2000)
    walk.fail("\n".join(problems))


@pytest.mark.parametrize("width", [1400, 420])
def test_a_random_walk_never_leaves_the_page_disagreeing(
    browser: Browser, app_url: str, api: Client, width: int, tmp_path: Path
) -> None:
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not a picture at all")
    context = browser.new_context(viewport={"width": width, "height": 1000})
    context.add_init_script(LOG_EVENTS_JS)
    page = context.new_page()
    replay = f"replay: CONVENET_WALK_SEED={SEED} pytest {__file__} -k {width}"
    walk = Walk(page, api, app_url, random.Random(f"{SEED}-{width}"), replay, bad)
    page.on("console", lambda m: walk.sent.append(m.text) if m.text.startswith("sent") else None)
    try:
        open_app(page, app_url)
        walk.links.append("")
        open_panels(walk)
        ends = time.monotonic() + BUDGET_S
        while len(walk.done) < STEPS and time.monotonic() < ends:
            said = step(walk)
            walk.done.append(said)
            check(walk, said)
    finally:
        context.close()
    print(f"{replay}: {len(walk.done)} actions, all agreed")
