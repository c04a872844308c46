"""The benchmarks' report: figures with their range, same-run ratios, and the performance table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmarks import readme_table
from benchmarks.common import Report

pytestmark = pytest.mark.quick


def test_a_report_records_load_figures_and_ratios(tmp_path: Path) -> None:
    path = tmp_path / "ui_search.json"
    with Report("bench_ui_search", quick=True, wait_quiet_s=0, json_path=path) as run:
        run.add("drawn", "baseline", [0.120, 0.100, 0.140])
        run.add("repeat", "ours", [0.030, 0.020, 0.025])
        run.add("first", "ours, first view", [0.050, 0.040, 0.060])
        assert run.ratio("repeat_vs_drawn", "x", "drawn", "repeat", False) == 4.8
        run.ratio("first_vs_drawn", "y", "drawn", "first", False)
    record = json.loads(path.read_text())
    assert record["figures"]["drawn"]["median"] == 120.0
    assert (record["figures"]["drawn"]["low"], record["figures"]["drawn"]["high"]) == (100, 140)
    machine = record["machine"]
    assert {"cpu", "logical_cpus", "load_start", "load_end", "quiet", "waited_s"} <= set(machine)


def test_the_performance_table_is_rewritten_from_results_only(tmp_path: Path, monkeypatch) -> None:
    results = tmp_path / "results"
    with Report("bench_ui_search", True, 0, results / "ui.json") as run:
        run.add("drawn", "draw every tile", [0.100])
        run.add("repeat", "ours", [0.020])
        run.add("first", "ours, first view", [0.050])
        run.ratio("repeat_vs_drawn", "x", "drawn", "repeat", False)
        run.ratio("first_vs_drawn", "y", "drawn", "first", False)
    page = tmp_path / "performance.md"
    stale = "| old | 192 ms |"
    page.write_text(f"intro\n{readme_table.START}\n{stale}\n{readme_table.END}\noutro\n")
    monkeypatch.setattr(
        sys, "argv", ["readme_table.py", "--results", str(results), "--page", str(page)]
    )
    readme_table.main()
    text = page.read_text()
    assert stale not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "| search click in the UI, server-side, repeat view | 20 ms (20-20, n=1) |" in text
    assert "| 5.0x |" in text and "--quick" in text


def test_the_published_table_is_the_one_the_stored_results_make(
    tmp_path: Path, monkeypatch
) -> None:
    """docs/performance.md holds the table, and regenerating it from benchmarks/results/ changes
    nothing: no figure on the page was typed by hand or outlived its measurement."""
    page = tmp_path / "performance.md"
    page.write_text(readme_table.PAGE.read_text())
    monkeypatch.setattr(sys, "argv", ["readme_table.py", "--page", str(page)])
    readme_table.main()
    assert readme_table.PAGE.parts[-2:] == ("docs", "performance.md")
    assert page.read_text() == readme_table.PAGE.read_text()


def test_run_all_leaves_no_figure_of_a_failed_benchmark(tmp_path: Path, monkeypatch) -> None:
    """A benchmark that fails loses its old result file (so the table drops its rows), the
    others' files are written, the table is rebuilt, and the command ends with an error."""
    from benchmarks import run_all

    writes = "import sys; open(sys.argv[sys.argv.index('--json') + 1], 'w').write('{}')"
    (tmp_path / "bench_ok.py").write_text(writes)
    (tmp_path / "bench_broken.py").write_text("raise SystemExit(1)")
    (tmp_path / "readme_table.py").write_text(f"open({str(tmp_path / 'table')!r}, 'w')")
    results = tmp_path / "results"
    results.mkdir()
    (results / "broken.json").write_text('{"stale": true}')
    monkeypatch.setattr(run_all, "HERE", tmp_path)
    monkeypatch.setattr(run_all, "RESULTS", results)
    monkeypatch.setattr(
        run_all,
        "BENCHMARKS",
        (("bench_ok.py", "ok.json", ()), ("bench_broken.py", "broken.json", ())),
    )
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--quick", "--wait-quiet", "0"])
    with pytest.raises(SystemExit, match="bench_broken.py"):
        run_all.main()
    assert (results / "ok.json").is_file() and not (results / "broken.json").exists()
    assert (tmp_path / "table").is_file()
