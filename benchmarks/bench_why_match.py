"""Why two images match: the latency of one explanation next to one plain search.

    python benchmarks/bench_why_match.py [--quick]

(a) Python API, every offline model (EfficientNet-Lite0/1/2) and every curated layer, the model
    warm (its ONNX session open; the first call per model is not counted): Playground.why_match
    for a dataset pair (query i of stamps200 and its first result at that layer), which decodes both
    images, runs one forward pass for the two, splits the cosine by position and by channel and
    draws both overlays. Baseline, interleaved: Playground.search for the same query (top 50,
    cosine), the cost of one plain search.
(b) The running app, gradio_client: /why_match against /search, EfficientNet-Lite0 top_conv,
    interleaved.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from benchmarks.common import (  # noqa: E402
    DATASET,
    MODEL,
    OFFLINE_MODELS,
    Report,
    app_cache,
    parser,
    report,
)
from convenet.models.loading import get_model_spec  # noqa: E402
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402
from convenet.playground import Playground  # noqa: E402

METRIC = "cosine"
K = 50
WHY = "/why_match"


def seconds(fn: Callable[..., object], *args: object, **kwargs: object) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def first_result(pg: Playground, model: str, layer: str, query: int) -> int:
    return pg.search(DATASET, model, layer, METRIC, query_index=query, k=1).hits[0].index


def python_api(run: Report, pg: Playground, per_layer: int) -> None:
    """(a): every model and layer, explanations interleaved with plain searches."""
    size = len(pg.dataset(DATASET).paths)
    everything_why: list[float] = []
    everything_search: list[float] = []
    for model in OFFLINE_MODELS:
        spec = get_model_spec(model)
        start = time.perf_counter()
        pg.why_match(DATASET, model, spec.layer_names[0], 1, query_index=0)
        print(
            f"  {spec.title}: first explanation (ONNX session; not counted) "
            f"{time.perf_counter() - start:.2f} s"
        )
        why, search = [], []
        for layer in spec.layer_names:
            for n in range(per_layer):
                query = (37 * n + 11 * len(why)) % size  # a spread of queries, a new pair each time
                result = first_result(pg, model, layer, query)
                why.append(seconds(pg.why_match, DATASET, model, layer, result, query))
                search.append(
                    seconds(pg.search, DATASET, model, layer, METRIC, query_index=query, k=K)
                )
        run.add(f"why_{model}", f"{spec.title}, 8 layers: Playground.why_match (dataset pair)", why)
        run.add(f"search_{model}", f"{spec.title}, 8 layers: Playground.search, top {K}", search)
        everything_why += why
        everything_search += search
    run.add(
        "why_python", "all 3 models x 8 layers: Playground.why_match (dataset pair)", everything_why
    )
    run.add(
        "search_python", f"all 3 models x 8 layers: Playground.search, top {K}", everything_search
    )
    run.ratio(
        "why_vs_search",
        "one explanation / one plain search (a cost)",
        "search_python",
        "why_python",
        True,
    )


def through_app(run: Report, n: int) -> None:
    """(b): /why_match and /search through gradio_client against python app.py."""
    from gradio_client import Client

    from tests.app_server import running_app

    with app_cache() as cache, running_app(cache) as url:
        client = Client(url, verbose=False)
        client.predict(query_index=0, api_name="/search")
        client.predict(query_index=0, result_index=1, api_name=WHY)
        why, search = [], []
        for i in range(n):
            why.append(seconds(client.predict, query_index=i, result_index=i + 1, api_name=WHY))
            search.append(seconds(client.predict, query_index=i, api_name="/search"))
    run.add("why_client", f"gradio_client /why_match, {MODEL} top_conv", why)
    run.add("search_client", f"gradio_client /search, {MODEL} top_conv", search)
    run.ratio(
        "why_vs_search_client",
        "/why_match / /search through gradio_client (a cost)",
        "search_client",
        "why_client",
        True,
    )


def main() -> None:
    opts = parser(__doc__.splitlines()[0]).parse_args()
    per_layer, n_client = (3, 10) if opts.quick else (10, 30)
    with report("bench_why_match", opts) as run, tempfile.TemporaryDirectory() as tmp:
        pg = Playground(PRECOMPUTED_DIR, cache_root=Path(tmp) / "features")
        print(f"\n(a) Python API: {DATASET}, every offline model and curated layer")
        python_api(run, pg, per_layer)
        print("\n(b) through the running app (python app.py on 127.0.0.1, one client):")
        through_app(run, n_client)


if __name__ == "__main__":
    main()
