"""The lesson views next to one plain search: which layers see alike (CKA) and the map.

    python benchmarks/bench_lessons.py [--quick]

(a) Playground.layer_similarity on clipart200 (linear CKA between all 24 model x layer pairs
    with features), computed afresh each time (its per-dataset cache emptied; features already
    in memory), against Playground.search (Lite0 top_conv, cosine, top 50), interleaved.
(b) Playground.projection (t-SNE, Lite0 top_conv): the map shipped beside the features against
    drawing it (the shipped maps set aside), and against the same plain search.
(c) The other new views against the same plain search: how a convolution computes at one pixel
    (Inspector.convolution_step, Lite0, the model loaded once before), the receptive fields of
    every layer, and the lessons with the figure each claim is checked against (/lessons).
(d) A channel page's strongest images, cropped where the channel peaks (Inspector.strongest_spots,
    any channel of any curated layer, the shipped peaks read once before), against the same plain
    search; and the one pass that finds every channel's peaks where none ship (an own dataset's
    first channel page), for the 200 images of clipart200.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from benchmarks.common import LAYER, METRIC, MODEL, K, parser, report  # noqa: E402
from convenet.data.images import load_image  # noqa: E402
from convenet.explain.maps import PROJECTIONS  # noqa: E402
from convenet.explain.peaks import dataset_peaks  # noqa: E402
from convenet.lessons import lesson_records  # noqa: E402
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402
from convenet.playground import Playground  # noqa: E402

DATASET = "clipart200"


def seconds(fn, *args, **kwargs) -> float:  # noqa: ANN001, ANN002, ANN003 - any call
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    opts = parser(__doc__.splitlines()[0]).parse_args()
    n, drawn_n = (5, 1) if opts.quick else (20, 3)
    with report("bench_lessons", opts) as run, tempfile.TemporaryDirectory() as tmp:
        pg = Playground(PRECOMPUTED_DIR, cache_root=Path(tmp) / "features")
        pg.layer_similarity(DATASET)  # features of every model read once, not counted
        pg.search(DATASET, MODEL, LAYER, METRIC, query_index=0, k=K)
        cka, search = [], []
        for i in range(n):
            pg._similarities.clear()
            cka.append(seconds(pg.layer_similarity, DATASET))
            search.append(seconds(pg.search, DATASET, MODEL, LAYER, METRIC, query_index=i, k=K))
        print(f"\n(a) {DATASET}: CKA between every model x layer, against one plain search")
        run.add("cka", "Playground.layer_similarity, 24 x 24 linear CKA, afresh", cka)
        run.add("search", f"Playground.search, {MODEL} {LAYER}, top {K}", search)
        run.ratio("cka_vs_search", "CKA heatmap / one plain search (a cost)", "search", "cka", True)

        print(f"\n(b) {DATASET}: the t-SNE map of {MODEL} {LAYER}, shipped or drawn")
        shipped = [seconds(pg.projection, DATASET, MODEL, LAYER, "tsne") for _ in range(n)]
        drawn = []
        for _ in range(drawn_n):
            fresh = Playground(PRECOMPUTED_DIR, cache_root=Path(tmp) / "features")
            fresh._maps[DATASET] = {}  # the shipped maps set aside: drawn as before
            PROJECTIONS.clear()  # and none kept from the last round
            fresh.features(DATASET, MODEL, LAYER)
            drawn.append(seconds(fresh.projection, DATASET, MODEL, LAYER, "tsne"))
        run.add("map_shipped", "Playground.projection, t-SNE, shipped map", shipped)
        run.add("map_drawn", "Playground.projection, t-SNE, drawn", drawn)
        run.ratio("map", "shipped map vs drawing it (speed-up)", "map_drawn", "map_shipped", False)
        run.ratio("map_vs_search", "shipped map / one plain search", "search", "map_shipped", True)

        print(f"\n(c) the convolution walk-through, receptive fields and lessons ({MODEL})")
        inspector = pg.inspect(MODEL)
        image = load_image(pg.dataset(DATASET).paths[0], 224)  # a dataset image, as sent
        inspector.convolution_step(image, 0)  # the model loaded once, not counted
        steps = [seconds(inspector.convolution_step, image, i % 8, i % 7, i % 5) for i in range(n)]
        fields = [seconds(inspector.receptive_fields) for _ in range(n)]
        lessons = [seconds(lesson_records, pg) for _ in range(n)]
        run.add("convolution", "Inspector.convolution_step, one output pixel", steps)
        run.add("fields", "Inspector.receptive_fields, every layer", fields)
        run.add("lessons", "lesson_records: the lessons and their checked figures", lessons)
        for key in ("convolution", "fields", "lessons"):
            run.ratio(f"{key}_vs_search", f"{key} / one plain search", "search", key, True)

        print(f"\n(d) a channel page's strongest images, cropped where it peaks ({MODEL})")
        layers = list(inspector.spec.layer_names)
        inspector.strongest_spots(DATASET, layers[0], 0)  # the shipped peaks read once
        spots = [
            seconds(inspector.strongest_spots, DATASET, layers[i % len(layers)], i % 16)
            for i in range(n)
        ]
        paths = pg.dataset(DATASET).paths
        passes = [seconds(dataset_peaks, MODEL, paths, layers) for _ in range(drawn_n)]
        run.add("spots", "Inspector.strongest_spots: nine patches, shipped peaks", spots)
        run.add("peaks_pass", f"dataset_peaks: one pass over {len(paths)} images", passes)
        run.ratio("spots_vs_search", "spots / one plain search", "search", "spots", True)
        run.ratio("pass_vs_search", "peaks pass / one plain search", "search", "peaks_pass", True)


if __name__ == "__main__":
    main()
