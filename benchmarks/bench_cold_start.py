"""First use on a fresh machine against the same use warm: with the warm-up at start, and without.

    python benchmarks/bench_cold_start.py [--quick]

Each variant starts ``python app.py`` with empty caches (CONVENET_CACHE, KERAS_HOME, HF_HOME:
nothing converted, exported or traced), as a Space after a restart: once with the warm-up
(``CONVENET_WARMUP`` naming the models timed; the app's default warms all three) and once
without (``CONVENET_WARMUP=0``, what the app did before). For each: seconds to HTTP 200, one
dataset search right after it (during the warm-up), the warm-up's own length (until its
``DONE`` log line), then for every offline model the first and the second call of an uploaded
query (``/search``), a why-match (``/why_match``) and an Explorer view (the layer list and
table, filters, feature maps, predictions and Grad-CAM: ``/explorer_layers``, ``/layer_table``,
``/filters``, ``/activations``, ``/explain_prediction``), each on the wall clock and in the
app's CPU seconds; the app's resident memory when the warm-up is done and after every use.
The second call uses another image, so nothing is answered from a result cache. Ratios:
first / second call of the same start. ``--quick``: Lite0 only.
"""

from __future__ import annotations

import os
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
    parser,
    plain_http_search,
    report,
    rss_mib,
    upload_images,
)
from convenet.models.loading import get_model_spec  # noqa: E402
from convenet.warmup import DONE  # noqa: E402

WARMUP_TIMEOUT_S = 900.0
SEARCH_EVERY_S = 1.0  # a visitor's pace while the warm-up runs
SEARCHES_WITHOUT = 20
USES = ("upload", "why", "explorer", "deep_layer")


def empty_caches(root: Path) -> tuple[Path, dict[str, str]]:
    """A fresh machine's caches under ``root``: the app's cache and its environment."""
    cache = root / "cache"
    cache.mkdir()
    return cache, {"KERAS_HOME": str(root / "keras"), "HF_HOME": str(root / "hf")}


def wait_for_log(
    log: Path,
    line: str,
    timeout: float = WARMUP_TIMEOUT_S,
    meanwhile: Callable[[], object] = lambda: time.sleep(0.5),
) -> None:
    """Until the app's log holds a line starting with ``line`` (its readiness signal), calling
    ``meanwhile`` between looks."""
    deadline = time.monotonic() + timeout
    while not any(
        text.split(": ", 1)[-1].startswith(line) for text in log.read_text().splitlines()
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {line!r} in the app's log after {timeout:.0f} s")
        meanwhile()


def timed_search(url: str, index: int) -> float:
    """Seconds of one dataset search over plain HTTP."""
    start = time.perf_counter()
    plain_http_search(url, index % 200)
    return time.perf_counter() - start


def app_cpu_s(pid: int) -> float:
    """CPU seconds of the app so far: its threads', and its finished children's (an export)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def first_uses(client: object, model: str, uploads: list[Path], pid: int) -> dict[str, float]:
    """Seconds of the first and second call of each use (``upload_first``, ``upload_warm`` ...),
    and the app's CPU seconds for each (``upload_first_cpu`` ...), which other jobs on the
    machine do not lengthen."""
    from gradio_client import handle_file

    predict = client.predict  # type: ignore[attr-defined]
    layer = get_model_spec(model).layer_names[0]

    def upload(i: int) -> None:
        predict(
            dataset=DATASET, model=model, query=handle_file(str(uploads[i])), api_name="/search"
        )

    def why(i: int) -> None:
        predict(
            dataset=DATASET,
            model=model,
            query_index=2 * i,
            result_index=2 * i + 1,
            api_name="/why_match",
        )

    def explorer(i: int) -> None:
        predict(model, layer, api_name="/explorer_layers")
        predict(model, "", api_name="/layer_table")
        predict(model, layer, api_name="/filters")
        predict(model, layer, DATASET, 10 + i, None, api_name="/activations")
        predict(model=model, dataset=DATASET, query_index=10 + i, api_name="/explain_prediction")

    def deep_layer(i: int) -> None:  # a learner's next step in the Explorer: another layer
        deepest = get_model_spec(model).layer_names[-1]
        predict(model, deepest, DATASET, 20 + i, None, api_name="/activations")

    calls: dict[str, Callable[[int], None]] = {
        "upload": upload,
        "why": why,
        "explorer": explorer,
        "deep_layer": deep_layer,
    }
    out = {}
    for use in USES:
        for i, when in enumerate(("first", "warm")):
            start, cpu = time.perf_counter(), app_cpu_s(pid)
            calls[use](i)
            out[f"{use}_{when}"] = time.perf_counter() - start
            out[f"{use}_{when}_cpu"] = app_cpu_s(pid) - cpu
    return out


def one_start(
    warmup: bool, models: tuple[str, ...], uploads: list[Path]
) -> tuple[dict[str, float], list[float]]:
    """Start the app on empty caches and time what a first visitor meets: the figures, and the
    seconds of dataset searches made all through the warm-up (or as many without it)."""
    from gradio_client import Client

    from tests.app_server import app_process

    with tempfile.TemporaryDirectory(prefix="convenet-cold-") as tmp:
        cache, env = empty_caches(Path(tmp))
        env["CONVENET_WARMUP"] = ",".join(models) if warmup else "0"  # the models timed
        began = time.perf_counter()
        try:
            with app_process(cache, extra_env=env, poll_s=0.05) as app:
                found = {"http200": time.perf_counter() - began}
                found["search"] = timed_search(app.url, 3)
                searches: list[float] = []

                def search_a_while() -> None:
                    searches.append(timed_search(app.url, len(searches)))
                    time.sleep(SEARCH_EVERY_S)

                if warmup:  # searches all through the warm-up
                    wait_for_log(cache / "app.log", DONE, meanwhile=search_a_while)
                    found["warmup"] = time.perf_counter() - began
                    found["rss_ready"] = rss_mib(app.process.pid)
                else:  # as many as a short warm-up would see
                    for _ in range(SEARCHES_WITHOUT):
                        search_a_while()
                client = Client(app.url, verbose=False)
                for model in models:
                    for key, value in first_uses(client, model, uploads, app.process.pid).items():
                        found[f"{model}_{key}"] = value
                found["rss_used"] = rss_mib(app.process.pid)
        except Exception:  # the app's own account of what went wrong, before its folder goes
            print("".join((cache / "app.log").read_text().splitlines(keepends=True)[-40:]))
            raise
    return found, searches


def record(
    run: Report, start: tuple[dict[str, float], list[float]], variant: str, models: tuple[str, ...]
) -> None:
    """A start's figures (n=1 each: one fresh start) and its first / second call ratios."""
    found, searches = start
    run.add(f"{variant}_http200", "python app.py -> HTTP 200", [found["http200"]], "s", 1)
    run.add(f"{variant}_search", "a dataset search right after it", [found["search"]], "s", 1)
    during = "during the warm-up" if "warmup" in found else "after the start, no warm-up"
    run.add(f"{variant}_searches", f"dataset searches {during}", searches, "s", 1)
    if "warmup" in found:
        run.add(f"{variant}_warmup", "start -> warm-up finished", [found["warmup"]], "s", 1)
        run.add(f"{variant}_rss_ready", "VmRSS then", [found["rss_ready"]], "MiB", 1)
    for model in models:
        title = get_model_spec(model).title
        for use in USES:
            for measure, unit in (("", "s"), ("_cpu", "CPU s")):
                for when in ("first", "warm"):
                    key = f"{variant}_{model}_{use}_{when}{measure}"
                    call = "first call" if when == "first" else "second call"
                    label = f"{title} {use}, {call}{', app CPU' if measure else ''}"
                    run.add(key, label, [found[f"{model}_{use}_{when}{measure}"]], unit, 1)
                if not run.figures[f"{variant}_{model}_{use}_warm{measure}"].median:
                    continue  # a call under the clock's tick (10 ms of CPU): no ratio
                run.ratio(
                    f"{variant}_{model}_{use}{measure}",
                    f"{title} {use} first / second call{', app CPU' if measure else ''}",
                    f"{variant}_{model}_{use}_warm{measure}",
                    f"{variant}_{model}_{use}_first{measure}",
                    higher_is_better=True,
                )
    run.add(f"{variant}_rss_used", "VmRSS after every use", [found["rss_used"]], "MiB", 1)


def main() -> None:
    opts = parser(__doc__.splitlines()[0]).parse_args()
    models = (MODEL,) if opts.quick else OFFLINE_MODELS
    with report("bench_cold_start", opts) as run, tempfile.TemporaryDirectory() as tmp:
        uploads = upload_images(Path(tmp))
        variants = {"warmup": one_start(True, models, uploads)}
        variants["cold"] = one_start(False, models, uploads)
        for variant, start in variants.items():
            what = "with the warm-up" if variant == "warmup" else "without (CONVENET_WARMUP=0)"
            print(f"\nempty caches, {what}:")
            record(run, start, variant, models)
        print()
        run.ratio(
            "http200",
            "start to HTTP 200, with / without the warm-up",
            "cold_http200",
            "warmup_http200",
            higher_is_better=True,
        )
        run.ratio(
            "searches",
            "dataset search, during / without the warm-up",
            "cold_searches",
            "warmup_searches",
            higher_is_better=True,
        )


if __name__ == "__main__":
    main()
