"""Seconds from ``python app.py`` to the first /search answer, and the app's resident memory.

    python benchmarks/bench_startup_memory.py [--quick]

Memory is the app process's VmRSS (/proc/<pid>/status) right after it answers HTTP, after the
first search, and after touching every offline model (a dataset search and an upload with each
of EfficientNet-Lite0/1/2; --quick: Lite0 only). The converted Lite weights are reused from the
user's cache, so a first-ever start (which converts them once) is slower than measured here.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from benchmarks.common import (  # noqa: E402
    DATASET,
    OFFLINE_MODELS,
    app_cache,
    machine_line,
    parser,
    peak_rss_mib,
    rss_mib,
    upload_images,
)
from convenet.models import get_model_spec  # noqa: E402


def main() -> None:
    opts = parser(__doc__.splitlines()[0]).parse_args()
    models = OFFLINE_MODELS[:1] if opts.quick else OFFLINE_MODELS
    from gradio_client import Client, handle_file

    from tests.app_server import app_process

    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp, app_cache() as cache:
        upload = upload_images(Path(tmp))[0]
        start = time.perf_counter()
        with app_process(cache) as app:
            serving = time.perf_counter() - start
            pid = app.process.pid
            rss_start = rss_mib(pid)
            client = Client(app.url, verbose=False)
            client.predict(dataset=DATASET, query_index=0, api_name="/search")
            first_answer = time.perf_counter() - start
            print(f"python app.py -> HTTP 200 on /: {serving:.1f} s (polled every 0.5 s)")
            print(f"python app.py -> first /search answer (gradio_client): {first_answer:.1f} s")
            print(f"\nresident memory of the app process (pid {pid}), VmRSS:")
            print(f"  {'right after start (HTTP 200)':<44}{rss_start:8.0f} MiB")
            print(f"  {'after the first dataset search':<44}{rss_mib(pid):8.0f} MiB")
            for key in models:
                spec = get_model_spec(key)
                layer = spec.layer_names[-1]
                began = time.perf_counter()
                client.predict(
                    dataset=DATASET, model=key, layer=layer, query_index=3, api_name="/search"
                )
                searched = time.perf_counter() - began
                began = time.perf_counter()
                client.predict(
                    dataset=DATASET,
                    model=key,
                    layer=layer,
                    query=handle_file(str(upload)),
                    api_name="/search",
                )
                uploaded = time.perf_counter() - began
                label = f"after {spec.title} search + upload"
                print(
                    f"  {label:<44}{rss_mib(pid):8.0f} MiB   "
                    f"(search {searched:.2f} s, first upload {uploaded:.1f} s)"
                )
            rss_end, peak = rss_mib(pid), peak_rss_mib(pid)
    print(f"  {'peak (VmHWM)':<44}{peak:8.0f} MiB")
    print(
        f"RATIO resident memory after touching {len(models)} model(s) / right after start = "
        f"{rss_end / rss_start:.2f}x ({rss_end - rss_start:+.0f} MiB)"
    )


if __name__ == "__main__":
    main()
