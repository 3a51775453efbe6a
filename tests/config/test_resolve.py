"""Resolution of configs into an AnalysisSpec: precedence, templating, parameters, segment
windows, statistics and the experiment settings."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest

from jetstream.config import ConfigRepo, load_spec
from jetstream.config.model import (
    ANALYSIS_WINDOW_END,
    ANALYSIS_WINDOW_START,
    Branch,
    MultipleComparisons,
)
from jetstream.config.resolve import resolve_spec, resolve_with_problems
from jetstream.config.templating import BRANCH_COLUMN
from jetstream.errors import ConfigError
from jetstream.periods import Period
from tests.support.paths import FIXTURES

FIXTURES = FIXTURES / "configs"
REPO_DIR = FIXTURES / "repo"


def make_experiment(slug: str = "exp-1", app_name: str = "firefox_desktop", **kw):
    from jetstream.experiments import Experiment

    fields = dict(
        slug=slug,
        app_name=app_name,
        app_id=None,
        branches=(Branch("control", 1), Branch("treatment", 1)),
        reference_branch="control",
        start_date=dt.date(2024, 3, 1),
        end_date=dt.date(2024, 4, 15),
        proposed_enrollment=7,
        enrollment_end_date=None,
        is_enrollment_paused=False,
        is_rollout=False,
        status="Live",
    )
    fields.update(kw)
    return Experiment(**fields)


@pytest.fixture(scope="module")
def repo() -> ConfigRepo:
    return ConfigRepo.load(REPO_DIR)


def resolve(repo: ConfigRepo, toml: str = "", **kw):
    return resolve_spec(make_experiment(**kw), tomllib.loads(toml), repo, "exp.toml")


def summaries(spec, period: Period) -> dict[tuple[str, str], object]:
    return {(s.metric.name, s.statistic.name): s for s in spec.metrics.get(period, ())}


def test_platform_defaults_apply_with_jetstream_definitions_merged(repo):
    spec = resolve(repo)
    week = summaries(spec, Period.WEEK)
    # statistics: the defaults' table replaces jetstream/definitions' bootstrap_mean
    assert set(week) == {("active_hours", "linear_model_mean")}
    m = spec.metric_definitions["active_hours"]
    # jetstream/definitions/functions.toml overrides definitions/functions.toml
    assert m.select_expression == "COALESCE(SUM(active_hours_sum), 0.0)"
    assert m.data_source.from_expression == "mozdata.telemetry.clients_daily"
    # jetstream/definitions adds keys over definitions without losing the others
    uri = spec.metric_definitions["uri_count"]
    assert uri.friendly_name == "URIs visited" and uri.select_expression == "SUM(uri_count)"


def test_covariate_metric_is_computed_in_the_preenrollment_period(repo):
    spec = resolve(repo)
    stat = summaries(spec, Period.WEEK)[("active_hours", "linear_model_mean")].statistic
    assert stat.covariate_adjustment.period is Period.PREENROLLMENT_WEEK
    assert stat.params == {}  # only what configs set; the engine applies the defaults
    assert "active_hours" in spec.metric_names[Period.PREENROLLMENT_WEEK]


def test_covariate_adjustment_with_another_metric(repo):
    spec = resolve(
        repo,
        """
        [metrics]
        overall = ["search_count"]
        [metrics.search_count.statistics.linear_model_mean]
        covariate_adjustment = { period = "preenrollment_days28", metric = "uri_count" }
        """,
    )
    assert spec.metric_names[Period.PREENROLLMENT_DAYS28] == ("uri_count",)
    assert "uri_count" in spec.metric_definitions


def test_experiment_config_wins_over_outcome_for_the_same_metric(repo):
    spec = resolve(
        repo,
        """
        [experiment]
        outcomes = ["search"]
        [metrics.ad_ctr]
        friendly_name = "Config ad clicks"
        bigger_is_better = false
        [metrics.ad_ctr.statistics.bootstrap_mean]
        """,
    )
    ad = spec.metric_definitions["ad_ctr"]
    assert ad.friendly_name == "Config ad clicks"
    assert ad.bigger_is_better is False  # a false value in the config wins too
    assert ad.select_expression == "SUM(ad_clicks)"  # keys the config does not set: outcome's
    week = summaries(spec, Period.WEEK)
    assert ("ad_ctr", "bootstrap_mean") in week and ("ad_ctr", "binomial") not in week
    assert ("ad_ctr", "bootstrap_mean") in summaries(spec, Period.OVERALL)
    assert spec.experiment.outcomes == ("search",)


def test_outcome_metrics_go_to_weekly_and_overall(repo):
    spec = resolve(repo, '[experiment]\noutcomes = ["search"]')
    for period in (Period.WEEK, Period.OVERALL):
        assert ("search_count", "bootstrap_mean") in summaries(spec, period)
        assert ("click_rate", "population_ratio") in summaries(spec, period)
    assert not summaries(spec, Period.DAY)
    # metrics used only through depends_on / population_ratio are still defined
    assert {"clicks", "impressions"} <= set(spec.metric_definitions)
    rate = spec.metric_definitions["click_rate"]
    assert rate.data_source is None and rate.depends_on == ("clicks", "impressions")


def test_outcome_from_the_experiment_record(repo):
    spec = resolve(repo, outcomes=("search",))
    assert ("search_count", "bootstrap_mean") in summaries(spec, Period.WEEK)


def test_outcome_period_lists_and_distinct_by_branch_parameter(repo):
    spec = resolve(repo, '[experiment]\noutcomes = ["messaging"]')
    assert ("message_clicks", "sum") in summaries(spec, Period.DAY)
    assert ("message_clicks", "sum") in summaries(spec, Period.DAYS28)
    assert ("message_clicks", "sum") not in summaries(spec, Period.WEEK)
    sql = spec.metric_definitions["message_clicks"].select_expression
    assert (
        f"message_id = CASE {BRANCH_COLUMN} WHEN 'control' THEN 'msg-a' "
        "WHEN 'treatment' THEN 'msg-b' END" in sql
    )
    assert "surface = 'newtab'" in sql
    assert BRANCH_COLUMN == "e.branch"


def test_config_parameter_values_override_outcome_defaults(repo):
    spec = resolve(
        repo,
        """
        [experiment]
        outcomes = ["messaging"]
        [parameters.message_id]
        value = { control = "same", treatment = "same" }
        [parameters.surface]
        value = "sidebar"
        """,
    )
    sql = spec.metric_definitions["message_clicks"].select_expression
    # identical values for every branch need no CASE
    assert "message_id = same AND surface = 'sidebar'" in sql
    assert spec.parameters["surface"] == "sidebar"


def test_parameter_value_of_the_wrong_shape_is_an_error(repo):
    with pytest.raises(ConfigError) as err:
        resolve(
            repo,
            """
            [experiment]
            outcomes = ["messaging"]
            [parameters.surface]
            value = { control = "a" }
            """,
        )
    assert any("parameters.surface: value must be a string" in p for p in err.value.problems)


def test_experiment_templates_and_experiment_slug(repo):
    spec = resolve(
        repo,
        """
        [experiment]
        enrollment_period = 3
        enrollment_query = "SELECT '{{experiment.start_date_str}}', '{{experiment.last_enrollment_date_str}}', '{{experiment.normandy_slug}}'"
        [metrics]
        overall = ["unenrolled"]
        [metrics.unenrolled.statistics.binomial]
        """,
        slug="my-exp",
    )
    assert spec.experiment.enrollment_query == "SELECT '2024-03-01', '2024-03-04', 'my-exp'"
    assert (
        "event_string_value = 'my-exp'" in spec.metric_definitions["unenrolled"].select_expression
    )


def test_dataset_placeholder_and_literal_braces(repo):
    spec = resolve(
        repo,
        """
        [metrics]
        overall = ["clicks", "own"]
        [metrics.clicks.statistics.sum]
        [metrics.own]
        select_expression = "COUNT(*)"
        data_source = "addons"
        statistics = { count = {} }
        [data_sources.addons]
        from_expression = "(SELECT * FROM `{dataset}.addons` WHERE id = '{{abc-123}}')"
        """,
    )
    assert spec.metric_definitions["clicks"].data_source.from_expression == (
        "`mozdata.telemetry.events`"
    )
    # no default_dataset: the platform's dataset; `{{` and `}}` are literal braces
    assert spec.metric_definitions["own"].data_source.from_expression == (
        "(SELECT * FROM `firefox_desktop.addons` WHERE id = '{abc-123}')"
    )


def test_segment_windows_segment_wins_over_data_source(repo):
    spec = resolve(
        repo,
        """
        [experiment]
        segments = ["regular_users", "engaged_during_window", "recent"]
        [segments.recent]
        select_expression = "TRUE"
        data_source = "clients_last_seen"
        window_start = -3
        """,
    )
    segs = {s.name: s for s in spec.segments}
    assert segs["regular_users"].effective_window == (-7, -1)
    assert not segs["regular_users"].depends_on_analysis_window
    assert segs["recent"].effective_window == (-3, -1)  # start from the segment, end from source
    engaged = segs["engaged_during_window"]
    assert engaged.effective_window == (ANALYSIS_WINDOW_START, ANALYSIS_WINDOW_END)
    assert engaged.data_source.window_end == 6
    assert engaged.depends_on_analysis_window


def test_experiment_settings_from_record_and_overrides(repo):
    spec = resolve(repo, enrollment_end_date=dt.date(2024, 3, 10))
    s = spec.experiment
    assert s.enrollment_period == 10  # (enrollment_end_date - start_date) + 1
    # metric-config-parser last_enrollment_date_str: start + enrollment_period
    assert s.last_enrollment_date == dt.date(2024, 3, 11)
    spec = resolve(repo, proposed_enrollment=5)
    assert spec.experiment.enrollment_period == 5
    spec = resolve(repo, proposed_enrollment=None)
    assert spec.experiment.enrollment_period == 7
    spec = resolve(
        repo,
        """
        [experiment]
        start_date = "2024-05-01"
        end_date = 2024-06-01
        enrollment_period = 2
        reference_branch = "treatment"
        multiple_comparisons = "bh"
        sample_size = 10
        enrollments_query_type = "glean-event"
        """,
    )
    s = spec.experiment
    assert (s.start_date, s.end_date, s.enrollment_period) == (
        dt.date(2024, 5, 1),
        dt.date(2024, 6, 1),
        2,
    )
    assert s.reference_branch == "treatment" and s.sample_size == 10
    assert s.multiple_comparisons is MultipleComparisons.BH
    assert s.enrollments_query_type == "glean-event"
    # metric-config-parser: an end date in the config makes the experiment Complete
    assert s.status == "Complete" and s.is_complete
    assert not resolve(repo, status="Live").experiment.is_complete


def test_analysis_unit_from_randomization_unit_and_data_sources_join_on_it(repo):
    """metric-config-parser `Experiment.analysis_unit`: profile_group_id for experiments
    randomized by group_id; mozanalysis then joins every data source on its
    group_id_column (default profile_group_id)."""
    assert resolve(repo).experiment.analysis_unit == "client_id"
    spec = resolve(repo, randomization_unit="group_id")
    assert spec.experiment.analysis_unit == "profile_group_id"
    sources = {
        m.data_source.name: m.data_source.client_id_column
        for m in spec.metric_definitions.values()
        if m.data_source is not None
    }
    assert sources and set(sources.values()) == {"profile_group_id"}, sources
    for summaries_ in spec.metrics.values():
        for s in summaries_:
            if s.metric.data_source is not None:
                assert s.metric.data_source.client_id_column == "profile_group_id"
    spec = resolve(repo, '[experiment]\nanalysis_unit = "client_id"', randomization_unit="group_id")
    assert spec.experiment.analysis_unit == "client_id"


def test_glean_enrollments_need_client_id_units(repo):
    with pytest.raises(ConfigError, match="glean-event enrollments support only"):
        resolve(repo, '[experiment]\nanalysis_unit = "profile_group_id"', app_name="fenix")
    # a custom enrollment query decides its own ids
    spec = resolve(
        repo,
        '[experiment]\nanalysis_unit = "profile_group_id"\n'
        "enrollment_query = \"SELECT profile_group_id AS analysis_id, 'a' AS branch, "
        'CURRENT_DATE() AS enrollment_date, 1 AS num_enrollment_events FROM t"',
        app_name="fenix",
    )
    assert spec.experiment.analysis_unit == "profile_group_id"


def test_background_update_is_an_enrollments_query_type(repo):
    spec = resolve(repo, '[experiment]\nenrollments_query_type = "background-update"')
    assert spec.experiment.enrollments_query_type == "background-update"


def test_reference_branch_must_be_a_branch(repo):
    with pytest.raises(ConfigError) as err:
        resolve(repo, '[experiment]\nreference_branch = "contrl"')
    assert err.value.problems == [
        "exp.toml: experiment.reference_branch: 'contrl' is not a branch of exp-1 "
        "(did you mean 'control'?); branches: control, treatment"
    ]


def test_private_experiment_needs_dataset(repo):
    with pytest.raises(ConfigError) as err:
        resolve(repo, "[experiment]\nis_private = true")
    assert "a private experiment needs a dataset_id" in err.value.problems[0]


def test_pre_treatments_and_statistic_defaults(repo):
    spec = resolve(repo, exp_path := (REPO_DIR / "jetstream" / "good-experiment.toml").read_text())
    assert exp_path
    stat = summaries(spec, Period.WEEK)[("page_load", "bootstrap_mean")].statistic
    assert stat.params == {"num_samples": 500}
    assert [(p.name, p.args) for p in stat.pre_treatments] == [
        ("remove_nulls", {}),
        ("censor_highest_values", {"fraction": 0.99}),
    ]
    m = spec.metric_definitions["page_load"]
    assert m.select_expression == (
        "SAFE_DIVIDE(SUM(hist_sum(payload.histograms.page_load)), "
        "SUM(hist_count(payload.histograms.page_load)))"
    )
    assert spec.experiment.multiple_comparisons is MultipleComparisons.HOLM


def test_metric_listed_without_statistics_is_still_defined(repo):
    spec, problems = resolve_with_problems(
        make_experiment(),
        tomllib.loads('[metrics]\ndaily = ["search_count"]'),
        repo,
        "exp.toml",
    )
    assert spec is not None and not [p for p in problems if p.is_error]
    assert "search_count" in spec.metric_definitions
    assert spec.metric_names[Period.DAY] == ("search_count",)
    assert Period.DAY not in spec.metrics


def test_undefined_names_raise_config_error_with_every_problem(repo):
    with pytest.raises(ConfigError) as err:
        resolve(
            repo,
            """
            [experiment]
            segments = ["regular_user"]
            outcomes = ["serch"]
            [metrics]
            weekly = ["serch_count", "bad_ds"]
            [metrics.bad_ds]
            select_expression = "1"
            data_source = "client_daily"
            statistics = { sum = {} }
            """,
        )
    assert sorted(err.value.problems) == sorted(
        [
            "exp.toml: experiment.segments[0]: undefined segment 'regular_user' for platform "
            "'firefox_desktop' (did you mean 'regular_users'?)",
            "exp.toml: experiment.outcomes[0]: unknown outcome 'serch' for platform "
            "'firefox_desktop' (did you mean 'search'?)",
            "exp.toml: metrics.weekly[0]: undefined metric 'serch_count' for platform "
            "'firefox_desktop' (did you mean 'search_count'?)",
            "exp.toml: metrics.bad_ds.data_source: undefined data source 'client_daily' for "
            "platform 'firefox_desktop' (did you mean 'clients_daily'?)",
        ]
    )


def test_outcome_for_another_platform_is_named(repo):
    with pytest.raises(ConfigError) as err:
        resolve(repo, '[experiment]\noutcomes = ["messaging"]', app_name="fenix")
    assert (
        "unknown outcome 'messaging' for platform 'fenix'; it exists for firefox_desktop"
        in (err.value.problems[0])
    )


def test_dependency_cycle_is_reported(repo):
    with pytest.raises(ConfigError) as err:
        resolve(
            repo,
            """
            [metrics]
            overall = ["a"]
            [metrics.a]
            depends_on = ["b"]
            statistics = { sum = {} }
            [metrics.b]
            depends_on = ["a"]
            """,
        )
    assert "metrics depend on each other in a cycle: a -> b -> a" in err.value.problems[0]


def test_template_errors_name_the_key(repo):
    with pytest.raises(ConfigError) as err:
        resolve(
            repo,
            """
            [metrics]
            overall = ["m"]
            [metrics.m]
            select_expression = "{{agg_summ(x)}}"
            data_source = "clients_daily"
            statistics = { sum = {} }
            """,
        )
    assert err.value.problems == [
        "exp.toml: metrics.m.select_expression: template uses something undefined: "
        "'agg_summ' is undefined"
    ]


def test_other_platform_uses_its_own_definitions_and_dataset(repo):
    spec = resolve(repo, app_name="fenix", outcomes=("search",))
    m = spec.metric_definitions["baseline_pings"]
    assert m.data_source.from_expression == "`mozdata.fenix.baseline`"
    assert m.data_source.client_id_column == "client_info.client_id"
    # the outcome's statistics table replaces the defaults' one (a higher layer)
    assert set(summaries(spec, Period.OVERALL)) == {("baseline_pings", "count")}
    assert spec.experiment.enrollments_query_type == "glean-event"


def test_metric_data_sources_read_the_experiments_app_dataset(repo):
    """Jetstream gives mozanalysis the dataset of the experiment's app id, which
    DataSource.from_expr_for puts in `{dataset}` before the default dataset."""
    spec = resolve(repo, app_name="fenix", app_id="org.mozilla.firefox_beta")
    m = spec.metric_definitions["baseline_pings"]
    assert m.data_source.from_expression == "`mozdata.org_mozilla_firefox_beta.baseline`"


def test_load_spec_reads_the_repo_and_uses_a_placeholder_without_record():
    spec = load_spec("good-experiment", {}, REPO_DIR, platform="firefox_desktop")
    assert spec.slug == "good-experiment"
    assert spec.experiment.branch_slugs == ("control", "treatment")
    assert [s.name for s in spec.segments] == ["regular_users"]
    exp = make_experiment("good-experiment", start_date=dt.date(2024, 1, 1))
    spec = load_spec("good-experiment", {"good-experiment": exp}, REPO_DIR)
    assert spec.experiment.start_date == dt.date(2024, 1, 1)
    with pytest.raises(ConfigError, match="not in the experiments source"):
        load_spec("good-experiment", {}, REPO_DIR)


def test_from_expression_and_enrollment_query_must_parse(repo):
    with pytest.raises(ConfigError) as err:
        resolve(
            repo,
            """
            [experiment]
            enrollment_query = "SELECT client_id FROM WHERE"
            [metrics]
            overall = ["m"]
            [metrics.m]
            select_expression = "COUNT(*)"
            data_source = "broken"
            statistics = { count = {} }
            [data_sources.broken]
            from_expression = "(SELECT * FROM t"
            """,
        )
    keys = sorted(p.split(": ")[1] for p in err.value.problems)
    assert keys == ["data_sources.broken.from_expression", "experiment.enrollment_query"]
    assert all("does not parse as BigQuery SQL" in p for p in err.value.problems)


def test_segments_of_the_record_are_used_and_unknown_ones_skipped(repo):
    spec, problems = resolve_with_problems(
        make_experiment(segments=("regular_users", "from_experimenter_only")),
        {},
        repo,
        "exp.toml",
    )
    assert spec is not None and [s.name for s in spec.segments] == ["regular_users"]
    assert [str(p) for p in problems] == [
        "exp.toml: (segments of the experiment record): warning: segment "
        "'from_experimenter_only' is not defined: not analysed"
    ]
