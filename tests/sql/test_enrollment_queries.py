"""Every enrollment query type and analysis unit, run on the embedded engine (DuckDB, through
the BigQuery transpiler) over small tables with the columns mozanalysis reads: who enrolls,
on which dates (the start date through start + enrollment_period), sampling by
`sample_id`, default exposures (`expose`/`exposure` of the enrolled branch, on or after
enrollment) and clients seen in two branches. Expected figures are mozanalysis's
(`Experiment._build_enrollments_query_*`, `_build_exposure_query_*`) for the same rows."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import attrs
import pyarrow as pa
import pytest

from jetstream.config.model import AnalysisSpec, Branch, ExperimentSettings
from jetstream.sql import enrollment_queries as eq
from jetstream.sql import enrollments as enr_sql
from jetstream.synthetic import glean_tables as gt
from jetstream.synthetic import tables as st
from jetstream.warehouse.duckdb import DuckDBWarehouse

SLUG = "my-exp"
START = dt.date(2026, 1, 5)
PERIOD = 7
LAST = START + dt.timedelta(days=PERIOD)  # 01-12: Jetstream's last enrollment date
APP_ID = "org.mozilla.firefox"
DATASET = "org_mozilla_firefox"


def settings(**kw: Any) -> ExperimentSettings:
    fields: dict[str, Any] = dict(
        slug=SLUG,
        app_name="fenix",
        app_id=APP_ID,
        branches=(Branch("control"), Branch("treatment")),
        reference_branch="control",
        start_date=START,
        end_date=START + dt.timedelta(days=35),
        enrollment_period=PERIOD,
        status="Complete",
        enrollments_query_type="glean-event",  # settings.py: the default off desktop
    )
    if kw.get("app_name") == "firefox_desktop":
        fields["enrollments_query_type"] = "normandy"
    fields.update(kw)
    return ExperimentSettings(**fields)


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


def ts(d: dt.date) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(12), tzinfo=dt.UTC)


# (client, branch, day offset, sample_id, kind): the same story for every query type.
# a: enrolls twice on day 0, exposed on day 1 (and once under another branch: ignored)
# b: enrolls on the last enrollment day (start + enrollment_period): counted
# c: enrolls the day after: not counted
# d: sample_id 50: only without a sample_size below 51
# e: seen in two branches: excluded
# f: exposure event before enrolling: not an exposure
STORY = [
    ("a", "control", 0, 3, "enroll"),
    ("a", "control", 0, 3, "enroll"),
    ("a", "control", 1, 3, "expose"),
    ("a", "treatment", 2, 3, "expose"),
    ("b", "treatment", PERIOD, 4, "enroll"),
    ("b", "treatment", PERIOD, 4, "exposure"),
    ("c", "control", PERIOD + 1, 5, "enroll"),
    ("d", "treatment", 2, 50, "enroll"),
    ("e", "control", 1, 6, "enroll"),
    ("e", "treatment", 3, 6, "enroll"),
    ("f", "control", 3, 7, "expose"),
    ("f", "control", 4, 7, "enroll"),
]
OTHER = ("z", "control", 1, 8, "enroll")  # an enrollment in another experiment


def rows_of(schema: pa.Schema, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def normandy_tables(unit_prefix: str = "") -> dict[str, pa.Table]:
    rows = []
    for client, branch, offset, sample, kind in [*STORY, OTHER]:
        key = "branch" if kind == "enroll" else "branchSlug"
        rows.append(
            dict(
                submission_date=day(offset),
                client_id=client,
                profile_group_id=f"{unit_prefix}{client}",
                sample_id=sample,
                event_timestamp=ts(day(offset)),
                event_category="normandy",
                event_method=kind,
                event_object="nimbus_experiment",
                event_string_value="other-exp" if client == "z" else SLUG,
                event_map_values=[{"key": key, "value": branch}],
                experiments=[],
            )
        )
    return {st.EVENTS: rows_of(st.SCHEMAS[st.EVENTS], rows)}


def glean_events_stream(dataset: str, client_field: str = "client_id") -> dict[str, pa.Table]:
    rows = []
    for client, branch, offset, sample, kind in [*STORY, OTHER]:
        name = "enrollment" if kind == "enroll" else kind
        extra = {"experiment": "other-exp" if client == "z" else SLUG, "branch": branch}
        rows.append(
            dict(
                submission_timestamp=ts(day(offset)),
                submission_date=day(offset),
                client_id=client if client_field == "client_id" else None,
                sample_id=sample,
                event_category="nimbus_events",
                event_name=name,
                event_extra=json.dumps(extra),
                metrics=json.dumps({"uuid": {"background_update_client_id": client}}),
                client_info={"client_id": client, "app_channel": "release", "os": "Android"},
                ping_info={"experiments": []},
            )
        )
    return {f"{dataset}.{gt.EVENTS_STREAM}": rows_of(gt.EVENTS_STREAM_SCHEMA, rows)}


def fenix_baseline() -> dict[str, pa.Table]:
    rows = []
    for client, branch, offset, sample, kind in [*STORY, OTHER, ("g", "control", -3, 9, "x")]:
        if kind not in ("enroll", "x"):
            continue
        rows.append(
            dict(
                submission_timestamp=ts(day(offset)),
                submission_date=day(offset),
                sample_id=sample,
                client_info={"client_id": client, "app_channel": "release", "os": "Android"},
                ping_info={
                    "experiments": [
                        {
                            "key": "other-exp" if client == "z" else SLUG,
                            "value": {"branch": branch, "extra": None},
                        }
                    ]
                },
            )
        )
    # g: annotated 3 days before the start, and again on day 1: enrolled before the start,
    # so left out (HAVING enrollment_date >= start)
    rows.append({**rows[-1], "submission_timestamp": ts(day(1)), "submission_date": day(1)})
    tables = {f"{DATASET}.{gt.BASELINE}": rows_of(gt.BASELINE_SCHEMA, rows)}
    return {**tables, **glean_events_stream(DATASET)}


def cirrus_tables() -> dict[str, pa.Table]:
    enroll, events = [], []
    for client, branch, offset, sample, kind in [*STORY, OTHER]:
        extra = [
            {"key": "nimbus_user_id", "value": client},
            {"key": "experiment", "value": "other-exp" if client == "z" else SLUG},
            {"key": "branch", "value": branch},
        ]
        ping = dict(
            submission_timestamp=ts(day(offset)),
            sample_id=sample,
            client_info={"client_id": "server", "app_channel": "production", "os": None},
            events=[
                {
                    "category": "cirrus_events",
                    "name": "enrollment" if kind == "enroll" else kind,
                    "timestamp": 0,
                    "extra": extra,
                }
            ],
        )
        (enroll if kind == "enroll" else events).append(ping)
    return {
        f"{DATASET}.{gt.ENROLLMENT}": rows_of(gt.EVENT_PINGS_SCHEMA, enroll),
        f"{DATASET}.{gt.EVENTS}": rows_of(gt.EVENT_PINGS_SCHEMA, events),
    }


def background_update_tables() -> dict[str, pa.Table]:
    ds = gt.BACKGROUND_UPDATE_DATASET
    stream = glean_events_stream(ds)[f"{ds}.{gt.EVENTS_STREAM}"]
    # h: only in the pings' experiment annotations; i: only a notification toast
    pings = rows_of(
        gt.BACKGROUND_UPDATE_SCHEMA,
        [
            dict(
                submission_timestamp=ts(day(2)),
                sample_id=10,
                metrics={"uuid": {"background_update_client_id": "h"}},
                ping_info={"experiments": [{"key": SLUG, "value": {"branch": "treatment"}}]},
            )
        ],
    )
    normandy = normandy_tables()[st.EVENTS]
    toast = rows_of(
        st.SCHEMAS[st.EVENTS],
        [
            dict(
                submission_date=day(3),
                client_id="i",
                profile_group_id="i",
                sample_id=11,
                event_timestamp=ts(day(3)),
                event_category="browser.launched_to_handle",
                event_method="system_notification",
                event_object="toast",
                event_string_value=None,
                event_map_values=[{"key": "name", "value": f"{SLUG}:control"}],
                experiments=[],
            )
        ],
    )
    return {
        f"{ds}.{gt.EVENTS_STREAM}": stream,
        f"{ds}.{gt.BACKGROUND_UPDATE}": pings,
        st.EVENTS: pa.concat_tables([normandy, toast]),
    }


@pytest.fixture()
def warehouse() -> Iterator[DuckDBWarehouse]:
    wh = DuckDBWarehouse(":memory:")
    try:
        yield wh
    finally:
        wh.close()


def enrolled(wh: DuckDBWarehouse, exp: ExperimentSettings, tables: dict[str, pa.Table]):
    """{client: (branch, enrollment_date, events, exposure_date, exposures)}, and the
    number of clients seen in two branches."""
    for name, table in tables.items():
        wh.load_arrow(name, table, mode="replace")
    wh.create_table_as("t.clients", enr_sql.clients_sql(exp))
    spec = AnalysisSpec(experiment=exp, metrics={})
    wh.create_table_as("t.enrollments", enr_sql.enrollments_sql(spec, wh.table_ref("t.clients")))
    two = wh.query(enr_sql.multi_branch_count_sql(wh.table_ref("t.clients"))).column(0)[0]
    rows = wh.query(f"SELECT * FROM {wh.table_ref('t.enrollments')}").to_pylist()
    return {
        r["analysis_id"]: (
            r["branch"],
            r["enrollment_date"],
            r["num_enrollment_events"],
            r["exposure_date"],
            r["num_exposure_events"],
        )
        for r in rows
    }, two.as_py()


# the story's outcome for query types that count events and read exposures
EXPECTED = {
    "a": ("control", day(0), 2, day(1), 1),
    "b": ("treatment", LAST, 1, LAST, 1),
    "d": ("treatment", day(2), 1, None, 0),
    "f": ("control", day(4), 1, None, 0),
}


def test_normandy(warehouse):
    got, two = enrolled(warehouse, settings(app_name="firefox_desktop"), normandy_tables())
    assert got == EXPECTED and two == 1


def test_normandy_by_profile_group(warehouse):
    exp = settings(app_name="firefox_desktop", analysis_unit="profile_group_id")
    got, _ = enrolled(warehouse, exp, normandy_tables("pg-"))
    assert got == {f"pg-{k}": v for k, v in EXPECTED.items()}


def test_sample_size_keeps_sample_id_below_it(warehouse):
    """mozanalysis: `sample_id < sample_size` (not a hash of the client id)."""
    got, _ = enrolled(
        warehouse, settings(app_name="firefox_desktop", sample_size=50), normandy_tables()
    )
    assert set(got) == {"a", "b", "f"}
    got, _ = enrolled(
        warehouse, settings(app_name="firefox_desktop", sample_size=51), normandy_tables()
    )
    assert set(got) == {"a", "b", "d", "f"}
    # 0 means no sampling (Jetstream: `sample_size or None`)
    got, _ = enrolled(
        warehouse, settings(app_name="firefox_desktop", sample_size=0), normandy_tables()
    )
    assert set(got) == {"a", "b", "d", "f"}


def test_sample_size_is_ignored_with_a_custom_enrollment_query(warehouse):
    """Jetstream passes the custom query to mozanalysis as is: no sampling."""
    query = (
        "SELECT client_id AS analysis_id, mozfun.map.get_key(event_map_values, 'branch') "
        "AS branch, MIN(submission_date) AS enrollment_date, COUNT(*) AS num_enrollment_events "
        "FROM `moz-fx-data-shared-prod.telemetry.events` WHERE event_method = 'enroll' "
        f"AND event_string_value = '{SLUG}' GROUP BY 1, 2"
    )
    exp = settings(app_name="firefox_desktop", sample_size=1, enrollment_query=query)
    got, _ = enrolled(warehouse, exp, normandy_tables())
    # as written: no date limit either (c enrolled after the enrollment period)
    assert set(got) == {"a", "b", "c", "d", "f"}


def test_custom_query_of_older_configs_returns_client_id():
    assert enr_sql.custom_id_column("SELECT e.client_id AS analysis_id, ...") == "analysis_id"
    assert enr_sql.custom_id_column("SELECT client_id, branch FROM x") == "client_id"


def test_glean_event(warehouse):
    got, two = enrolled(warehouse, settings(), glean_events_stream(DATASET))
    assert got == EXPECTED and two == 1


def test_glean_tables_come_from_the_app_id():
    assert eq.app_dataset("org.mozilla.ios.FirefoxBeta") == "org_mozilla_ios_firefoxbeta"
    sql = eq.enrollment_rows_sql(settings(app_id="org.mozilla.fenix"), START, LAST)
    assert "`moz-fx-data-shared-prod.org_mozilla_fenix.events_stream`" in sql
    with pytest.raises(eq.UnsupportedEnrollment, match="has no app_id"):
        eq.enrollment_rows_sql(settings(app_id=None), START, LAST)


def test_fenix_fallback(warehouse):
    got, two = enrolled(
        warehouse, settings(enrollments_query_type="fenix-fallback"), fenix_baseline()
    )
    # one annotated ping per enrollment event here; exposures from events_stream
    assert got == EXPECTED and two == 1


def test_cirrus(warehouse):
    exp = settings(
        app_name="monitor_cirrus", app_id="monitor.cirrus", enrollments_query_type="cirrus"
    )
    tables = {k.replace(DATASET, "monitor_cirrus"): v for k, v in cirrus_tables().items()}
    got, two = enrolled(warehouse, exp, tables)
    assert got == EXPECTED and two == 1
    # mozanalysis does not sample cirrus enrollments
    got, _ = enrolled(warehouse, attrs.evolve(exp, sample_size=1), tables)
    assert set(got) == set(EXPECTED)


def test_background_update(warehouse):
    exp = settings(app_name="firefox_desktop", enrollments_query_type="background-update")
    got, two = enrolled(warehouse, exp, background_update_tables())
    # each client's earliest enrollment over the three sources: e (two branches on two
    # days) is in its first branch only; h from the pings (1 event), i from a toast;
    # exposures from the Normandy events
    assert got == {
        **EXPECTED,
        "e": ("control", day(1), 1, None, 0),
        "h": ("treatment", day(2), 1, None, 0),
        "i": ("control", day(3), 1, None, 0),
    }
    assert two == 0


@pytest.mark.parametrize("kind", ["glean-event", "fenix-fallback", "cirrus"])
def test_glean_types_support_only_client_id(kind):
    exp = settings(enrollments_query_type=kind, analysis_unit="profile_group_id")
    with pytest.raises(eq.UnsupportedEnrollment, match="only analysis_unit 'client_id'"):
        eq.enrollment_rows_sql(exp, START, LAST)
