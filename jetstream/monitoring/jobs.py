"""The three monitoring jobs on a Warehouse, and the export of their results.

    monitor = Monitor(open_warehouse("duckdb:live.duckdb"))
    monitor.run(Job.HOURLY, at, experiments)                  # one hour, replaced
    monitor.run(Job.DAILY, at, experiments)                   # yesterday, final
    monitor.run(Job.FIVE_MINUTE, at, experiments, store)      # recents, derived, JSON

Each job replaces its partitions (delete + insert in one transaction, with the coverage
row that says the partition is there), never appends, and reads only events that had
arrived by `at`: running a job again with the same `at` on the same data changes nothing.
The live view (`sql.live_select`) takes each 5-minute window from exactly one layer,
daily > hourly > recents, so an event is counted at most once before its day is final and
exactly once after.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import attrs

from jetstream.artifacts import ArtifactStore
from jetstream.errors import EXIT_USAGE, JetstreamError
from jetstream.experiments import Experiment
from jetstream.logs import get_logger
from jetstream.monitoring import sql
from jetstream.monitoring.health import grid, health_document, is_live
from jetstream.monitoring.schedule import (
    HOURLY_LAG,
    Interval,
    Job,
    daily_interval,
    day_start,
    hourly_interval,
    uncovered_hours,
    utc,
)
from jetstream.monitoring.srm import DEFAULT_ALPHA, DEFAULT_CONCENTRATION
from jetstream.synthetic.tables import EVENTS_LIVE, SEARCH_LIVE
from jetstream.warehouse import Warehouse

log = get_logger(__name__)


class MonitoringError(JetstreamError):
    """The monitoring jobs cannot run: a live table is missing."""

    exit_code = EXIT_USAGE


EXPORT_PREFIX = "monitoring/"


@attrs.frozen
class MonitoringSettings:
    events_table: str = EVENTS_LIVE
    search_table: str = SEARCH_LIVE
    prefix: str = "monitoring_"
    hourly_lag: dt.timedelta = HOURLY_LAG
    recents_lookback: dt.timedelta = dt.timedelta(days=2)
    clock_skew: dt.timedelta = dt.timedelta(hours=1)
    silence: dt.timedelta = dt.timedelta(hours=1)
    alpha: float = DEFAULT_ALPHA
    concentration: float = DEFAULT_CONCENTRATION


@attrs.frozen
class JobResult:
    job: Job
    at: dt.datetime
    experiments: tuple[str, ...]
    hours: tuple[dt.datetime, ...] = ()  # event-time hours materialized
    files: tuple[str, ...] = ()  # artifacts written
    health: dict[str, dict[str, Any]] = attrs.field(factory=dict)


def export_path(slug: str, dataset: str) -> str:
    """monitoring/<experiment_slug>_<dataset_name>.json"""
    return f"{EXPORT_PREFIX}{slug}_{dataset}.json"


def health_path(slug: str) -> str:
    return f"{EXPORT_PREFIX}{slug}_health.json"


INDEX_PATH = f"{EXPORT_PREFIX}index.json"
PAGE_PATH = f"{EXPORT_PREFIX}index.html"


def _iso(t: dt.datetime) -> str:
    return utc(t).strftime("%Y-%m-%dT%H:%M:%SZ")


class Monitor:
    def __init__(self, warehouse: Warehouse, settings: MonitoringSettings | None = None):
        self.wh = warehouse
        self.settings = settings or MonitoringSettings()
        self._tables_ready = False

    # -- names ------------------------------------------------------------------------------

    def ref(self, table: str) -> str:
        return self.wh.table_ref(table)

    def layer_ref(self, kind: str, layer: str) -> str:
        return self.ref(sql.table_name(self.settings.prefix, kind, layer))

    @property
    def coverage_ref(self) -> str:
        return self.ref(sql.coverage_table(self.settings.prefix))

    def live(self, kind: str) -> str:
        refs = {layer: self.layer_ref(kind, layer) for layer in sql.LAYERS}
        return sql.live_select(self.settings.prefix, kind, refs, self.coverage_ref)

    def check_sources(self) -> None:
        """The live tables must exist: say which one is missing, and where."""
        for key in ("events_table", "search_table"):
            table = getattr(self.settings, key)
            if not self.wh.table_exists(table):
                raise MonitoringError(
                    f"live table {table} ({key.replace('_', ' ')}) does not exist in "
                    f"{self.wh!r}; load the live stream first (e.g. `jetstream synthetic "
                    "--live`) or pass --events-table/--search-table"
                )

    def ensure_tables(self) -> None:
        """Create the tables that do not exist yet (once per Monitor)."""
        if self._tables_ready:
            return
        statements = [
            sql.create_aggregate_table(self.layer_ref(kind, layer), kind, layer)
            for kind in sql.KINDS
            for layer in sql.LAYERS
        ]
        statements.append(sql.create_table(self.coverage_ref, sql.COVERAGE_COLUMNS))
        statements += [
            sql.create_table(self.ref(name), sql.DERIVED_COLUMNS) for name in sql.DERIVED
        ]
        self.wh.execute(";\n".join(statements))
        self._tables_ready = True

    # -- materializing ----------------------------------------------------------------------

    def _selects(
        self, layer: str, interval: Interval, at: dt.datetime, slugs: Sequence[str],
        history_from: dt.datetime,
    ) -> dict[str, str]:  # fmt: skip
        s = self.settings
        events, search = self.ref(s.events_table), self.ref(s.search_table)
        skew = s.clock_skew
        return {
            "enrollment": sql.enrollment_select(events, slugs, interval, at, skew),
            "search": sql.search_select(events, search, slugs, interval, at, history_from, skew),
            "first_enrollment": sql.first_enrollment_select(
                events, slugs, interval, at, layer, skew
            ),
            "active": sql.active_select(
                events, search, slugs, interval, at, layer, history_from, skew
            ),
        }

    def _insert(self, kind: str, layer: str, select: str, where: str = "TRUE") -> str:
        cols = ", ".join(["window_start", *(c for c, _ in sql.KINDS[kind])])
        return (
            f"INSERT INTO {self.layer_ref(kind, layer)} ({cols})\n"
            f"SELECT {cols} FROM (\n{select}\n) WHERE {where}"
        )

    def _coverage_rows(self, job: str, intervals: Sequence[Interval], at: dt.datetime) -> list[str]:
        out = []
        for iv in intervals:
            out.append(
                f"DELETE FROM {self.coverage_ref} WHERE job = '{job}' "
                f"AND interval_start = {sql.literal_timestamp(iv.start)}"
            )
            out.append(
                f"INSERT INTO {self.coverage_ref} (job, interval_start, interval_end, run_at) "
                f"SELECT '{job}', {sql.literal_timestamp(iv.start)}, "
                f"{sql.literal_timestamp(iv.end)}, {sql.literal_timestamp(at)}"
            )
        return out

    def materialize_partition(
        self, layer: str, interval: Interval, at: dt.datetime, slugs: Sequence[str],
        history_from: dt.datetime,
    ) -> None:  # fmt: skip
        """Replace one hourly or daily partition, and record it as covered."""
        statements = []
        between = (
            f"window_start >= {sql.literal_timestamp(interval.start)} "
            f"AND window_start < {sql.literal_timestamp(interval.end)}"
        )
        for kind, select in self._selects(layer, interval, at, slugs, history_from).items():
            statements.append(f"DELETE FROM {self.layer_ref(kind, layer)} WHERE {between}")
            statements.append(self._insert(kind, layer, select))
        statements += self._coverage_rows(layer, [interval], at)
        if layer == "daily":
            # The day is final: its hourly partitions are no longer read; drop them.
            for kind in sql.KINDS:
                statements.append(f"DELETE FROM {self.layer_ref(kind, 'hourly')} WHERE {between}")
            statements.append(
                f"DELETE FROM {self.coverage_ref} WHERE job = 'hourly' AND "
                f"interval_start >= {sql.literal_timestamp(interval.start)} AND "
                f"interval_start < {sql.literal_timestamp(interval.end)}"
            )
        self.wh.transaction(statements)

    def covered(self) -> tuple[list[dt.datetime], list[dt.date]]:
        rows = self.wh.query(
            f"SELECT job, interval_start FROM {self.coverage_ref} WHERE job IN ('hourly', 'daily')"
        ).to_pylist()
        hours = [utc(r["interval_start"]) for r in rows if r["job"] == "hourly"]
        days = [utc(r["interval_start"]).date() for r in rows if r["job"] == "daily"]
        return hours, days

    def materialize_recents(
        self, at: dt.datetime, slugs: Sequence[str], history_from: dt.datetime
    ) -> list[dt.datetime]:
        """Replace the recents tables with every hour up to `at` not covered by the other
        layers (within the lookback); returns those hours."""
        hours_done, days_done = self.covered()
        hours = uncovered_hours(at, self.settings.recents_lookback, hours_done, days_done)
        statements = [
            f"DELETE FROM {self.layer_ref(kind, 'recents')} WHERE TRUE" for kind in sql.KINDS
        ]
        if hours and hours[0] < at:
            interval = Interval(hours[0], at)
            keep = sql.recents_filter(hours)
            for kind, select in self._selects("recents", interval, at, slugs, history_from).items():
                statements.append(self._insert(kind, "recents", select, keep))
        self.wh.transaction(statements)
        return hours

    # -- derived tables, health, export -----------------------------------------------------

    def refresh_derived(self, at: dt.datetime, experiments: Sequence[Experiment]) -> None:
        grids = [(e.slug, *grid(e, at)) for e in experiments]
        branches = [(e.slug, b.slug) for e in experiments for b in e.branches]
        live = {kind: self.live(kind) for kind in ("enrollment", "search", "active")}
        summary = sql.summary_table(self.settings.prefix)
        self.wh.create_table_as(summary, sql.summary_select(live, grids, branches))
        slugs = sql.literal_list(e.slug for e in experiments)
        statements = []
        for name, column in sql.DERIVED.items():
            statements.append(f"DELETE FROM {self.ref(name)} WHERE experiment IN {slugs}")
            statements.append(
                f"INSERT INTO {self.ref(name)} (time, branch, experiment, value) "
                f"SELECT time, branch, experiment, {column} FROM {self.ref(summary)}"
            )
        self.wh.transaction(statements)

    def health(
        self, at: dt.datetime, experiments: Sequence[Experiment]
    ) -> dict[str, dict[str, Any]]:
        s = self.settings
        slugs = [e.slug for e in experiments]
        firsts = self.wh.query(
            sql.first_enrollment_counts_select(self.live("first_enrollment"), slugs)
        ).to_pylist()
        recent = self.wh.query(
            sql.recent_enrollments_select(self.live("enrollment"), slugs, at - s.silence, at)
        ).to_pylist()
        recent_by = {r["experiment"]: int(r["enrollments"] or 0) for r in recent}
        out = {}
        for e in experiments:
            rows = [
                (r["branch"], r["window_start"], r["clients"])
                for r in firsts
                if r["experiment"] == e.slug
            ]
            out[e.slug] = health_document(
                e, at, rows, recent_by.get(e.slug, 0),
                alpha=s.alpha, concentration=s.concentration, silence=s.silence,
            )  # fmt: skip
        return out

    def export(
        self,
        at: dt.datetime,
        experiments: Sequence[Experiment],
        store: ArtifactStore,
        health: dict[str, dict[str, Any]],
    ) -> list[str]:
        """Write monitoring/<slug>_<dataset>.json for every derived table, the health
        documents, monitoring/index.json and the page monitoring/index.html."""
        from jetstream.monitoring.page import render_page

        slugs = [e.slug for e in experiments]
        written: list[str] = []
        data: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in slugs}
        for name in sql.DERIVED:
            rows = self.wh.query(
                f"SELECT time, branch, experiment, value FROM {self.ref(name)} "
                f"WHERE experiment IN {sql.literal_list(slugs)} "
                "ORDER BY experiment, time, branch"
            ).to_pylist()
            for slug in slugs:
                data[slug][name] = []
            for r in rows:
                data[r["experiment"]][name].append(
                    {"time": _iso(r["time"]), "branch": r["branch"],
                     "experiment": r["experiment"], "value": int(r["value"])}
                )  # fmt: skip
        for slug in slugs:
            for name, rows_ in data[slug].items():
                path = export_path(slug, name)
                store.write_json(path, rows_)
                written.append(path)
            store.write_json(health_path(slug), health[slug])
            written.append(health_path(slug))
        index = {
            "at": _iso(at),
            "experiments": slugs,
            "datasets": list(sql.DERIVED),
            "files": {s: {n: export_path(s, n) for n in sql.DERIVED} for s in slugs},
            "health": {s: health_path(s) for s in slugs},
        }
        store.write_json(INDEX_PATH, index)
        written.append(INDEX_PATH)
        page = render_page(at, data, health)
        store.write_bytes(PAGE_PATH, page.encode(), "text/html; charset=utf-8")
        written.append(PAGE_PATH)
        return written

    # -- the jobs ---------------------------------------------------------------------------

    def run(
        self,
        job: Job | str,
        at: dt.datetime,
        experiments: Sequence[Experiment],
        store: ArtifactStore | None = None,
    ) -> JobResult:
        job = Job(job)
        at = utc(at)
        live = sorted((e for e in experiments if is_live(e, at)), key=lambda e: e.slug)
        slugs = tuple(e.slug for e in live)
        if not live:
            log.info("monitor.no_live_experiments", job=str(job), at=_iso(at))
            return JobResult(job, at, ())
        self.check_sources()
        self.ensure_tables()
        history_from = (
            day_start(min(e.start_date for e in live if e.start_date is not None))
            - self.settings.clock_skew
        )
        if job is Job.HOURLY:
            interval = hourly_interval(at, self.settings.hourly_lag)
            self.materialize_partition("hourly", interval, at, slugs, history_from)
            log.info("monitor.hourly", at=_iso(at), hour=_iso(interval.start), experiments=slugs)
            return JobResult(job, at, slugs, tuple(interval.hours()))
        if job is Job.DAILY:
            interval = daily_interval(at)
            self.materialize_partition("daily", interval, at, slugs, history_from)
            log.info("monitor.daily", at=_iso(at), day=str(interval.start.date()),
                     experiments=slugs)  # fmt: skip
            return JobResult(job, at, slugs, tuple(interval.hours()))
        hours = self.materialize_recents(at, slugs, history_from)
        self.refresh_derived(at, live)
        health = self.health(at, live)
        files: list[str] = []
        if store is not None:
            files = self.export(at, live, store, health)
        log.info("monitor.five_minute", at=_iso(at), recents_hours=len(hours),
                 experiments=slugs, files=len(files))  # fmt: skip
        return JobResult(job, at, slugs, tuple(hours), tuple(files), health)
