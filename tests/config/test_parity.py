"""Parser parity with metric-hub's metric-config-parser: what it accepts is accepted here
(and means the same), what it refuses is refused here, each case on a copy of the demo
config repository."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from jetstream import synthetic
from jetstream.cli import cli
from jetstream.config import load_spec
from jetstream.errors import ConfigError
from jetstream.experiments import load_experiments
from jetstream.periods import Period

SLUG = "demo-sidebar-redesign"
EXPERIMENTS = str(synthetic.DEMO_DIR / "experiments.json")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    dest = tmp_path / "repo"
    shutil.copytree(synthetic.DEMO_DIR, dest)
    return dest


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


def config(repo: Path) -> Path:
    return repo / "jetstream" / f"{SLUG}.toml"


def validate(repo: Path, *files: Path) -> tuple[int, str]:
    res = CliRunner().invoke(
        cli,
        [
            "validate-config",
            "--config-repo",
            str(repo),
            "--experiments",
            EXPERIMENTS,
            *map(str, files or (config(repo),)),
        ],
    )
    return res.exit_code, res.output


def spec(repo: Path):
    return load_spec(SLUG, load_experiments(EXPERIMENTS), repo)


def test_mixed_case_keys_are_lower_cased(repo):
    text = config(repo).read_text()
    config(repo).write_text(
        text.replace("multiple_comparisons", "Multiple_Comparisons").replace(
            "select_expression", "SELECT_EXPRESSION"
        )
    )
    code, out = validate(repo)
    assert code == 0, out
    s = spec(repo)
    assert s.experiment.multiple_comparisons.value == "holm"
    defs = {m.name: m for m in s.metric_definitions.values()}
    assert "sidebar_opened" in defs["used_sidebar"].select_expression  # written in capitals


def test_wildcard_definitions_update_the_matching_definitions(repo):
    defs = {m.name: m for m in spec(repo).metric_definitions.values()}
    inherited = [n for n in defs if n not in config(repo).read_text()]
    assert inherited  # metrics defined in definitions/, below the config
    append(
        config(repo),
        """
[metrics.'*']
description = "Described by a wildcard."

[data_sources.'*']
friendly_name = "Any source"
""",
    )
    code, out = validate(repo)
    assert code == 0, out
    defs = {m.name: m for m in spec(repo).metric_definitions.values()}
    assert all(defs[n].description == "Described by a wildcard." for n in inherited)
    assert "*" not in defs
    append(config(repo), "[data_sources.'nothing_*']\nfrom_expression = 3\n")
    code, out = validate(repo)
    assert code == 1 and "from_expression: must be a string" in out  # still checked


def test_segment_data_source_id_columns_are_accepted(repo):
    defs = repo / "definitions" / "demo.toml"
    text = defs.read_text()
    assert "[segments.data_sources." in text
    head, sep, rest = text.partition("[segments.data_sources.")
    name, _, body = rest.partition("]\n")
    defs.write_text(
        f'{head}{sep}{name}]\ngroup_id_column = "profile_group_id"\n'
        f'glean_client_id_column = "client_info.client_id"\n'
        f'legacy_client_id_column = "metrics.uuid.legacy_telemetry_client_id"\n{body}'
    )
    code, out = validate(repo, defs)
    assert code == 0, out


def test_pre_treatment_analysis_period_length_and_dau_drop_highest(repo):
    append(
        config(repo),
        """
[metrics.used_sidebar_normalized]
select_expression = "COUNTIF(event_name = 'sidebar_opened')"
data_source = "feature_events"

[metrics.used_sidebar_normalized.statistics.bootstrap_mean]
pre_treatments = [
  {name = "normalize_over_analysis_period", analysis_period_length = 7},
  {name = "remove_nulls", analysis_period_length = 7},
]

[metrics.used_sidebar_normalized.statistics.per_client_dau_impact]
drop_highest = 0.01
""",
    )
    text = (
        config(repo).read_text().replace("weekly = [", 'weekly = ["used_sidebar_normalized", ', 1)
    )
    config(repo).write_text(text)
    code, out = validate(repo)
    assert code == 0, out
    s = spec(repo)
    stats = {
        x.statistic.name: x.statistic
        for x in s.metrics[Period.WEEK]
        if x.metric.name == "used_sidebar_normalized"
    }
    pts = stats["bootstrap_mean"].pre_treatments
    assert [(p.name, dict(p.args)) for p in pts] == [
        ("normalize_over_analysis_period", {"analysis_period_length": 7}),
        ("remove_nulls", {}),  # accepted everywhere, used by the one that needs it
    ]
    assert stats["per_client_dau_impact"].params["drop_highest"] == 0.01
    append(
        config(repo),
        '[metrics.used_sidebar_normalized.statistics.deciles]\npre_treatments = [{name = "remove_nulls", analysis_period_length = 0}]',
    )
    code, out = validate(repo)
    assert code == 1 and "analysis_period_length" in out


def test_alerts_in_definitions_are_accepted(repo):
    defs = repo / "definitions" / "demo.toml"
    append(defs, '[alerts.sidebar_drop]\ntype = "threshold"\nmetrics = ["used_sidebar"]\nmin = [1]')
    code, out = validate(repo, defs)
    assert code == 0, out
    assert "alerts" in out  # a warning says it has no effect on analyses


def test_kde_reference_parameters(repo):
    append(
        config(repo),
        """
[metrics.used_sidebar.statistics.kernel_density_estimate]
kernel = "gaussian"
bandwidth = 0.5
adjust = 2.0
""",
    )
    code, out = validate(repo)
    assert code == 0, out


def test_unsupported_analysis_unit_is_refused(repo):
    append(
        config(repo),
        """
[data_sources.clients_only]
from_expression = "(SELECT * FROM feature_events)"
analysis_units = ["client_id"]

[metrics.grouped_opens]
select_expression = "COUNT(*)"
data_source = "clients_only"
analysis_units = ["profile_group_id"]
""",
    )
    text = config(repo).read_text().replace("weekly = [", 'weekly = ["grouped_opens", ', 1)
    config(repo).write_text(text)
    code, out = validate(repo)
    assert code == 1
    assert "profile_group_id" in out and "clients_only" in out
    with pytest.raises(ConfigError):
        spec(repo)


def test_unknown_template_name_in_from_expression_is_refused(repo):
    append(
        config(repo),
        """
[data_sources.templated]
from_expression = "(SELECT * FROM {{ no_such_thing }})"

[metrics.templated_count]
select_expression = "COUNT(*)"
data_source = "templated"
""",
    )
    text = config(repo).read_text().replace("weekly = [", 'weekly = ["templated_count", ', 1)
    config(repo).write_text(text)
    code, out = validate(repo)
    assert code == 1
    assert "no_such_thing" in out
