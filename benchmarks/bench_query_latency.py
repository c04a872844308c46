"""Query latency (p50/p95): the Python API and the running app vs naive per-call code.

    python benchmarks/bench_query_latency.py [--quick]

(a) A dataset image as the query (stamps200, 200 images, top 50, EfficientNet-Lite0 top_conv,
    cosine): Playground.search, then gradio_client against the real app. Baseline: the same
    ranking computed naively, loading the float16 safetensors file on every call, scipy cdist
    and a full argsort.
(b) An uploaded photo (decode, preprocess, one forward pass, rank) with the model warm:
    Playground.search(query_image=...) on ONNX Runtime (the app's path) and, interleaved, on
    Keras (CONVENET_ONNX=0), then gradio_client. Baseline: a new keras.Model for the layer built
    on every call and model.predict on it (the base model stays loaded), ranked like (a)'s.
(c) What one plain HTTP search costs the server beyond its answer: the app's CPU per call (from
    /proc/PID/stat, batches of 30 calls) and the memory each anonymous call leaves behind (VmRSS
    growth over all calls), with the app's lean sessions. Baseline: the same app with Gradio's
    own sessions (CONVENET_LEAN_SESSIONS=0), running beside it, batches alternating.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

import numpy as np  # noqa: E402
from scipy.spatial.distance import cdist  # noqa: E402

from benchmarks.common import (  # noqa: E402
    DATASET,
    LAYER,
    METRIC,
    MODEL,
    K,
    Report,
    app_cache,
    ensure_onnx_graph,
    keras_only,
    parser,
    plain_http_search,
    report,
    rss_mib,
    time_calls,
    upload_images,
)
from convenet.data.images import load_image  # noqa: E402
from convenet.data.store import feature_path, read_feature_meta  # noqa: E402
from convenet.models.loading import get_model_spec, load_model, preprocess_for  # noqa: E402
from convenet.paths import PRECOMPUTED_DIR  # noqa: E402
from convenet.playground import Playground  # noqa: E402

FEATURE_FILE = feature_path(PRECOMPUTED_DIR, DATASET, MODEL)


def naive_top_k(query: np.ndarray, feats: np.ndarray, exclude: int | None = None) -> np.ndarray:
    """Every distance in float64 with scipy, then a full argsort."""
    dist = cdist(query[None].astype(np.float64), feats, METRIC)[0]
    if exclude is not None:
        dist[exclude] = np.inf
    return np.argsort(dist)[:K]


def naive_features() -> np.ndarray:
    """The layer's float16 features, read from the safetensors file (no in-memory cache)."""
    from safetensors.numpy import load_file

    return load_file(FEATURE_FILE)[LAYER]


def naive_dataset_query(row: int) -> np.ndarray:
    feats = naive_features()
    return naive_top_k(feats[row], feats, exclude=row)


def naive_upload_query(path: Path) -> np.ndarray:
    """A new single-layer keras.Model and model.predict per request, as a naive app does.

    Each new model gets a new predict function, traced on its first call: that is the cost.
    """
    import keras

    spec = get_model_spec(MODEL)
    model = load_model(MODEL)
    head = keras.Model(model.inputs, model.get_layer(LAYER).output)
    batch = preprocess_for(MODEL)(load_image(path, spec.input_size).astype(np.float32)[None])
    vector = head.predict(batch, verbose=0).mean(axis=(1, 2))[0]
    return naive_top_k(vector, naive_features())


def agreement(pg: Playground, index: int) -> str:
    """How many of the naive baseline's top k Playground also returns (a sanity check)."""
    names = read_feature_meta(FEATURE_FILE)["images"]
    folder = pg.images_dir(DATASET)
    row = names.index(pg.dataset(DATASET).paths[index].relative_to(folder).as_posix())
    naive = {names[i] for i in naive_dataset_query(row)}
    ours = pg.search(DATASET, MODEL, LAYER, METRIC, query_index=index, k=K)
    mine = {hit.path.relative_to(folder).as_posix() for hit in ours.hits}
    return f"{len(naive & mine)}/{K} of the top {K} agree"


def seconds_since(start: float) -> str:
    return f"{time.perf_counter() - start:.2f} s"


def dataset_queries(run: Report, pg: Playground, n: int) -> None:
    """(a) through the Python API and naively."""
    size = len(pg.dataset(DATASET).paths)
    start = time.perf_counter()
    pg.search(DATASET, MODEL, LAYER, METRIC, query_index=0, k=K)
    print(f"  first search (reads and checks the feature file): {seconds_since(start)}")
    ours = time_calls(
        lambda i: pg.search(DATASET, MODEL, LAYER, METRIC, query_index=i % size, k=K), n
    )
    naive = time_calls(lambda i: naive_dataset_query(i % size), n)
    run.add("dataset_python", "Playground.search(query_index=i)", ours)
    run.add("dataset_naive", "naive: load file + cdist + argsort", naive)
    print(f"  naive and Playground results: {agreement(pg, 3)}")
    run.ratio(
        "dataset", "dataset query, naive / Python API", "dataset_naive", "dataset_python", False
    )


def upload_queries(run: Report, pg: Playground, uploads: list[Path], n: int) -> None:
    """(b) through the Python API and naively."""

    def upload(i: int) -> None:
        pg.search(DATASET, MODEL, LAYER, METRIC, query_image=uploads[i % len(uploads)], k=K)

    start = time.perf_counter()
    upload(0)
    print(
        f"  first upload (ONNX session from the cached graph; not counted): {seconds_since(start)}"
    )
    start = time.perf_counter()
    with keras_only():
        upload(0)
    print(f"  first upload through Keras (build, trace; not counted): {seconds_since(start)}")
    ours, keras = [], []
    for i in range(n):  # interleaved, so a change of load hits both
        ours += time_calls(upload, 1, first=i)
        with keras_only():
            keras += time_calls(upload, 1, first=i)
    naive = time_calls(lambda i: naive_upload_query(uploads[i % len(uploads)]), max(3, n // 3))
    run.add("upload_python", "Playground.search(query_image=photo), ONNX Runtime", ours)
    run.add("upload_keras", "the same through Keras (CONVENET_ONNX=0)", keras)
    run.add("upload_naive", "naive: new keras.Model + predict (retraces)", naive)
    run.ratio("upload_onnx", "upload, Keras / ONNX Runtime", "upload_keras", "upload_python", False)
    run.ratio("upload", "upload, naive / Python API", "upload_naive", "upload_python", False)


def through_app(run: Report, uploads: list[Path], size: int, n_dataset: int, n_upload: int) -> None:
    """Both queries through gradio_client against a freshly started app (size: dataset images)."""
    from gradio_client import Client, handle_file

    from tests.app_server import running_app

    with app_cache() as cache, running_app(cache) as url:
        client = Client(url, verbose=False)
        client.predict(query_index=0, api_name="/search")
        dataset = time_calls(
            lambda i: client.predict(dataset=DATASET, query_index=i % size, api_name="/search"),
            n_dataset,
        )
        run.add("dataset_client", "gradio_client /search query_index=i", dataset)
        plain = time_calls(lambda i: plain_http_search(url, i % size), n_dataset)
        run.add("dataset_http", "plain HTTP /gradio_api/call/search", plain)
        start = time.perf_counter()
        client.predict(query=handle_file(str(uploads[0])), api_name="/search")
        print(
            f"  first upload through the app (ONNX session, cached graph): {seconds_since(start)}"
        )
        upload = time_calls(
            lambda i: client.predict(
                query=handle_file(str(uploads[i % len(uploads)])), api_name="/search"
            ),
            n_upload,
        )
        run.add("upload_client", "gradio_client /search query=photo", upload)
    run.ratio(
        "client_vs_python",
        "dataset query, gradio_client / Python API",
        "dataset_python",
        "dataset_client",
        True,  # a cost: how many times slower the client is
    )
    run.ratio(
        "client_vs_http",
        "dataset query, gradio_client / plain HTTP",
        "dataset_http",
        "dataset_client",
        True,  # a cost: how many times slower the client is
    )
    run.ratio(
        "upload_app", "upload, naive (in-process) / app", "upload_naive", "upload_client", False
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def call_cost(run: Report, size: int, batches: int, per_batch: int = 30) -> None:
    """(c): server CPU and memory kept per plain HTTP search, lean sessions vs Gradio's own."""
    from tests.app_server import AppProcess, app_process

    with (
        app_cache() as lean_cache,
        app_cache() as gradio_cache,
        app_process(lean_cache) as lean,
        app_process(gradio_cache, extra_env={"CONVENET_LEAN_SESSIONS": "0"}) as gradio,
    ):
        apps = {"lean": lean, "gradio": gradio}

        def searches(app: AppProcess, count: int, first: int = 0) -> None:
            time_calls(lambda i: plain_http_search(app.url, i % size), count, first)

        for app in apps.values():
            searches(app, 20)
        before = {name: rss_mib(app.process.pid) for name, app in apps.items()}
        cpu: dict[str, list[float]] = {name: [] for name in apps}
        for batch in range(batches):
            for name, app in apps.items():
                start = cpu_seconds(app.process.pid)
                searches(app, per_batch, batch * per_batch)
                cpu[name].append((cpu_seconds(app.process.pid) - start) / per_batch)
        calls = batches * per_batch
        kept = {
            name: (rss_mib(app.process.pid) - before[name]) * 1024 / calls
            for name, app in apps.items()
        }
    run.add("call_cpu_lean", "server CPU per plain HTTP search, lean sessions", cpu["lean"])
    run.add(
        "call_cpu_gradio",
        "the same, Gradio's own sessions (CONVENET_LEAN_SESSIONS=0)",
        cpu["gradio"],
    )
    run.ratio(
        "call_cpu",
        "server CPU per search, Gradio's / lean",
        "call_cpu_gradio",
        "call_cpu_lean",
        False,
    )
    what = f"memory kept per anonymous call (VmRSS growth over {calls} calls)"
    run.add("call_kept_lean", f"{what}, lean sessions", [kept["lean"]], "KB", 1)
    run.add("call_kept_gradio", f"{what}, Gradio's own sessions", [kept["gradio"]], "KB", 1)
    run.ratio(
        "call_kept",
        "memory kept per call, Gradio's / lean",
        "call_kept_gradio",
        "call_kept_lean",
        False,
    )


def main() -> None:
    opts = parser(__doc__.splitlines()[0]).parse_args()
    n_dataset, n_upload = (40, 8) if opts.quick else (200, 20)
    with report("bench_query_latency", opts) as run, tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        import keras  # noqa: F401 - imported up front so "first upload" is only the model

        # The naive baseline retraces on every call by design; TensorFlow warns about it each time.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        print(f"TensorFlow + Keras import {seconds_since(start)}")
        uploads = upload_images(Path(tmp))
        ensure_onnx_graph()
        pg = Playground(PRECOMPUTED_DIR, cache_root=Path(tmp) / "features")
        print(f"\n(a) dataset image as query: {DATASET}, {MODEL} {LAYER}, {METRIC}, top {K}")
        dataset_queries(run, pg, n_dataset)
        names = ", ".join(p.name for p in uploads)
        print(f"\n(b) uploaded photo ({names}, 427x640 JPEG), {MODEL} {LAYER}, top {K}")
        upload_queries(run, pg, uploads, n_upload)
        print("\n(a) + (b) through the running app (python app.py on 127.0.0.1, one client):")
        size = len(pg.dataset(DATASET).paths)
        through_app(run, uploads, size, n_dataset // 2, n_upload)
        print("\n(c) what one plain HTTP search costs the server: lean vs Gradio's own sessions")
        call_cost(run, size, 4 if opts.quick else 10)


if __name__ == "__main__":
    main()
