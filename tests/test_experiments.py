from __future__ import annotations

import copy
import datetime as dt
import json
import re
import time

import jsonschema
import pytest

from jetstream.config.model import Branch
from jetstream.errors import EXIT_TRANSIENT, EXIT_USAGE, ExperimentSourceError, TransientError
from jetstream.experiments import (
    Experiment,
    branch_problems,
    load_experiments,
    parse_experiment_set,
    parse_experiments,
)
from tests.support import servers
from tests.support.paths import REPO
from tests.support.servers import Reply, ScriptedHTTPServer

http_server = servers.http_server  # fixture

V8_DESKTOP = {
    "schemaVersion": "1.12.0",
    "slug": "pref-search-ui-2024",
    "id": "pref-search-ui-2024",
    "application": "firefox-desktop",
    "appName": "firefox_desktop",
    "appId": "firefox-desktop",
    "channel": "release",
    "userFacingName": "Search UI",
    "userFacingDescription": "A search UI experiment",
    "isEnrollmentPaused": True,
    "isRollout": False,
    "bucketConfig": {
        "randomizationUnit": "normandy_id",
        "namespace": "firefox-desktop-search-1",
        "start": 0,
        "count": 2000,
        "total": 10000,
    },
    "featureIds": ["search"],
    "probeSets": [],
    "outcomes": [{"slug": "search_outcome", "priority": "primary"}],
    "branches": [
        {
            "slug": "control",
            "ratio": 1,
            "feature": {"featureId": "x", "enabled": True, "value": {}},
        },
        {"slug": "treatment", "ratio": 2},
    ],
    "targeting": "true",
    "startDate": "2024-03-01",
    "enrollmentEndDate": "2024-03-08",
    "endDate": "2024-04-05",
    "proposedDuration": 35,
    "proposedEnrollment": 7,
    "referenceBranch": "control",
    "segments": ["new_users"],
}

V8_FENIX = {
    "slug": "fenix-onboarding",
    "appName": "fenix",
    "appId": "org.mozilla.firefox",
    "application": "org.mozilla.firefox",
    "isEnrollmentPaused": False,
    "isRollout": True,
    "bucketConfig": {"randomizationUnit": "nimbus_id"},
    "branches": [{"slug": "on", "ratio": 1}],
    "startDate": "2024-05-01",
    "endDate": None,
    "enrollmentEndDate": None,
    "proposedEnrollment": 14,
    "referenceBranch": "on",
    "outcomes": [],
}


def test_from_v8_reads_every_field():
    e = Experiment.from_v8(V8_DESKTOP)
    assert e.slug == "pref-search-ui-2024"
    assert e.app_name == "firefox_desktop"
    assert e.app_id == "firefox-desktop"
    assert e.branches == (Branch("control", 1.0), Branch("treatment", 2.0))
    assert e.reference_branch == "control"
    assert e.start_date == dt.date(2024, 3, 1)
    assert e.end_date == dt.date(2024, 4, 5)
    assert e.enrollment_end_date == dt.date(2024, 3, 8)
    assert e.proposed_enrollment == 7
    assert e.is_enrollment_paused is True
    assert e.is_rollout is False
    assert e.status is None
    assert e.outcomes == ("search_outcome",)
    assert e.segments == ("new_users",)
    assert e.randomization_unit == "normandy_id"
    assert e.enrollment_period == 7


def test_platform_names_kept_as_given_and_fallback_to_application():
    assert Experiment.from_v8(V8_FENIX).app_name == "fenix"
    no_app_name = {k: v for k, v in V8_DESKTOP.items() if k != "appName"}
    assert Experiment.from_v8(no_app_name).app_name == "firefox_desktop"


def test_status_from_status_or_publish_status():
    assert Experiment.from_v8({**V8_FENIX, "status": "Live"}).status == "Live"
    assert Experiment.from_v8({**V8_FENIX, "publishStatus": "Idle"}).status == "Idle"


def test_datetime_dates_accepted():
    e = Experiment.from_v8({**V8_FENIX, "startDate": "2024-05-01T12:30:00Z"})
    assert e.start_date == dt.date(2024, 5, 1)


def test_enrollment_period_falls_back_to_proposed():
    assert Experiment.from_v8(V8_FENIX).enrollment_period == 14


@pytest.mark.parametrize("payload", [V8_DESKTOP, V8_FENIX])
def test_to_v8_round_trips(payload):
    e = Experiment.from_v8(payload)
    again = Experiment.from_v8(json.loads(json.dumps(e.to_v8())))
    assert again == e


@pytest.mark.shared
def test_sample_payload_keys_are_valid_nimbus_fields(shared_dir):
    # Our sample carries the v8 API's extra keys (appName, isRollout, outcomes...): check that
    # everything the Remote Settings schema does define is well-formed in it.
    schema = json.loads((shared_dir / "schemas" / "NimbusExperiment_v1.0.json").read_text())
    definition = copy.deepcopy(schema["definitions"]["NimbusExperiment"])
    definition["additionalProperties"] = True
    definition["properties"]["startDate"].pop("format")
    jsonschema.validate(V8_DESKTOP, definition)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"slug": None}, ["slug"]),
        ({"slug": ""}, ["slug"]),
        ({"startDate": "2024-13-01"}, ["pref-search-ui-2024", "startDate", "2024-13-01"]),
        ({"endDate": "yesterday"}, ["endDate", "yesterday"]),
        ({"enrollmentEndDate": 20240101}, ["enrollmentEndDate"]),
        ({"branches": "control"}, ["branches"]),
        ({"branches": [{"ratio": 1}]}, ["branches[0].slug"]),
        ({"branches": [{"slug": "a"}, {"slug": "a"}]}, ["branches[1].slug", "repeats"]),
        ({"branches": [{"slug": "a", "ratio": "1"}]}, ["branches[0].ratio"]),
        ({"proposedEnrollment": "7"}, ["proposedEnrollment"]),
        ({"isRollout": "yes"}, ["isRollout"]),
        ({"outcomes": [{"priority": "primary"}]}, ["outcomes[0]"]),
        ({"bucketConfig": {"randomizationUnit": 3}}, ["bucketConfig.randomizationUnit"]),
        ({"appName": None, "application": None}, ["appName"]),
    ],
)
def test_bad_records_name_source_slug_and_field(change, words):
    payload = {**V8_DESKTOP, **change}
    with pytest.raises(ExperimentSourceError) as info:
        parse_experiments([V8_FENIX, payload], "experiments.json")
    message = str(info.value)
    assert "experiments.json[1]" in message
    for w in words:
        assert w in message
    assert info.value.exit_code == EXIT_USAGE


def test_not_a_list_and_not_an_object_and_duplicates():
    with pytest.raises(ExperimentSourceError, match="expected a JSON array"):
        parse_experiments({"results": []}, "src")
    with pytest.raises(ExperimentSourceError, match=r"src\[0\].*JSON object"):
        parse_experiments(["pref-search-ui-2024"], "src")
    with pytest.raises(ExperimentSourceError, match="collides"):
        parse_experiments([V8_FENIX, V8_FENIX], "src")


def test_load_from_file(tmp_path):
    path = tmp_path / "experiments.json"
    path.write_text(json.dumps([V8_DESKTOP, V8_FENIX]))
    experiments = load_experiments(str(path))
    assert sorted(experiments) == ["fenix-onboarding", "pref-search-ui-2024"]
    assert load_experiments(f"file://{path}") == experiments


def test_load_from_file_errors(tmp_path):
    with pytest.raises(ExperimentSourceError, match="not found"):
        load_experiments(str(tmp_path / "missing.json"))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("<html>oops</html>")
    with pytest.raises(ExperimentSourceError, match=r"garbage.json: .*not valid JSON"):
        load_experiments(str(garbage))


# --- HTTP, against a real server on 127.0.0.1 -------------------------------------------

API = "/api/v8/experiments/"
BODY = json.dumps([V8_DESKTOP, V8_FENIX]).encode()


def test_http_ok(http_server):
    http_server.route(API, Reply(200, BODY))
    experiments = load_experiments(http_server.url(API))
    assert set(experiments) == {"pref-search-ui-2024", "fenix-onboarding"}
    assert http_server.requests[0].method == "GET"
    assert http_server.requests[0].headers["Accept"] == "application/json"


def test_http_503_then_200_is_retried(http_server):
    http_server.route(API, Reply(503, b"busy"), Reply(429, b"slow down"), Reply(200, BODY))
    waits: list[float] = []
    experiments = load_experiments(
        http_server.url(API), retries=3, backoff=0.01, sleep=waits.append
    )
    assert len(experiments) == 2
    assert len(http_server.requests) == 3
    assert waits == [0.01, 0.02]  # exponential


def test_http_retry_after_is_honoured(http_server):
    http_server.route(API, Reply(503, headers={"Retry-After": "2"}), Reply(200, BODY))
    waits: list[float] = []
    load_experiments(http_server.url(API), backoff=0.01, sleep=waits.append)
    assert waits == [2.0]


def test_http_5xx_exhaustion_is_transient(http_server):
    http_server.route(API, Reply(502, b"bad gateway"))
    with pytest.raises(TransientError) as info:
        load_experiments(http_server.url(API), retries=2, backoff=0.001)
    assert "3 attempts" in str(info.value) and "502" in str(info.value)
    assert http_server.url(API) in str(info.value)
    assert info.value.exit_code == EXIT_TRANSIENT
    assert len(http_server.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_http_4xx_fails_at_once(http_server, status):
    http_server.route(API, Reply(status, b'{"detail": "nope"}'))
    with pytest.raises(ExperimentSourceError) as info:
        load_experiments(http_server.url(API), retries=3, backoff=0.001)
    assert f"HTTP {status}" in str(info.value)
    assert http_server.url(API) in str(info.value)
    assert len(http_server.requests) == 1


def test_http_hanging_response_times_out(http_server):
    http_server.route(API, Reply(200, BODY, delay=30))
    start = time.monotonic()
    with pytest.raises(TransientError, match="timed out"):
        load_experiments(http_server.url(API), timeout=0.2, retries=1, backoff=0.001)
    assert time.monotonic() - start < 20  # not the 30 s stall: the client gave up
    assert len(http_server.requests) == 2


def test_http_hang_then_ok(http_server):
    http_server.route(API, Reply(200, BODY, delay=30), Reply(200, BODY))
    assert len(load_experiments(http_server.url(API), timeout=0.2, backoff=0.001)) == 2


def test_http_connection_refused_is_transient():
    server = ScriptedHTTPServer().start()
    url = server.url(API)
    server.stop()
    with pytest.raises(TransientError, match="connection failed"):
        load_experiments(url, retries=1, backoff=0.001)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>Service maintenance</html>", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b'{"detail": "paged"}', "expected a JSON array"),
    ],
)
def test_http_garbage_bodies(http_server, body, match):
    http_server.route(API, Reply(200, body))
    with pytest.raises(ExperimentSourceError, match=match) as info:
        load_experiments(http_server.url(API), retries=0)
    assert http_server.url(API) in str(info.value)


@pytest.mark.parametrize(
    ("body", "label", "match"),
    [
        (b'[{"slug": "x", "appName": "fenix", "startDate": "soon"}]', "x", "startDate"),
        (b"[1, 2]", "[0]", r"\[0\].*JSON object"),
    ],
)
def test_http_bad_records_are_rejected_one_by_one(http_server, body, label, match):
    http_server.route(API, Reply(200, body))
    found = load_experiments(http_server.url(API), retries=0)
    assert dict(found) == {}
    key = next(k for k in found.rejected if k.endswith(label))
    assert http_server.url(API) in found.rejected[key]
    assert re.search(match, found.rejected[key])


# -- hardening: one bad record, hostile slugs, fetch limits --------------------------------

HOSTILE_SLUGS = [
    "demo-sidebar-redesign' OR event_method = 'enroll' OR 'a'='b",
    "x`; DROP TABLE errors; --",
    "line\nbreak",
    "../../x/outside",
    "a/b",
    "Demo_Sidebar_Redesign",
    "-leading-hyphen",
    "x" * 201,
]


@pytest.mark.parametrize("slug", HOSTILE_SLUGS)
def test_hostile_slugs_are_rejected_alone(slug):
    found = parse_experiment_set([{**V8_DESKTOP, "slug": slug}, V8_FENIX], "src")
    assert list(found) == ["fenix-onboarding"]
    [(label, message)] = found.rejected.items()
    assert label == "src[0]"
    assert "field 'slug' is not an Experimenter slug" in message
    with pytest.raises(ExperimentSourceError, match="Experimenter slug"):
        parse_experiments([{**V8_DESKTOP, "slug": slug}], "src")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("branches", [{"slug": "control' OR 1=1 --", "ratio": 1}]),
        ("referenceBranch", "control'"),
        ("appName", "firefox_desktop; DROP"),
        ("appId", "a\nb"),
        ("outcomes", [{"slug": "../x"}]),
        ("segments", ["a b"]),
    ],
)
def test_hostile_names_are_rejected(field, value):
    found = parse_experiment_set([{**V8_DESKTOP, field: value}], "src")
    assert dict(found) == {}
    [message] = found.rejected.values()
    assert field in message


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (1e9, "at most"),
        (10**30, "at most"),
        (float("inf"), "whole number"),
        (float("nan"), "whole number"),
        (-1, "negative"),
        (2.5, "whole number"),
    ],
)
def test_bad_enrollment_numbers_are_rejected_without_a_traceback(value, problem):
    found = parse_experiment_set([{**V8_DESKTOP, "proposedEnrollment": value}, V8_FENIX], "src")
    assert list(found) == ["fenix-onboarding"]
    [message] = found.rejected.values()
    assert "proposedEnrollment" in message and problem in message


def test_json_infinity_from_a_file_is_rejected(tmp_path):
    path = tmp_path / "experiments.json"
    body = json.dumps([V8_DESKTOP, V8_FENIX]).replace(
        '"proposedEnrollment": 7', '"proposedEnrollment": 1e400'
    )
    path.write_text(body)
    found = load_experiments(str(path))
    assert list(found) == ["fenix-onboarding"]
    assert "pref-search-ui-2024" in found.rejected


@pytest.mark.parametrize(
    "other",
    ["pref_search_ui_2024", "pref.search.ui.2024", "pref-search-ui-2024", "pref--search-ui-2024-"],
)
def test_slugs_equal_after_normalisation_are_all_rejected(other):
    records = [V8_DESKTOP, {**V8_DESKTOP, "slug": other}, V8_FENIX]
    found = parse_experiment_set(records, "src")
    assert list(found) == ["fenix-onboarding"]
    assert len(found.rejected) == 2
    assert all("collides" in m for m in found.rejected.values())


def test_branch_problems():
    assert branch_problems("x", (), "control") == [
        "experiment 'x': has no branches (field 'branches' is empty)"
    ]
    assert "no reference branch" in branch_problems("x", ("a", "b"), None)[0]
    assert "not one of its branches" in branch_problems("x", ("a", "b"), "c")[0]
    assert branch_problems("x", ("a", "b"), "a") == []


def test_http_redirect_loop_is_a_clear_transient_error(http_server):
    http_server.route(API, Reply(302, b"", headers={"Location": API}))
    with pytest.raises(TransientError, match="more than 3 redirects") as info:
        load_experiments(http_server.url(API), retries=0, max_redirects=3)
    assert info.value.exit_code == EXIT_TRANSIENT
    assert len(http_server.requests) == 4


def test_http_slow_drip_ends_at_the_deadline(http_server):
    body = json.dumps([V8_FENIX]).encode()
    http_server.route(API, Reply(200, body, drip=0.3))
    started = time.monotonic()
    with pytest.raises(TransientError, match="1.5 s deadline") as info:
        load_experiments(http_server.url(API), retries=2, timeout=1, deadline=1.5)
    assert time.monotonic() - started < 4
    assert info.value.exit_code == EXIT_TRANSIENT


def test_http_declared_oversize_is_refused_before_reading(http_server):
    http_server.route(API, Reply(200, b"[]", content_length=3 * 1024**3))
    with pytest.raises(TransientError, match="3,221,225,472 bytes is over the 1,000-byte limit"):
        load_experiments(http_server.url(API), retries=0, max_bytes=1000)


def test_http_undeclared_oversize_stops_reading_at_the_cap(http_server):
    body = json.dumps([V8_FENIX] * 200).encode()
    assert len(body) > 20_000
    http_server.route(API, Reply(200, body, content_length=-1))
    with pytest.raises(TransientError, match="over the 10,000-byte limit; stopped reading"):
        load_experiments(http_server.url(API), retries=0, max_bytes=10_000)
    # under the cap the same streaming read gives the whole body
    http_server.route(API, Reply(200, json.dumps([V8_FENIX]).encode(), content_length=-1))
    assert list(load_experiments(http_server.url(API), retries=0, max_bytes=10_000)) == [
        "fenix-onboarding"
    ]


@pytest.mark.parametrize("command", ["run", "validate-config"])
def test_fetch_limits_exit_75_through_the_cli(http_server, tmp_path, command):
    import os
    import subprocess
    import sys

    from jetstream import synthetic

    http_server.route(API, Reply(302, b"", headers={"Location": API}))
    args = {
        "run": [
            "run",
            "--date",
            "2026-01-17",
            "--config-repo",
            str(synthetic.DEMO_DIR),
            "--warehouse",
            f"duckdb:{tmp_path / 'w.duckdb'}",
            "--out",
            str(tmp_path / "out"),
        ],
        "validate-config": ["validate-config", str(tmp_path / "x.toml")],
    }[command]
    root = str(REPO)
    env = {**os.environ, "PYTHONPATH": root, "JETSTREAM_LOG_FORMAT": "console"}
    res = subprocess.run(
        [sys.executable, "-m", "jetstream.cli", *args, "--experiments", http_server.url(API)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == EXIT_TRANSIENT, res.stdout + res.stderr
    assert "more than 5 redirects" in res.stderr
    assert "Traceback" not in res.stdout + res.stderr


def test_a_date_near_the_calendar_end_is_refused_not_an_overflow():
    """Found by the fuzz suite: a start date near 9999-12-31 overflowed when the last
    enrollment date was computed; such a record is refused at load."""
    import json as _json

    from jetstream.errors import ExperimentSourceError
    from jetstream.experiments import parse_experiments
    from jetstream.synthetic import DEMO_DIR

    [record] = [
        r
        for r in _json.loads((DEMO_DIR / "experiments.json").read_text())
        if r["slug"] == "demo-sidebar-redesign"
    ]
    record = {**record, "startDate": "9999-12-25", "endDate": None}
    with pytest.raises(ExperimentSourceError, match="'startDate' must be between"):
        parse_experiments([record], "test")
