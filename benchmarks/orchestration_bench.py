"""LocalRunner overhead, its parallel speed-up, and the CLI's cold start.

    python -m benchmarks.orchestration_bench [--nodes 100] [--clients 5000] [--repeat 5]

1. Scheduling overhead per node: a graph of N independent no-op nodes run by the
   LocalRunner (a) as subprocesses whose command is a trivial `python -c pass`, next to
   the same N commands spawned back to back with subprocess.run (the runner's own cost
   is the difference), and (b) through the long-lived task workers running a trivial
   jetstream command (`jetstream --version`), next to the same command as a fresh
   subprocess per node (what a worker saves).
2. Speed-up from parallelism: the real daily graph of demo-sidebar-redesign on a small
   synthetic warehouse, from the same fresh copy, at parallelism 1 and 2.
3. Cold start: `jetstream --help` as a new process, median of `--repeat` runs.
4. Argo at production scale: the day of ~150 firefox_desktop experiments of the public
   metric-hub (`benchmarks/production_day.py`, needs ../shared/metric-hub), daily and as a
   definitions-wide rerun, built as the Argo runner submits it: Workflows, the largest
   object's bytes (limit 256 KiB; Argo's own is 1 MiB), pods, per-Workflow parallelism;
   and the same graph as one Workflow (the old shape) for comparison.

Writes benchmarks/results/orchestration.json; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks import analysis_bench

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "orchestration.json"
TARGET_HELP_SECONDS = 1.0
NOOP = [sys.executable, "-c", "pass"]


def noop_graph(n: int) -> Any:
    """N independent nodes (distinct experiment slugs keep their ids unique)."""
    from jetstream.graph import TaskGraph, TaskKind, TaskNode

    return TaskGraph(tuple(TaskNode(TaskKind.EXPORT, f"noop-{i:04d}") for i in range(n)))


def _settings() -> Any:
    from jetstream.runners.common import RunSettings

    return RunSettings(experiments="unused.json", warehouse="", out="")


def _runner(parallelism: int, **kwargs: Any) -> Any:
    from jetstream.runners.local import LocalRunner

    return LocalRunner(
        _settings(), parallelism=parallelism, progress=False, record_runs=False, **kwargs
    )


def _version_runner(parallelism: int, reuse_workers: bool) -> Any:
    """A LocalRunner whose every node runs `jetstream --version` (through the long-lived
    workers, or as a fresh `python -m jetstream.cli` process)."""
    from jetstream.graph import TaskNode
    from jetstream.runners.local import LocalRunner

    class VersionRunner(LocalRunner):
        def argv(self, node: TaskNode) -> list[str]:
            return [*self.command_prefix, "--version"]

    return VersionRunner(
        _settings(),
        parallelism=parallelism,
        progress=False,
        record_runs=False,
        reuse_workers=reuse_workers,
    )


def _timed_run(runner: Any, graph: Any) -> float:
    started = time.monotonic()
    summary = runner.run(graph)
    seconds = time.monotonic() - started
    if not summary.ok:
        raise RuntimeError(f"benchmark graph failed:\n{summary.describe()}")
    return seconds


def _spawn_serial(argv: Sequence[str], n: int) -> float:
    started = time.monotonic()
    for _ in range(n):
        subprocess.run(argv, check=True, capture_output=True)
    return time.monotonic() - started


def _per_node_ms(seconds: float, n: int) -> float:
    return round(1000 * seconds / n, 2)


def scheduling_overhead(nodes: int) -> dict[str, Any]:
    """Per-node cost of the LocalRunner (see module doc, part 1)."""
    graph = noop_graph(nodes)
    out: dict[str, Any] = {"nodes": nodes}
    raw = _spawn_serial(NOOP, nodes)
    out["bare_subprocess_ms"] = _per_node_ms(raw, nodes)
    for p in (1, 2):
        s = _timed_run(_runner(p, command_prefix=NOOP), graph)
        out[f"noop_subprocess_p{p}_ms"] = _per_node_ms(s, nodes)
    out["runner_overhead_ms"] = round(out["noop_subprocess_p1_ms"] - out["bare_subprocess_ms"], 2)
    for p in (1, 2):
        s = _timed_run(_version_runner(p, reuse_workers=True), graph)
        out[f"version_worker_p{p}_ms"] = _per_node_ms(s, nodes)
    s = _timed_run(_version_runner(1, reuse_workers=False), graph)
    out["version_subprocess_p1_ms"] = _per_node_ms(s, nodes)
    return out


def parallel_speedup(clients: int, seed: int, data_dir: Path) -> dict[str, Any]:
    """The real daily graph at parallelism 1 and 2, each from a fresh copy of the data."""
    from jetstream.graph import plan

    params = analysis_bench.dataset_params(clients, seed)
    dataset, _ = analysis_bench.ensure_dataset(params, data_dir)
    spec = analysis_bench.load_spec()
    graph = plan([spec], analysis_bench.DATA_DATE)
    out: dict[str, Any] = {
        "experiment": spec.slug,
        "date": analysis_bench.DATA_DATE.isoformat(),
        "clients": clients,
        "tasks": len(graph.nodes),
    }
    work = data_dir / f"orchestration-{params.stem}.duckdb"
    try:
        for p in (1, 2):
            uri = analysis_bench.working_copy(dataset, work)
            with tempfile.TemporaryDirectory() as tmp:
                seconds, summary = analysis_bench.run_graph(uri, Path(tmp), graph, p)
            if not summary.ok:
                raise RuntimeError(f"demo graph failed at parallelism {p}:\n{summary.describe()}")
            out[f"p{p}_seconds"] = round(seconds, 2)
    finally:
        for path in (work, Path(f"{work}.wal"), Path(f"{work}.lock")):
            path.unlink(missing_ok=True)
    out["speedup"] = round(out["p1_seconds"] / out["p2_seconds"], 2)
    return out


def jetstream_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m`."""
    script = Path(sys.executable).with_name("jetstream")
    if script.exists() or shutil.which("jetstream") == str(script):
        return [str(script)]
    return [sys.executable, "-m", "jetstream.cli"]


def cold_start(repeat: int) -> dict[str, Any]:
    """Median wall time of `jetstream --help` as a new process (and `python -c pass`)."""
    env = dict(os.environ)
    cmd = [*jetstream_command(), "--help"]
    # one run that may write the bytecode cache (as an installed package or image has it)
    caching = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, check=True, capture_output=True, env=caching)

    def median_of(argv: list[str]) -> tuple[float, list[float]]:
        times = []
        for _ in range(repeat):
            started = time.monotonic()
            subprocess.run(argv, check=True, capture_output=True, env=env)
            times.append(time.monotonic() - started)
        return statistics.median(times), times

    help_median, help_times = median_of(cmd)
    python_median, _ = median_of(NOOP)
    return {
        "command": " ".join(Path(cmd[0]).name if i == 0 else c for i, c in enumerate(cmd)),
        "runs": repeat,
        "median_seconds": round(help_median, 3),
        "all_seconds": [round(t, 3) for t in help_times],
        "python_startup_median_seconds": round(python_median, 3),
        "target_seconds": TARGET_HELP_SECONDS,
        "meets_target": help_median < TARGET_HELP_SECONDS,
    }


SHARED = Path(os.environ.get("JETSTREAM_SHARED_DIR", ROOT.parent.parent / "shared"))


def argo_day(metric_hub: Path = SHARED / "metric-hub") -> dict[str, Any]:
    """Sizes and pod counts of the production day under Argo (see module doc, part 4)."""
    from benchmarks import production_day
    from jetstream.runners.argo import build_manifests, build_workflow, manifest_size
    from jetstream.runners.common import RunSettings

    if not (metric_hub / "jetstream").is_dir():
        return {"skipped": f"the metric-hub corpus is not at {metric_hub}"}
    settings = RunSettings(
        experiments="https://experimenter.services.mozilla.com/api/v8/experiments/",
        warehouse="bigquery:moz-fx-data-experiments.mozanalysis",
        out="gs://mozanalysis/jetstream",
        config_repo="https://github.com/mozilla/metric-hub@main",
        image="ghcr.io/mozilla/jetstream-platform@sha256:" + "0" * 64,
    )
    specs = production_day.specs(metric_hub)
    out: dict[str, Any] = {
        "experiments": len(specs),
        "date": production_day.DATE.isoformat(),
        "limit_bytes": settings.max_workflow_bytes,
        "max_concurrent_pods": settings.max_concurrent_pods,
    }
    graphs = {
        "daily": production_day.daily_graph(specs),
        "definitions_rerun": production_day.rerun_graph(specs),
    }
    for key, graph in graphs.items():
        started = time.monotonic()
        manifests = build_manifests(graph, settings)
        seconds = time.monotonic() - started
        sizes = [manifest_size(m) for m in manifests]
        out[key] = {
            "experiments": len(graph.experiments),
            "pods": len(graph.nodes),
            "workflows": len(manifests),
            "largest_object_bytes": max(sizes),
            "total_bytes": sum(sizes),
            "parallelism_per_workflow": manifests[0]["spec"]["parallelism"],
            "dag_tasks": sum(
                len(t["dag"]["tasks"])
                for m in manifests
                for t in m["spec"]["templates"]
                if "dag" in t and t["name"] != "main"
            ),
            "build_seconds": round(seconds, 2),
            "one_workflow_bytes": manifest_size(build_workflow(graph, settings).to_dict()),
        }
    return out


def run(
    nodes: int = 100,
    clients: int = 5000,
    seed: int = analysis_bench.DEFAULT_SEED,
    repeat: int = 5,
    data_dir: Path = analysis_bench.DATA_DIR,
    results_path: Path | None = RESULTS,
    speedup: bool = True,
    argo: bool = True,
) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "orchestration", "machine": analysis_bench.machine()}
    if argo:
        result["argo_day"] = argo_day()
    result["cold_start"] = cold_start(repeat)
    result["scheduling"] = scheduling_overhead(nodes)
    if speedup:
        result["parallelism"] = parallel_speedup(clients, seed, data_dir)
    if results_path is not None:
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(result, indent=1) + "\n")
    return result


def describe(result: dict[str, Any]) -> Iterator[str]:
    c = result["cold_start"]
    yield (
        f"cold start `{c['command']}`: median {c['median_seconds']} s of {c['runs']} "
        f"(python alone {c['python_startup_median_seconds']} s; target < {c['target_seconds']} s)"
    )
    s = result["scheduling"]
    yield (
        f"per node ({s['nodes']} no-op nodes): runner+`python -c pass` "
        f"{s['noop_subprocess_p1_ms']} ms (p1), {s['noop_subprocess_p2_ms']} ms (p2); "
        f"bare spawn {s['bare_subprocess_ms']} ms"
    )
    yield (
        f"per node `jetstream --version`: worker {s['version_worker_p1_ms']} ms (p1), "
        f"{s['version_worker_p2_ms']} ms (p2); fresh process {s['version_subprocess_p1_ms']} ms"
    )
    a = result.get("argo_day") or {}
    for key in ("daily", "definitions_rerun"):
        if key in a:
            d = a[key]
            yield (
                f"argo {key.replace('_', ' ')} ({d['experiments']} experiments): {d['pods']:,} "
                f"pods in {d['workflows']} workflows, largest {d['largest_object_bytes']:,} bytes "
                f"(limit {a['limit_bytes']:,}; as one workflow {d['one_workflow_bytes']:,})"
            )
    if "skipped" in a:
        yield f"argo day skipped: {a['skipped']}"
    p = result.get("parallelism")
    if p:
        yield (
            f"demo graph ({p['tasks']} tasks, {p['clients']:,} clients): "
            f"{p['p1_seconds']} s at parallelism 1, {p['p2_seconds']} s at 2 "
            f"(speed-up {p['speedup']}x)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.orchestration_bench",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--clients", type=int, default=5000,
                        help="synthetic clients of the parallelism comparison")  # fmt: skip
    parser.add_argument("--seed", type=int, default=analysis_bench.DEFAULT_SEED)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=analysis_bench.DATA_DIR)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-speedup", action="store_true")
    parser.add_argument("--no-argo", action="store_true", help="skip the Argo production day")
    args = parser.parse_args(argv)
    from jetstream import logs

    logs.configure(os.environ.get("JETSTREAM_LOG_LEVEL", "WARNING"))
    result = run(args.nodes, args.clients, args.seed, args.repeat, args.data_dir, args.out,
                 speedup=not args.no_speedup, argo=not args.no_argo)  # fmt: skip
    for line in describe(result):
        print(line)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
