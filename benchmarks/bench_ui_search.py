"""Server-side cost of a search click in the UI: cached tile files vs drawing every tile.

    python benchmarks/bench_ui_search.py [--quick]

The app is built in this process and the Semantic Search tab's search event is run through
Gradio's own event processing (``Blocks.process_api``: preprocess, the handler, postprocess
with the gallery's files), which is what the server does for a click, without HTTP and queue.
Query: a stamps200 image, EfficientNet-Lite0 top_conv, cosine, top 50.

Baseline (same run, same queries, interleaved): every tile drawn with PIL and encoded by Gradio
(WebP), as before the tile cache. Ours: the tile cache, on the first view of each query (the
cache fills up during the run, so tiles shared with earlier queries are already there) and on a
repeat view of the same queries.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from benchmarks.common import DATASET, LAYER, METRIC, MODEL, parser, report  # noqa: E402


class DrawEveryTile:
    """The baseline: a PIL tile per hit, which Gradio then encodes for the gallery."""

    def tile(self, path: str, similarity: float, match: bool | None) -> object:
        from convenet.explain.plots import result_tile

        return result_tile(path, similarity, match)


def main() -> None:
    opts = parser(__doc__.splitlines()[0]).parse_args()
    n = 20 if opts.quick else 60
    with report("bench_ui_search", opts) as run, tempfile.TemporaryDirectory() as tmp:
        os.environ["GRADIO_TEMP_DIR"] = tmp  # before Gradio is imported: its cache folder
        os.environ.setdefault("CONVENET_HUB_OFFLINE", "1")
        from gradio.state_holder import SessionState

        from convenet.explain.plots import TileCache
        from ui.app import build_app
        from ui.common import AppState

        state = AppState()
        demo = build_app(state)
        event = next(f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "run_search")
        session = SessionState(demo)
        size = len(state.playground.dataset(DATASET).paths)
        queries = [(7 * i + 1) % size for i in range(n)]
        tiles = TileCache(Path(tmp) / "result-tiles")

        async def click(index: int, painter: object) -> float:
            state.tiles = painter
            start = time.perf_counter()
            out = await demo.process_api(
                block_fn=event,
                # the search event's inputs: dataset, model, layer, metric, recipe, query, upload, k
                inputs=[DATASET, MODEL, LAYER, METRIC, "plain", index, None, 50],
                state=session,
                event_id=f"bench-{index}",
            )
            elapsed = time.perf_counter() - start
            if len(out["data"][3]["value"]) != 50:  # the results gallery
                raise RuntimeError("the search event did not return 50 results")
            return elapsed

        async def measure() -> tuple[list[float], list[float], list[float]]:
            await click(0, DrawEveryTile())  # first call: features read, Gradio warmed up
            await click(0, TileCache(Path(tmp) / "warm-up"))
            drawn, first, repeat = [], [], []
            for index in queries:
                drawn.append(await click(index, DrawEveryTile()))
                first.append(await click(index, tiles))
            for index in queries:
                repeat.append(await click(index, tiles))
            return drawn, first, repeat

        drawn, first, repeat = asyncio.run(measure())
        print(f"\nsearch event, {DATASET} image query, {MODEL} {LAYER}, {METRIC}, top 50:")
        run.add("drawn", "baseline: draw every tile (PIL) + Gradio WebP encode", drawn)
        run.add("first", "tile cache, first view of each query", first)
        run.add("repeat", "tile cache, repeat view", repeat)
        print(f"  tiles in the cache after the run: {len(tiles)}")
        run.ratio("first_vs_drawn", "drawing / tile cache, first view", "drawn", "first", False)
        run.ratio("repeat_vs_drawn", "drawing / tile cache, repeat view", "drawn", "repeat", False)


if __name__ == "__main__":
    main()
