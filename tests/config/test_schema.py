"""Parsing and the strict structural check of config files."""

from __future__ import annotations

import tomllib

import pytest

from jetstream.config.problems import Problem, did_you_mean, key_path
from jetstream.config.repo import ConfigRepo, merge_named, read_toml
from jetstream.config.schema import FileKind, check
from jetstream.statistics import catalogue
from tests.support.paths import FIXTURES

REPO_DIR = FIXTURES / "configs" / "repo"


def problems(toml: str, kind: FileKind = FileKind.EXPERIMENT) -> list[str]:
    return [str(p) for p in check(tomllib.loads(toml), kind, "x.toml")]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[experiment]\nenrollment_end_date = "2024-01-01"',
            "x.toml: experiment.enrollment_end_date: unknown key; the end of enrollment comes "
            "from Experimenter; set enrollment_period (days) to override it",
        ),
        (
            '[experiment]\nexposure_query_type = "x"',
            "x.toml: experiment.exposure_query_type: unknown key; there is no such key; an "
            "exposure signal is set with [experiment.exposure_signal]",
        ),
        (
            '[metrics.m]\nexposure_basis = ["exposures"]',
            'x.toml: metrics.m.exposure_basis: unknown key; did you mean analysis_bases = ["exposures"]?',
        ),
        (
            '[metrics.m]\ndescriptionn = "d"',
            "x.toml: metrics.m.descriptionn: unknown key (did you mean 'description'?)",
        ),
        (
            '[experiment]\nrefrence_branch = "c"',
            "x.toml: experiment.refrence_branch: unknown key (did you mean 'reference_branch'?)",
        ),
        (
            '[experiment.exposure_signal]\nname = "e"\nselect_expression = "1"\n'
            'data_source = "d"\nfriendly_nam = "E"',
            "x.toml: experiment.exposure_signal.friendly_nam: unknown key "
            "(did you mean 'friendly_name'?)",
        ),
        (
            '[data_sources.d]\nfrom_expression = "t"\nclient_id_colum = "c"',
            "x.toml: data_sources.d.client_id_colum: unknown key (did you mean 'client_id_column'?)",
        ),
        (
            '[segments.data_sources.s]\nfrom_expression = "t"\nwindow_strat = 0',
            "x.toml: segments.data_sources.s.window_strat: unknown key "
            "(did you mean 'window_start'?)",
        ),
        (
            "[metrics.m.statistics.bootstrap_mean.covariate_adjustment]\n"
            'period = "preenrollment_week"\nmetrc = "x"',
            "x.toml: metrics.m.statistics.bootstrap_mean.covariate_adjustment: unknown parameter "
            "for statistic 'bootstrap_mean'; known: num_samples, drop_highest, "
            "confidence_interval, bins, clip_uncertainty, pre_treatments",
        ),
        ("[metricz]\n", "x.toml: metricz: unknown key (did you mean 'metrics'?)"),
        (
            '[metrics]\ndays28 = ["a"]',
            "x.toml: metrics.days28: is neither an analysis period nor a metric table "
            "(did you mean '28_day'?)",
        ),
    ],
)
def test_unknown_keys_at_any_depth(toml, expected):
    assert problems(toml) == [expected]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[experiment]\nstart_date = "2024-13-01"',
            "x.toml: experiment.start_date: must be a date written YYYY-MM-DD, got '2024-13-01'",
        ),
        (
            '[experiment]\nend_date = "June 1"',
            "x.toml: experiment.end_date: must be a date written YYYY-MM-DD, got 'June 1'",
        ),
        (
            '[experiment]\nenrollment_period = "7"',
            "x.toml: experiment.enrollment_period: must be an integer, got '7'",
        ),
        (
            '[experiment]\nsegments = "new_users"',
            "x.toml: experiment.segments: must be a list of strings, got 'new_users'",
        ),
        (
            '[experiment]\nmultiple_comparisons = "bonferroni"',
            "x.toml: experiment.multiple_comparisons: must be one of 'none', 'holm', 'bh', "
            "got 'bonferroni'",
        ),
        (
            '[experiment]\nanalysis_unit = "profile_group"',
            "x.toml: experiment.analysis_unit: must be one of 'client_id', 'profile_group_id', "
            "got 'profile_group' (did you mean 'profile_group_id'?)",
        ),
        (
            '[metrics.m]\nbigger_is_better = "yes"',
            "x.toml: metrics.m.bigger_is_better: must be true or false, got 'yes'",
        ),
        (
            '[metrics.m]\nanalysis_bases = ["exposure"]',
            "x.toml: metrics.m.analysis_bases[0]: must be one of 'enrollments', 'exposures', "
            "got 'exposure' (did you mean 'exposures'?)",
        ),
        (
            '[segments.s]\nselect_expression = "1"\ndata_source = "d"\nwindow_end = "end"',
            "x.toml: segments.s.window_end: must be an integer number of days or one of "
            "'analysis_window_start', 'analysis_window_end', got 'end'",
        ),
        (
            '[data_sources.d]\nfrom_expression = "t"\nexperiments_column_type = "nativ"',
            "x.toml: data_sources.d.experiments_column_type: must be one of 'none', 'simple', "
            "'native', 'glean', 'events_stream', got 'nativ' (did you mean 'native'?)",
        ),
        (
            '[data_sources.d]\nfriendly_name = "D"',
            "x.toml: data_sources.d: missing required key 'from_expression'",
        ),
        ("[metrics]\nweekly = 3", "x.toml: metrics.weekly: must be a list of metric names, got 3"),
    ],
)
def test_ill_typed_values_and_dates(toml, expected):
    assert problems(toml) == [expected]


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[metrics.m.statistics.bootstrap_man]",
            "x.toml: metrics.m.statistics.bootstrap_man: unknown statistic 'bootstrap_man' "
            "(did you mean 'bootstrap_mean'?)",
        ),
        (
            "[metrics.m.statistics.bootstrap_mean]\nnum_sample = 10",
            "x.toml: metrics.m.statistics.bootstrap_mean.num_sample: unknown parameter for "
            "statistic 'bootstrap_mean' (did you mean 'num_samples'?); known: num_samples, "
            "drop_highest, confidence_interval, bins, clip_uncertainty, pre_treatments",
        ),
        (
            "[metrics.m.statistics.bootstrap_mean]\nnum_samples = 10.5",
            "x.toml: metrics.m.statistics.bootstrap_mean.num_samples: must be an integer, got 10.5",
        ),
        (
            "[metrics.m.statistics.binomial]\nconfidence_interval = 95",
            "x.toml: metrics.m.statistics.binomial.confidence_interval: must be < 1, got 95",
        ),
        (
            '[metrics.m.statistics.kernel_density_estimate]\nbandwidth = "wide"',
            "x.toml: metrics.m.statistics.kernel_density_estimate.bandwidth: must be one of "
            "'normal_reference', 'scott', 'silverman', 'scott_scaled', 'silverman_scaled', "
            "got 'wide'",
        ),
        (
            '[metrics.m.statistics.population_ratio]\nnumerator = "a"',
            "x.toml: metrics.m.statistics.population_ratio: statistic 'population_ratio' needs "
            "parameter 'denominator'",
        ),
        (
            '[metrics.m.statistics.linear_model_mean]\ncovariate_adjustment = { period = "weekly" }',
            "x.toml: metrics.m.statistics.linear_model_mean.covariate_adjustment.period: must be "
            "a pre-enrollment period (preenrollment_week or preenrollment_days28), got 'weekly'",
        ),
        (
            '[metrics.m.statistics.deciles]\npre_treatments = ["remove_null"]',
            "x.toml: metrics.m.statistics.deciles.pre_treatments[0]: unknown pre-treatment "
            "'remove_null' (did you mean 'remove_nulls'?)",
        ),
        (
            '[metrics.m.statistics.deciles]\npre_treatments = [{ name = "log", bse = 2 }]',
            "x.toml: metrics.m.statistics.deciles.pre_treatments[0].bse: unknown argument for "
            "pre-treatment 'log' (did you mean 'base'?); known: base",
        ),
        (
            "[metrics.m.statistics.deciles]\n"
            'pre_treatments = [{ name = "censor_values_above_threshold" }]',
            "x.toml: metrics.m.statistics.deciles.pre_treatments[0]: pre-treatment "
            "'censor_values_above_threshold' needs argument 'threshold'",
        ),
    ],
)
def test_statistics_and_pre_treatments(toml, expected):
    assert problems(toml) == [expected]


def test_every_statistic_and_pre_treatment_form_is_accepted():
    toml = """
    [metrics.m]
    select_expression = "SUM(x)"
    data_source = "d"
    analysis_units = ["client_id", "profile_group_id"]
    owner = ["a@example.com"]
    level = "gold"
    [metrics.m.statistics.bootstrap_mean]
    num_samples = 100
    drop_highest = 0
    confidence_interval = 0.9
    pre_treatments = ["remove_nulls", {name = "log", base = 2}, {name = "censor_lowest_values", fraction = 0.01}]
    [metrics.m.statistics.binomial]
    [metrics.m.statistics.deciles]
    [metrics.m.statistics.linear_model_mean.covariate_adjustment]
    period = "preenrollment_days28"
    metric = "other"
    [metrics.m.statistics.per_client_dau_impact]
    pre_treatments = ["normalize_over_analysis_period", "zero_fill", "remove_indefinites"]
    [metrics.m.statistics.population_ratio]
    numerator = "a"
    denominator = "b"
    [metrics.m.statistics.count]
    [metrics.m.statistics.sum]
    [metrics.m.statistics.sequential_mean]
    tuning_clients = 50000
    [metrics.m.statistics.kernel_density_estimate]
    bandwidth = "scott"
    adjust = 1.5
    kernel = "gau"
    log_space = true
    grid_size = 128
    [metrics.m.statistics.empirical_cdf]
    log_space = true
    """
    assert problems(toml) == []
    assert set(catalogue.STATISTICS) == {
        "bootstrap_mean", "binomial", "deciles", "linear_model_mean", "per_client_dau_impact",
        "population_ratio", "count", "sum", "kernel_density_estimate", "empirical_cdf",
        "sequential_mean",
    }  # fmt: skip
    assert catalogue.STATISTICS["bootstrap_mean"].defaults() == {
        "num_samples": 10000,
        "drop_highest": 0.005,
        "confidence_interval": 0.95,
        "bins": 1000,
        "clip_uncertainty": "ignore",
    }


def test_float_written_for_an_integer_is_a_warning():
    (p,) = check(tomllib.loads("[experiment]\nsample_size = 3.0"), FileKind.EXPERIMENT, "x.toml")
    assert p.level == "warning" and not p.is_error
    assert str(p) == (
        "x.toml: experiment.sample_size: warning: should be written as an integer (3), got 3.0"
    )


def test_outcome_definitions_and_functions_kinds():
    assert problems('[metrics.m]\nselect_expression = "1"', FileKind.OUTCOME) == [
        "x.toml: (top level): missing required key 'friendly_name'",
        "x.toml: (top level): missing required key 'description'",
    ]
    assert problems('[metrics]\nweekly = ["m"]', FileKind.DEFINITIONS) == [
        "x.toml: metrics.weekly: is neither a metric nor a metric table"
    ]
    assert (
        problems('[dimensions.d]\ndata_source = "x"\nselect_expression = "y"', FileKind.DEFINITIONS)
        == []
    )
    assert problems('[functions.f]\ndefinitoin = "x"', FileKind.FUNCTIONS) == [
        "x.toml: functions.f.definitoin: unknown key (did you mean 'definition'?)",
        "x.toml: functions.f: missing required key 'definition'",
    ]


def test_metric_name_key_must_match_table():
    assert problems('[metrics.m]\nname = "m"') == []
    assert problems('[metrics.m]\nname = "n"') == [
        "x.toml: metrics.m.name: must equal the table name 'm'"
    ]


def test_segment_data_source_keys_without_effect_warn():
    (p,) = check(
        tomllib.loads('[segments.data_sources.s]\nfrom_expression = "t"\nbuild_id_column = "b"'),
        FileKind.EXPERIMENT,
        "x.toml",
    )
    assert p.level == "warning" and "has no effect here" in p.message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[experiment\nx = 1", "malformed TOML: "),
        (b"\x00\x01\x02binary", "is a binary file, not TOML"),
        (b"\xff\xfe[a]", "is not UTF-8 text"),
    ],
)
def test_read_toml_never_raises(tmp_path, content, message):
    f = tmp_path / "bad.toml"
    f.write_bytes(content)
    doc, ps = read_toml(f)
    assert doc is None and len(ps) == 1 and ps[0].message.startswith(message)
    assert str(ps[0]).startswith(f"{f}: ")


def test_read_toml_directory_and_missing(tmp_path):
    assert read_toml(tmp_path)[1][0].message == "is a directory, not a TOML file"
    assert read_toml(tmp_path / "nope.toml")[1][0].message == "file not found"


def test_problem_formatting_and_helpers():
    assert str(Problem("f.toml", "a.b", "bad")) == "f.toml: a.b: bad"
    assert str(Problem("f.toml", "", "empty", "warning")) == "f.toml: warning: empty"
    assert key_path("metrics", "a.b", "statistics", 0) == 'metrics."a.b".statistics[0]'
    assert did_you_mean("weekley", ["weekly", "daily"]) == " (did you mean 'weekly'?)"
    assert did_you_mean("zzz", ["weekly"]) == ""


def test_merge_named_merges_tables_key_by_key():
    base = {
        "metrics": {"m": {"a": 1, "b": 2}},
        "segments": {"s": {"x": 1}, "data_sources": {"d": {"y": 1}}},
    }
    over = {
        "metrics": {"m": {"b": 3}, "n": {"c": 4}},
        "segments": {"data_sources": {"d": {"z": 2}}},
    }
    assert merge_named(base, over) == {
        "metrics": {"m": {"a": 1, "b": 3}, "n": {"c": 4}},
        "segments": {"s": {"x": 1}, "data_sources": {"d": {"y": 1, "z": 2}}},
    }


def test_config_repo_layout():
    repo = ConfigRepo.load(REPO_DIR)
    assert repo.platforms == ["fenix", "firefox_desktop"]  # messaging.toml is a type default
    assert repo.functions["agg_sum"] == "COALESCE(SUM({select_expr}), 0.0)"
    assert set(repo.outcomes) == {
        ("firefox_desktop", "search"),
        ("firefox_desktop", "messaging"),
        ("fenix", "search"),
    }
    assert repo.experiment_config("good-experiment")["experiment"]["enrollment_period"] == 14
    assert repo.experiment_config("missing") is None
    assert repo.load_problems == []
