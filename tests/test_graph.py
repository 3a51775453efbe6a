"""The task graph (jetstream/graph.py): which nodes a date yields, how they are wired
(enrollments -> metrics -> export, pre-enrollment covariates, derived metrics), the skip
rules, de-duplication over several dates, and the graph's own ordering and names. Specs are
resolved from the fixture config repo, as the CLI resolves them."""

from __future__ import annotations

import datetime as dt
import re
import tomllib

import attrs
import pytest

from jetstream.config import ConfigRepo
from jetstream.config.model import Branch
from jetstream.config.resolve import resolve_spec
from jetstream.experiments import Experiment
from jetstream.graph import (
    DERIVED_SOURCE,
    TaskGraph,
    TaskKind,
    TaskNode,
    data_sources_for,
    dns_label,
    plan,
    plan_dates,
    skip_reason,
)
from jetstream.periods import Period
from tests.support.paths import FIXTURES

REPO_DIR = FIXTURES / "configs" / "repo"
START = dt.date(2024, 3, 1)
# Jetstream: start + enrollment_period (7), num_dates_enrollment = 8
LAST_ENROLLMENT = dt.date(2024, 3, 8)
END = dt.date(2024, 4, 15)

# The platform defaults (weekly + overall active_hours with a pre-enrollment covariate,
# uri_count overall), the search outcome (a derived click_rate over two events metrics)
# and a daily events metric.
CONFIG = """
[experiment]
outcomes = ["search"]

[metrics]
daily = ["clicks"]

[metrics.clicks.statistics.bootstrap_mean]
"""
# Fenix: a pre-period node too, but no statistic with covariate adjustment.
NO_COVARIATES = """
[metrics]
weekly = ["baseline_pings"]
preenrollment_weekly = ["baseline_pings"]
"""


@pytest.fixture(scope="module")
def repo() -> ConfigRepo:
    return ConfigRepo.load(REPO_DIR)


def experiment(slug: str = "exp-1", **kw) -> Experiment:
    fields = dict(
        slug=slug,
        app_name="firefox_desktop",
        app_id=None,
        branches=(Branch("control", 1), Branch("treatment", 1)),
        reference_branch="control",
        start_date=START,
        end_date=END,
        proposed_enrollment=7,
        enrollment_end_date=None,
        is_enrollment_paused=False,
        is_rollout=False,
        status="Live",
    )
    fields.update(kw)
    return Experiment(**fields)


def spec_of(repo: ConfigRepo, toml: str = CONFIG, **kw):
    return resolve_spec(experiment(**kw), tomllib.loads(toml), repo, "exp.toml")


def day(offset: int) -> dt.date:
    return LAST_ENROLLMENT + dt.timedelta(days=offset)


def metrics_nodes(graph: TaskGraph) -> list[TaskNode]:
    return [n for n in graph.nodes if n.kind is TaskKind.METRICS]


def keys(graph: TaskGraph) -> set[tuple]:
    return {(n.period, n.data_source, n.date) for n in metrics_nodes(graph)}


def test_the_spec_is_what_the_tests_assume(repo):
    spec = spec_of(repo)
    assert spec.experiment.last_enrollment_date == LAST_ENROLLMENT
    # derived last: it reads the other nodes' rows
    assert data_sources_for(spec, Period.WEEK) == ["clients_daily", "events", DERIVED_SOURCE]
    assert data_sources_for(spec, Period.PREENROLLMENT_WEEK) == ["clients_daily"]


def test_last_enrollment_day_runs_day_zero_and_the_next_day_the_pre_period(repo):
    spec = spec_of(repo)
    # Jetstream: the first daily window on the last enrollment date (start + 7), the
    # pre-enrollment periods the day after (start + enrollment_period + 1)
    assert keys(plan([spec], LAST_ENROLLMENT)) == {(Period.DAY, "events", LAST_ENROLLMENT)}
    graph = plan([spec], day(1))
    assert keys(graph) == {
        (Period.DAY, "events", day(1)),
        (Period.PREENROLLMENT_WEEK, "clients_daily", day(1)),
    }
    order = graph.topological()
    assert order[0].kind is TaskKind.ENSURE_ENROLLMENTS
    assert order[-1].kind is TaskKind.EXPORT
    enr = order[0]
    for n in metrics_nodes(graph):
        assert enr.id in n.depends
    assert set(order[-1].depends) == {n.id for n in metrics_nodes(graph)}
    # covariate-adjusted statistics: post-enrollment nodes wait for the pre-period rows
    by = {(n.period, n.data_source): n for n in metrics_nodes(graph)}
    pre = by[(Period.PREENROLLMENT_WEEK, "clients_daily")]
    assert pre.id in by[(Period.DAY, "events")].depends
    assert pre.depends == (enr.id,)
    # and the topological order respects that
    ids = [n.id for n in order]
    assert ids.index(pre.id) < ids.index(by[(Period.DAY, "events")].id)


def test_without_covariates_nothing_waits_for_the_pre_period(repo):
    spec = spec_of(repo, NO_COVARIATES, app_name="fenix")
    graph = plan_dates([spec], [day(1), day(6)])
    assert {n.period for n in metrics_nodes(graph)} == {Period.WEEK, Period.PREENROLLMENT_WEEK}
    enr = next(n for n in graph.nodes if n.kind is TaskKind.ENSURE_ENROLLMENTS)
    assert all(n.depends == (enr.id,) for n in metrics_nodes(graph))


def test_end_of_the_first_week_adds_the_week_nodes_and_wires_derived(repo):
    spec = spec_of(repo)
    graph = plan([spec], day(6))
    assert keys(graph) == {
        (Period.DAY, "events", day(6)),
        (Period.WEEK, "clients_daily", day(6)),
        (Period.WEEK, "events", day(6)),
        (Period.WEEK, DERIVED_SOURCE, day(6)),
    }
    by = {(n.period, n.data_source): n for n in metrics_nodes(graph)}
    derived = by[(Period.WEEK, DERIVED_SOURCE)]
    # derived reads the same period's other nodes, not other periods'
    assert by[(Period.WEEK, "clients_daily")].id in derived.depends
    assert by[(Period.WEEK, "events")].id in derived.depends
    assert by[(Period.DAY, "events")].id not in derived.depends
    ids = [n.id for n in graph.topological()]
    assert ids.index(derived.id) > ids.index(by[(Period.WEEK, "events")].id)
    # no pre-period node on this date, so nothing (dangling) refers to one
    assert all(n.period is not Period.PREENROLLMENT_WEEK for n in graph.nodes)


def test_days_between_windows_have_only_the_daily_node(repo):
    graph = plan([spec_of(repo)], day(3))
    assert keys(graph) == {(Period.DAY, "events", day(3))}
    assert [n.kind for n in graph.topological()] == [
        TaskKind.ENSURE_ENROLLMENTS,
        TaskKind.METRICS,
        TaskKind.EXPORT,
    ]


def test_overall_runs_on_the_end_date_only(repo):
    # Jetstream: only once the experiment is Complete
    live_with_end = spec_of(repo)
    assert Period.OVERALL not in {n.period for n in metrics_nodes(plan([live_with_end], END))}
    spec = spec_of(repo, status="Complete")
    periods = {n.period for n in metrics_nodes(plan([spec], END))}
    assert Period.OVERALL in periods
    assert Period.OVERALL not in {
        n.period for n in metrics_nodes(plan([spec], END - dt.timedelta(days=1)))
    }
    # Live experiments (no end date) never have an overall node
    live = spec_of(repo, end_date=None)
    assert Period.OVERALL not in {
        n.period for n in metrics_nodes(plan_dates([live], [day(i) for i in range(60)]))
    }


def test_several_dates_share_one_enrollment_and_one_export_node(repo):
    spec = spec_of(repo)
    dates = [day(i) for i in range(8)]
    graph = plan_dates([spec], dates[4:] + dates[:4])  # unsorted
    enr = [n for n in graph.nodes if n.kind is TaskKind.ENSURE_ENROLLMENTS]
    exp = [n for n in graph.nodes if n.kind is TaskKind.EXPORT]
    assert len(enr) == 1 and len(exp) == 1
    assert enr[0].date == exp[0].date == day(7)  # the last date
    ids = [n.id for n in graph.nodes]
    assert len(ids) == len(set(ids)), "duplicate nodes"
    assert len({n.name for n in graph.nodes}) == len(ids), "Argo task names must be unique"
    daily = [n for n in metrics_nodes(graph) if n.period is Period.DAY]
    assert sorted(n.date for n in daily) == dates
    assert len([n for n in metrics_nodes(graph) if n.period is Period.WEEK]) == 3  # day 6
    # the pre-period node of day 0 is waited for by post-enrollment nodes of later dates
    pre = next(n for n in metrics_nodes(graph) if n.period is Period.PREENROLLMENT_WEEK)
    assert all(pre.id in n.depends for n in metrics_nodes(graph) if not n.period.is_preenrollment)
    assert set(exp[0].depends) == {n.id for n in metrics_nodes(graph)}
    assert len(graph.topological()) == len(graph.nodes)


def test_a_date_given_twice_is_planned_once(repo):
    spec = spec_of(repo)
    once = plan_dates([spec], [day(0), day(1)])
    twice = plan_dates([spec], [day(1), day(0), day(1), day(0)])
    assert [n.id for n in twice.nodes] == [n.id for n in once.nodes]


def test_period_and_metric_restrictions(repo):
    spec = spec_of(repo)
    only_week = plan([spec], day(6), periods=[Period.WEEK])
    assert {n.period for n in metrics_nodes(only_week)} == {Period.WEEK}
    clicks = plan([spec], day(6), metrics=["clicks"])
    # only nodes that compute clicks remain, each restricted to it
    assert {(n.period, n.data_source) for n in metrics_nodes(clicks)} == {
        (Period.DAY, "events"),
        (Period.WEEK, "events"),
    }
    assert all(n.metrics == ("clicks",) for n in metrics_nodes(clicks))
    assert all(n.id.endswith("/clicks") for n in metrics_nodes(clicks))
    assert all(n.args()[-2:] == ["--metric", "clicks"] for n in metrics_nodes(clicks))
    # a metric computed nowhere on that date: no graph for the experiment at all
    assert plan([spec], day(3), metrics=["uri_count"]).nodes == ()


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        (dict(is_rollout=True), "rollouts are not analysed"),
        (dict(status="Draft"), "status is draft"),
        (dict(start_date=None), "no start date"),
    ],
)
def test_skip_rules(repo, kw, reason):
    spec = spec_of(repo, **kw)
    assert skip_reason(spec, day(6)) == reason
    assert plan([spec], day(6)).nodes == ()


def test_enrolling_and_ended_experiments(repo):
    spec = spec_of(repo)
    assert skip_reason(spec, day(-1)) == "still enrolling"
    assert plan([spec], day(-1)).nodes == ()
    assert skip_reason(spec, END) is None
    assert skip_reason(spec, END + dt.timedelta(days=1)) == "ended"
    assert skip_reason(spec, END + dt.timedelta(days=91)) == "ended more than 90 days ago"
    assert plan([spec], END + dt.timedelta(days=1)).nodes == ()


def test_force_ignores_status_but_not_missing_windows(repo):
    draft = spec_of(repo, status="Draft")
    assert plan_dates([draft], [day(0)]).nodes == ()
    forced = plan_dates([draft], [day(0)], force=True)
    assert keys(forced) == keys(plan([spec_of(repo)], day(0)))
    # even forced: nothing before enrollment ends, after the end, or for rollouts
    assert plan_dates([draft], [day(-1), END + dt.timedelta(days=1)], force=True).nodes == ()
    rollout = spec_of(repo, is_rollout=True)
    assert plan_dates([rollout], [day(0)], force=True).nodes == ()


def test_several_experiments_keep_their_own_nodes(repo):
    a = spec_of(repo, slug="exp-a")
    b = spec_of(repo, slug="exp-b", start_date=START + dt.timedelta(days=1))
    graph = plan([a, b], day(2))  # the day after b's last enrollment day: its pre-period
    assert graph.experiments == ("exp-a", "exp-b")
    nodes_b = [n for n in metrics_nodes(graph) if n.slug == "exp-b"]
    assert {n.period for n in nodes_b} == {Period.DAY, Period.PREENROLLMENT_WEEK}
    for n in graph.nodes:  # never wired across experiments
        assert all(d.split("/")[1] == n.slug for d in n.depends)


def test_topological_order_detects_cycles_and_unknown_nodes():
    a = TaskNode(TaskKind.ENSURE_ENROLLMENTS, "x")
    b = TaskNode(TaskKind.METRICS, "x", day(0), Period.DAY, "s", (), (a.id,))
    c = TaskNode(TaskKind.EXPORT, "x", depends=(b.id,))
    # given in reverse, returned dependencies first
    assert TaskGraph((c, b, a)).topological() == [a, b, c]
    looped = attrs.evolve(a, depends=(c.id,))
    with pytest.raises(ValueError, match="cycle in task graph"):
        TaskGraph((looped, b, c)).topological()
    with pytest.raises(ValueError, match="depends on unknown task 'nope'"):
        TaskGraph((a, attrs.evolve(b, depends=("nope",)))).topological()


def test_node_ids_args_and_names():
    n = TaskNode(TaskKind.METRICS, "my-exp", day(6), Period.WEEK, "clients_daily", ("a", "b"))
    assert n.id == "metrics/my-exp/week/clients_daily/2024-03-14/a+b"
    assert n.args() == [
        "metrics",
        "--experiment",
        "my-exp",
        "--date",
        "2024-03-14",
        "--period",
        "week",
        "--data-source",
        "clients_daily",
        "--metric",
        "a",
        "--metric",
        "b",
    ]
    assert n.name == "metrics-my-exp-week-clients-daily-2024-03-14-a-b"
    # the export id does not carry the date: one export per experiment
    assert TaskNode(TaskKind.EXPORT, "e", date=day(0)).id == "export/e"


def test_dns_label_truncates_with_a_distinguishing_hash():
    long_a = "metrics/" + "x" * 80 + "/week/a"
    long_b = "metrics/" + "x" * 80 + "/week/b"
    la, lb = dns_label(long_a), dns_label(long_b)
    for label in (la, lb):
        assert len(label) <= 63
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", label)
    assert la != lb
    assert dns_label(long_a) == la  # stable
    assert dns_label("A__B//c") == "a-b-c"
    assert dns_label("___") == "x"
