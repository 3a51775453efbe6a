"""Helpers for the end-to-end engine tests: synthetic warehouses, running a task graph
in-process through the real `jetstream task` CLI, and reading result tables back.

Warehouses are built once per test session (per xdist worker) and cached here by their
parameters; tests that mutate one work on a copy (`copy_warehouse`)."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import duckdb
import pyarrow as pa
from click.testing import CliRunner

from jetstream import graph, results, synthetic
from jetstream.cli import cli
from jetstream.commands.loading import load_one
from jetstream.config.model import AnalysisBasis, AnalysisSpec, Metric
from jetstream.graph import DERIVED_SOURCE
from jetstream.periods import Period
from jetstream.sql import metrics as met_sql
from jetstream.warehouse import open_warehouse

DEMO_SLUG = "demo-sidebar-redesign"
DESKTOP_SLUG = "desktop-search-defaults"
EXPERIMENTS = str(synthetic.DEMO_DIR / "experiments.json")
DEMO_REPO = synthetic.DEMO_DIR
CLIENTS = 800
SEED = 11


def demo_dates(spec: AnalysisSpec) -> list[dt.date]:
    """Dates that close every period of the demo at least once: the last enrollment day
    (day 0), the day after (pre-enrollment windows, as Jetstream), week 0, the 28-day
    window (and week 3), and the end date (overall)."""
    last = spec.experiment.last_enrollment_date
    end = spec.experiment.end_date
    assert last is not None and end is not None
    return sorted({last + dt.timedelta(days=d) for d in (0, 1, 6, 27)} | {end})


def load_spec(slug: str, config_repo: Path | str) -> AnalysisSpec:
    return load_one(slug, EXPERIMENTS, Path(config_repo))


def url(path: Path) -> str:
    return f"duckdb:{path}"


def write_synthetic(path: Path, clients: int = CLIENTS, seed: int = SEED) -> dict[str, Any]:
    tables = synthetic.generate(clients=clients, seed=seed)
    wh = open_warehouse(url(path))
    try:
        synthetic.write(wh, tables)
    finally:
        wh.close()
    return tables


class TaskFailed(AssertionError):
    pass


def run_task(
    args: Sequence[str],
    config_repo: Path | str,
    path: Path,
    out: Path,
    experiments: str = EXPERIMENTS,
) -> str:
    """One `jetstream task ...` call in-process; returns its output, raises on exit != 0."""
    full = [
        "task",
        *args,
        "--experiments",
        experiments,
        "--config-repo",
        str(config_repo),
        "--warehouse",
        url(path),
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(cli, full, catch_exceptions=True)
    if res.exit_code != 0:
        raise TaskFailed(
            f"jetstream {' '.join(full)} exited {res.exit_code}: {res.exception!r}\n"
            f"{res.output[-3000:]}"
        )
    return res.output


def run_graph(
    spec: AnalysisSpec,
    dates: Sequence[dt.date],
    config_repo: Path | str,
    path: Path,
    out: Path,
    periods: Sequence[Period] | None = None,
    metrics: Sequence[str] = (),
    experiments: str = EXPERIMENTS,
) -> list[graph.TaskNode]:
    """Every node of `plan_dates` in topological order, each through the real CLI."""
    nodes = graph.plan_dates([spec], dates, periods, metrics).topological()
    assert nodes, f"no task nodes for {spec.slug} on {dates}"
    for node in nodes:
        run_task(node.args(), config_repo, path, out, experiments)
    return nodes


@attrs.frozen
class Computed:
    """A warehouse on which a graph ran (read-only for tests: copy before mutating)."""

    path: Path
    out: Path
    spec: AnalysisSpec
    config_repo: Path
    dates: tuple[dt.date, ...]
    tables: dict[str, Any] = attrs.field(hash=False)
    nodes: tuple[graph.TaskNode, ...] = ()


_CACHE: dict[tuple, Computed] = {}


def computed(
    base: Path,
    slug: str,
    config_repo: Path,
    dates: Sequence[dt.date] | None = None,
    clients: int = CLIENTS,
    seed: int = SEED,
) -> Computed:
    """The synthetic warehouse with `slug`'s graph run over `dates` (cached per session)."""
    key = (slug, str(config_repo), tuple(dates or ()), clients, seed)
    if key in _CACHE:
        return _CACHE[key]
    spec = load_spec(slug, config_repo)
    days = list(dates) if dates else demo_dates(spec)
    work = base / f"{results.safe(slug)}-{len(_CACHE)}"
    work.mkdir(parents=True, exist_ok=True)
    path = work / "warehouse.duckdb"
    tables = write_synthetic(path, clients, seed)
    nodes = run_graph(spec, days, config_repo, path, work / "out")
    c = Computed(path, work / "out", spec, Path(config_repo), tuple(days), tables, tuple(nodes))
    _CACHE[key] = c
    return c


def copy_warehouse(c: Computed, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "warehouse.duckdb"
    shutil.copyfile(c.path, target)
    return target


def query(path: Path, sql: str, params: Iterable[Any] | None = None) -> list[dict[str, Any]]:
    """Raw DuckDB SQL on the file, read-only (no engine code between the test and the data)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        cur = con.execute(sql, list(params) if params is not None else None)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def tables(path: Path) -> list[str]:
    """Base tables (not views) of the main schema."""
    rows = query(
        path,
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    return [r["table_name"] for r in rows]


def table_contents(path: Path, table: str, drop: Sequence[str] = ()) -> list[tuple]:
    """Every row of a table, as sorted tuples, without the `drop` columns."""
    cols = [
        r["column_name"]
        for r in query(
            path,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
            "AND table_name = ? ORDER BY ordinal_position",
            [table],
        )
    ]
    keep = [c for c in cols if c not in drop]
    assert keep, f"table {table} has no columns left"
    quoted = ", ".join(f'"{c}"' for c in keep)
    rows = query(path, f'SELECT {quoted} FROM main."{table}"')
    return sorted((tuple(_comparable(r[c]) for c in keep) for r in rows), key=_sort_key)


def _comparable(v: Any) -> Any:
    """NaN as a marker string, so equal tables compare equal and sort the same way."""
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    return v


def _sort_key(row: tuple) -> tuple:
    return tuple((v is None, type(v).__name__, v if v is not None else 0) for v in row)


ERROR_COLUMNS = (
    "run, experiment, period, "
    '"window", data_source, metric, statistic, level, exception_type, message'
)


def errors(path: Path, slug: str, level: str | None = None) -> list[dict[str, Any]]:
    """Error rows of an experiment (without the timestamp)."""
    sql = f"SELECT {ERROR_COLUMNS} FROM main.errors WHERE experiment = ?"
    params: list[Any] = [slug]
    if level is not None:
        sql += " AND level = ?"
        params.append(level)
    return query(path, sql, params)


# ---------------------------------------------------------------------------- roll-up


def source_metrics(spec: AnalysisSpec, source: str) -> list[Metric]:
    """Every metric of a data source across the spec's periods, by name."""
    seen: dict[str, Metric] = {}
    for period in spec.periods:
        for m in spec.metrics_for(period):
            if (m.data_source.name if m.data_source else DERIVED_SOURCE) == source:
                seen.setdefault(m.name, m)
    return [seen[k] for k in sorted(seen)]


BOTH = (AnalysisBasis.ENROLLMENTS, AnalysisBasis.EXPOSURES)


def rollup_vs_direct(
    c: Computed, windows: list[tuple[int, int, tuple[AnalysisBasis, ...]]]
) -> dict[str, list[str]]:
    """For every data source: roll-up of the stored partials vs direct from telemetry, per
    client, for each (window start, window end, bases) that the source's metrics use (the
    partials start `source_lead_days` before enrollment). Returns the decomposable metrics
    per source."""
    spec = c.spec
    slug = spec.slug
    wh = open_warehouse(url(c.path))
    decomposable: dict[str, list[str]] = {}
    try:
        enr = wh.table_ref(results.enrollments_table(slug))
        exposure = wh.table_ref(results.exposure_days_table(slug)) if spec.exposure_signal else None
        sources = sorted(
            {m.data_source.name for p in spec.periods for m in spec.metrics_for(p) if m.data_source}
        )
        for source in sources:
            metrics = source_metrics(spec, source)
            ds = metrics[0].data_source
            assert ds is not None
            plans = [p for p in met_sql.plan_metrics(metrics) if p.decomposition is not None]
            decomposable[source] = [p.metric.name for p in plans]
            if not plans:
                continue
            partials = wh.table_ref(results.partials_table(slug, source))
            lead = met_sql.source_lead_days(spec, source)
            for start, end, bases in windows:
                if start < -lead:
                    continue  # no period of this source's metrics reads that far back
                w = met_sql.WindowSpec(start, end)
                for basis in bases:
                    rolled = wh.query(
                        met_sql.wide_sql(spec, ds, plans, basis, w, enr, partials, exposure)
                    )
                    direct = wh.query(
                        met_sql.direct_only_sql(
                            spec, ds, [p.metric for p in plans], basis, w, enr, exposure
                        )
                    )
                    _compare(rolled, direct, f"{source} [{start}, {end}] {basis.value}")
    finally:
        wh.close()
    return decomposable


def _compare(rolled: pa.Table, direct: pa.Table, where: str) -> None:
    assert rolled.num_rows == direct.num_rows > 0, where
    r = {row["analysis_id"]: row for row in rolled.to_pylist()}
    d = {row["analysis_id"]: row for row in direct.to_pylist()}
    assert set(r) == set(d), where
    for name in rolled.column_names:
        if name in ("analysis_id", "branch"):
            continue
        rt, dt_ = rolled.schema.field(name).type, direct.schema.field(name).type
        exact = not pa.types.is_floating(rt) and not pa.types.is_floating(dt_)
        bad = []
        for cid in r:
            a, b = r[cid][name], d[cid][name]
            if a is None or b is None:
                ok = a is b
            elif exact:
                ok = a == b and type(a) is type(b)
            else:
                ok = math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
            if not ok:
                bad.append((cid, a, b))
        assert not bad, f"{name} {where} ({rt} vs {dt_}): roll-up != direct, e.g. {bad[:3]}"
