"""Tiny-scale runs of the analysis and orchestration benchmarks, so they cannot rot.

The figures themselves are not asserted (speed belongs to the benchmarks); what is checked
is that the measuring machinery measures what it claims: the memory sampler sees child
processes, the dataset cache is reused, the rewound day is exactly one day per source,
and the rows counted per date range equal what DuckDB's scans of the real queries read.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import analysis_bench as ab
from benchmarks import orchestration_bench as ob
from benchmarks import run as bench_run
from jetstream import results
from jetstream.periods import Period

CLIENTS = 300


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data dir, cached dataset) of a tiny synthetic warehouse, shared by the module."""
    data_dir = tmp_path_factory.mktemp("bench-data")
    path, seconds = ab.ensure_dataset(ab.dataset_params(CLIENTS), data_dir)
    assert seconds is not None  # generated, not found
    return data_dir, path


def test_dataset_is_cached_by_parameters(dataset: tuple[Path, Path]) -> None:
    data_dir, path = dataset
    again, seconds = ab.ensure_dataset(ab.dataset_params(CLIENTS), data_dir)
    assert (again, seconds) == (path, None)
    other = ab.dataset_params(CLIENTS, seed=ab.DEFAULT_SEED + 1)
    assert other.stem != ab.dataset_params(CLIENTS).stem
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["clients"] == CLIENTS and meta["generator"] == ab.dataset_params(1).generator


def test_tree_memory_sampler_counts_child_processes() -> None:
    code = "import sys; block = b'x' * (200 * 2**20); print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        alone = ab.resident_bytes(child.pid)
        sampler = ab.TreeMemorySampler()
        tree = sampler.sample()
        assert child.pid in ab.descendants(sampler.root)
    finally:
        child.communicate("")
    assert alone >= 200 * 2**20
    assert tree >= alone + ab.resident_bytes(sampler.root) // 2
    assert sampler.peak_bytes == tree


def test_scan_counts_match_the_profiled_queries(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    _, path = dataset
    uri = ab.working_copy(path, tmp_path / "work.duckdb")
    ab.enrollments_only(uri)
    scans = ab.rows_scanned(uri, measure=True, periods=[Period.OVERALL])
    partials = [q for q in scans["queries"] if q["kind"] == "partials"]
    assert {q["data_source"] for q in partials} >= {"clients_daily", "feature_events"}
    for q in partials:
        # constant date bounds: each row of the selected days is read once, never more
        assert q["rows_in_range"] <= q["scan_rows_read"] <= q["table_rows"], q
        if q["data_source"] in {"clients_daily", "feature_events", "search_daily"}:
            # sources with a preenrollment_days28 metric read every day of the data
            assert q["scan_rows_read"] == q["rows_in_range"] == q["table_rows"], q
        else:
            # the others start later: fewer days than the whole table
            assert q["rows_in_range"] < q["table_rows"], q
    for q in scans["queries"]:
        assert q["scan_rows_emitted"] <= q["scan_rows_read"] <= q["table_rows"], q
        # storage is read in whole row groups, never less than the days the query selects
        assert q["scan_rows_read"] >= q["rows_in_range"] or q["kind"] != "partials", q
    windows = {(q["period"], q["window_index"]) for q in scans["queries"] if q["period"]}
    assert windows == {("overall", 0)}
    # overall = days 0..26 after each client's enrollment (Jetstream: end - E - 1, E =
    # 2026-01-12); the synthetic enrollments fall on 2026-01-05..11
    direct = [q for q in scans["queries"] if q["kind"] == "direct"]
    assert {(q["first"], q["last"]) for q in direct} == {("2026-01-05", "2026-02-06")}
    # the exposure signal and the segment: once per day, or once per window recomputing
    daily = {q["kind"]: q for q in scans["queries"] if q["approach"] == "rollup"}
    assert daily["exposures"]["first"] == daily["segments"]["first"] == "2026-01-05"
    per_window = [q for q in scans["queries"] if q["approach"] == "direct"]
    assert {q["kind"] for q in per_window} == {"direct", "exposures", "segments"}
    for approach in ("rollup", "direct"):
        assert scans[approach]["rows_in_range"] == sum(
            q["rows_in_range"] for q in scans["queries"] if q["approach"] == approach
        )


@pytest.mark.slow
def test_daily_run_reads_only_the_new_day(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    data_dir, _ = dataset
    out = tmp_path / "analysis.json"
    result = ab.run(
        clients=CLIENTS,
        data_dir=data_dir,
        results_path=out,
        scans=False,
        periods=[Period.DAY],
        metrics=["retained"],  # binomial only: cheap statistics
    )
    assert json.loads(out.read_text())["daily_run"] == result["daily_run"]
    daily = result["daily_run"]
    assert daily["date"] == ab.DATA_DATE.isoformat() and daily["periods_due"] == ["day"]
    # one day of the one source the graph reads (clients_daily), the custom exposure
    # signal's day and the window-dependent segment's day: nothing else was recomputed
    assert daily["rows_rewound"][results.partial_days_table(ab.SLUG)] == 3
    assert set(daily["task_seconds"]) == {
        "ensure-enrollments/demo-sidebar-redesign",
        "metrics/demo-sidebar-redesign/day/clients_daily/2026-02-07/retained",
        "export/demo-sidebar-redesign",
    }
    assert daily["peak_tree_rss_mb"] > 0 and daily["memory_samples"] >= 2
    assert not list(data_dir.glob("work-*"))  # the working copy is removed
    lines = list(ab.describe(result))
    assert lines[0].startswith(f"daily run ({CLIENTS:,} clients, 2026-02-07, day;")


def test_orchestration_parts_run() -> None:
    sched = ob.scheduling_overhead(nodes=3)
    for key in (
        "bare_subprocess_ms",
        "noop_subprocess_p1_ms",
        "noop_subprocess_p2_ms",
        "version_worker_p1_ms",
        "version_subprocess_p1_ms",
    ):
        assert sched[key] > 0, key
    cold = ob.cold_start(repeat=1)
    assert cold["command"].endswith("--help") and len(cold["all_seconds"]) == 1
    assert isinstance(cold["meets_target"], bool)


def test_version_runner_answers_through_a_worker() -> None:
    runner = ob._version_runner(1, reuse_workers=True)
    summary = runner.run(ob.noop_graph(2))
    assert summary.ok
    assert [r.exit_code for r in summary.results] == [0, 0]


def test_run_rejects_unknown_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench_run.main(["--only", "analysis,nonsense"])
    assert exc.value.code == 2
    assert "nonsense" in capsys.readouterr().err


def test_run_arguments_and_headlines() -> None:
    assert bench_run.arguments("analysis", 5000, quick=False) == ["--clients", "5000"]
    assert bench_run.arguments("analysis", None, quick=False) == []
    assert "--no-write" in bench_run.arguments("srm_simulation", None, quick=True)
    doc = {
        "dataset": {"clients": 10},
        "daily_run": {"seconds": 1.5, "peak_tree_rss_mb": 12.0, "meets_targets": True},
        "rows_scanned": {"ratio_in_range": 9.1, "meets_target": True},
    }
    assert bench_run.HEADLINES["analysis"](doc) == {
        "clients": 10,
        "daily_run_seconds": 1.5,
        "daily_run_peak_tree_rss_mb": 12.0,
        "daily_run_meets_targets": True,
        "rows_scanned_ratio": 9.1,
        "rows_scanned_meets_target": True,
    }
    assert bench_run.HEADLINES["orchestration"]({})["parallel_speedup"] is None
    assert bench_run.available("analysis") and bench_run.available("orchestration")


@pytest.mark.shared
def test_orchestration_argo_day(metric_hub) -> None:
    day = ob.argo_day(metric_hub)
    assert day["experiments"] == 150
    for key in ("daily", "definitions_rerun"):
        d = day[key]
        assert d["largest_object_bytes"] <= day["limit_bytes"] < d["one_workflow_bytes"]
        assert d["pods"] > 800 and d["workflows"] >= 2


def test_orchestration_argo_day_without_the_corpus(tmp_path) -> None:
    assert "not at" in ob.argo_day(tmp_path)["skipped"]
