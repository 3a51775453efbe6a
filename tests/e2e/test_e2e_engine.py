"""End-to-end behaviour of the analysis engine: the real firefox_desktop defaults on the
embedded engine, reruns that leave identical tables, a broken metric isolated from its
neighbours, shredding clients, and removed metrics losing their rows. Every graph runs
through the real `jetstream task` CLI (in-process) on synthetic telemetry."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from jetstream import results
from jetstream.cli import cli
from jetstream.config.model import AnalysisBasis
from jetstream.periods import Period, due_window
from tests.support import e2e_support as e2e

pytestmark = pytest.mark.slow

DEMO = e2e.DEMO_SLUG
DESKTOP = e2e.DESKTOP_SLUG


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> e2e.Computed:
    """The demo over its last enrollment day (day 0), the day after (pre-enrollment
    windows, as Jetstream) and day 6 (week 0): every table kind, at half the cost of the
    full run of test_e2e_metrics."""
    spec = e2e.load_spec(DEMO, e2e.DEMO_REPO)
    last = spec.experiment.last_enrollment_date
    assert last is not None
    dates = [last + dt.timedelta(days=d) for d in (0, 1, 6)]
    return e2e.computed(tmp_path_factory.mktemp("e2e-demo"), DEMO, e2e.DEMO_REPO, dates)


@pytest.fixture(scope="module")
def desktop(tmp_path_factory: pytest.TempPathFactory, metric_hub: Path) -> e2e.Computed:
    """desktop-search-defaults analysed with the real metric-hub defaults: the
    pre-enrollment windows (the day after the last enrollment day) and day 0, week 0, and
    the overall window."""
    spec = e2e.load_spec(DESKTOP, metric_hub)
    exp = spec.experiment
    assert exp.last_enrollment_date is not None and exp.end_date is not None
    dates = [exp.last_enrollment_date + dt.timedelta(days=d) for d in (0, 1, 6)]
    return e2e.computed(
        tmp_path_factory.mktemp("e2e-desktop"), DESKTOP, metric_hub, [*dates, exp.end_date]
    )


# ---------------------------------------------------------------------------- 3. defaults


@pytest.mark.shared
def test_firefox_desktop_defaults_run_on_the_embedded_engine(desktop: e2e.Computed) -> None:
    spec = desktop.spec
    exp = spec.experiment
    assert exp.last_enrollment_date is not None
    stored = e2e.query(
        desktop.path,
        f"SELECT period, window_index, analysis_basis, metric_slug, COUNT(*) AS n, "
        f"COUNT(metric_value) AS values FROM main.{results.metrics_table(DESKTOP)} "
        "GROUP BY ALL",
    )
    have = {(r["period"], r["window_index"], r["analysis_basis"], r["metric_slug"]) for r in stored}
    n_clients = e2e.query(
        desktop.path, f"SELECT COUNT(*) AS n FROM main.{results.enrollments_table(DESKTOP)}"
    )[0]["n"]
    assert n_clients > 100
    missing = []
    periods = set()
    for date in desktop.dates:
        for period in spec.periods:
            w = due_window(period, date, exp.last_enrollment_date, exp.end_date, exp.is_complete)
            if w is None:
                continue
            periods.add(period)
            for m in spec.metrics_for(period):
                if not m.select_expression.strip():
                    continue
                bases = [AnalysisBasis.ENROLLMENTS] if period.is_preenrollment else m.analysis_bases
                for b in bases:
                    if (period.value, w.index, b.value, m.name) not in have:
                        missing.append((period.value, w.index, b.value, m.name))
    assert not missing, f"no metric rows for {missing}"
    assert periods == set(spec.periods)  # day, week, overall and both pre-enrollment periods
    # every enrolled client has a value in the enrollments basis (no NULL-only metrics)
    for r in stored:
        if r["analysis_basis"] == "enrollments":
            assert r["n"] == n_clients, r
        assert r["values"] > 0, f"{r['metric_slug']} {r['period']} stored only NULLs"
    errors = e2e.errors(desktop.path, DESKTOP, "error")
    assert errors == [], errors
    stats = e2e.query(
        desktop.path,
        f"SELECT DISTINCT period, metric FROM main.{results.statistics_table(DESKTOP)}",
    )
    with_stats = {
        (p.value, s.metric.name) for p in periods for s in spec.metrics.get(p, ()) if s.statistic
    }
    assert with_stats <= {(r["period"], r["metric"]) for r in stats}


# roll-up judged decomposable, per data source, for the real firefox_desktop defaults
DESKTOP_DECOMPOSABLE = {
    "clients_daily": [
        "active_hours",
        "days_of_use",
        "is_default_browser",
        "qualified_cumulative_days_of_use",
        "retained",
        "uri_count",
    ],
    "firefox_desktop_active_users_view": [
        "active_in_last_3_days_legacy",
        "client_level_daily_active_users_v2",
        "daily_active_users_per_1000_clients_legacy",
        "retained_dau",
    ],
    "normandy_events": ["unenroll"],
    "search_clients_engines_sources_daily": [
        "ad_clicks",
        "organic_search_count",
        "search_count",
        "searches_with_ads",
        "tagged_follow_on_search_count",
        "tagged_search_count",
    ],
}


@pytest.mark.shared
def test_firefox_desktop_rollup_equals_direct(desktop: e2e.Computed) -> None:
    exp = desktop.spec.experiment
    assert exp.end_date is not None and exp.last_enrollment_date is not None
    overall = (exp.end_date - exp.last_enrollment_date).days
    pre = (AnalysisBasis.ENROLLMENTS,)
    found = e2e.rollup_vs_direct(
        desktop, [(0, 6, e2e.BOTH), (0, overall, e2e.BOTH), (-7, -1, pre), (-28, -1, pre)]
    )
    assert found == DESKTOP_DECOMPOSABLE


# ---------------------------------------------------------------------------- 4. reruns

COMPARED_PREFIXES = (
    "enrollments_",
    "enrollment_clients_",
    "exposure_days_",
    "segments_",
    "partials_",
    "partial_days_",
    "metrics_",
    "statistics_",
)


def _snapshot(path: Path) -> dict[str, list[tuple]]:
    out = {}
    for t in e2e.tables(path):
        if t.startswith(COMPARED_PREFIXES):
            out[t] = e2e.table_contents(path, t)
        elif t == "errors":
            out[t] = e2e.table_contents(path, t, drop=("run", "timestamp"))
    return out


def test_rerunning_a_date_leaves_identical_tables(demo: e2e.Computed, tmp_path: Path) -> None:
    path = e2e.copy_warehouse(demo, tmp_path)
    before = _snapshot(path)
    kinds = {t.split("_demo")[0] for t in before}
    assert {"metrics", "statistics", "segments", "enrollments", "exposure_days"} <= kinds
    assert any(t.startswith("partials_") for t in before)
    assert all(before[t] for t in before if t != "errors"), "every compared table has rows"
    exp = demo.spec.experiment
    assert exp.last_enrollment_date is not None
    date = exp.last_enrollment_date + dt.timedelta(days=6)  # day 6 and week 0
    nodes = e2e.run_graph(demo.spec, [date], e2e.DEMO_REPO, path, tmp_path / "out")
    assert {n.period for n in nodes if n.period} == {Period.DAY, Period.WEEK}
    after = _snapshot(path)
    assert set(after) == set(before)
    changed = [t for t in before if after[t] != before[t]]
    assert not changed, f"tables changed by a rerun: {changed}"


# ---------------------------------------------------------------------------- 5. isolation

FEATURE_WEEKLY = ["sidebar_clicks", "promoted_feature_clicks", "used_sidebar"]


def _repo_with(tmp_path: Path, extra_toml: str, weekly_add: list[str]) -> Path:
    """A copy of the demo config repo with metrics added to the experiment's weekly list."""
    repo = tmp_path / "repo"
    shutil.copytree(e2e.DEMO_REPO, repo)
    cfg = repo / "jetstream" / f"{DEMO}.toml"
    text = cfg.read_text()
    anchor = 'weekly = [\n  "sidebar_clicks",'
    assert anchor in text, f"{cfg} changed shape; update the test"
    added = "".join(f'\n  "{m}",' for m in weekly_add)
    cfg.write_text(
        text.replace(anchor, "weekly = [" + added + anchor[len("weekly = [") :]) + extra_toml
    )
    return repo


def _week0_values(path: Path, names: list[str]) -> dict[tuple, float | None]:
    rows = e2e.query(
        path,
        f"SELECT analysis_basis, metric_slug, analysis_id, metric_value "
        f"FROM main.{results.metrics_table(DEMO)} WHERE period = 'week' AND window_index = 0",
    )
    return {
        (r["analysis_basis"], r["metric_slug"], r["analysis_id"]): r["metric_value"]
        for r in rows
        if r["metric_slug"] in names
    }


@pytest.mark.parametrize(
    "select_expression",
    [
        # decomposable: breaks the source's daily partials, then the direct group
        "COALESCE(SUM(no_such_column), 0)",
        # decomposable too (daily distinct values): breaks the partials the same way
        "COUNT(DISTINCT no_such_column)",
        # not decomposable: partials fine, the direct query fails
        "APPROX_COUNT_DISTINCT(no_such_column)",
    ],
    ids=["rollup", "rollup_distinct", "direct"],
)
def test_broken_metric_is_isolated(
    demo: e2e.Computed, tmp_path: Path, select_expression: str
) -> None:
    extra = f"""

[metrics.broken_metric]
select_expression = "{select_expression}"
data_source = "feature_events"
friendly_name = "Broken"
description = "References a column that does not exist."
"""
    repo = _repo_with(tmp_path, extra, ["broken_metric"])
    path = tmp_path / "warehouse.duckdb"
    e2e.write_synthetic(path)  # same data as the demo run, nothing computed yet
    spec = e2e.load_spec(DEMO, repo)
    exp = spec.experiment
    assert exp.last_enrollment_date is not None
    date = exp.last_enrollment_date + dt.timedelta(days=6)
    nodes = e2e.run_graph(
        spec,
        [date],
        repo,
        path,
        tmp_path / "out",
        periods=[Period.WEEK],
        metrics=[*FEATURE_WEEKLY, "broken_metric"],
    )
    assert [n.data_source for n in nodes if n.data_source] == ["feature_events"]

    errors = [e for e in e2e.errors(path, DEMO, "error") if e["metric"] == "broken_metric"]
    assert errors, "no error row names the broken metric"
    assert {e["period"] for e in errors} == {"week"}
    assert all("no_such_column" in e["message"] for e in errors), errors
    other = [e for e in e2e.errors(path, DEMO, "error") if e["metric"] != "broken_metric"]
    assert not [e for e in other if e["statistic"] is None], other

    got = _week0_values(path, [*FEATURE_WEEKLY, "broken_metric"])
    assert not [k for k in got if k[1] == "broken_metric"]
    want = _week0_values(demo.path, FEATURE_WEEKLY)
    assert got == want  # the other metrics of the source and unit are complete and correct


# ---------------------------------------------------------------------------- 6. shred


# listed here, not imported from commands/shred.py: the test's own idea of every table
# that holds clients, so a table the command forgets fails it
PER_CLIENT = (
    "enrollments_",
    "enrollment_clients_",
    "exposure_days_",
    "segments_",
    "segment_days_",
    "partials_",
    "metrics_",
)


def _per_client(path: Path, ids_by_key: dict[int, str]) -> dict[str, list[dict]]:
    """Rows of every per-client table; the per-day tables' rows (keyed by client_key) get
    the analysis_id of their key."""
    out = {}
    for t in e2e.tables(path):
        if t.startswith(PER_CLIENT):
            rows = e2e.query(path, f'SELECT * FROM main."{t}"')
            for r in rows:
                if "analysis_id" not in r:
                    r["analysis_id"] = ids_by_key[r["client_key"]]
            out[t] = rows
    return out


def test_shred_removes_clients_from_every_per_client_table(
    demo: e2e.Computed, tmp_path: Path
) -> None:
    path = e2e.copy_warehouse(demo, tmp_path)
    clients = e2e.query(
        path, f"SELECT analysis_id, client_key FROM main.{results.enrollment_staging_table(DEMO)}"
    )
    ids_by_key = {r["client_key"]: r["analysis_id"] for r in clients}
    assert len(ids_by_key) == len(clients), "two clients share a key"
    before = _per_client(path, ids_by_key)
    kinds = {t.split("_demo")[0] for t in before}
    assert kinds >= {
        "enrollments",
        "enrollment_clients",
        "exposure_days",
        "segments",
        "segment_days",
        "metrics",
        "partials",
    }
    # clients present in every per-client table, plus one excluded multi-branch client
    common = None
    for rows in before.values():
        ids = {r["analysis_id"] for r in rows}
        common = ids if common is None else common & ids
    assert common, "no client appears in every per-client table"
    victims = sorted(common)[:3]
    multi = e2e.query(
        path,
        f"SELECT analysis_id FROM main.{results.enrollment_staging_table(DEMO)} "
        "WHERE num_branches > 1 LIMIT 1",
    )
    victims += [r["analysis_id"] for r in multi] + ["not-a-client"]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(victims) + "\n")

    res = CliRunner().invoke(
        cli, ["shred", "--client-ids", str(ids_file), "--warehouse", e2e.url(path)]
    )
    assert res.exit_code == 0, f"{res.output}\n{res.exception!r}"

    after = _per_client(path, ids_by_key)
    assert set(after) == set(before)
    gone = set(victims)
    for table, rows in before.items():
        kept = [r for r in rows if r["analysis_id"] not in gone]
        assert len(kept) < len(rows), f"{table}: the chosen clients had no rows"
        key = sorted(map(repr, kept))
        assert sorted(map(repr, after[table])) == key, f"{table}: other clients' rows changed"
    # statistics hold no client ids and are untouched
    assert e2e.table_contents(path, results.statistics_table(DEMO)) == e2e.table_contents(
        demo.path, results.statistics_table(DEMO)
    )


# ---------------------------------------------------------------------------- 7. removal


def test_removed_metric_loses_its_rows_on_rerun(demo: e2e.Computed, tmp_path: Path) -> None:
    path = e2e.copy_warehouse(demo, tmp_path)
    repo = tmp_path / "repo"
    shutil.copytree(e2e.DEMO_REPO, repo)
    cfg = repo / "jetstream" / f"{DEMO}.toml"
    text = cfg.read_text()
    # sidebar_clicks leaves the weekly list only (it stays in the pre-enrollment periods,
    # whose week is its covariate)
    weekly_entry = 'weekly = [\n  "sidebar_clicks",\n'
    assert weekly_entry in text, f"{cfg} changed shape; update the test"
    cfg.write_text(text.replace(weekly_entry, "weekly = [\n"))
    spec = e2e.load_spec(DEMO, repo)
    assert "sidebar_clicks" not in {m.name for m in spec.metrics_for(Period.WEEK)}
    assert "sidebar_clicks" in {m.name for m in spec.metrics_for(Period.PREENROLLMENT_WEEK)}

    def counts(table: str, col: str) -> dict[str, int]:
        rows = e2e.query(
            path,
            f"SELECT period, COUNT(*) AS n FROM main.{table} "
            f"WHERE {col} = 'sidebar_clicks' GROUP BY period",
        )
        return {r["period"]: r["n"] for r in rows}

    def others() -> int:
        return e2e.query(
            path,
            f"SELECT COUNT(*) AS n FROM main.{results.metrics_table(DEMO)} "
            "WHERE metric_slug != 'sidebar_clicks'",
        )[0]["n"]

    metrics, stats = results.metrics_table(DEMO), results.statistics_table(DEMO)
    before, before_stats, others_before = (
        counts(metrics, "metric_slug"),
        counts(stats, "metric"),
        others(),
    )
    assert before.get("week") and before.get("preenrollment_week")
    assert before_stats.get("week") and before_stats.get("preenrollment_week")

    exp = spec.experiment
    assert exp.last_enrollment_date is not None
    # a rerun of a date (one metrics unit is enough: the export task removes the rows)
    nodes = e2e.run_graph(
        spec,
        [exp.last_enrollment_date + dt.timedelta(days=6)],
        repo,
        path,
        tmp_path / "out",
        periods=[Period.WEEK],
        metrics=["dau_days"],
    )
    assert [n.kind.value for n in nodes] == ["ensure-enrollments", "metrics", "export"]
    after, after_stats = counts(metrics, "metric_slug"), counts(stats, "metric")
    assert "week" not in after and "week" not in after_stats
    assert {p: n for p, n in before.items() if p != "week"} == after
    assert {p: n for p, n in before_stats.items() if p != "week"} == after_stats
    assert others() == others_before


# ------------------------------------------------- exposures basis from the enrollments one


def test_exposures_shortcuts_equal_the_general_path(
    demo: e2e.Computed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a custom exposure signal the engine computes one roll-up and one statistics
    read for both bases (the exposures basis is the exposed subset). Recomputing week 0
    with one query per basis, the general path, stores identical metric and statistic
    rows."""
    exp = demo.spec.experiment
    assert demo.spec.exposure_signal is not None and exp.last_enrollment_date is not None
    date = exp.last_enrollment_date + dt.timedelta(days=6)
    path = e2e.copy_warehouse(demo, tmp_path)
    tables = [f"metrics_{DEMO.replace('-', '_')}", f"statistics_{DEMO.replace('-', '_')}"]
    before = {t: e2e.table_contents(path, t) for t in tables}
    bases = {r[2] for r in before[tables[0]]}
    assert bases == {"enrollments", "exposures"}
    from jetstream.tasks import metrics as task_metrics
    from jetstream.tasks import statistics as task_statistics

    for module in (task_metrics, task_statistics):
        monkeypatch.setattr(
            module, "exposures_within_enrollments", lambda spec, period, bases: False
        )
    e2e.run_graph(demo.spec, [date], e2e.DEMO_REPO, path, tmp_path / "out", [Period.WEEK])
    after = {t: e2e.table_contents(path, t) for t in tables}
    for t in tables:
        assert after[t] == before[t], f"{t} differs between the shortcut and the general path"


def test_statistics_from_staging_equal_statistics_from_stored_rows(
    demo: e2e.Computed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metrics task reads its statistics' per-client values from the staging tables
    it has just stored (tasks.statistics.read_statistics with `staged`). Recomputing the
    windows closing on a date with those reads pivoting the stored rows instead stores
    identical statistic rows, for both bases and every segment."""
    exp = demo.spec.experiment
    assert exp.last_enrollment_date is not None
    date = exp.last_enrollment_date + dt.timedelta(days=6)
    path = e2e.copy_warehouse(demo, tmp_path)
    table = f"statistics_{DEMO.replace('-', '_')}"
    before = e2e.table_contents(path, table)
    from jetstream.tasks import statistics as task_statistics

    original = task_statistics.read_statistics
    used: list[bool] = []

    def from_stored_rows(ctx, period, window, metrics, staged=()):  # type: ignore[no-untyped-def]
        used.append(bool(staged))
        return original(ctx, period, window, metrics)

    monkeypatch.setattr(task_statistics, "read_statistics", from_stored_rows)
    periods = [Period.DAY, Period.WEEK]
    e2e.run_graph(demo.spec, [date], e2e.DEMO_REPO, path, tmp_path / "out", periods)
    assert any(used), "the metrics tasks should have offered their staging tables"
    after = e2e.table_contents(path, table)
    assert after == before


# ------------------------------------------------------- Experimenter reads the output


def _oracle_verdict(c: e2e.Computed) -> dict:
    from tests.oracles import nimbus

    report = nimbus.check(c.out)
    assert nimbus.failures(report) == {}
    kinds = {path.split("/")[0] for path in report["files"]}
    assert kinds == {"statistics", "metadata", "errors"}, report["files"]
    return report


def test_demo_output_validates_with_experimenters_models(demo: e2e.Computed) -> None:
    """Every published file, read with Experimenter's own pydantic models."""
    _oracle_verdict(demo)
    import json

    slug = results.safe(DEMO)
    meta = json.loads((demo.out / "metadata" / f"metadata_{slug}.json").read_text())
    # the demo's primary outcome (from experiments.json) is described for Experimenter
    outcome = meta["outcomes"]["search_monetization"]
    assert outcome["friendly_name"] == "Search monetization"
    assert {"ad_clicks", "searches_with_ads", "ad_click_rate"} <= set(outcome["metrics"])
    assert meta["external_config"] is None  # the config overrides no record value


@pytest.mark.shared
def test_desktop_output_validates_with_experimenters_models(desktop: e2e.Computed) -> None:
    import json

    report = _oracle_verdict(desktop)
    errors = json.loads(
        (desktop.out / "errors" / f"errors_{results.safe(DESKTOP)}.json").read_text()
    )
    for e in errors:
        assert e["filename"] and e["func_name"] and e["experiment"] == DESKTOP
        assert e["window_index"] is None or isinstance(e["window_index"], str)
    assert report["errors_shown"].get(results.safe(DESKTOP), [0, 0])[1] == len(errors)
