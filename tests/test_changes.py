"""Reruns of exactly what changed: planning from definition hashes on real config repos
(small git repositories built from tests/fixtures/changes), the graph, the cleanup SQL on
DuckDB, and `jetstream rerun-config-changed --dry-run`."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from jetstream import changes, gitrepo, results
from jetstream.changes import RerunPlan
from jetstream.experiments import load_experiments
from jetstream.graph import TaskGraph, TaskKind, TaskNode
from jetstream.periods import Period
from jetstream.sql.results import create_table_sql
from tests.support.paths import FIXTURES

FIXTURE = FIXTURES / "changes"
AS_OF = dt.date(2026, 2, 20)  # after the fixture experiments' end (2026-02-08)


class ConfigGitRepo:
    """A git work tree holding a copy of the fixture config repo."""

    def __init__(self, path: Path):
        self.path = path
        shutil.copytree(FIXTURE / "repo", path)
        self.git("init", "-q", "-b", "main")
        self.head = self.commit("initial")

    def git(self, *args: str) -> str:
        env = {
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
            "PATH": "/usr/bin:/bin",
        }
        return subprocess.run(
            ["git", *args], cwd=self.path, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    def write(self, rel: str, text: str) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def replace(self, rel: str, old: str, new: str) -> None:
        text = (self.path / rel).read_text()
        assert old in text, f"{old!r} not in {rel}"
        self.write(rel, text.replace(old, new))

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        self.head = self.git("rev-parse", "HEAD")
        return self.head


@pytest.fixture
def repo(tmp_path: Path) -> ConfigGitRepo:
    return ConfigGitRepo(tmp_path / "config")


@pytest.fixture(scope="module")
def experiments():
    return load_experiments(str(FIXTURE / "experiments.json"))


def analyse(repo: ConfigGitRepo, experiments, before: str, tmp_path: Path, as_of=AS_OF):
    git_dir = repo.path / ".git"
    before_dir = gitrepo.export_tree(git_dir, before, tmp_path / f"before-{before[:8]}")
    paths = gitrepo.changed_paths(git_dir, before, repo.head)
    return changes.analyse_change(experiments, before_dir, repo.path, as_of, changed=paths)


def active(analysis) -> dict[str, RerunPlan]:
    return {p.slug: p for p in analysis.active}


def metric_nodes(graph: TaskGraph) -> list[TaskNode]:
    return [n for n in graph.nodes if n.kind is TaskKind.METRICS]


# -- planning ----------------------------------------------------------------------------


def test_one_metric_of_one_experiment(repo, experiments, tmp_path):
    start = repo.head
    repo.write(
        "jetstream/exp-a.toml",
        (repo.path / "jetstream/exp-a.toml").read_text() + "drop_highest = 0.01\n",
    )
    repo.commit()
    analysis = analyse(repo, experiments, start, tmp_path)
    plans = active(analysis)
    assert list(plans) == ["exp-a"]
    plan = plans["exp-a"]
    assert not plan.everything
    # a statistic's parameters apply to the metric in every period that lists it
    assert plan.recompute == {Period.WEEK: ("days_of_use",), Period.OVERALL: ("days_of_use",)}
    assert plan.removed == {} and plan.delete_windows_from == {}
    nodes = metric_nodes(analysis.graph)
    assert {(n.slug, n.metrics) for n in nodes} == {("exp-a", ("days_of_use",))}
    # every weekly window up to the end date, and overall (last enrollment date 01-12:
    # start + enrollment_period, as Jetstream; week k closes on 01-12 + 7k + 6)
    assert sorted((n.period.value, n.date) for n in nodes) == [
        ("overall", dt.date(2026, 2, 8)),
        *(("week", dt.date(2026, 1, d)) for d in (18, 25)),
        *(("week", dt.date(2026, 2, d)) for d in (1, 8)),
    ]
    kinds = [n.kind for n in analysis.graph.nodes]
    assert kinds.count(TaskKind.ENSURE_ENROLLMENTS) == 1 and kinds.count(TaskKind.EXPORT) == 1
    analysis.graph.topological()  # edges resolve


def test_metric_added_to_one_period(repo, experiments, tmp_path):
    start = repo.head
    repo.replace(
        "jetstream/exp-a.toml", 'weekly = ["days_of_use"]', 'weekly = ["days_of_use", "searches"]'
    )
    repo.commit()
    analysis = analyse(repo, experiments, start, tmp_path)
    assert {s: p.recompute for s, p in active(analysis).items()} == {
        "exp-a": {Period.WEEK: ("searches",)}
    }
    assert {(n.period, n.data_source, n.metrics) for n in metric_nodes(analysis.graph)} == {
        (Period.WEEK, "search_daily", ("searches",))
    }


def test_shared_outcome_reruns_every_experiment_using_it(repo, experiments, tmp_path):
    start = repo.head
    repo.replace("definitions/tiny.toml", "SUM(click_count)", "SUM(click_count + 0)")
    repo.commit()
    analysis = analyse(repo, experiments, start, tmp_path)
    plans = active(analysis)
    assert sorted(plans) == ["exp-a", "exp-b"]  # exp-c has no `engagement` outcome
    for plan in plans.values():
        assert plan.recompute == {Period.WEEK: ("clicks",), Period.OVERALL: ("clicks",)}
    assert {(n.slug, n.metrics) for n in metric_nodes(analysis.graph)} == {
        ("exp-a", ("clicks",)),
        ("exp-b", ("clicks",)),
    }
    assert {n.period for n in metric_nodes(analysis.graph)} == {Period.WEEK, Period.OVERALL}


@pytest.mark.parametrize(
    "edit",
    [
        ("README.md", "# notes\n"),
        (
            "definitions/tiny.toml",
            '\n[metrics.unused]\nselect_expression = "1"\n'
            'data_source = "events"\nfriendly_name = "Unused"\ndescription = "x"\n',
        ),
        ("definitions/tiny.toml", "\n# a comment only\n"),
    ],
    ids=["docs", "unused-metric", "comment"],
)
def test_change_that_touches_nothing_analysed(repo, experiments, tmp_path, edit):
    start = repo.head
    rel, extra = edit
    path = repo.path / rel
    repo.write(rel, (path.read_text() if path.exists() else "") + extra)
    repo.commit()
    analysis = analyse(repo, experiments, start, tmp_path)
    assert analysis.active == []
    assert analysis.graph.nodes == ()


def test_affected_slugs_prefilter():
    assert changes.affected_slugs(["jetstream/exp-a.toml", "README.md"]) == {"exp-a"}
    assert changes.affected_slugs(["docs/x.md"]) == frozenset()
    assert changes.affected_slugs(["jetstream/outcomes/tiny/engagement.toml"]) is None
    assert changes.affected_slugs(["definitions/tiny.toml"]) is None


def test_enrollment_change_reruns_everything(repo, experiments, tmp_path):
    start = repo.head
    repo.write("jetstream/exp-b.toml", "[experiment]\nenrollment_period = 5\n")
    repo.commit()
    analysis = analyse(repo, experiments, start, tmp_path)
    plans = active(analysis)
    assert list(plans) == ["exp-b"]
    assert plans["exp-b"].everything
    nodes = metric_nodes(analysis.graph)
    assert {n.metrics for n in nodes} == {()}  # all metrics
    assert {n.period for n in nodes} == {Period.WEEK, Period.OVERALL}
    assert changes.tables_to_drop(plans["exp-b"])[0] == results.enrollments_table("exp-b")


def test_removed_metric_is_deleted_and_republished(repo, experiments, tmp_path):
    start = repo.head
    repo.write("jetstream/exp-a.toml", "")
    repo.commit()
    analysis = analyse(repo, experiments, start, tmp_path)
    plan = active(analysis)["exp-a"]
    assert plan.removed == {Period.WEEK: ("days_of_use",)}
    assert plan.recompute == {}
    # nothing to compute, but the export reruns to republish without the removed rows
    assert [n.kind for n in analysis.graph.nodes] == [TaskKind.EXPORT]
    statements = changes.cleanup_statements(plan, lambda t: f"`{t}`")
    assert statements == [
        "DELETE FROM `metrics_exp_a` WHERE period = 'week' AND metric_slug IN ('days_of_use')",
        "DELETE FROM `statistics_exp_a` WHERE period = 'week' AND metric IN ('days_of_use')",
    ]


def test_moved_data_source_deletes_then_recomputes(repo, experiments, tmp_path):
    start = repo.head
    repo.replace(
        "definitions/tiny.toml",
        'select_expression = "COUNT(submission_date)"\ndata_source = "clients_daily"',
        'select_expression = "COUNT(submission_date)"\ndata_source = "events"',
    )
    repo.commit()
    plans = active(analyse(repo, experiments, start, tmp_path))
    assert sorted(plans) == ["exp-a", "exp-b", "exp-c"]
    for plan in plans.values():
        assert "days_of_use" in plan.removed[Period.OVERALL]
        assert "days_of_use" in plan.recompute[Period.OVERALL]


def test_shortened_end_date_recomputes_no_windowed_period(repo, experiments, tmp_path):
    start = repo.head
    repo.write("jetstream/exp-c.toml", '[experiment]\nend_date = "2026-02-01"\n')
    repo.commit()
    analysis = analyse(repo, experiments, start, tmp_path)
    plan = active(analysis)["exp-c"]
    assert plan.recompute == {} and not plan.everything
    assert plan.compute_overall
    # week windows close on 01-17, 01-24, 01-31, 02-07: the last is past the new end
    assert plan.delete_windows_from == {Period.WEEK: 3}
    nodes = metric_nodes(analysis.graph)
    assert {(n.period, n.date) for n in nodes} == {(Period.OVERALL, dt.date(2026, 2, 1))}
    sql = changes.cleanup_statements(plan, lambda t: t)
    assert "DELETE FROM metrics_exp_c WHERE period = 'week' AND window_index >= 3" in sql


def test_end_date_in_the_future_deletes_overall(repo, experiments, tmp_path):
    start = repo.head
    repo.write("jetstream/exp-c.toml", '[experiment]\nend_date = "2026-03-01"\n')
    repo.commit()
    # as of 02-05 the old end (02-08) had not passed either: nothing new to compute
    plan = active(analyse(repo, experiments, start, tmp_path, as_of=dt.date(2026, 2, 5)))
    assert plan["exp-c"].delete_windows_from == {Period.OVERALL: 0}
    assert not plan["exp-c"].compute_overall and plan["exp-c"].new_dates == ()


def test_lengthened_end_date_computes_the_windows_skipped(repo, experiments, tmp_path):
    start = repo.head
    repo.write("jetstream/exp-c.toml", '[experiment]\nend_date = "2026-02-18"\n')
    repo.commit()
    analysis = analyse(repo, experiments, start, tmp_path)
    plan = active(analysis)["exp-c"]
    assert plan.new_dates[0] == dt.date(2026, 2, 9) and plan.new_dates[-1] == dt.date(2026, 2, 18)
    got = {(n.period, n.date) for n in metric_nodes(analysis.graph)}
    assert got == {(Period.WEEK, dt.date(2026, 2, 15)), (Period.OVERALL, dt.date(2026, 2, 18))}


def test_invalid_config_after_schedules_nothing(repo, experiments, tmp_path):
    start = repo.head
    repo.write("jetstream/exp-a.toml", "[metrics\nweekly = [")
    repo.commit()
    analysis = analyse(repo, experiments, start, tmp_path)
    plan = active(analysis)["exp-a"]
    assert plan.error and "exp-a.toml" in plan.error
    assert analysis.graph.nodes == ()


def test_experiments_not_yet_analysed_get_no_tasks(repo, experiments, tmp_path):
    start = repo.head
    repo.replace("definitions/tiny.toml", "SUM(click_count)", "SUM(click_count + 0)")
    repo.commit()
    # still enrolling on 2026-01-08: nothing has been computed, nothing to redo
    analysis = analyse(repo, experiments, start, tmp_path, as_of=dt.date(2026, 1, 8))
    assert analysis.graph.nodes == ()


def test_first_window_after():
    e = dt.date(2026, 1, 11)
    assert changes.first_window_after(Period.WEEK, e, e + dt.timedelta(days=6)) == 1
    assert changes.first_window_after(Period.WEEK, e, e + dt.timedelta(days=5)) == 0
    assert changes.first_window_after(Period.WEEK, e, e + dt.timedelta(days=13)) == 2
    assert changes.first_window_after(Period.DAY, e, e + dt.timedelta(days=3)) == 4
    assert changes.first_window_after(Period.DAYS28, e, e - dt.timedelta(days=2)) == 0
    for period in changes.WINDOWED:
        for days in range(0, 70):
            k = changes.first_window_after(period, e, e + dt.timedelta(days=days))
            end = e + dt.timedelta(days=days)
            assert changes.window_close(period, k, e) > end
            assert k == 0 or changes.window_close(period, k - 1, e) <= end


def test_merge_graphs_unions_edges_and_keeps_latest_date():
    a = TaskNode(TaskKind.EXPORT, "x", date=dt.date(2026, 1, 1), depends=("m1",))
    b = TaskNode(TaskKind.EXPORT, "x", date=dt.date(2026, 1, 5), depends=("m2",))
    merged = changes.merge_graphs([TaskGraph((a,)), TaskGraph((b,))])
    assert merged.nodes == (
        TaskNode(TaskKind.EXPORT, "x", date=dt.date(2026, 1, 5), depends=("m1", "m2")),
    )


# -- cleanup on a real warehouse ---------------------------------------------------------


def test_apply_cleanup_on_duckdb(tmp_path):
    from jetstream.commands.changes import apply_cleanup
    from jetstream.warehouse import open_warehouse

    uri = f"duckdb:{tmp_path / 'wh.duckdb'}"
    wh = open_warehouse(uri)
    try:
        m, s = results.metrics_table("exp-a"), results.statistics_table("exp-a")
        wh.execute(create_table_sql(wh.table_ref(m), results.METRICS_COLUMNS))
        wh.execute(create_table_sql(wh.table_ref(s), results.STATISTICS_COLUMNS))
        rows = [
            ("week", 0, "days_of_use"),
            ("week", 3, "clicks"),
            ("week", 1, "clicks"),
            ("overall", 0, "days_of_use"),
        ]
        for period, idx, metric in rows:
            wh.execute(
                f"INSERT INTO {wh.table_ref(m)} (period, window_index, metric_slug) "
                f"VALUES ('{period}', {idx}, '{metric}')"
            )
            wh.execute(
                f"INSERT INTO {wh.table_ref(s)} (period, window_index, metric) "
                f"VALUES ('{period}', {idx}, '{metric}')"
            )
    finally:
        wh.close()
    plan = RerunPlan(
        "exp-a", removed={Period.WEEK: ("days_of_use",)}, delete_windows_from={Period.WEEK: 3}
    )
    done = apply_cleanup(
        uri, [plan, RerunPlan("exp-never-analysed", removed={Period.WEEK: ("x",)})]
    )
    assert len(done) == 4
    wh = open_warehouse(uri)
    try:
        for table, col in ((m, "metric_slug"), (s, "metric")):
            left = wh.query(
                f"SELECT period, window_index, {col} AS metric FROM "
                f"{wh.table_ref(table)} ORDER BY period, window_index"
            ).to_pylist()
            assert [(r["period"], r["window_index"], r["metric"]) for r in left] == [
                ("overall", 0, "days_of_use"),
                ("week", 1, "clicks"),
            ]
    finally:
        wh.close()


# -- the command -------------------------------------------------------------------------


def test_rerun_config_changed_dry_run(repo, tmp_path):
    from jetstream.cli import cli

    repo.replace("definitions/tiny.toml", "SUM(sap)", "SUM(sap + 0)")  # uncommitted edit
    result = CliRunner().invoke(
        cli,
        [
            "rerun-config-changed",
            "--config-repo",
            str(repo.path),
            "--since",
            "HEAD",
            "--experiments",
            str(FIXTURE / "experiments.json"),
            "--as-of",
            AS_OF.isoformat(),
            "--warehouse",
            f"duckdb:{tmp_path / 'wh.duckdb'}",
            "--out",
            str(tmp_path / "out"),
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout[result.stdout.index("{") :])
    assert [e["experiment"] for e in doc["experiments"]] == ["exp-a", "exp-b"]
    assert all(e["recompute"] == {"overall": ["searches"]} for e in doc["experiments"])
    assert doc["changed_paths"] == ["definitions/tiny.toml"]
    assert all("/overall/" in t or not t.startswith("metrics/") for t in doc["tasks"])


def test_rerun_config_changed_bad_ref(repo, tmp_path):
    from jetstream.cli import cli

    result = CliRunner().invoke(
        cli,
        [
            "rerun-config-changed",
            "--config-repo",
            str(repo.path),
            "--since",
            "no-such-ref",
            "--experiments",
            str(FIXTURE / "experiments.json"),
            "--dry-run",
        ],
    )
    assert result.exit_code == 2
    assert "no-such-ref" in result.output
