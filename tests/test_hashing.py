"""Definition hashes (jetstream/hashing.py): stable for the same definition however it was
built, and changed by exactly the inputs each hash covers, so a config change reruns the
rows it affects and no others. Specs are resolved from the fixture config repo."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import tomllib

import attrs
import pytest

from jetstream.config import ConfigRepo
from jetstream.config.model import (
    Branch,
    CovariateAdjustment,
    MultipleComparisons,
    StatisticSpec,
)
from jetstream.config.resolve import resolve_spec
from jetstream.experiments import Experiment
from jetstream.hashing import digest, enrollment_hash, metric_hash, statistic_hash
from jetstream.periods import Period
from tests.support.paths import FIXTURES

REPO_DIR = FIXTURES / "configs" / "repo"
BASE = """
[experiment]
outcomes = ["search"]
"""


@pytest.fixture(scope="module")
def repo() -> ConfigRepo:
    return ConfigRepo.load(REPO_DIR)


def experiment(**kw) -> Experiment:
    fields = dict(
        slug="exp-1",
        app_name="firefox_desktop",
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


def spec_of(repo: ConfigRepo, extra: str = "", **kw):
    return resolve_spec(experiment(**kw), tomllib.loads(BASE + extra), repo, "exp.toml")


def summary(spec, metric: str, statistic: str, period: Period = Period.WEEK):
    return next(
        s for s in spec.metrics[period] if s.metric.name == metric and s.statistic.name == statistic
    )


def all_hashes(spec) -> dict[str, str]:
    """Every hash of a spec: enrollments, each metric, each (period, metric, statistic)."""
    out = {"enrollments": enrollment_hash(spec)}
    for name, m in spec.metric_definitions.items():
        out[f"metric {name}"] = metric_hash(spec, m)
    for period, summaries in spec.metrics.items():
        for s in summaries:
            key = f"statistic {period.value} {s.metric.name} {s.statistic.name}"
            out[key] = statistic_hash(spec, s.metric, s.statistic)
    return out


def changed(a, b) -> set[str]:
    ha, hb = all_hashes(a), all_hashes(b)
    assert ha.keys() == hb.keys()
    return {k for k in ha if ha[k] != hb[k]}


# -- digest ------------------------------------------------------------------------------


def test_digest_is_a_truncated_sha256_of_canonical_json():
    # Stored rows carry these values: the encoding must not drift between releases.
    parts = ["exp", 3, {"b": [1, 2], "a": None}]
    text = json.dumps(parts, sort_keys=True)
    assert digest(*parts) == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert len(digest()) == 16 and int(digest(), 16) >= 0


def test_digest_normalises_what_does_not_change_a_definition():
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})
    assert digest((1, 2)) == digest([1, 2])
    assert digest(Period.WEEK) == digest("week")

    class Level(enum.Enum):  # a non-string enum hashes by its value, not its repr
        LOW = 1

    assert digest(Level.LOW) == digest(1)
    assert digest(dt.date(2024, 3, 1)) == digest("2024-03-01")
    cov = CovariateAdjustment(Period.PREENROLLMENT_WEEK, "m")
    assert digest(cov) == digest({"metric": "m", "period": "preenrollment_week"})
    stat = StatisticSpec("bootstrap_mean", {"num_samples": 10, "alpha": 0.05})
    assert digest(stat) == digest(
        StatisticSpec("bootstrap_mean", {"alpha": 0.05, "num_samples": 10})
    )


def test_digest_is_sensitive_to_values_order_and_grouping():
    assert digest("a", "b") != digest("b", "a")
    assert digest(["a", "b"]) != digest("a", "b")
    assert digest({"a": 1}) != digest({"a": 2})
    assert digest(1) != digest("1")
    assert digest(StatisticSpec("binomial")) != digest(StatisticSpec("bootstrap_mean"))


# -- definition hashes ---------------------------------------------------------------------


def test_the_same_definition_hashes_the_same(repo):
    a, b = spec_of(repo), spec_of(repo)
    assert a is not b
    assert all_hashes(a) == all_hashes(b)
    hashes = all_hashes(a)
    # every metric has its own hash, and so has every statistic of one period
    for prefix in ("metric ", "statistic week ", "statistic overall "):
        group = [h for k, h in hashes.items() if k.startswith(prefix)]
        assert len(group) > 1 and len(set(group)) == len(group), prefix
    # the period is part of a row's key, not of its definition
    assert (
        hashes["statistic week click_rate population_ratio"]
        == hashes["statistic overall click_rate population_ratio"]
    )


@pytest.mark.parametrize(
    ("extra", "kw"),
    [
        ("enrollment_period = 8\n", {}),
        ('segments = ["regular_users"]\n', {}),
        ("sample_size = 10\n", {}),
        ('enrollment_query = "SELECT 1"\n', {}),
        ("", {"start_date": dt.date(2024, 3, 2)}),
        ("", {"branches": (Branch("control", 1), Branch("treatment", 2))}),
        (
            '[experiment.exposure_signal]\nname = "seen"\nselect_expression = "COUNT(*) > 0"\n'
            'data_source = "events"\n',
            {},
        ),
    ],
)
def test_enrollment_inputs_change_every_hash(repo, extra, kw):
    base = spec_of(repo)
    other = spec_of(repo, extra, **kw)
    # Who is enrolled changes: every metric and statistic row is stale.
    assert changed(base, other) == set(all_hashes(base))


def test_end_date_and_status_do_not_change_any_hash(repo):
    base = spec_of(repo)
    later = spec_of(repo, end_date=dt.date(2024, 5, 1), status="Complete")
    assert changed(base, later) == set()


def test_a_metric_change_reaches_its_dependents_only(repo):
    base = spec_of(repo)
    other = spec_of(repo, "[metrics.clicks]\nselect_expression = \"COUNTIF(event = 'tap')\"\n")
    assert other.metric_definitions["clicks"] != base.metric_definitions["clicks"]
    # clicks itself, click_rate (depends_on clicks) and click_rate's statistics
    assert changed(base, other) == {
        "metric clicks",
        "metric click_rate",
        "statistic week click_rate population_ratio",
        "statistic overall click_rate population_ratio",
    }


def test_statistic_hash_covers_params_ratio_parts_covariates_and_corrections(repo):
    spec = spec_of(repo)
    s = summary(spec, "search_count", "bootstrap_mean")
    h = statistic_hash(spec, s.metric, s.statistic)
    assert statistic_hash(spec, s.metric, s.statistic) == h

    with_params = attrs.evolve(s.statistic, params={"num_samples": 500})
    assert statistic_hash(spec, s.metric, with_params) != h

    # a numerator/denominator metric: its definition is part of the hash
    ratio = attrs.evolve(s.statistic, params={"numerator": "uri_count"})
    h_ratio = statistic_hash(spec, s.metric, ratio)
    uri = spec.metric_definitions["uri_count"]
    edited = attrs.evolve(
        spec,
        metric_definitions={
            **spec.metric_definitions,
            "uri_count": attrs.evolve(uri, select_expression="SUM(uri_count) + 0"),
        },
    )
    assert metric_hash(edited, s.metric) == metric_hash(spec, s.metric)  # not a dependency
    assert statistic_hash(edited, s.metric, ratio) != h_ratio
    assert statistic_hash(edited, s.metric, s.statistic) == h  # without it: unaffected

    # covariate adjustment: its period and its metric's definition
    cov = attrs.evolve(
        s.statistic, covariate_adjustment=CovariateAdjustment(Period.PREENROLLMENT_WEEK)
    )
    h_cov = statistic_hash(spec, s.metric, cov)
    assert h_cov != h
    days28 = attrs.evolve(
        s.statistic, covariate_adjustment=CovariateAdjustment(Period.PREENROLLMENT_DAYS28)
    )
    assert statistic_hash(spec, s.metric, days28) != h_cov
    other_metric = attrs.evolve(
        s.statistic,
        covariate_adjustment=CovariateAdjustment(Period.PREENROLLMENT_WEEK, "uri_count"),
    )
    h_other = statistic_hash(spec, s.metric, other_metric)
    assert h_other != h_cov
    assert statistic_hash(edited, s.metric, other_metric) != h_other

    # multiple-comparison correction changes statistics, not metrics
    holm = spec_of(repo, 'multiple_comparisons = "holm"\n')
    assert holm.experiment.multiple_comparisons is MultipleComparisons.HOLM
    assert changed(spec, holm) == {k for k in all_hashes(spec) if k.startswith("statistic ")}
