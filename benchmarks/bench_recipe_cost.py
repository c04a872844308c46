"""What a recipe costs a search: EfficientNet-Lite0 at top_conv, plain (the app's default view)
against another recipe (default ``best``), on clipart200, through Playground.search.

    python benchmarks/bench_recipe_cost.py [--recipe best] [--quick]

(a) First search of the dataset under each recipe, on a Playground with an empty feature cache
    (reads the stored views, builds the recipe's vectors: DBA over the whole dataset).
(b) Dataset images as queries, warm: p50 and p95, the two recipes interleaved.
(c) An uploaded photo as the query, warm (every view the recipe reads: one forward pass each;
    multi-scale GeM runs three sizes), interleaved.
Also each recipe's leave-one-out P@10 at that view, what the search buys for its cost.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from benchmarks.common import (  # noqa: E402
    LAYER,
    METRIC,
    MODEL,
    K,
    parser,
    report,
    time_calls,
    upload_images,
)
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402
from convenet.playground import Playground  # noqa: E402

DATASET = "clipart200"


def interleaved(fn_a, fn_b, n: int) -> tuple[list[float], list[float]]:  # noqa: ANN001
    """Samples of two callables taken in turns, so that a change of load hits both alike."""
    a, b = [], []
    for i in range(n):
        a += time_calls(fn_a, 1, i)
        b += time_calls(fn_b, 1, i)
    return a, b


def main() -> None:
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--recipe", default="best", help="the recipe to compare with plain")
    opts = args.parse_args()
    n, n_upload = (20, 6) if opts.quick else (200, 30)
    with report("bench_recipe_cost", opts) as run, tempfile.TemporaryDirectory() as cache:
        pg = Playground(PRECOMPUTED_DIR, Path(cache))
        size = len(pg.dataset(DATASET).paths)

        def search(recipe: str):  # noqa: ANN202
            return lambda i: pg.search(
                DATASET, MODEL, LAYER, METRIC, query_index=i % size, k=K, recipe=recipe
            )

        print(f"(a) first search, empty cache: {DATASET}, {MODEL} {LAYER}, {METRIC}, top {K}")
        for recipe in ("plain", opts.recipe):
            start = time.perf_counter()
            search(recipe)(0)
            print(f"  {recipe}: {time.perf_counter() - start:.3f} s")
        print("(b) dataset image as query, warm")
        plain, other = interleaved(search("plain"), search(opts.recipe), n)
        run.add("dataset_plain", "plain", plain)
        run.add("dataset_recipe", opts.recipe, other)
        run.ratio(
            "dataset",
            f"{opts.recipe} / plain, dataset query",
            "dataset_plain",
            "dataset_recipe",
            True,
        )
        print("(c) uploaded photo as query, warm")
        with tempfile.TemporaryDirectory() as folder:
            photos = upload_images(Path(folder))

            def upload(recipe: str):  # noqa: ANN202
                return lambda i: pg.search(
                    DATASET, MODEL, LAYER, METRIC, query_image=photos[i % 2], k=K, recipe=recipe
                )

            upload("plain")(0), upload(opts.recipe)(0)  # graphs exported and sessions made
            plain, other = interleaved(upload("plain"), upload(opts.recipe), n_upload)
        run.add("upload_plain", "plain", plain)
        run.add("upload_recipe", opts.recipe, other)
        run.ratio("upload", f"{opts.recipe} / plain, upload", "upload_plain", "upload_recipe", True)
        for recipe in ("plain", opts.recipe):
            p = pg.precision_at(DATASET, MODEL, LAYER, METRIC, recipe, 10)
            print(f"  leave-one-out P@10 of {recipe}: {p:.3f}")


if __name__ == "__main__":
    main()
