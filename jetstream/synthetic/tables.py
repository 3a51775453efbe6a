"""Schemas of the synthetic telemetry tables: names (schema.table, the BigQuery project part
dropped) and Arrow types. BigQuery `ARRAY<STRUCT<key, value>>` maps are Arrow lists of
structs. Pure data, no I/O."""

from __future__ import annotations

import pyarrow as pa

# BigQuery ARRAY<STRUCT<key STRING, value STRING>>: experiments_column_type "simple".
SIMPLE_EXPERIMENTS = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
# BigQuery ARRAY<STRUCT<key STRING, value STRUCT<branch STRING>>>: experiments_column_type
# "native" (like environment.experiments).
NATIVE_EXPERIMENTS = pa.list_(
    pa.struct([("key", pa.string()), ("value", pa.struct([("branch", pa.string())]))])
)
MAP_VALUES = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
TS = pa.timestamp("us", tz="UTC")

EVENTS = "telemetry.events"
CLIENTS_DAILY = "telemetry.clients_daily"
SEARCH_DAILY = "search.search_clients_engines_sources_daily"
ACTIVE_USERS = "telemetry.desktop_active_users"
FEATURE_EVENTS = "demo.feature_events"
TRUTH = "synthetic_truth"
EVENTS_LIVE = "telemetry.events_live"
SEARCH_LIVE = "telemetry.search_live"

SCHEMAS: dict[str, pa.Schema] = {
    # Firefox Desktop legacy events, as used for Normandy/Nimbus enrollment and exposure.
    EVENTS: pa.schema(
        [
            ("submission_date", pa.date32()),
            ("client_id", pa.string()),
            ("profile_group_id", pa.string()),
            ("sample_id", pa.int64()),
            ("event_timestamp", TS),
            ("event_category", pa.string()),
            ("event_method", pa.string()),
            ("event_object", pa.string()),
            ("event_string_value", pa.string()),
            ("event_map_values", MAP_VALUES),
            ("experiments", NATIVE_EXPERIMENTS),
        ]
    ),
    # One row per client per day seen (sent a main ping).
    CLIENTS_DAILY: pa.schema(
        [
            ("submission_date", pa.date32()),
            ("client_id", pa.string()),
            ("profile_group_id", pa.string()),
            ("sample_id", pa.int64()),
            ("os", pa.string()),
            ("country", pa.string()),
            ("pings_aggregated_by_this_row", pa.int64()),
            ("active_hours_sum", pa.float64()),
            ("scalar_parent_browser_engagement_total_uri_count_sum", pa.int64()),
            (
                "scalar_parent_browser_engagement_total_uri_count_normal_and_private_mode_sum",
                pa.int64(),
            ),
            ("is_default_browser", pa.bool_()),
            ("scalar_parent_os_environment_is_taskbar_pinned", pa.bool_()),
            ("experiments", SIMPLE_EXPERIMENTS),
        ]
    ),
    # One row per client, day, engine and source with any search.
    SEARCH_DAILY: pa.schema(
        [
            ("submission_date", pa.date32()),
            ("client_id", pa.string()),
            ("profile_group_id", pa.string()),
            ("sample_id", pa.int64()),
            ("engine", pa.string()),
            ("source", pa.string()),
            ("sap", pa.int64()),
            ("tagged_sap", pa.int64()),
            ("tagged_follow_on", pa.int64()),
            ("search_with_ads", pa.int64()),
            ("ad_click", pa.int64()),
            ("organic", pa.int64()),
        ]
    ),
    # One row per client per day seen; is_dau = seen with active hours and URIs.
    ACTIVE_USERS: pa.schema(
        [
            ("submission_date", pa.date32()),
            ("client_id", pa.string()),
            ("profile_group_id", pa.string()),
            ("sample_id", pa.int64()),
            ("is_desktop", pa.bool_()),
            ("is_dau", pa.bool_()),
            ("days_seen_bits", pa.int64()),
            ("days_active_bits", pa.int64()),
        ]
    ),
    # Demo feature telemetry: one row per client, day, event name and feature.
    FEATURE_EVENTS: pa.schema(
        [
            ("submission_date", pa.date32()),
            ("client_id", pa.string()),
            ("profile_group_id", pa.string()),
            ("sample_id", pa.int64()),
            ("event_name", pa.string()),
            ("feature", pa.string()),
            ("event_count", pa.int64()),
            ("experiments", SIMPLE_EXPERIMENTS),
        ]
    ),
    # The effects the generator put in: relative change of the expected per-client sum of
    # `metric` over any post-enrollment window, branch vs the reference branch.
    TRUTH: pa.schema(
        [
            ("experiment", pa.string()),
            ("branch", pa.string()),
            ("reference_branch", pa.string()),
            ("metric", pa.string()),
            ("relative_effect", pa.float64()),
        ]
    ),
    # Live enrollment stream for monitoring (minute resolution, some late arrivals).
    EVENTS_LIVE: pa.schema(
        [
            ("event_timestamp", TS),
            ("submission_timestamp", TS),
            ("client_id", pa.string()),
            ("experiment", pa.string()),
            ("branch", pa.string()),
            ("event_type", pa.string()),
        ]
    ),
    # Searches per client per 5-minute window.
    SEARCH_LIVE: pa.schema(
        [
            ("window_start", TS),
            ("submission_timestamp", TS),
            ("client_id", pa.string()),
            ("searches", pa.int64()),
            ("searches_with_ads", pa.int64()),
            ("ad_clicks", pa.int64()),
        ]
    ),
}

DAILY_TABLES = (CLIENTS_DAILY, SEARCH_DAILY, ACTIVE_USERS, FEATURE_EVENTS)
BATCH_TABLES = (EVENTS, *DAILY_TABLES, TRUTH)
LIVE_TABLES = (EVENTS_LIVE, SEARCH_LIVE)

LIVE_EVENT_TYPES = (
    "enroll",
    "unenroll",
    "graduate",
    "update",
    "enroll_failed",
    "unenroll_failed",
    "update_failed",
    "other",
)


def bigquery_type(t: pa.DataType) -> str:
    """The BigQuery spelling of an Arrow type used here (for docs and SQL checks)."""
    if pa.types.is_date32(t):
        return "DATE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_string(t):
        return "STRING"
    if pa.types.is_int64(t):
        return "INT64"
    if pa.types.is_float64(t):
        return "FLOAT64"
    if pa.types.is_boolean(t):
        return "BOOL"
    if pa.types.is_list(t):
        return f"ARRAY<{bigquery_type(t.value_type)}>"
    if pa.types.is_struct(t):
        fields = ", ".join(f"{f.name} {bigquery_type(f.type)}" for f in t)
        return f"STRUCT<{fields}>"
    raise TypeError(f"no BigQuery spelling for Arrow type {t}")


def column_types(table: str) -> dict[str, str]:
    """Column name -> BigQuery type of a synthetic table."""
    return {f.name: bigquery_type(f.type) for f in SCHEMAS[table]}
