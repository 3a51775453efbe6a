from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import attrs
import jsonschema
import numpy as np
import pytest

from jetstream.artifacts import GCSArtifactStore, LocalArtifactStore
from jetstream.config.model import (
    AnalysisBasis,
    AnalysisSpec,
    Branch,
    DataSource,
    ExperimentSettings,
    Metric,
    StatisticSpec,
    Summary,
)
from jetstream.export import (
    SRM_KEY,
    errors_document,
    errors_path,
    file_slug,
    metadata_document,
    metadata_path,
    publish,
    spec_summary,
    statistics_documents,
    statistics_path,
    unpublishable_statistics,
)
from jetstream.periods import Period
from tests.support import servers
from tests.support.servers import gcs_client

gcs_emulator = servers.gcs_emulator  # fixtures
gcs_emulator_server = servers.gcs_emulator_server

SLUG = "my-exp.v2"


def stat(**kw):
    row = {
        "metric": "active_hours",
        "statistic": "mean",
        "parameter": None,
        "branch": "treatment",
        "comparison": None,
        "comparison_to_branch": None,
        "ci_width": 0.95,
        "point": 1.25,
        "lower": 1.0,
        "upper": 1.5,
        "p_value": None,
        "p_value_adjusted": None,
        "segment": "all",
        "analysis_basis": "enrollments",
        "period": "day",
        "window_index": 1,
        "definition_hash": "abc123",
    }
    row.update(kw)
    return row


ROWS = [
    stat(),
    stat(branch="control", point=1.1, window_index=2),
    stat(
        comparison="relative_uplift",
        comparison_to_branch="control",
        point=0.12,
        lower=-0.01,
        upper=0.2,
        p_value=0.04,
        p_value_adjusted=0.08,
    ),
    stat(statistic="deciles", parameter=0.1, point=0.28),
    stat(statistic="deciles", parameter=0.30000000000000004, point=0.5),
    stat(statistic="count", ci_width=None, lower=None, upper=None, point=np.float64(1000)),
    stat(period="week", window_index=1, segment="new_users", analysis_basis="exposures"),
    stat(period="overall", window_index=1, lower=float("nan"), upper=float("inf")),
    # not publishable as statistics:
    stat(point=float("nan"), metric="broken_ratio"),
    stat(point=None, metric="no_point"),
    stat(level="ERROR", exception_type="ValueError", metric="errored"),
]

ERRORS = [
    {
        "run": "run-2",
        "experiment": SLUG,
        "period": "week",
        "window": 1,
        "data_source": "clients_daily",
        "metric": "uri_count",
        "statistic": None,
        "level": "warning",
        "exception_type": "NoEnrollmentPeriodWarning",
        "message": "few clients",
        "timestamp": dt.datetime(2024, 3, 9, 5, 0, tzinfo=dt.UTC),
    },
    {
        "run": "run-1",
        "experiment": SLUG,
        "period": "daily",
        "window": 2,
        "data_source": None,
        "metric": "active_hours",
        "statistic": "bootstrap_mean",
        "level": "ERROR",
        "exception_type": "StatisticComputationException",
        "message": "division by zero",
        "filename": "jetstream/statistics/bootstrap.py",
        "func_name": "bootstrap_mean",
        "timestamp": dt.datetime(2024, 3, 8, 5, 0, tzinfo=dt.UTC),
    },
]


def load_schema(shared_dir: Path, name: str) -> dict:
    return json.loads((shared_dir / "schemas" / name).read_text())


def validate(doc, schema) -> None:
    jsonschema.validate(doc, schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def strict(schema: dict, definition: str, extra: set[str]) -> dict:
    """The schema with additionalProperties false on `definition` (plus `extra` keys), so a
    typo in a published key fails."""
    s = copy.deepcopy(schema)
    d = s["definitions"][definition]
    for key in extra:
        d["properties"].setdefault(key, {})
    d["additionalProperties"] = False
    return s


def test_paths():
    assert file_slug(SLUG) == "my_exp_v2"
    assert statistics_path(SLUG, Period.DAYS28) == "statistics/statistics_my_exp_v2_days28.json"
    assert statistics_path(SLUG, "week") == "statistics/statistics_my_exp_v2_weekly.json"
    assert metadata_path(SLUG) == "metadata/metadata_my_exp_v2.json"
    assert errors_path(SLUG) == "errors/errors_my_exp_v2.json"


def test_statistics_documents_shape():
    docs = statistics_documents(
        ROWS, [Period.DAY, Period.WEEK, Period.OVERALL, "28_day"], slug=SLUG
    )
    assert sorted(docs) == [
        "statistics/statistics_my_exp_v2_daily.json",
        "statistics/statistics_my_exp_v2_days28.json",
        "statistics/statistics_my_exp_v2_overall.json",
        "statistics/statistics_my_exp_v2_weekly.json",
    ]
    assert docs["statistics/statistics_my_exp_v2_days28.json"] == []  # due, no rows: empty
    daily = docs["statistics/statistics_my_exp_v2_daily.json"]
    assert len(daily) == 6
    assert {d["metric"] for d in daily} == {"active_hours"}  # broken/error rows left out
    first = daily[0]
    assert first == {
        "metric": "active_hours",
        "statistic": "count",
        "branch": "treatment",
        "point": 1000.0,
        "segment": "all",
        "analysis_basis": "enrollments",
        "window_index": "1",
    }
    for d in daily + docs["statistics/statistics_my_exp_v2_overall.json"]:
        assert None not in d.values()
        assert isinstance(d["window_index"], str)
        assert "definition_hash" not in d and "period" not in d
    uplift = next(d for d in daily if d.get("comparison") == "relative_uplift")
    assert uplift["comparison_to_branch"] == "control"
    assert uplift["p_value"] == 0.04 and uplift["p_value_adjusted"] == 0.08
    deciles = [d for d in daily if d["statistic"] == "deciles"]
    assert [d["parameter"] for d in deciles] == ["0.1", "0.3"]
    assert daily[-1]["window_index"] == "2"  # sorted by window
    overall = docs["statistics/statistics_my_exp_v2_overall.json"]
    assert overall == [
        {
            "metric": "active_hours",
            "statistic": "mean",
            "branch": "treatment",
            "ci_width": 0.95,
            "point": 1.25,
            "segment": "all",
            "analysis_basis": "enrollments",
            "window_index": "1",
        }
    ]
    json.dumps(docs, allow_nan=False)  # strictly valid JSON


def test_statistics_slug_from_rows_and_missing_slug():
    docs = statistics_documents([{**stat(), "experiment": "a-b"}])
    assert list(docs) == ["statistics/statistics_a_b_daily.json"]
    with pytest.raises(ValueError, match="no experiment slug"):
        statistics_documents([stat()])
    with pytest.raises(ValueError, match="unknown analysis period"):
        statistics_documents([stat(period="fortnight")], slug=SLUG)


def test_unpublishable_rows_become_warnings():
    warnings = unpublishable_statistics(ROWS, slug=SLUG)
    assert [w["metric"] for w in warnings] == ["broken_ratio", "no_point", "errored"]
    assert all(w["level"] == "WARNING" for w in warnings)
    assert "not a finite number" in warnings[0]["message"]
    assert "error row" in warnings[2]["message"]


@pytest.mark.shared
def test_statistics_documents_valid_against_schema(shared_dir):
    schema = load_schema(shared_dir, "Statistics_v1.0.json")
    tight = strict(schema, "Statistic", {"branch", "p_value", "p_value_adjusted"})
    docs = statistics_documents(ROWS, list(Period), slug=SLUG)
    assert len(docs) == len(Period)
    for doc in docs.values():
        validate(doc, schema)
        validate(doc, tight)
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        validate([{**docs[statistics_path(SLUG, "day")][0], "window_index": 1}], schema)


@pytest.mark.shared
def test_statistics_documents_match_established_rows(shared_dir):
    """Rows shaped like the reference output come out with the same keys and values."""
    expected = json.loads(
        (
            shared_dir / "reference" / "expected" / "d2_100000__deciles__active_hours.json"
        ).read_text()
    )[:5]
    rows = [{**r, "period": "overall", "window_index": int(r["window_index"])} for r in expected]
    (doc,) = statistics_documents(rows, slug="x").values()
    # the established output keeps explicit nulls; ours leaves them out
    expected_clean = [{k: v for k, v in r.items() if v is not None} for r in expected]
    key = lambda d: (d["branch"], d.get("comparison") or "", float(d["parameter"]))  # noqa: E731
    assert sorted(doc, key=key) == sorted(expected_clean, key=key)


def make_spec() -> AnalysisSpec:
    ds = DataSource(name="clients_daily", from_expression="mozdata.telemetry.clients_daily")
    hours = Metric(
        name="active_hours",
        select_expression="SUM(active_hours_sum)",
        data_source=ds,
        friendly_name="Active hours",
        description="Hours the browser was active",
    )
    crashes = Metric(
        name="crashes",
        select_expression="COUNT(*)",
        data_source=ds,
        bigger_is_better=False,
        analysis_bases=(AnalysisBasis.EXPOSURES,),
    )
    settings = ExperimentSettings(
        slug=SLUG,
        app_name="firefox_desktop",
        branches=(Branch("control"), Branch("treatment")),
        reference_branch="control",
        start_date=dt.date(2024, 3, 1),
        end_date=dt.date(2024, 4, 5),
        enrollment_period=7,
    )
    mean = StatisticSpec("bootstrap_mean")
    return AnalysisSpec(
        experiment=settings,
        metrics={
            Period.WEEK: (Summary(hours, mean), Summary(crashes, mean)),
            Period.OVERALL: (Summary(hours, StatisticSpec("deciles")),),
        },
    )


SRM = [
    {
        "period": Period.WEEK,
        "window_index": 1,
        "analysis_basis": "enrollments",
        "chi2": 0.5,
        "p_value": np.float64(0.48),
        "observed": {"control": 1000, "treatment": 1010},
        "expected": {"control": 1005.0, "treatment": 1005.0},
        "mismatch": False,
    }
]


def make_metadata() -> dict:
    summary = spec_summary(
        make_spec(),
        outcomes={
            "search": {
                "friendly_name": "Search",
                "description": "Search metrics",
                "metrics": ["active_hours"],
                "default_metrics": [],
                "commit_hash": "deadbeef",
            }
        },
        external_config={
            "url": "https://github.com/mozilla/metric-hub/blob/main/jetstream/my-exp.toml",
            "reference_branch": "control",
            "start_date": dt.date(2024, 3, 1),
            "end_date": None,
            "enrollment_period": 7,
            "skip": False,
        },
    )
    return metadata_document(
        summary, SRM, analysis_start_time=dt.datetime(2024, 3, 9, 4, 30, tzinfo=dt.UTC)
    )


def test_metadata_document_content():
    meta = make_metadata()
    assert meta["schema_version"] == 4
    assert meta["analysis_start_time"] == "2024-03-09T04:30:00+00:00"
    assert meta["metrics"] == {
        "active_hours": {
            "friendly_name": "Active hours",
            "description": "Hours the browser was active",
            "bigger_is_better": True,
            "analysis_bases": ["enrollments", "exposures"],
        },
        "crashes": {
            "friendly_name": "crashes",
            "description": "",
            "bigger_is_better": False,
            "analysis_bases": ["exposures"],
        },
    }
    assert meta["outcomes"]["search"]["slug"] == "search"
    assert meta["outcomes"]["search"]["commit_hash"] == "deadbeef"
    assert meta["external_config"]["start_date"] == "2024-03-01"
    assert meta[SRM_KEY] == [
        {
            "period": "week",
            "window_index": 1,
            "analysis_basis": "enrollments",
            "chi2": 0.5,
            "p_value": 0.48,
            "observed": {"control": 1000, "treatment": 1010},
            "expected": {"control": 1005.0, "treatment": 1005.0},
            "mismatch": False,
        }
    ]
    json.dumps(meta, allow_nan=False)


def test_metadata_external_config_needs_url():
    with pytest.raises(ValueError, match="url"):
        metadata_document({"metrics": {}, "outcomes": {}, "external_config": {"skip": True}})
    minimal = metadata_document({"metrics": {}, "outcomes": {}})
    assert minimal["external_config"] is None and minimal[SRM_KEY] == []


@pytest.mark.shared
def test_metadata_valid_against_schema(shared_dir):
    schema = load_schema(shared_dir, "Metadata_v1.0.json")
    meta = make_metadata()
    validate(meta, schema)
    validate(metadata_document({"metrics": {}, "outcomes": {}}), schema)
    # Our SRM key is an extra top-level property: the schema's Metadata object allows it.
    assert "additionalProperties" not in schema["definitions"]["Metadata"]
    for name in ("MetricMetadata", "OutcomeMetadata", "ExternalConfigMetadata"):
        tight = strict(schema, name, set())
        validate(meta, tight)
    broken = copy.deepcopy(meta)
    del broken["metrics"]["crashes"]["friendly_name"]
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, schema)


def test_errors_document_keeps_everything():
    doc = errors_document(ERRORS)
    assert [e["run"] for e in doc] == ["run-1", "run-2"]  # oldest first
    assert doc[0] == {
        "experiment": SLUG,
        "run": "run-1",
        "analysis_period": "day",
        "window_index": "2",  # a string, as in the statistics documents
        "data_source": None,
        "metric": "active_hours",
        "statistic": "bootstrap_mean",
        "segment": None,
        "analysis_basis": None,
        "log_level": "ERROR",
        "exception_type": "StatisticComputationException",
        "message": "division by zero",
        "filename": "jetstream/statistics/bootstrap.py",
        "func_name": "bootstrap_mean",
        "source": "jetstream",
        "timestamp": "2024-03-08T05:00:00+00:00",
    }
    # rows recorded before filename/func_name existed still carry both keys
    assert (doc[1]["filename"], doc[1]["func_name"]) == ("<unknown>", "<unknown>")
    assert doc[1]["log_level"] == "WARNING"
    assert doc[1]["analysis_period"] == "week"
    json.dumps(doc, allow_nan=False)


@pytest.fixture(params=["local", "gcs"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "out")
    request.getfixturevalue("gcs_emulator")
    client = gcs_client()
    client.create_bucket("mozanalysis")
    return GCSArtifactStore("mozanalysis", "", client=client)


@pytest.mark.shared
def test_publish(store, shared_dir):
    meta = make_metadata()
    written = publish(store, SLUG, ROWS, ERRORS, meta, periods=[Period.DAY, Period.WEEK])
    assert written == [
        "statistics/statistics_my_exp_v2_daily.json",
        "statistics/statistics_my_exp_v2_overall.json",
        "statistics/statistics_my_exp_v2_weekly.json",
        "errors/errors_my_exp_v2.json",
        "metadata/metadata_my_exp_v2.json",
    ]
    assert store.list() == sorted(written)
    stats_schema = load_schema(shared_dir, "Statistics_v1.0.json")
    for path in written[:3]:
        validate(json.loads(store.read_bytes(path)), stats_schema)
    validate(
        json.loads(store.read_bytes(written[4])), load_schema(shared_dir, "Metadata_v1.0.json")
    )
    assert json.loads(store.read_bytes(written[4])) == meta
    errors = json.loads(store.read_bytes(written[3]))
    # both error rows, plus a warning for each statistic row that could not be published
    assert len(errors) == 5
    assert {e["metric"] for e in errors} == {
        "uri_count",
        "active_hours",
        "broken_ratio",
        "no_point",
        "errored",
    }
    assert all(e["timestamp"] for e in errors)
    daily = json.loads(store.read_bytes(written[0]))
    assert daily == statistics_documents(ROWS, slug=SLUG)[written[0]]

    # a later run with no statistics for a due period replaces the file with an empty array
    publish(store, SLUG, [], [], None, periods=[Period.DAY])
    assert json.loads(store.read_bytes(written[0])) == []
    assert json.loads(store.read_bytes(written[3])) == []
    assert json.loads(store.read_bytes(written[4])) == meta  # metadata untouched


def test_outcome_summary_and_config_url():
    from jetstream.export import config_file_url, outcome_summary

    doc = {
        "friendly_name": "Search",
        "description": "Searches.",
        "metrics": {"searches": {}, "ad_clicks": {}},
        "default_metrics": ["searches"],
    }
    assert outcome_summary("search", doc) == {
        "slug": "search",
        "friendly_name": "Search",
        "description": "Searches.",
        "metrics": ["searches", "ad_clicks"],
        "default_metrics": ["searches"],
    }
    assert outcome_summary("bare", {})["friendly_name"] == "bare"
    assert config_file_url("my-exp") == (
        "https://github.com/mozilla/metric-hub/blob/main/jetstream/my-exp.toml"
    )
    assert config_file_url("x", "https://git.example/org/configs.git@abc123") == (
        "https://git.example/org/configs/blob/main/jetstream/x.toml"
    )
    assert config_file_url("x", "/srv/configs").startswith("https://github.com/mozilla/")


def test_external_config_only_for_overrides():
    from jetstream.experiments import Experiment
    from jetstream.export import external_config_overrides

    settings = make_spec().experiment
    record = Experiment(
        slug=settings.slug,
        app_name=settings.app_name,
        app_id=None,
        branches=(),
        reference_branch=settings.reference_branch,
        start_date=settings.start_date,
        end_date=settings.end_date,
        proposed_enrollment=settings.enrollment_period,
        enrollment_end_date=None,
        is_enrollment_paused=False,
        is_rollout=False,
        status="Live",
    )
    url = "https://github.com/mozilla/metric-hub/blob/main/jetstream/x.toml"
    assert external_config_overrides(settings, record, None, url=url) is None  # no file
    # a file that sets nothing Experimenter knows, or sets the same value, overrides nothing
    assert external_config_overrides(settings, record, {"segments": []}, url=url) is None
    same = {"end_date": str(settings.end_date)}
    assert external_config_overrides(settings, record, same, url=url) is None
    later = attrs.evolve(settings, end_date=settings.end_date + dt.timedelta(days=7))
    ext = external_config_overrides(later, record, {"end_date": "x"}, url=url)
    assert ext == {
        "reference_branch": None,
        "start_date": None,
        "end_date": later.end_date,
        "enrollment_period": None,
        "skip": False,
        "url": url,
    }
    meta = metadata_document({"metrics": {}, "external_config": ext})
    assert meta["external_config"]["end_date"] == later.end_date.isoformat()


def test_unpublishable_rows_of_one_statistic_give_one_warning():
    rows = [
        stat(metric="m", statistic="deciles", branch=b, parameter=q, point=None)
        for b in ("control", "treatment")
        for q in (0.1, 0.5)
    ] + [stat(metric="m", statistic="deciles", window_index=2, point=None)]
    warnings = unpublishable_statistics(rows, slug=SLUG)
    assert [(w["window"], w["message"].split(":")[0]) for w in warnings] == [
        (1, "4 statistic rows not published"),
        (2, "statistic row not published"),
    ]
    assert "first: branch='control'" in warnings[0]["message"]
