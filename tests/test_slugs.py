"""The identifier rule for Experimenter values, and how values reach SQL: `{experiment_slug}`,
`{{experiment.*}}` and `{{parameters.*}}` are checked and escaped, and an escaped value
stays one string in DuckDB whatever it contains."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from jetstream import results, slugs
from jetstream.config.model import Branch, ExperimentSettings
from jetstream.config.templating import (
    Renderer,
    TemplateError,
    format_parameter,
    substitute_dataset,
)
from jetstream.sql import literals
from jetstream.warehouse import transpile

NASTY = [
    "demo-sidebar-redesign' OR event_method = 'enroll' OR 'a'='b",
    'double " quote',
    "back\\slash' OR 'a'='a",
    "line\nbreak -- comment",
    "tail\\",
    "\r\n\t`backtick`",
]


def settings(slug: str = "demo-sidebar-redesign", branches=("control", "treatment")):
    return ExperimentSettings(
        slug=slug,
        app_name="firefox_desktop",
        branches=tuple(Branch(b, 1) for b in branches),
        reference_branch=branches[0],
        start_date=dt.date(2026, 1, 5),
        end_date=dt.date(2026, 2, 8),
        enrollment_period=7,
    )


@pytest.mark.parametrize(
    "slug",
    ["demo-sidebar-redesign", "bug-1647305-pref-x-release-78-80", "a", "x_y.z-1", "9lives"],
)
def test_valid_experiment_slugs(slug):
    assert slugs.problem(slug) is None
    assert slugs.check(slug) == slug


@pytest.mark.parametrize(
    ("slug", "why"),
    [
        ("", "empty"),
        ("Demo", "'D'"),
        ("a b", "' '"),
        ("a'b", '"\'"'),
        ("a`b", "'`'"),
        ("a\nb", "'\\n'"),
        ("a/b", "'/'"),
        ("../../x/outside", "'..'"),
        ("a..b", "'..'"),
        ("-a", "starting with a letter or digit"),
        ("x" * 201, "at most 200"),
    ],
)
def test_invalid_experiment_slugs_say_why(slug, why):
    message = slugs.problem(slug)
    assert message is not None and why in message
    with pytest.raises(slugs.SlugError, match="slug"):
        slugs.check(slug)


def test_branch_names_allow_upper_case_but_nothing_that_quotes():
    assert slugs.problem("Treatment_A", slugs.NAME) is None
    assert slugs.problem("org.mozilla.firefox", slugs.NAME) is None
    assert slugs.problem("control' --", slugs.NAME) is not None


def test_collision_key_covers_tables_files_and_task_names():
    key = slugs.collision_key
    assert key("a-b") == key("a_b") == key("a.b") == key("a--b") == key("a-b-")
    assert key("a-b") != key("ab")
    # every pair the table names cannot tell apart has the same key
    for a, b in [("a-b", "a_b"), ("a.b", "a-b")]:
        assert results.safe(a) == results.safe(b) and key(a) == key(b)


@pytest.mark.shared
def test_every_metric_hub_experiment_config_name_is_a_valid_slug(metric_hub: Path):
    names = [p.stem for p in (metric_hub / "jetstream").glob("*.toml")]
    assert len(names) > 100
    bad = {n: slugs.problem(n) for n in names if slugs.problem(n) is not None}
    assert bad == {}


@pytest.mark.parametrize("value", NASTY)
def test_an_escaped_value_stays_one_string_in_single_and_double_quotes(value):
    body = literals.string_body(value)
    sql = f"SELECT '{body}' AS a, \"{body}\" AS b, {literals.string(value)} AS c"
    [duck] = transpile.to_duckdb(sql)
    row = duckdb.connect().execute(duck).fetchone()
    assert row == (value, value, value)


def test_experiment_slug_placeholder_is_checked_and_substituted():
    r = Renderer({}, experiment=settings())
    assert (
        r.render("event_string_value = '{experiment_slug}'")
        == "event_string_value = 'demo-sidebar-redesign'"
    )
    assert r.render("'{{experiment.normandy_slug}}:'") == "'demo-sidebar-redesign:'"
    assert r.render("{{experiment.branches}}") == "['control', 'treatment']"


@pytest.mark.parametrize(
    "template",
    [
        "event_string_value = '{experiment_slug}'",
        "x = '{{experiment.slug}}'",
        "x = '{{experiment.normandy_slug}}'",
        "x = '{{experiment.experimenter_slug}}'",
    ],
)
def test_a_hostile_slug_never_reaches_sql(template):
    """Defence in depth: even a settings object built without the loader's check (a
    placeholder, a test, a future code path) cannot put a quote into a template."""
    r = Renderer({}, experiment=settings(NASTY[0]))
    with pytest.raises(TemplateError, match="the experiment's slug cannot go into SQL"):
        r.render(template)


@pytest.mark.parametrize("template", ["{{experiment.branches}}", "{{experiment.reference_branch}}"])
def test_hostile_branch_names_never_reach_sql(template):
    r = Renderer({}, experiment=settings(branches=("control' OR 'a'='a", "treatment")))
    with pytest.raises(TemplateError, match="branch"):
        r.render(template)


def test_parameter_values_are_escaped_for_the_quotes_they_stand_in():
    value = "bookmarks' OR 'a'='a"
    r = Renderer({}, parameters={"feature": format_parameter("feature", value, False)})
    sql = "SELECT '{{parameters.feature}}' = " + literals.string(value) + " AS same"
    rendered = r.render(sql)
    [duck] = transpile.to_duckdb(rendered)
    assert duckdb.connect().execute(duck).fetchone() == (True,)
    per_branch = format_parameter("f", {"control": "a'b", "treatment": "c"}, True)
    assert per_branch == "CASE e.branch WHEN 'control' THEN 'a\\'b' WHEN 'treatment' THEN 'c' END"


def test_dataset_names_are_checked():
    assert substitute_dataset("`{dataset}.events`", "moz-fx-data.analysis") == (
        "`moz-fx-data.analysis.events`"
    )
    with pytest.raises(TemplateError, match="not a"):
        substitute_dataset("`{dataset}.events`", "x`; DROP TABLE y; --")
