"""Rewrite the performance table of docs/performance.md from the benchmarks' JSON output.

    python benchmarks/readme_table.py [--results benchmarks/results] [--page docs/performance.md]

Every figure in the table comes from a file the benchmarks wrote with ``--json`` (median and
range over the run's repeats, the same run's baseline, the ratio), next to the load average the
run started and ended at. Nothing is typed in by hand, so no figure outlives its measurement.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from benchmarks.common import OFFLINE_MODELS, RESULTS_DIR  # noqa: E402
from convenet.models.registry import get_model_spec  # noqa: E402

START = "<!-- performance table: written by benchmarks/readme_table.py -->"
END = "<!-- end of performance table -->"
PAGE = RESULTS_DIR.parents[1] / "docs" / "performance.md"


@dataclass(frozen=True)
class Row:
    """A table row: a figure of one benchmark, its same-run baseline and their ratio."""

    bench: str
    what: str
    ours: str
    baseline: str | None = None
    ratio: str | None = None
    share: bool = False  # the ratio is a fraction (of the FLOP ceiling), shown in per cent
    baseline_what: str | None = None  # what the baseline is, where its label does not say
    ratio_what: str | None = None  # what the ratio is, where it is not "baseline / ours"


LITE0 = "efficientnet_lite0"
FIRST_USES = {"upload": "uploaded query", "why": "why-match", "explorer": "Explorer view"}


def cold_start_rows() -> list[Row]:
    """bench_cold_start: the start with and without the warm-up, then each offline model's
    first uses on empty caches against their second call, with the warm-up and without."""
    rows = [
        Row(
            "bench_cold_start",
            "`python app.py` to HTTP 200, empty caches, warm-up on",
            "warmup_http200",
            "cold_http200",
            "http200",
            baseline_what="the same start with CONVENET_WARMUP=0",
            ratio_what="with / without the warm-up",
        ),
        Row(
            "bench_cold_start",
            "dataset searches all through the warm-up, one a second",
            "warmup_searches",
            "cold_searches",
            "searches",
            baseline_what="the same after a start with CONVENET_WARMUP=0",
            ratio_what="medians, during / without the warm-up",
        ),
        Row("bench_cold_start", "empty caches: start to warm-up finished", "warmup_warmup"),
        Row(
            "bench_cold_start",
            "resident memory when the warm-up is done",
            "warmup_rss_ready",
            "cold_rss_used",
            baseline_what="CONVENET_WARMUP=0, after each model's first uses",
        ),
    ]
    # the wall clock (what a visitor waits), and the app's CPU (what the call built: steady
    # where other jobs share the machine)
    variants = (
        ("warmup", "", "after the warm-up"),
        ("warmup", "_cpu", "after the warm-up, app CPU"),
        ("cold", "", "CONVENET_WARMUP=0"),
        ("cold", "_cpu", "CONVENET_WARMUP=0, app CPU"),
    )
    for variant, measure, when in variants:
        for model in OFFLINE_MODELS:
            for use, words in FIRST_USES.items():
                key = f"{variant}_{model}_{use}"
                rows.append(
                    Row(
                        "bench_cold_start",
                        f"empty caches: first {words}, {get_model_spec(model).title}, {when}",
                        f"{key}_first{measure}",
                        f"{key}_warm{measure}",
                        f"{key}{measure}",
                        baseline_what="the second call, same start",
                        ratio_what="first / second call (target <= 1.5x)",
                    )
                )
    return rows


EAGER = "the same app with TensorFlow + Keras imported at start, as before"
ROWS = (
    Row(
        "bench_ui_search",
        "search click in the UI, server-side, repeat view",
        "repeat",
        "drawn",
        "repeat_vs_drawn",
    ),
    Row(
        "bench_ui_search",
        "search click in the UI, server-side, first view",
        "first",
        "drawn",
        "first_vs_drawn",
    ),
    Row(
        "bench_startup_memory",
        "`python app.py` to HTTP 200",
        "lazy_http200",
        "eager_http200",
        "http200",
        baseline_what=EAGER,
    ),
    Row(
        "bench_startup_memory",
        "start: `import gradio` (Gradio's own, stub rewriting skipped)",
        "phase_gradio_import",
    ),
    Row("bench_startup_memory", "start: our imports + building the app", "phase_ours"),
    Row("bench_startup_memory", "start: Gradio's launch until listening", "phase_launch"),
    Row(
        "bench_startup_memory",
        "resident memory at HTTP 200",
        "lazy_rss_start",
        "eager_rss_start",
        "rss_start",
        baseline_what=EAGER,
    ),
    Row(
        "bench_startup_memory",
        "first uploaded query after start (Lite0)",
        "lazy_first_upload",
        "eager_first_upload",
        baseline_what=EAGER,
    ),
    Row(
        "bench_browser_click",
        "click on a result -> new gallery visible (headless Chromium)",
        "click",
        "http",
    ),
    Row(
        "bench_query_latency",
        "dataset-image query, Python API",
        "dataset_python",
        "dataset_naive",
        "dataset",
    ),
    Row("bench_query_latency", "dataset-image query, plain HTTP `/search`", "dataset_http"),
    Row("bench_query_latency", "dataset-image query, `gradio_client` `/search`", "dataset_client"),
    Row(
        "bench_query_latency",
        "uploaded photo, Lite0 warm, Python API",
        "upload_python",
        "upload_keras",
        "upload_onnx",
    ),
    Row(
        "bench_query_latency",
        "uploaded photo, Lite0 warm, Python API",
        "upload_python",
        "upload_naive",
        "upload",
    ),
    Row("bench_query_latency", "uploaded photo, `gradio_client` `/search`", "upload_client"),
    Row(
        "bench_query_latency",
        "server CPU per plain HTTP search (the app's, beyond the answer)",
        "call_cpu_lean",
        "call_cpu_gradio",
        "call_cpu",
    ),
    Row(
        "bench_query_latency",
        "memory kept per anonymous API call (Gradio keeps up to 10,000 sessions)",
        "call_kept_lean",
        "call_kept_gradio",
        "call_kept",
    ),
    Row(
        "bench_extraction",
        "feature extraction, Lite0, 8 layers per image",
        f"batched_{LITE0}",
        f"keras_{LITE0}",
        f"{LITE0}_onnx",
    ),
    Row(
        "bench_extraction",
        "feature extraction, Lite0, 8 layers per image",
        f"batched_{LITE0}",
        f"naive_{LITE0}",
        LITE0,
    ),
    Row(
        "bench_extraction",
        "feature extraction, Lite0, batches side by side (one thread each)",
        f"batched_{LITE0}",
        f"one_stream_{LITE0}",
        f"{LITE0}_streams",
    ),
    Row(
        "bench_extraction",
        "feature extraction, Lite0, share of the FLOP ceiling",
        f"batched_{LITE0}",
        f"ceiling_{LITE0}",
        f"{LITE0}_onnx_ceiling",
        share=True,
        ratio_what="best pass / best matmul",
    ),
    Row(
        "bench_extraction",
        "feature extraction, Lite0, the network alone, share of the FLOP ceiling",
        f"network_{LITE0}",
        f"ceiling_{LITE0}",
        f"{LITE0}_network_ceiling",
        share=True,
        ratio_what="best pass / best matmul",
    ),
    Row(
        "bench_extraction",
        "feature extraction, Lite0, per CPU-second, share of the matmul's",
        f"onnx_cpu_{LITE0}",
        f"ceiling_cpu_{LITE0}",
        f"{LITE0}_onnx_ceiling_cpu",
        share=True,
        ratio_what="medians, per CPU-second",
    ),
    Row(
        "bench_extraction",
        "feature extraction, Lite0, the network alone, per CPU-second",
        f"network_cpu_{LITE0}",
        f"ceiling_cpu_{LITE0}",
        f"{LITE0}_network_ceiling_cpu",
        share=True,
        ratio_what="medians, per CPU-second",
    ),
    Row(
        "bench_extraction",
        "feature extraction, Lite0, batch 8, per CPU-second",
        f"onnx_cpu_{LITE0}",
        f"batch16_cpu_{LITE0}",
        f"{LITE0}_batch",
    ),
    Row(
        "bench_load",
        "dataset search, 20 users with a mixed load (joining over 1 s)",
        "load_search",
        "idle_search",
        "search_p95_vs_idle",
        ratio_what="p95 under load / idle median (target <= 3x)",
    ),
    Row(
        "bench_load",
        "dataset search, the same load, every user starting at once",
        "load_search_sync",
        "idle_search_sync",
        "search_p95_vs_idle_sync",
        ratio_what="p95 under load / idle median of that round",
    ),
    Row(
        "bench_load",
        "dataset search under the same load, slow work at a lower priority",
        "load_search",
        "load_search_nice0",
        "search_p95_priority",
        baseline_what="the same round, slow work at the usual priority (before)",
        ratio_what="p95 at the usual / at a lower priority",
    ),
    Row("bench_load", "uploaded photo, under the same load", "load_upload"),
    Row(
        "bench_load",
        "uploaded photo under the same load, slow work at a lower priority",
        "load_upload",
        "load_upload_nice0",
        "upload_p95_priority",
        baseline_what="the same round, slow work at the usual priority (before)",
        ratio_what="p95 at the usual / at a lower priority",
    ),
    Row("bench_load", "feature visualization, under the same load", "load_featurevis"),
    Row("bench_load", "Explorer view (Keras), under the same load", "load_explorer"),
    Row("bench_load", "map / quality / comparison, under the same load", "load_heavy"),
    Row(
        "bench_ranking",
        "ranking 100,000 x 1280 float32, cosine, top 50",
        "rank_100000_float32_cosine",
        "cdist_100000_float32_cosine",
        "100000_float32_cosine",
    ),
    Row(
        "bench_why_match",
        "why two images match, dataset pair, Lite0/1/2 x 8 layers, Python API",
        "why_python",
        "search_python",
        baseline_what="one plain search (top 50), interleaved; the explanation costs more",
    ),
    Row("bench_why_match", "why two images match, `gradio_client` `/why_match`", "why_client"),
    Row(
        "bench_lessons",
        "which layers see alike: CKA of all 24 model x layer pairs, clipart200, afresh",
        "cka",
        "search",
        baseline_what="one plain search (top 50), interleaved; the heatmap costs more",
    ),
    Row(
        "bench_lessons",
        "the dataset map (t-SNE, Lite0 top_conv), shipped with the dataset",
        "map_shipped",
        "map_drawn",
        "map",
        baseline_what="drawing it, the shipped maps set aside",
        ratio_what="drawn / shipped",
    ),
    Row(
        "bench_lessons",
        "how a convolution computes at one pixel (Lite0's first convolution, by hand)",
        "convolution",
        "search",
        "convolution_vs_search",
        baseline_what="one plain search (top 50), the same run; the walk-through costs more",
        ratio_what="walk-through / search",
    ),
    Row(
        "bench_lessons",
        "the lessons, each with the figure its claim is checked against (`/lessons`)",
        "lessons",
        "search",
        "lessons_vs_search",
        baseline_what="one plain search (top 50), the same run",
        ratio_what="lessons / search",
    ),
    *cold_start_rows(),
)


def number(value: float) -> str:
    """Three significant digits, without exponents: 0.881, 23.1, 136, 7,990."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def cell(figure: dict) -> str:
    """Median with its range (and p95 where there are 20 samples), e.g.
    ``23.1 ms (20.4-31.0, n=60, p95 29.5)``."""
    p95 = f", p95 {number(figure['p95'])}" if figure.get("p95") is not None else ""
    return (
        f"{number(figure['median'])} {figure['unit']} "
        f"({number(figure['low'])}-{number(figure['high'])}, n={figure['n']}{p95})"
    )


def load_cell(machine: dict) -> str:
    quiet = "" if machine["quiet"] else " (busy)"
    return f"{machine['load_start']:.1f} -> {machine['load_end']:.1f}{quiet}"


def table(records: dict[str, dict]) -> str:
    lines = [
        "| what | ours: median (range, n, p95) | baseline, same run | ratio "
        "| load at start -> end |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in ROWS:
        record = records.get(row.bench)
        if record is None or row.ours not in record["figures"]:
            continue
        figures = record["figures"]
        baseline = ""
        if row.baseline in figures:
            what = row.baseline_what or figures[row.baseline]["label"]
            baseline = f"{cell(figures[row.baseline])}: {what}"
        # A ratio of an optional round (bench_load --priority-baseline) may be absent.
        value = record["ratios"].get(row.ratio, {}).get("value") if row.ratio else None
        ratio = "" if value is None else f"{value:.0%}" if row.share else f"{value:.1f}x"
        if row.ratio_what and ratio:
            ratio += f": {row.ratio_what}"
        lines.append(
            f"| {row.what} | {cell(figures[row.ours])} | {baseline} | {ratio} | "
            f"{load_cell(record['machine'])} |"
        )
    return "\n".join(lines)


def header(records: dict[str, dict]) -> str:
    machines = {(r["machine"]["cpu"], r["machine"]["logical_cpus"]) for r in records.values()}
    what = "; ".join(f"{cpu}, {cpus} logical CPUs" for cpu, cpus in sorted(machines))
    dates = sorted(r["machine"]["started"] for r in records.values())
    busy = [name for name, r in records.items() if not r["machine"]["quiet"]]
    threshold = max(r["machine"]["quiet_threshold"] for r in records.values())
    note = (
        f"Runs that did not get a quiet machine (1-minute load above {threshold:.1f}) are marked "
        f"busy: {', '.join(busy)}; their absolute figures are slower than on an idle machine, "
        "their same-run ratios less so."
        if busy
        else f"Every run started on a quiet machine (1-minute load at most {threshold:.1f})."
    )
    quick = [name for name, r in records.items() if r["quick"]]
    quick_note = f" Run with `--quick`: {', '.join(quick)}." if quick else ""
    return (
        f"Measured on {what}, {dates[0]} to {dates[-1]}. {note}{quick_note} Every figure here "
        "comes from `python benchmarks/run_all.py` (it runs the benchmarks, then this table)."
    )


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--results", type=Path, default=RESULTS_DIR)
    args.add_argument("--page", type=Path, default=PAGE, help="the page holding the table")
    opts = args.parse_args()
    records = {}
    for path in sorted(opts.results.glob("*.json")):
        record = json.loads(path.read_text())
        if any(row.bench == record["bench"] for row in ROWS):  # FAISS runs have a section
            records[record["bench"]] = record
    if not records:
        raise SystemExit(f"no benchmark results in {opts.results}; run the benchmarks with --json")
    text = opts.page.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{opts.page} has no performance table markers")
    block = f"{START}\n{header(records)}\n\n{table(records)}\n{END}"
    opts.page.write_text(pattern.sub(lambda _: block, text))
    print(f"rewrote the performance table in {opts.page} from {len(records)} result files")


if __name__ == "__main__":
    main()
