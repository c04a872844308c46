"""Start-up time and resident memory of ``python app.py``: TensorFlow on demand vs at start.

    python benchmarks/bench_startup_memory.py [--quick]

Each round starts the app twice, interleaved: as it is (TensorFlow is imported when a model is
first needed) and, as the baseline, with TensorFlow + Keras imported before the app (a
``sitecustomize`` on PYTHONPATH does ``import keras``), which is what the app did before. For
each start: seconds to HTTP 200 on / (polled every 0.05 s), VmRSS right then and after the
first dataset-image search, and the seconds of the first uploaded query (ONNX Runtime loads
Lite0's cached graph; TensorFlow is not needed for it). Without --quick, one
more start touches every offline model (a search and an upload each) for the memory they add.
The converted Lite weights and exported graphs are reused from the user's cache, so a
first-ever start (which converts and exports them once, with TensorFlow) is slower. Each
round also splits a start into its phases (``start_phases.py``, a fresh interpreter): Gradio's
import, ours (imports and building the app) and Gradio's launch until the server listens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from benchmarks.common import (  # noqa: E402
    DATASET,
    OFFLINE_MODELS,
    Report,
    app_cache,
    ensure_onnx_graph,
    parser,
    peak_rss_mib,
    report,
    rss_mib,
    upload_images,
)
from convenet.models.loading import get_model_spec  # noqa: E402

EAGER = "import keras  # the baseline: TensorFlow + Keras at start, as the app did before\n"


def one_start(upload: Path, extra_env: dict) -> dict[str, float]:
    """Seconds to HTTP 200, RSS at start and after a search, seconds of the first upload."""
    from gradio_client import Client, handle_file

    from tests.app_server import app_process

    with app_cache() as cache:
        start = time.perf_counter()
        with app_process(cache, extra_env=extra_env, poll_s=0.05) as app:
            serving = time.perf_counter() - start
            pid = app.process.pid
            rss_start = rss_mib(pid)
            client = Client(app.url, verbose=False)
            client.predict(dataset=DATASET, query_index=0, api_name="/search")
            rss_search = rss_mib(pid)
            began = time.perf_counter()
            client.predict(dataset=DATASET, query=handle_file(str(upload)), api_name="/search")
            first_upload = time.perf_counter() - began
            rss_upload = rss_mib(pid)
    return {
        "http200": serving,
        "rss_start": rss_start,
        "rss_search": rss_search,
        "first_upload": first_upload,
        "rss_upload": rss_upload,
    }


def start_phases() -> dict[str, float]:
    """Seconds of Gradio's import, of ours (imports + building the app) and of the launch, in
    a fresh interpreter started like the app (``start_phases.py``)."""
    from tests.app_server import REPO, free_port

    with app_cache() as cache:
        env = {
            **os.environ,
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(free_port()),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "CONVENET_HUB_OFFLINE": "1",
            "CONVENET_CACHE": str(cache),
            "GRADIO_TEMP_DIR": str(cache / "gradio-tmp"),
        }
        done = subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "start_phases.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def every_model(upload: Path) -> None:
    """One start, then a search and an upload with each offline model: the memory they add."""
    from gradio_client import Client, handle_file

    from tests.app_server import app_process

    print("\nmemory while touching every offline model (one start, VmRSS of the app):")
    with app_cache() as cache, app_process(cache) as app:
        pid = app.process.pid
        client = Client(app.url, verbose=False)
        print(f"  {'right after start':<40}{rss_mib(pid):8.0f} MiB")
        for key in OFFLINE_MODELS:
            spec = get_model_spec(key)
            layer = spec.layer_names[-1]
            client.predict(
                dataset=DATASET, model=key, layer=layer, query_index=3, api_name="/search"
            )
            client.predict(
                dataset=DATASET,
                model=key,
                layer=layer,
                query=handle_file(str(upload)),
                api_name="/search",
            )
            print(f"  {'after ' + spec.title + ' search + upload':<40}{rss_mib(pid):8.0f} MiB")
        print(f"  {'peak (VmHWM)':<40}{peak_rss_mib(pid):8.0f} MiB")


def record(run: Report, rounds: list[dict[str, float]], variant: str, what: str) -> None:
    print(f"\n{what}:")
    run.add(
        f"{variant}_http200", "python app.py -> HTTP 200", [r["http200"] for r in rounds], "s", 1
    )
    for key, label in (
        ("rss_start", "VmRSS at HTTP 200"),
        ("rss_search", "VmRSS after the first dataset search"),
        ("rss_upload", "VmRSS after the first upload (Lite0)"),
    ):
        run.add(f"{variant}_{key}", label, [r[key] for r in rounds], "MiB", 1)
    run.add(
        f"{variant}_first_upload",
        "first uploaded query",
        [r["first_upload"] for r in rounds],
        "s",
        1,
    )


def main() -> None:
    opts = parser(__doc__.splitlines()[0]).parse_args()
    n_rounds = 2 if opts.quick else 3
    with report("bench_startup_memory", opts) as run, tempfile.TemporaryDirectory() as tmp:
        upload = upload_images(Path(tmp))[0]
        ensure_onnx_graph()
        eager_dir = Path(tmp) / "eager"
        eager_dir.mkdir()
        (eager_dir / "sitecustomize.py").write_text(EAGER)
        lazy, eager, phases = [], [], []
        for _ in range(n_rounds):
            lazy.append(one_start(upload, {}))
            eager.append(one_start(upload, {"PYTHONPATH": str(eager_dir)}))
            phases.append(start_phases())
        record(run, lazy, "lazy", "the app as it is (TensorFlow when a model is needed)")
        record(run, eager, "eager", "baseline: TensorFlow + Keras imported at start")
        print("\nwhere the start goes (the app as it is, in a fresh interpreter, same rounds):")
        for key, label in (
            (
                "gradio_import",
                "import gradio (Gradio, FastAPI, pandas, MCP SDK ...; no stub rewriting)",
            ),
            ("ours", "our imports + building the app (until launch)"),
            ("launch", "Gradio's launch until the server listens"),
        ):
            run.add(f"phase_{key}", label, [p[key] for p in phases], "s", 1)
        print()
        run.ratio(
            "http200", "start to HTTP 200, eager / lazy", "eager_http200", "lazy_http200", False
        )
        run.ratio(
            "rss_start", "RSS at start, eager / lazy", "eager_rss_start", "lazy_rss_start", False
        )
        extra = run.figures["lazy_first_upload"].median - run.figures["eager_first_upload"].median
        print(
            f"  the first upload after start takes {extra:+.2f} s more than with TensorFlow loaded"
        )
        if not opts.quick:
            every_model(upload)


if __name__ == "__main__":
    main()
