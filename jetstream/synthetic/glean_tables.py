"""Schemas of the Glean-shaped tables the built-in enrollment queries read for the
non-Normandy query types (`jetstream.sql.enrollment_queries`), with the columns mozanalysis
uses. Names as `tables.SCHEMAS` (schema.table, no project): a Glean app's tables live in
the app's dataset (e.g. `org_mozilla_firefox`), so they are made per dataset. BigQuery JSON
columns are Arrow strings here (the JSON functions read them as text on DuckDB) and are
listed in JSON_COLUMNS for their BigQuery type. Pure data, no I/O."""

from __future__ import annotations

import pyarrow as pa

from jetstream.synthetic.tables import MAP_VALUES, TS

# ping_info.experiments: ARRAY<STRUCT<key STRING, value STRUCT<branch STRING, extra
# STRUCT<type STRING, enrollment_id STRING>>>>
GLEAN_EXPERIMENTS = pa.list_(
    pa.struct(
        [
            ("key", pa.string()),
            (
                "value",
                pa.struct(
                    [
                        ("branch", pa.string()),
                        (
                            "extra",
                            pa.struct([("type", pa.string()), ("enrollment_id", pa.string())]),
                        ),
                    ]
                ),
            ),
        ]
    )
)
CLIENT_INFO = pa.struct(
    [("client_id", pa.string()), ("app_channel", pa.string()), ("os", pa.string())]
)
PING_INFO = pa.struct([("experiments", GLEAN_EXPERIMENTS)])
# Glean `events` pings: ARRAY<STRUCT<category, name, timestamp, extra ARRAY<key/value>>>
GLEAN_EVENTS = pa.list_(
    pa.struct(
        [
            ("category", pa.string()),
            ("name", pa.string()),
            ("timestamp", pa.int64()),
            ("extra", MAP_VALUES),
        ]
    )
)

EVENTS_STREAM = "events_stream"
BASELINE = "baseline"
ENROLLMENT = "enrollment"  # cirrus
EVENTS = "events"  # Glean events pings (cirrus exposures)
BACKGROUND_UPDATE_DATASET = "firefox_desktop_background_update"
BACKGROUND_UPDATE = "background_update"

# {dataset}.events_stream: one row per Glean event
EVENTS_STREAM_SCHEMA = pa.schema(
    [
        ("submission_timestamp", TS),
        ("submission_date", pa.date32()),
        ("client_id", pa.string()),
        ("sample_id", pa.int64()),
        ("event_category", pa.string()),
        ("event_name", pa.string()),
        ("event_extra", pa.string()),  # JSON
        ("metrics", pa.string()),  # JSON
        ("client_info", CLIENT_INFO),
        ("ping_info", PING_INFO),
    ]
)
# {dataset}.baseline: one row per baseline ping
BASELINE_SCHEMA = pa.schema(
    [
        ("submission_timestamp", TS),
        ("submission_date", pa.date32()),
        ("sample_id", pa.int64()),
        ("client_info", CLIENT_INFO),
        ("ping_info", PING_INFO),
    ]
)
# {dataset}.enrollment (cirrus) and {dataset}.events: Glean pings carrying events
EVENT_PINGS_SCHEMA = pa.schema(
    [
        ("submission_timestamp", TS),
        ("sample_id", pa.int64()),
        ("client_info", CLIENT_INFO),
        ("events", GLEAN_EVENTS),
    ]
)
# firefox_desktop_background_update.background_update pings
BACKGROUND_UPDATE_SCHEMA = pa.schema(
    [
        ("submission_timestamp", TS),
        ("sample_id", pa.int64()),
        (
            "metrics",
            pa.struct([("uuid", pa.struct([("background_update_client_id", pa.string())]))]),
        ),
        ("ping_info", PING_INFO),
    ]
)

JSON_COLUMNS = frozenset({"event_extra", "metrics"})


def glean_schemas(dataset: str) -> dict[str, pa.Schema]:
    """The Glean tables of one app dataset, by table name."""
    return {
        f"{dataset}.{EVENTS_STREAM}": EVENTS_STREAM_SCHEMA,
        f"{dataset}.{BASELINE}": BASELINE_SCHEMA,
        f"{dataset}.{ENROLLMENT}": EVENT_PINGS_SCHEMA,
        f"{dataset}.{EVENTS}": EVENT_PINGS_SCHEMA,
    }


def background_update_schemas() -> dict[str, pa.Schema]:
    """The background-update task's tables (its events_stream, its pings)."""
    ds = BACKGROUND_UPDATE_DATASET
    return {
        f"{ds}.{EVENTS_STREAM}": EVENTS_STREAM_SCHEMA,
        f"{ds}.{BACKGROUND_UPDATE}": BACKGROUND_UPDATE_SCHEMA,
    }
