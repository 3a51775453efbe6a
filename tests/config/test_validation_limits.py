"""The validator refuses what a run cannot handle: numbers out of bounds or not finite,
names that are not identifiers, documents nested too deeply, broken SQL, cycles and
undefined templates even in metrics that are not computed; `run` exits 2 when the config of
every experiment it was asked for is invalid."""

from __future__ import annotations

import json
import shutil
import time
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from jetstream import nesting, synthetic
from jetstream.cli import cli
from jetstream.config import ConfigRepo, validate_file
from jetstream.config.repo import read_toml
from jetstream.config.schema import MAX_DAYS, FileKind, check
from jetstream.errors import EXIT_USAGE, ExperimentSourceError
from jetstream.experiments import MAX_ENROLLMENT_DAYS, load_experiments
from jetstream.statistics import catalogue
from tests.support import e2e_support as e2e

DEMO = "demo-sidebar-redesign"
CONFIG = synthetic.DEMO_DIR / "jetstream" / f"{DEMO}.toml"


def problems(toml: str, kind: FileKind = FileKind.EXPERIMENT) -> list[str]:
    return [str(p) for p in check(tomllib.loads(toml), kind, "x.toml") if p.is_error]


def test_the_day_bound_is_experimenters():
    assert MAX_DAYS == MAX_ENROLLMENT_DAYS


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[experiment]\nenrollment_period = 9223372036854775807",
            "experiment.enrollment_period: must be at most 3650, got 9223372036854775807",
        ),
        ("[experiment]\nenrollment_period = 0", "must be at least 1, got 0"),
        ("[experiment]\nenrollment_period = 1e300", "must be at most 3650"),
        ("[experiment]\nsample_size = 101", "experiment.sample_size: must be at most 100"),
        ("[experiment]\nsample_size = 0", "experiment.sample_size: must be at least 1"),
        (
            '[segments.s]\nselect_expression = "1"\ndata_source = "d"\nwindow_start = -100000',
            "segments.s.window_start: must be at least -3650",
        ),
        (
            '[experiment.exposure_signal]\nname = "e"\nselect_expression = "1"\n'
            'data_source = "d"\nwindow_end = 4000000000',
            "experiment.exposure_signal.window_end: must be at most 3650",
        ),
    ],
)
def test_settings_have_bounds(toml, expected):
    found = problems(toml)
    assert len(found) == 1 and expected in found[0], found


BAD_PARAMETERS = [
    ("bootstrap_mean", "confidence_interval", "nan", "must be a finite number, got nan"),
    ("bootstrap_mean", "confidence_interval", "inf", "must be a finite number, got inf"),
    ("bootstrap_mean", "confidence_interval", "1.0", "must be < 1, got 1.0"),
    ("bootstrap_mean", "confidence_interval", "0", "must be > 0, got 0"),
    ("bootstrap_mean", "num_samples", "1000000000000", "must be <= 100000"),
    ("bootstrap_mean", "num_samples", "0", "must be >= 1"),
    ("bootstrap_mean", "drop_highest", "1", "must be < 1, got 1"),
    ("bootstrap_mean", "drop_highest", "-inf", "must be a finite number"),
    ("bootstrap_mean", "bins", "9223372036854775807", "must be <= 100000"),
    ("deciles", "num_samples", "1e12", "must be an integer"),
    ("kernel_density_estimate", "bandwidth", "-1.0", "must be > 0"),
    ("kernel_density_estimate", "bandwidth", "nan", "must be a finite number"),
    ("kernel_density_estimate", "adjust", "0", "must be > 0"),
    ("kernel_density_estimate", "grid_size", "10000000", "must be <= 100000"),
    ("empirical_cdf", "grid_size", "1", "must be >= 2"),
]


@pytest.mark.parametrize(("stat", "param", "value", "expected"), BAD_PARAMETERS)
def test_statistic_parameters_are_finite_and_bounded(stat, param, value, expected):
    found = problems(f"[metrics.m.statistics.{stat}]\n{param} = {value}")
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(
    ("treatment", "expected"),
    [
        ('{ name = "log", base = 1 }', "must not be 1"),
        ('{ name = "log", base = 0 }', "must be > 0"),
        ('{ name = "censor_values_above_threshold", threshold = nan }', "finite"),
        ('{ name = "censor_highest_values", fraction = 2 }', "must be <= 1"),
    ],
)
def test_pre_treatment_arguments_are_finite_and_bounded(treatment, expected):
    found = problems(f"[metrics.m.statistics.deciles]\npre_treatments = [{treatment}]")
    assert len(found) == 1 and expected in found[0], found


def test_every_numeric_catalogue_parameter_refuses_nan_and_infinity():
    params = [
        p
        for d in (*catalogue.STATISTICS.values(), *catalogue.PRE_TREATMENTS.values())
        for p in d.params.values()
        if p.kind in (catalogue.FLOAT, catalogue.NUMBER_OR_CHOICE)
    ]
    assert params
    for p in params:
        for bad in (float("nan"), float("inf"), float("-inf")):
            assert p.check(bad), (p.name, bad)
        if p.default is not None and not isinstance(p.default, str):
            assert p.check(p.default) is None, p.name
    for p in (
        p
        for d in catalogue.STATISTICS.values()
        for p in d.params.values()
        if p.kind == catalogue.INT
    ):
        assert p.maximum is not None, f"{p.name} has no upper bound"
        assert p.check(10**30), p.name


@pytest.mark.parametrize(
    "toml",
    [
        '[metrics."x`y"]\nselect_expression = "1"\ndata_source = "d"',
        '[metrics."../m"]\nselect_expression = "1"\ndata_source = "d"',
        '[segments."a`b"]\nselect_expression = "true"\ndata_source = "d"',
        '[segments.data_sources."s s"]\nfrom_expression = "t"',
        '[data_sources."d`x"]\nfrom_expression = "t"',
        '[data_sources."1d"]\nfrom_expression = "t"',
    ],
)
def test_names_must_be_identifiers(toml):
    found = problems(toml)
    assert len(found) == 1 and ": name '" in found[0], found
    assert "contains '..'" in found[0] or "may only contain letters, digits and '_'" in found[0]


def _demo_repo(tmp_path: Path, extra: str = "", definitions: str = "") -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(synthetic.DEMO_DIR, repo)
    config = repo / "jetstream" / f"{DEMO}.toml"
    config.write_text(config.read_text() + "\n" + extra)
    if definitions:
        defs = repo / "jetstream" / "definitions" / "demo.toml"
        defs.write_text(defs.read_text() + "\n" + definitions)
    return repo


def _validate(repo: Path) -> list[str]:
    config = repo / "jetstream" / f"{DEMO}.toml"
    exps = load_experiments(str(repo / "experiments.json"))
    found = validate_file(config, ConfigRepo.load(repo), exps, "auto")
    return [str(p) for p in found if p.is_error]


def test_a_metric_of_the_definitions_with_a_bad_name_is_an_error_where_it_is_used(tmp_path):
    repo = _demo_repo(
        tmp_path,
        definitions='[metrics."bad`name"]\nselect_expression = "1"\n'
        'data_source = "feature_events"\n',
    )
    config = repo / "jetstream" / f"{DEMO}.toml"
    text = config.read_text().replace('daily = ["sidebar_opens"]', 'daily = ["bad`name"]')
    config.write_text(text)
    found = _validate(repo)
    assert any("name 'bad`name' may only contain" in p for p in found), found


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            '[metrics.unlisted]\nselect_expression = "SUM((("\ndata_source = "feature_events"',
            "metrics.unlisted.select_expression: does not parse as BigQuery SQL",
        ),
        (
            '[metrics.unlisted]\nselect_expression = "{{ nope }}"\ndata_source = "feature_events"',
            "metrics.unlisted.select_expression: template uses something undefined",
        ),
        (
            '[metrics.unlisted]\ndepends_on = ["other"]\n[metrics.other]\ndepends_on = ["unlisted"]',
            "metrics depend on each other in a cycle",
        ),
    ],
)
def test_broken_unlisted_metrics_are_errors(tmp_path, metric, expected):
    found = _validate(_demo_repo(tmp_path, metric))
    assert any(expected in p for p in found), found


def test_a_metric_table_without_a_definition_is_still_only_a_warning(tmp_path):
    # The metric-hub corpus has these (statistics for a metric it never lists).
    assert _validate(_demo_repo(tmp_path, "[metrics.nothing.statistics.bootstrap_mean]\n")) == []


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * 5000 + "]" * 5000,
        "x = " + "{a = " * 3000 + "1" + "}" * 3000,
        "x." + ".".join(["a"] * 20000) + " = 1",
        "[" + ".".join(["a"] * 20000) + "]",
        "x = {" + ".".join(["a"] * 20000) + " = 1}",
    ],
    ids=["arrays", "inline-tables", "dotted-keys", "table-header", "inline-dotted-keys"],
)
def test_deeply_nested_toml_is_one_clear_error(tmp_path, text):
    path = tmp_path / "deep.toml"
    path.write_text(text)
    started = time.monotonic()
    doc, found = read_toml(path)
    assert time.monotonic() - started < 10  # dotted keys are refused before parsing
    assert doc is None
    assert [str(p) for p in found] == [
        f"{path}: malformed TOML: nested more than {nesting.MAX_DEPTH} levels deep "
        "(arrays or tables)"
    ]


def test_deeply_nested_toml_through_validate_config(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000)
    res = CliRunner().invoke(cli, ["validate-config", str(path)])
    assert res.exit_code == 1, res.output
    assert "nested more than" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("depth", [150, 100_000])
def test_deeply_nested_experiments_json_is_a_source_error(tmp_path, depth):
    path = tmp_path / "experiments.json"
    path.write_text('[{"slug": "a", "x": ' + "[" * depth + "]" * depth + "}]")
    with pytest.raises(ExperimentSourceError, match=r"nested more than 100 levels deep"):
        load_experiments(str(path))


def test_dots_inside_strings_are_not_nesting():
    many = ".".join(["a"] * 300)
    text = f'q = """\n{many} = 1\n"""\n"{many}" = 2\nv = "{many}"\n'
    assert nesting.loads_toml(text, "x")[many] == 2


def test_json_within_the_limit_loads():
    assert nesting.loads_json("[" * 50 + "]" * 50, "x") is not None
    assert nesting.loads_toml("a.b.c = [[1]]", "x") == {"a": {"b": {"c": [[1]]}}}


def _run(tmp_path: Path, repo: Path, *slugs: str) -> tuple[int, str]:
    args = [
        "run",
        "--date",
        "2025-01-01",  # before every demo experiment: nothing is due, nothing runs
        "--experiments",
        str(repo / "experiments.json"),
        "--config-repo",
        str(repo),
        "--warehouse",
        e2e.url(tmp_path / "w.duckdb"),
        "--out",
        str(tmp_path / "out"),
    ]
    for slug in slugs:
        args += ["--experiment", slug]
    res = CliRunner().invoke(cli, args)
    return res.exit_code, res.output


def test_run_of_an_invalid_named_experiment_exits_2(tmp_path):
    repo = _demo_repo(tmp_path, "[experiment.x]\n")
    code, output = _run(tmp_path, repo, DEMO)
    assert code == EXIT_USAGE, output
    assert "experiment.x" in output and "Traceback" not in output
    errors = json.loads(
        (tmp_path / "out" / "errors" / "errors_demo_sidebar_redesign.json").read_text()
    )
    assert errors and errors[0]["log_level"] == "ERROR"


def test_run_where_other_experiments_are_valid_still_exits_1(tmp_path):
    repo = _demo_repo(tmp_path, "[experiment.x]\n")
    exps = json.loads((repo / "experiments.json").read_text())
    other = next(e for e in exps if e["slug"] != DEMO and e["appName"] == "demo")
    code, output = _run(tmp_path, repo, DEMO, other["slug"])
    assert code == 1, output
    assert "Nothing is due" in output


def test_a_deeply_nested_published_file_is_a_report_error(tmp_path):
    from jetstream.artifacts import LocalArtifactStore
    from jetstream.report import ReportError, load_results

    store = LocalArtifactStore(tmp_path)
    store.write_bytes("statistics/statistics_x_daily.json", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ReportError, match=r"statistics_x_daily\.json: nested more than 100"):
        load_results(store)
