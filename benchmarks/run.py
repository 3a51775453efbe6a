"""`make bench`: every benchmark, each in its own process, then a summary.

    python -m benchmarks.run [--clients 1000000] [--only analysis,orchestration] [--quick]

Runs, in order: statistics (benchmarks/statistics_bench.py), analysis
(analysis_bench.py), preview (preview_bench.py, when present), orchestration
(orchestration_bench.py), the SRM simulation (srm_simulation.py) and the report
(report_bench.py: page size, first render and period switch in headless Chromium). Each writes its own JSON under benchmarks/results/; this writes
benchmarks/results/summary.json with the headline figures and prints where everything
is. A benchmark that fails is reported and the others still run (exit 1 at the end).
`--quick` is a small-scale pass (100k clients, fewer draws) to check that all of it runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS_DIR = ROOT / "results"
SUMMARY = RESULTS_DIR / "summary.json"
ORDER = ("statistics", "analysis", "preview", "orchestration", "srm_simulation", "report")
MODULES = {
    "statistics": "benchmarks.statistics_bench",
    "analysis": "benchmarks.analysis_bench",
    "preview": "benchmarks.preview_bench",
    "orchestration": "benchmarks.orchestration_bench",
    "srm_simulation": "benchmarks.srm_simulation",
    "report": "benchmarks.report_bench",
}
RESULT_FILES = {
    "statistics": "statistics.json",
    "analysis": "analysis.json",
    "preview": "preview.json",
    "orchestration": "orchestration.json",
    "srm_simulation": "srm_simulation.json",
    "report": "report.json",
}


def arguments(name: str, clients: int | None, quick: bool) -> list[str]:
    """Command-line arguments of one benchmark module."""
    if name == "statistics":
        args = ["--clients", str(clients)] if clients else []
        return args + (["--exact-draws", "200"] if quick else [])
    if name in ("analysis", "preview"):
        return ["--clients", str(clients)] if clients else []
    if name == "orchestration":
        return ["--nodes", "20", "--repeat", "3"] if quick else []
    if name == "srm_simulation":
        return ["--runs-power", "100", "--runs-null", "100", "--no-write"] if quick else []
    if name == "report":
        return ["--repeat", "1", "--no-write"] if quick else []
    raise KeyError(name)


def _get(doc: dict[str, Any], *path: str) -> Any:
    value: Any = doc
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


Headline = Callable[[dict[str, Any]], dict[str, Any]]


def _statistics(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "clients": doc.get("clients"),
        "seconds": {t.get("case"): t.get("seconds") for t in doc.get("timings", [])},
        "max_peak_memory_mb": doc.get("max_peak_memory_mb"),
    }


def _analysis(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "clients": _get(doc, "dataset", "clients"),
        "daily_run_seconds": _get(doc, "daily_run", "seconds"),
        "daily_run_peak_tree_rss_mb": _get(doc, "daily_run", "peak_tree_rss_mb"),
        "daily_run_meets_targets": _get(doc, "daily_run", "meets_targets"),
        "rows_scanned_ratio": _get(doc, "rows_scanned", "ratio_in_range"),
        "rows_scanned_meets_target": _get(doc, "rows_scanned", "meets_target"),
    }


def _preview(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k) for k in ("clients", "seconds", "meets_target", "exit_code")}


def _orchestration(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "help_cold_start_median_seconds": _get(doc, "cold_start", "median_seconds"),
        "noop_node_ms": _get(doc, "scheduling", "noop_subprocess_p1_ms"),
        "worker_node_ms": _get(doc, "scheduling", "version_worker_p1_ms"),
        "parallel_speedup": _get(doc, "parallelism", "speedup"),
        "argo_day_pods": _get(doc, "argo_day", "daily", "pods"),
        "argo_largest_object_bytes": _get(
            doc, "argo_day", "definitions_rerun", "largest_object_bytes"
        ),
    }


def _srm(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "power": _get(doc, "power", "detection_rate"),
        "false_alarm": _get(doc, "false_alarm", "detection_rate"),
    }


def _report(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "bytes": _get(doc, "report", "bytes"),
        "first_render_ms": _get(doc, "report", "first_render_ms", "max"),
        "period_switch_ms": _get(doc, "report", "period_switch_ms", "max"),
        "meets_targets": doc.get("meets_targets"),
    }


HEADLINES: dict[str, Headline] = {
    "statistics": _statistics,
    "analysis": _analysis,
    "preview": _preview,
    "orchestration": _orchestration,
    "srm_simulation": _srm,
    "report": _report,
}


def available(name: str) -> bool:
    return (ROOT / f"{MODULES[name].rsplit('.', 1)[1]}.py").exists()


def run_one(name: str, args: list[str]) -> dict[str, Any]:
    """Run one benchmark module in a child process; its outcome and headline figures."""
    argv = [sys.executable, "-m", MODULES[name], *args]
    print(f"== {name}: {' '.join(argv[1:])}", flush=True)
    started = time.monotonic()
    code = subprocess.run(argv, cwd=ROOT.parent).returncode
    seconds = round(time.monotonic() - started, 1)
    path = RESULTS_DIR / RESULT_FILES[name]
    entry: dict[str, Any] = {"exit_code": code, "seconds": seconds, "results": str(path)}
    fresh = path.exists() and path.stat().st_mtime >= time.time() - seconds - 1
    if path.exists():
        try:
            entry["headline"] = HEADLINES[name](json.loads(path.read_text()))
        except (ValueError, TypeError, AttributeError) as exc:
            entry["headline_error"] = str(exc)
        entry["fresh"] = fresh
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--clients", type=int, default=None,
                        help="clients for the statistics and analysis benchmarks "
                        "(default: theirs, 1M)")  # fmt: skip
    parser.add_argument("--only", default=",".join(ORDER),
                        help=f"comma-separated subset of {', '.join(ORDER)}")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small-scale pass")
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in MODULES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    clients = args.clients or (100_000 if args.quick else None)
    summary: dict[str, Any] = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    failed = []
    for name in ORDER:
        if name not in chosen:
            continue
        if not available(name):
            print(f"== {name}: {MODULES[name]} is not in this checkout; skipped", flush=True)
            continue
        entry = run_one(name, arguments(name, clients, args.quick))
        summary[name] = entry
        if entry["exit_code"] != 0:
            failed.append(name)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, indent=1) + "\n")
    print()
    for name in ORDER:
        if name in summary:
            e = summary[name]
            status = "ok" if e["exit_code"] == 0 else f"FAILED (exit {e['exit_code']})"
            print(f"{name:15} {status:18} {e['seconds']:>8} s  {e['results']}")
            if "headline" in e:
                print(f"{'':15} {json.dumps(e['headline'])}")
    print(f"summary: {SUMMARY}")
    print("what the figures mean: docs/benchmarks.md")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
