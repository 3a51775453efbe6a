"""`validate_file` and the `jetstream validate-config` command."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from jetstream.cli import cli
from jetstream.config import ConfigRepo, validate_file
from jetstream.config.model import Branch
from tests.support.paths import FIXTURES

REPO_DIR = FIXTURES / "configs" / "repo"
GOOD = REPO_DIR / "jetstream" / "good-experiment.toml"


@pytest.fixture(scope="module")
def repo() -> ConfigRepo:
    return ConfigRepo.load(REPO_DIR)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate-config", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_good_file_exits_0_and_prints_the_preview_command():
    code, out = run(str(GOOD), "--config-repo", str(REPO_DIR))
    assert code == 0, out
    assert (
        f"jetstream preview --slug good-experiment --config-file {GOOD} --config-repo {REPO_DIR}"
        " --platform firefox_desktop" in out.splitlines()
    )
    assert "1 file(s) checked: 1 valid, 0 invalid" in out


def test_bad_file_exits_1_with_every_problem(tmp_path):
    bad = write(
        tmp_path,
        "bad-exp.toml",
        """
        [experiment]
        enrollment_end_date = "2024-01-01"
        start_date = "2024-02-30"
        segments = ["no_such_segment"]
        [metrics]
        weekly = ["active_hour", "broken_sql"]
        [metrics.broken_sql]
        select_expression = "SUM(x"
        data_source = "clients_daily"
        descriptionn = "typo"
        [metrics.broken_sql.statistics.bootstrap_mean]
        drop_highest = "a lot"
        [metrics.broken_sql.statistics.median]
        """,
    )
    code, out = run(str(bad), "--config-repo", str(REPO_DIR))
    assert code == 1
    lines = out.splitlines()
    f = str(bad)
    expected = [
        f"{f}: experiment.enrollment_end_date: unknown key; the end of enrollment comes from "
        "Experimenter; set enrollment_period (days) to override it",
        f"{f}: experiment.start_date: must be a date written YYYY-MM-DD, got '2024-02-30'",
        f"{f}: metrics.broken_sql.descriptionn: unknown key (did you mean 'description'?)",
        f"{f}: metrics.broken_sql.statistics.bootstrap_mean.drop_highest: must be a number, "
        "got 'a lot'",
        f"{f}: metrics.broken_sql.statistics.median: unknown statistic 'median'",
        f"{f}: metrics.weekly[0]: undefined metric 'active_hour' for platform 'firefox_desktop' "
        "(did you mean 'active_hours'?)",
        f"{f}: experiment.segments[0]: undefined segment 'no_such_segment' for platform "
        "'firefox_desktop'",
    ]
    for line in expected:
        assert line in lines, (line, out)
    sql = [ln for ln in lines if ln.startswith(f"{f}: metrics.broken_sql.select_expression: ")]
    assert len(sql) == 1 and "does not parse as BigQuery SQL" in sql[0]
    assert "jetstream preview" not in out
    assert "Traceback" not in out


def test_undefined_data_source_and_outcome(tmp_path, repo):
    path = write(
        tmp_path,
        "x.toml",
        """
        [experiment]
        outcomes = ["networking"]
        [metrics]
        overall = ["m"]
        [metrics.m]
        select_expression = "COUNT(*)"
        data_source = "event"
        statistics = { sum = {} }
        """,
    )
    msgs = {p.message for p in validate_file(path, repo, None, "firefox_desktop")}
    assert msgs == {
        "undefined data source 'event' for platform 'firefox_desktop' (did you mean 'events'?)",
        "unknown outcome 'networking' for platform 'firefox_desktop'",
    }


def test_warnings_exit_0(tmp_path):
    empty = write(tmp_path, "empty.toml", "")
    nostat = write(
        tmp_path,
        "nostat.toml",
        """
        [metrics]
        overall = ["plain"]
        [metrics.plain]
        select_expression = "COUNT(*)"
        data_source = "clients_daily"
        [metrics.unused]
        select_expression = "1"
        data_source = "clients_daily"
        """,
    )
    code, out = run(str(empty), str(nostat), "--config-repo", str(REPO_DIR))
    assert code == 0, out
    assert f"{empty}: warning: file is empty: nothing to analyse" in out
    assert (
        f"{nostat}: metrics.plain: warning: metric has no statistic and nothing depends on it: "
        "it is computed but never analysed"
    ) in out
    assert f"{nostat}: metrics.unused: warning: metric is not listed in any analysis period" in out


def test_a_metric_used_only_by_another_is_not_warned(tmp_path, repo):
    path = write(
        tmp_path,
        "x.toml",
        """
        [metrics]
        overall = ["ratio"]
        [metrics.num]
        select_expression = "SUM(a)"
        data_source = "clients_daily"
        [metrics.den]
        select_expression = "SUM(b)"
        data_source = "clients_daily"
        [metrics.ratio]
        depends_on = ["num", "den"]
        [metrics.ratio.statistics.population_ratio]
        numerator = "num"
        denominator = "den"
        """,
    )
    assert validate_file(path, repo, None, "firefox_desktop") == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[metrics\nweekly = 1", "malformed TOML: "),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "is a binary file, not TOML"),
    ],
)
def test_malformed_and_binary_files_give_one_line(tmp_path, content, message):
    path = tmp_path / "broken.toml"
    path.write_bytes(content)
    code, out = run(str(path))
    assert code == 1
    problem_lines = [ln for ln in out.splitlines() if ln.startswith(str(path))]
    assert len(problem_lines) == 1 and problem_lines[0].startswith(f"{path}: {message}")
    assert "Traceback" not in out


def test_directory_and_missing_file(tmp_path):
    code, out = run(str(tmp_path), str(tmp_path / "missing.toml"))
    assert code == 1
    assert f"{tmp_path}: is a directory, not a TOML file" in out
    assert f"{tmp_path / 'missing.toml'}: file not found" in out


def test_usage_errors_exit_2(tmp_path):
    assert run()[0] == 2
    assert run(str(GOOD), "--config-repo", str(tmp_path / "nope"))[0] == 2
    assert run(str(GOOD), "--config-repo", str(REPO_DIR), "--platform", "firefox_dekstop")[0] == 2
    assert run(str(GOOD), "--experiments", str(tmp_path / "none.json"))[0] == 2


def test_platform_auto_reports_where_a_config_resolves(tmp_path):
    path = write(
        tmp_path,
        "fenix-only.toml",
        """
        [metrics]
        overall = ["baseline_pings"]
        [metrics.baseline_pings.statistics.sum]
        """,
    )
    code, out = run(str(path), "--config-repo", str(REPO_DIR), "--platform", "auto")
    assert code == 0, out
    assert f"{path}: info: resolves on platform(s): fenix" in out
    code, out = run(str(path), "--config-repo", str(REPO_DIR))
    assert code == 1  # on the default platform, firefox_desktop, the metric does not exist
    assert "undefined metric 'baseline_pings' for platform 'firefox_desktop'" in out


def test_experiments_source_gives_platform_and_branches(tmp_path):
    from jetstream.experiments import Experiment

    exp = Experiment(
        slug="fenix-exp",
        app_name="fenix",
        app_id="org.mozilla.firefox",
        branches=(Branch("a", 1), Branch("b", 1)),
        reference_branch="a",
        start_date=dt.date(2024, 1, 1),
        end_date=None,
        proposed_enrollment=7,
        enrollment_end_date=None,
        is_enrollment_paused=False,
        is_rollout=False,
        status="Live",
    )
    source = tmp_path / "experiments.json"
    source.write_text(json.dumps([exp.to_v8()]))
    path = write(
        tmp_path,
        "fenix-exp.toml",
        '[experiment]\nreference_branch = "control"\n[metrics]\noverall = ["baseline_pings"]\n',
    )
    code, out = run(str(path), "--config-repo", str(REPO_DIR), "--experiments", str(source))
    assert code == 1
    assert (
        f"{path}: experiment.reference_branch: 'control' is not a branch of fenix-exp; "
        "branches: a, b"
    ) in out


def test_support_files_validate_in_their_own_terms(tmp_path, repo):
    outcome = write(
        tmp_path,
        "jetstream/outcomes/firefox_desktop/new.toml",
        """
        friendly_name = "New"
        description = "d"
        [metrics.m]
        select_expression = "SUM(x"
        data_source = "clients_daily"
        statistics = { sum = {} }
        """,
    )
    (p,) = validate_file(outcome, repo, None, "firefox_desktop")
    assert p.file == str(outcome) and p.key == "metrics.m.select_expression"
    defaults = write(
        tmp_path,
        "jetstream/defaults/firefox_desktop.toml",
        '[metrics]\nweekly = ["nope"]\n',
    )
    (p,) = validate_file(defaults, repo, None, "firefox_desktop")
    assert (p.file, p.key) == (str(defaults), "metrics.weekly[0]")
    definitions = write(
        tmp_path,
        "definitions/firefox_desktop.toml",
        '[metrics.m]\nselect_expression = "{{agg_sum(\\"x\\")}} +"\ndata_source = "d"\n',
    )
    (p,) = validate_file(definitions, repo, None, "firefox_desktop")
    assert p.key == "metrics.m.select_expression" and "does not parse" in p.message
    for f in (REPO_DIR / "jetstream").rglob("*.toml"):
        assert [x for x in validate_file(f, repo, None, "auto") if x.is_error] == [], f


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_changed_since_validates_changed_configs(tmp_path):
    work = tmp_path / "hub"
    shutil.copytree(REPO_DIR, work)

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=work,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "base")
    (work / "jetstream" / "new-exp.toml").write_text('[experiment]\nskip = "yes"\n')
    git("add", ".")
    code, out = run("--changed-since", "HEAD", "--config-repo", str(work))
    assert code == 1
    assert f"{work / 'jetstream' / 'new-exp.toml'}: experiment.skip: must be true or false" in out
    assert "1 file(s) checked" in out
    code, out = run("--changed-since", "no-such-ref", "--config-repo", str(work))
    assert code == 2
