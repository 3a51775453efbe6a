"""One steady-state daily run at scale, and telemetry rows scanned with and without roll-ups.

    python -m benchmarks.analysis_bench [--clients 1000000] [--parallelism 2] [--no-scans]

1. Daily run: the synthetic warehouse (`jetstream.synthetic`, default demo calendar: 28
   pre-enrollment days and 35 days from 2026-01-05) is generated once and cached under
   benchmarks/data/ (reused while clients, days, seed and the generator's source are the
   same). A working copy is analysed for demo-sidebar-redesign on DATA_DATE, the day on
   which its day, week and days28 windows close, with both analysis bases and its segments.
   A warm-up run of that graph computes the daily partials of every earlier day; the
   benchmark then removes what the new day added (its partials, exposure days, and the
   segment, metric and statistic rows of the windows closing that day) and times the same
   graph again: a daily run that reads only the new day's telemetry. Peak memory is the resident set of the whole
   process tree (runner, workers, task processes) sampled from /proc.
2. Rows scanned over the whole experiment (7-day enrollment, 28-day observation, every
   window of every period, both bases): the daily-partials design (each telemetry day
   read once per data source, exposure signal and window-dependent segment, plus direct
   queries for non-decomposable metrics) against recomputing every window (metrics,
   exposure signal, segments) from telemetry. Counted from the daily row counts of each
   source over the date range each query can select, and measured by running the actual
   queries under DuckDB's profiler (rows each telemetry TABLE_SCAN emitted and read).

Writes benchmarks/results/analysis.json; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parent
DATA_DIR = ROOT / "data"
RESULTS = ROOT / "results" / "analysis.json"
SLUG = "demo-sidebar-redesign"
# Last enrollment day 2026-01-11 + 27: day 27, week 3 and days28 0 close on this date.
DATA_DATE = dt.date(2026, 2, 7)
DEFAULT_CLIENTS = 1_000_000
DEFAULT_SEED = 42
TARGET_SECONDS = 60.0
TARGET_PEAK_MB = 4096.0
TARGET_SCAN_RATIO = 8.0

# ----------------------------------------------------------------------------- memory

_PAGE = os.sysconf("SC_PAGE_SIZE")
_PROC = Path("/proc")


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process visible now."""
    out: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # the command name may hold spaces and parentheses: split after the last ')'
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry.name)] = int(fields[1])
    return out


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def resident_bytes(pid: int) -> int:
    """Resident set of one process (0 when it is gone)."""
    try:
        fields = (_PROC / str(pid) / "statm").read_text().split()
    except OSError:
        return 0
    return int(fields[1]) * _PAGE


def tree_resident_bytes(root: int | None = None) -> int:
    return sum(resident_bytes(pid) for pid in descendants(root or os.getpid()))


def rusage_max_mb() -> dict[str, float]:
    """ru_maxrss (Linux: KiB) of this process and of its largest waited-for descendant
    (RUSAGE_CHILDREN is a maximum over children, not a sum)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self_max_rss_mb": round(own, 1), "largest_child_max_rss_mb": round(kids, 1)}


class TreeMemorySampler:
    """`with TreeMemorySampler() as m: ...`, then `m.peak_mb`: the peak over samples of the
    summed resident set of this process and all its descendants (shared pages counted
    once per process, so an upper bound)."""

    def __init__(self, interval: float = 0.05, root: int | None = None):
        self.interval = interval
        self.root = root or os.getpid()
        self.peak_bytes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> int:
        now = tree_resident_bytes(self.root)
        self.peak_bytes = max(self.peak_bytes, now)
        self.samples += 1
        return now

    @property
    def peak_mb(self) -> float:
        return round(self.peak_bytes / 2**20, 1)

    def __enter__(self) -> TreeMemorySampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def machine() -> dict[str, Any]:
    """What the figures were measured on (the load average shows other work competing)."""
    import duckdb

    return {
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "memory_total_mb": round(os.sysconf("SC_PHYS_PAGES") * _PAGE / 2**20),
    }


# ----------------------------------------------------------------------------- dataset


@attrs.frozen
class DatasetParams:
    clients: int
    days: int
    seed: int
    start_date: str
    generator: str  # digest of the generator's source: a changed generator regenerates

    @property
    def stem(self) -> str:
        return f"synthetic-c{self.clients}-d{self.days}-s{self.seed}-{self.generator[:10]}"


def dataset_params(clients: int, seed: int = DEFAULT_SEED) -> DatasetParams:
    from jetstream import synthetic

    digest = hashlib.sha256()
    assert synthetic.__file__ is not None
    for source in sorted(Path(synthetic.__file__).parent.glob("*.py")):
        if source.name != "demo.py":  # the demo driver does not shape the data
            digest.update(source.read_bytes())
    return DatasetParams(
        clients=clients,
        days=synthetic.DEFAULT_DAYS,
        seed=seed,
        start_date=synthetic.DEFAULT_START_DATE.isoformat(),
        generator=digest.hexdigest(),
    )


def ensure_dataset(params: DatasetParams, data_dir: Path = DATA_DIR) -> tuple[Path, float | None]:
    """The cached synthetic warehouse for `params` (generated when missing); returns
    (path, seconds spent generating or None when reused)."""
    from jetstream import synthetic
    from jetstream.warehouse.duckdb import DuckDBWarehouse

    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{params.stem}.duckdb"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists() and json.loads(meta.read_text()) == attrs.asdict(params):
        return path, None
    started = time.monotonic()
    tmp = data_dir / f".{params.stem}.{os.getpid()}.tmp.duckdb"
    tmp.unlink(missing_ok=True)
    wh = DuckDBWarehouse(tmp)
    try:
        with wh.session():  # one connection for every load
            synthetic.write(
                wh,
                synthetic.iter_tables(
                    clients=params.clients,
                    days=params.days,
                    seed=params.seed,
                    start_date=dt.date.fromisoformat(params.start_date),
                ),
            )
    finally:
        wh.close()
    os.replace(tmp, path)
    Path(str(tmp) + ".lock").unlink(missing_ok=True)
    meta.write_text(json.dumps(attrs.asdict(params), indent=1) + "\n")
    return path, time.monotonic() - started


def working_copy(dataset: Path, work: Path) -> str:
    """A fresh copy of the cached dataset to analyse; returns its warehouse URI."""
    for p in (work, Path(f"{work}.wal"), Path(f"{work}.lock")):
        p.unlink(missing_ok=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dataset, work)
    return f"duckdb:{work}"


# ----------------------------------------------------------------------------- daily run


def demo_paths() -> tuple[str, Path]:
    """(experiments JSON, config repo) of the shipped demo platform."""
    from jetstream import synthetic

    return str(synthetic.DEMO_DIR / "experiments.json"), synthetic.DEMO_DIR


def load_spec(slug: str = SLUG) -> Any:
    from jetstream.commands.loading import load_one

    experiments, repo = demo_paths()
    return load_one(slug, experiments, repo)


def run_graph(uri: str, out: Path, graph: Any, parallelism: int) -> tuple[float, Any]:
    """Run a graph with the LocalRunner exactly as `jetstream run` does; (seconds, summary)."""
    from jetstream.runners.common import RunSettings
    from jetstream.runners.local import LocalRunner

    experiments, repo = demo_paths()
    settings = RunSettings(
        experiments=experiments,
        warehouse=uri,
        out=str(out),
        config_repo=str(repo),
        parallelism=parallelism,
    )
    runner = LocalRunner(
        settings,
        parallelism=parallelism,
        progress=False,
        env={"JETSTREAM_LOG_LEVEL": "WARNING"},
    )
    started = time.monotonic()
    summary = runner.run(graph)
    return time.monotonic() - started, summary


def rewind_day(uri: str, spec: Any, date: dt.date) -> dict[str, int]:
    """Undo what the run of `date` added that a daily run computes fresh: that day's rows
    of every per-day table (partials, exposure days, their bookkeeping), and the segment,
    metric and statistic rows of the windows closing that day (a daily run writes them
    for the first time; deleting stored rows is a rerun's cost, not a daily run's).
    Returns rows deleted per table."""
    from jetstream import results
    from jetstream.periods import due_window
    from jetstream.sql import literals as lit
    from jetstream.warehouse import open_warehouse

    slug = spec.slug
    exp = spec.experiment
    day = lit.date(date)
    wh = open_warehouse(uri)
    deleted: dict[str, int] = {}

    def delete(table: str, label: str, where: str) -> None:
        ref = wh.table_ref(table)
        n = wh.query(f"SELECT COUNT(*) AS n FROM {ref} WHERE {where}")
        deleted[label] = int(n.column(0)[0].as_py())
        wh.execute(f"DELETE FROM {ref} WHERE {where}")

    try:
        with wh.session():  # type: ignore[attr-defined]
            per_day = [t for t in wh.list_tables(f"partials_{results.safe(slug)}_")]
            per_day += wh.list_tables(f"segment_days_{results.safe(slug)}_")
            per_day += [results.exposure_days_table(slug), results.partial_days_table(slug)]
            for table in per_day:
                if wh.table_exists(table):
                    delete(table, table, f"submission_date = {day}")
            per_window = [
                results.segments_table(slug),
                results.metrics_table(slug),
                results.statistics_table(slug),
            ]
            for table in per_window:
                if not wh.table_exists(table):
                    continue
                for period in spec.periods:
                    w = due_window(period, date, exp.last_enrollment_date, exp.end_date)
                    if w is None or period.is_preenrollment:
                        continue
                    where = f"period = {lit.string(period.value)} AND window_index = {w.index}"
                    delete(table, f"{table}[{period.value}/{w.index}]", where)
    finally:
        wh.close()
    return deleted


def _node_seconds(summary: Any) -> dict[str, float]:
    return {r.node_id: round(r.seconds, 2) for r in summary.results}


def warmup_graphs(
    spec: Any, date: dt.date, periods: Sequence[Any] | None = None, metrics: Sequence[str] = ()
) -> list[Any]:
    """What earlier daily runs leave behind that the run of `date` reads: the
    pre-enrollment metrics (covariates of the adjusted statistics; computed on the last
    enrollment day) and every earlier day's partials (the run of `date` itself, undone
    for that day afterwards by `rewind_day`)."""
    from jetstream.graph import plan

    pre = [p for p in spec.periods if p.is_preenrollment and (not periods or p in periods)]
    last = spec.experiment.last_enrollment_date
    graphs = [plan([spec], last, pre, metrics)] if pre and last is not None and last < date else []
    graphs.append(plan([spec], date, periods or None, metrics))
    return [g for g in graphs if g.nodes]


def daily_run(
    uri: str,
    out: Path,
    parallelism: int,
    date: dt.date = DATA_DATE,
    periods: Sequence[Any] | None = None,
    metrics: Sequence[str] = (),
) -> dict[str, Any]:
    """Warm-up runs, rewind the last day, then the measured steady-state run of `date`
    (`periods`, `metrics`: only these, as `jetstream run` takes them; default all due)."""
    from jetstream.graph import plan

    spec = load_spec()
    graph = plan([spec], date, periods or None, metrics)
    warm_seconds = 0.0
    _say(f"warm-up: {len(warmup_graphs(spec, date, periods, metrics))} graph(s)")
    for warm_graph in warmup_graphs(spec, date, periods, metrics):
        seconds, warm = run_graph(uri, out, warm_graph, parallelism)
        warm_seconds += seconds
        if not warm.ok:
            raise RuntimeError(f"warm-up run failed:\n{warm.describe()}")
    deleted = rewind_day(uri, spec, date)
    _say(f"measured daily run of {date} ({len(graph.nodes)} tasks)")
    with TreeMemorySampler() as memory:
        seconds, summary = run_graph(uri, out, graph, parallelism)
    if not summary.ok:
        raise RuntimeError(f"measured run failed:\n{summary.describe()}")
    periods = sorted({n.period.value for n in graph.nodes if n.period is not None})
    return {
        "experiment": spec.slug,
        "date": date.isoformat(),
        "periods_due": periods,
        "tasks": len(graph.nodes),
        "parallelism": parallelism,
        "warmup_seconds": round(warm_seconds, 2),
        "rows_rewound": deleted,
        "seconds": round(seconds, 2),
        "peak_tree_rss_mb": memory.peak_mb,
        "memory_samples": memory.samples,
        **rusage_max_mb(),
        "task_seconds": _node_seconds(summary),
        "target_seconds": TARGET_SECONDS,
        "target_peak_mb": TARGET_PEAK_MB,
        "meets_targets": seconds <= TARGET_SECONDS and memory.peak_mb <= TARGET_PEAK_MB,
    }


# ----------------------------------------------------------------------------- rows scanned


@attrs.frozen
class ScanQuery:
    """One query of an approach and the telemetry date range its WHERE can select."""

    approach: str  # "rollup" or "direct"
    # "partials" (daily leaves), "direct" (window from telemetry), "exposures" (custom
    # exposure signal: daily or per window), "segments" (window-dependent segment: daily
    # leaves or per window)
    kind: str
    data_source: str
    table: str
    first: dt.date
    last: dt.date
    sql: str
    period: str | None = None
    window_index: int | None = None
    basis: str | None = None
    date_column: str = "submission_date"


def _source_name(metric: Any) -> str | None:
    return metric.data_source.name if metric.data_source is not None else None


def plan_scans(spec: Any, enrollments_ref: str, exposure_ref: str | None,
               anchors: dict[str, tuple[dt.date, dt.date]],
               periods: Sequence[Any] | None = None) -> list[ScanQuery]:  # fmt: skip
    """Every telemetry query of both approaches over the whole experiment.

    `anchors` maps analysis basis -> (first, last) anchor date (enrollment or exposure);
    `periods` restricts the window queries to these periods (the partials stay whole)."""
    from jetstream.config.model import AnalysisBasis, Metric
    from jetstream.graph import DERIVED_SOURCE, data_sources_for
    from jetstream.periods import windows_through
    from jetstream.sql import metrics as met_sql
    from jetstream.tasks.staging import bases_for

    exp = spec.experiment
    end, last = exp.end_date, exp.last_enrollment_date
    out: list[ScanQuery] = []
    by_source: dict[str, dict[str, Metric]] = {}
    for period in spec.periods:
        for m in spec.metrics_for(period):
            name = _source_name(m)
            if name is not None:
                by_source.setdefault(name, {}).setdefault(m.name, m)
    # roll-up design: the daily partials read each day of each source once, from the
    # first day the source's metrics need (28 or 7 days before the start when it is used
    # in a pre-enrollment period, else the start) through the end date, exactly as
    # tasks.partials.ensure_days does (sql.metrics.partials_first_day)
    for name, named in sorted(by_source.items()):
        first_day = met_sql.partials_first_day(spec, name)
        plans = met_sql.plan_metrics([named[k] for k in sorted(named)])
        decomposable = [p for p in plans if p.decomposition is not None]
        if not decomposable:
            continue
        ds = decomposable[0].metric.data_source
        assert ds is not None
        sql = met_sql.partials_sql(spec, ds, decomposable, enrollments_ref, first_day, end)
        table = source_table(ds.from_expression)
        out.append(ScanQuery("rollup", "partials", name, table, first_day, end, sql,
                             date_column=ds.submission_date_column))  # fmt: skip
    for period in spec.periods:
        if periods and period not in periods:
            continue
        for w in windows_through(period, end, last, end):
            for name in data_sources_for(spec, period):
                if name == DERIVED_SOURCE:
                    continue
                metrics = [m for m in spec.metrics_for(period) if _source_name(m) == name]
                ds = metrics[0].data_source
                assert ds is not None
                table = source_table(ds.from_expression)
                for basis in bases_for(period, metrics):
                    chosen = [
                        m for m in metrics if basis in m.analysis_bases or period.is_preenrollment
                    ]
                    if not chosen:
                        continue
                    lo, hi = anchors[basis.value]
                    first = lo + dt.timedelta(days=w.start)
                    last_day = hi + dt.timedelta(days=w.end)
                    window = met_sql.WindowSpec(w.start, w.end)
                    exposure = exposure_ref if basis is AnalysisBasis.EXPOSURES else None
                    base = ScanQuery("direct", "direct", name, table, first, last_day, "",
                                     period.value, w.index, basis.value,
                                     ds.submission_date_column)  # fmt: skip
                    sql = met_sql.direct_only_sql(
                        spec, ds, chosen, basis, window, enrollments_ref, exposure
                    )
                    out.append(attrs.evolve(base, sql=sql))
                    direct = [p for p in met_sql.plan_metrics(chosen) if p.decomposition is None]
                    if direct:
                        sql = met_sql.wide_sql(
                            spec, ds, direct, basis, window, enrollments_ref, None, exposure
                        )
                        out.append(attrs.evolve(base, approach="rollup", sql=sql))
    out += _signal_and_segment_scans(spec, enrollments_ref, periods)
    return out


def _signal_and_segment_scans(
    spec: Any, enrollments_ref: str, periods: Sequence[Any] | None
) -> list[ScanQuery]:
    """The custom exposure signal and the window-dependent segments: read once per day
    into per-day tables by the roll-up design (segments whose expression does not
    decompose: per window, as recomputing does), and per window when recomputing (the
    signal for each window analysed on the exposures basis, evaluated over its own
    window; each segment for each window)."""
    from jetstream.config.model import ANALYSIS_WINDOW_END, ANALYSIS_WINDOW_START, AnalysisBasis
    from jetstream.graph import DERIVED_SOURCE, data_sources_for
    from jetstream.periods import windows_through
    from jetstream.sql import enrollments as enr_sql
    from jetstream.sql import metrics as met_sql
    from jetstream.sql import segments as seg_sql
    from jetstream.tasks.staging import bases_for

    exp = spec.experiment
    end, start, last = exp.end_date, exp.start_date, exp.last_enrollment_date
    out: list[ScanQuery] = []

    def constant_range(bounds: tuple[Any, Any], w: Any) -> tuple[dt.date, dt.date]:
        lo = enr_sql.bound_date(bounds[0], ANALYSIS_WINDOW_START, w.start, w.end, start, exp)
        hi = enr_sql.bound_date(bounds[1], ANALYSIS_WINDOW_END, w.start, w.end, last, exp)
        return lo, hi

    signal = spec.exposure_signal
    if signal is not None:
        ds = signal.data_source
        table = source_table(ds.from_expression)
        first = met_sql.exposure_days_first_day(spec)
        sql = met_sql.exposure_days_sql(signal, enrollments_ref, first, end)
        out.append(ScanQuery("rollup", "exposures", signal.name, table, first, end, sql,
                             date_column=ds.submission_date_column))  # fmt: skip
    segments = [s for s in spec.segments if s.depends_on_analysis_window]
    rolled = {s.name: seg_sql.segment_decomposition(s) for s in segments}
    for seg in segments:
        d = rolled[seg.name]
        if d is None:
            continue
        ds = seg.data_source
        first = seg_sql.segment_days_first_day(spec, seg)
        sql = seg_sql.segment_days_sql(seg, d, enrollments_ref, first, end)
        out.append(ScanQuery("rollup", "segments", seg.name, source_table(ds.from_expression),
                             first, end, sql, date_column=ds.submission_date_column))  # fmt: skip
    for period in spec.periods:
        if period.is_preenrollment or (periods and period not in periods):
            continue
        names = [n for n in data_sources_for(spec, period) if n != DERIVED_SOURCE]
        exposed = any(
            AnalysisBasis.EXPOSURES
            in bases_for(period, [m for m in spec.metrics_for(period) if _source_name(m) == n])
            for n in names
        )
        for w in windows_through(period, end, last, end):
            if signal is not None and exposed:
                ds = signal.data_source
                lo, hi = constant_range((signal.window_start, signal.window_end), w)
                sql = met_sql.exposure_days_sql(signal, enrollments_ref, lo, hi)
                out.append(ScanQuery("direct", "exposures", signal.name,
                                     source_table(ds.from_expression), lo, hi, sql,
                                     period.value, w.index, AnalysisBasis.EXPOSURES.value,
                                     ds.submission_date_column))  # fmt: skip
            for seg in segments:
                ds = seg.data_source
                lo, hi = constant_range(seg.effective_window, w)
                sql = enr_sql.window_segment_sql(spec, seg, enrollments_ref, w.start, w.end)
                base = ScanQuery("direct", "segments", seg.name, source_table(ds.from_expression),
                                 lo, hi, sql, period.value, w.index,
                                 date_column=ds.submission_date_column)  # fmt: skip
                out.append(base)
                if rolled[seg.name] is None:
                    out.append(attrs.evolve(base, approach="rollup"))
    return out


def source_table(from_expression: str) -> str:
    """The (first) table a data source's FROM expression reads, as written."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(f"SELECT * FROM {from_expression}", read="bigquery")
    table = next(tree.find_all(exp.Table))
    return ".".join(p for p in (table.catalog, table.db, table.name) if p)


def _daily_counts(wh: Any, table: str, date_column: str) -> dict[dt.date, int]:
    """Rows per day of a telemetry table (before a data source's own filters, which a
    scan applies to the rows it reads)."""
    rows = wh.query(f"SELECT {date_column} AS day, COUNT(*) AS n FROM `{table}` GROUP BY 1")
    return {r["day"]: int(r["n"]) for r in rows.to_pylist()}


def _scan_profile(profile: dict[str, Any], table: str) -> tuple[int, int]:
    """(rows emitted, rows read) summed over the TABLE_SCANs of `table` in a DuckDB JSON
    profile (`table` as written in the SQL; DuckDB names it catalog.schema.table)."""
    leaf = table.split(".")[-1]
    emitted = read = 0
    stack = list(profile.get("operator") or profile.get("children") or [])
    while stack:
        node = stack.pop()
        stack.extend(node.get("children", []))
        if node.get("type") != "TABLE_SCAN":
            continue
        name = str(node.get("extra_info", {}).get("Table", ""))
        if name.split(".")[-1] == leaf:
            emitted += int(node.get("intermediate_rows", 0))
            read += int(node.get("rows_scanned", node.get("intermediate_rows", 0)))
    return emitted, read


def measure_query(wh: Any, sql: str, table: str) -> tuple[int, int]:
    """Run one query under DuckDB's JSON profiler; rows emitted and read by the scans of
    `table`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profile.json"
        with wh.session() as con:
            con.execute("PRAGMA enable_profiling='json'")
            con.execute(f"PRAGMA profiling_output='{path}'")
            try:
                wh.query(sql)
            finally:
                con.execute("PRAGMA disable_profiling")
        return _scan_profile(json.loads(path.read_text()), table)


def rows_scanned(
    uri: str, measure: bool = True, periods: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Telemetry rows read over the whole experiment by each approach (see module doc).
    `periods`: only these periods' window queries (quick checks)."""
    from jetstream.warehouse import open_warehouse

    spec = load_spec()
    wh = open_warehouse(uri)
    try:
        return _rows_scanned(wh, spec, measure, periods)
    finally:
        wh.close()


def _rows_scanned(
    wh: Any, spec: Any, measure: bool, periods: Sequence[Any] | None
) -> dict[str, Any]:
    from jetstream import results
    from jetstream.config.model import AnalysisBasis

    slug = spec.slug
    with wh.session():  # one connection for every query
        enr_ref = wh.table_ref(results.enrollments_table(slug))
        bounds = wh.query(
            f"SELECT MIN(enrollment_date) AS e0, MAX(enrollment_date) AS e1, "
            f"MIN(exposure_date) AS x0, MAX(exposure_date) AS x1 FROM {enr_ref}"
        ).to_pylist()[0]
        enrollment = (bounds["e0"], bounds["e1"])
        exposure_ref = None
        if spec.exposure_signal is not None:
            exposure_ref = wh.table_ref(results.exposure_days_table(slug))
            exposure = enrollment  # windows count from enrollment, the signal picks who
        else:
            exposure = (bounds["x0"], bounds["x1"])
        anchors = {AnalysisBasis.ENROLLMENTS.value: enrollment,
                   AnalysisBasis.EXPOSURES.value: exposure}  # fmt: skip
        queries = plan_scans(spec, enr_ref, exposure_ref, anchors, periods)
        counts = {
            key: _daily_counts(wh, *key)
            for key in sorted({(q.table, q.date_column) for q in queries})
        }
        rows: list[dict[str, Any]] = []
        for q in queries:
            daily = counts[(q.table, q.date_column)]
            in_range = sum(n for d, n in daily.items() if q.first <= d <= q.last)
            row = {
                k: (v.isoformat() if isinstance(v, dt.date) else v)
                for k, v in attrs.asdict(q).items()
                if k != "sql"
            }
            row["rows_in_range"] = in_range
            row["table_rows"] = sum(daily.values())
            if measure:
                emitted, read = measure_query(wh, q.sql, q.table)
                row["scan_rows_emitted"] = emitted
                row["scan_rows_read"] = read
            rows.append(row)
    return summarise_scans(rows, measure)


def summarise_scans(rows: list[dict[str, Any]], measured: bool) -> dict[str, Any]:
    def total(approach: str, key: str) -> int:
        return sum(int(r.get(key, 0)) for r in rows if r["approach"] == approach)

    out: dict[str, Any] = {"queries": rows, "measured_all": measured}
    for approach in ("rollup", "direct"):
        out[approach] = {
            "queries": sum(1 for r in rows if r["approach"] == approach),
            "rows_in_range": total(approach, "rows_in_range"),
        }
        if measured:
            out[approach]["scan_rows_emitted"] = total(approach, "scan_rows_emitted")
            out[approach]["scan_rows_read"] = total(approach, "scan_rows_read")
    for approach in ("rollup", "direct"):
        kinds: dict[str, int] = {}
        for r in rows:
            if r["approach"] == approach:
                kinds[r["kind"]] = kinds.get(r["kind"], 0) + int(r["rows_in_range"])
        out[approach]["rows_in_range_by_kind"] = kinds
    rollup = max(out["rollup"]["rows_in_range"], 1)
    out["ratio_in_range"] = round(out["direct"]["rows_in_range"] / rollup, 2)
    if measured:
        out["ratio_measured_read"] = round(
            out["direct"]["scan_rows_read"] / max(out["rollup"]["scan_rows_read"], 1), 2
        )
    out["target_ratio"] = TARGET_SCAN_RATIO
    out["meets_target"] = out["ratio_in_range"] >= TARGET_SCAN_RATIO
    return out


# ----------------------------------------------------------------------------- entry


def _say(message: str) -> None:
    print(f"[analysis_bench] {message}", flush=True)


def enrollments_only(uri: str, date: dt.date = DATA_DATE) -> None:
    """Just the ensure-enrollments node of the daily graph (the scan count needs the
    enrollment and exposure dates, not the metrics)."""
    from jetstream.graph import TaskGraph, TaskKind, plan

    graph = plan([load_spec()], date)
    node = next(n for n in graph.nodes if n.kind is TaskKind.ENSURE_ENROLLMENTS)
    with tempfile.TemporaryDirectory() as out:
        _, summary = run_graph(uri, Path(out), TaskGraph((node,)), 1)
    if not summary.ok:
        raise RuntimeError(f"ensure-enrollments failed:\n{summary.describe()}")


def _drop(work: Path) -> None:
    for p in (work, Path(f"{work}.wal"), Path(f"{work}.lock")):
        p.unlink(missing_ok=True)


def run(
    clients: int = DEFAULT_CLIENTS,
    seed: int = DEFAULT_SEED,
    parallelism: int = 2,
    data_dir: Path = DATA_DIR,
    results_path: Path | None = RESULTS,
    scans: bool = True,
    measure_clients: int | None = 20_000,
    periods: Sequence[Any] | None = None,
    metrics: Sequence[str] = (),
) -> dict[str, Any]:
    """The whole benchmark; writes `results_path` (unless None) and returns the result.

    Rows scanned are counted at `clients`; the actual queries are also run under the
    profiler on a `measure_clients` warehouse (None: not run), since running every
    window's direct query at full size would take longer than the rest together."""
    started = time.monotonic()
    params = dataset_params(clients, seed)
    _say(f"dataset: {params.stem} in {data_dir}")
    dataset, generated = ensure_dataset(params, data_dir)
    work = data_dir / f"work-{params.stem}.duckdb"
    uri = working_copy(dataset, work)
    result: dict[str, Any] = {
        "benchmark": "analysis",
        "machine": machine(),
        "dataset": {
            **attrs.asdict(params),
            "path": str(dataset),
            "size_mb": round(dataset.stat().st_size / 2**20, 1),
            "generated_seconds": None if generated is None else round(generated, 1),
        },
    }
    try:
        with tempfile.TemporaryDirectory() as out:
            result["daily_run"] = daily_run(
                uri, Path(out), parallelism, periods=periods, metrics=metrics
            )
        if scans:
            _say("counting telemetry rows per date range")
            result["rows_scanned"] = rows_scanned(uri, measure=measure_clients == clients)
    finally:
        _drop(work)
    if scans and measure_clients is not None and measure_clients != clients:
        small = dataset_params(measure_clients, seed)
        small_set, _ = ensure_dataset(small, data_dir)
        small_work = data_dir / f"work-{small.stem}.duckdb"
        try:
            small_uri = working_copy(small_set, small_work)
            enrollments_only(small_uri)
            _say(f"profiling every scan query on {measure_clients:,} clients")
            measured = rows_scanned(small_uri, measure=True)
        finally:
            _drop(small_work)
        result["rows_scanned_measured"] = {"clients": measure_clients, **measured}
    result["total_seconds"] = round(time.monotonic() - started, 1)
    if results_path is not None:
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return result


def describe(result: dict[str, Any]) -> Iterator[str]:
    d = result["daily_run"]
    yield (
        f"daily run ({result['dataset']['clients']:,} clients, {d['date']}, "
        f"{', '.join(d['periods_due'])}; {d['tasks']} tasks): {d['seconds']} s, "
        f"peak process-tree RSS {d['peak_tree_rss_mb']} MB "
        f"(targets {d['target_seconds']:.0f} s, {d['target_peak_mb']:.0f} MB)"
    )
    s = result.get("rows_scanned")
    if s:
        yield (
            f"telemetry rows over the experiment: roll-ups {s['rollup']['rows_in_range']:,} "
            f"vs direct {s['direct']['rows_in_range']:,} ({s['ratio_in_range']}x fewer; "
            f"target {s['target_ratio']:.0f}x)"
        )
    for m in (s, result.get("rows_scanned_measured")):
        if m and "ratio_measured_read" in m:
            yield (
                f"  measured (DuckDB profiler, {m.get('clients', 'same')} clients): rows in "
                f"range {m['rollup']['rows_in_range']:,} vs {m['direct']['rows_in_range']:,}; "
                f"scanned {m['rollup']['scan_rows_read']:,} vs {m['direct']['scan_rows_read']:,}"
                f" ({m['ratio_measured_read']}x)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.analysis_bench",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--period", action="append", default=[],
                        help="only this analysis period in the daily run (repeatable; "
                        "default: every period due)")  # fmt: skip
    parser.add_argument("--metric", action="append", default=[],
                        help="only this metric in the daily run (repeatable)")  # fmt: skip
    parser.add_argument("--no-scans", action="store_true", help="skip the rows-scanned part")
    parser.add_argument("--measure-clients", type=int, default=20_000,
                        help="clients of the warehouse on which the scan-counting queries "
                        "are run under the profiler (0: do not run them)")  # fmt: skip
    args = parser.parse_args(argv)
    from jetstream import logs
    from jetstream.periods import Period

    logs.configure(os.environ.get("JETSTREAM_LOG_LEVEL", "WARNING"))
    result = run(args.clients, args.seed, args.parallelism, args.data_dir, args.out,
                 scans=not args.no_scans, measure_clients=args.measure_clients or None,
                 periods=[Period.parse(p) for p in args.period], metrics=args.metric)  # fmt: skip
    for line in describe(result):
        print(line)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
