"""Synthetic Glean telemetry for mobile experiments (Fenix, Firefox iOS): the tables the
real metric-hub `fenix` and `firefox_ios` defaults and the `glean-event` enrollment query
read, with their columns and nesting.

The model is the desktop one (`population`, `events`, `daily`) run over its own population
of the GLEAN_EXPERIMENTS, its tables then reshaped: enrollment and exposure events become
`nimbus_events` rows of the app's `events_stream`; each client-day seen becomes a baseline
and a metrics ping (duration from active hours, URI counter from URIs, `ping_info`
experiments from the day's annotation); active users and mobile search rows come from the
corresponding daily rows. Every client uses every app. Pure; same determinism as
`generate`.
"""

from __future__ import annotations

import datetime as dt

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jetstream.config.model import app_dataset
from jetstream.synthetic import glean_tables as gt
from jetstream.synthetic import tables as st
from jetstream.synthetic.batch import generate
from jetstream.synthetic.experiments import (
    DEFAULT_DAYS,
    DEFAULT_START_DATE,
    BranchEffect,
    SyntheticBranch,
    SyntheticExperiment,
)

GLEAN_EXPERIMENTS: tuple[SyntheticExperiment, ...] = (
    SyntheticExperiment(
        slug="fenix-toolbar-position",
        app_name="fenix",
        app_id="org.mozilla.firefox",
        branches=(
            SyntheticBranch("control"),
            SyntheticBranch("treatment", effect=BranchEffect(activity=0.03, searches=0.05)),
        ),
        start_offset=0,
        enrollment_days=7,
        end_offset=34,
        share=0.5,
        exposure_share=0.7,
        feature_id="toolbar",
        user_facing_name="Fenix: toolbar position",
        description="Analysed with the real fenix defaults (no custom config).",
    ),
    SyntheticExperiment(
        slug="ios-onboarding-cards",
        app_name="firefox_ios",
        app_id="org.mozilla.ios.Firefox",
        branches=(
            SyntheticBranch("control"),
            SyntheticBranch("treatment", effect=BranchEffect(active_hours=0.06)),
        ),
        start_offset=2,
        enrollment_days=5,
        end_offset=34,
        share=0.5,
        exposure_share=0.6,
        feature_id="onboarding",
        user_facing_name="iOS: onboarding cards",
        description="Analysed with the real firefox_ios defaults (no custom config).",
    ),
)


@attrs.frozen
class GleanApp:
    """Where an app's tables live: its Glean dataset (the app id's), its platform
    dataset (active users) and its name in mobile search."""

    dataset: str
    platform: str
    search_os: str


APPS = {
    "fenix": GleanApp("org_mozilla_firefox", "fenix", "Firefox Android"),
    "firefox_ios": GleanApp("org_mozilla_ios_firefox", "firefox_ios", "Firefox iOS"),
}
MOBILE_SEARCH = "search.mobile_search_clients_engines_sources_daily"
MOBILE_SEARCH_SCHEMA = pa.schema(
    [
        ("submission_date", pa.date32()),
        ("client_id", pa.string()),
        ("sample_id", pa.int64()),
        ("normalized_app_name_os", pa.string()),
        ("engine", pa.string()),
        ("source", pa.string()),
        ("search_count", pa.int64()),
        ("tagged_sap", pa.int64()),
        ("tagged_follow_on", pa.int64()),
        ("search_with_ads", pa.int64()),
        ("ad_click", pa.int64()),
        ("organic", pa.int64()),
        ("experiments", st.SIMPLE_EXPERIMENTS),
    ]
)
ACTIVE_USERS_SCHEMA = pa.schema(
    [
        ("submission_date", pa.date32()),
        ("client_id", pa.string()),
        ("sample_id", pa.int64()),
        ("is_mobile", pa.bool_()),
        ("is_dau", pa.bool_()),
        ("days_since_active", pa.int64()),
        ("experiments", st.NATIVE_EXPERIMENTS),
    ]
)
METRICS_PING_SCHEMA = pa.schema(
    [
        ("submission_timestamp", st.TS),
        ("document_id", pa.string()),
        ("sample_id", pa.int64()),
        ("client_info", gt.CLIENT_INFO),
        (
            "metrics",
            pa.struct(
                [
                    (
                        "counter",
                        pa.struct(
                            [
                                ("events_normal_and_private_uri_count", pa.int64()),
                                ("tabs_normal_and_private_uri_count", pa.int64()),
                            ]
                        ),
                    )
                ]
            ),
        ),
        ("ping_info", gt.PING_INFO),
    ]
)
BASELINE_PING_SCHEMA = pa.schema(
    [
        ("submission_timestamp", st.TS),
        ("document_id", pa.string()),
        ("sample_id", pa.int64()),
        ("client_info", gt.CLIENT_INFO),
        (
            "metrics",
            pa.struct(
                [
                    (
                        "timespan",
                        pa.struct(
                            [
                                (
                                    "glean_baseline_duration",
                                    pa.struct([("value", pa.int64())]),
                                )
                            ]
                        ),
                    )
                ]
            ),
        ),
        ("metadata", pa.struct([("isp", pa.struct([("name", pa.string())]))])),
        ("ping_info", gt.PING_INFO),
    ]
)
_EVENT_METHODS = ("enroll", "expose", "unenroll")  # as enrollment, exposure, unenrollment


def glean_schemas() -> dict[str, pa.Schema]:
    """Every table `generate_glean` writes, by name."""
    out: dict[str, pa.Schema] = {MOBILE_SEARCH: MOBILE_SEARCH_SCHEMA}
    for app in APPS.values():
        out[f"{app.dataset}.{gt.EVENTS_STREAM}"] = gt.EVENTS_STREAM_SCHEMA
        out[f"{app.dataset}.baseline"] = BASELINE_PING_SCHEMA
        out[f"{app.dataset}.metrics"] = METRICS_PING_SCHEMA
        out[f"{app.platform}.active_users"] = ACTIVE_USERS_SCHEMA
    return out


def generate_glean(
    clients: int,
    days: int = DEFAULT_DAYS,
    seed: int = 0,
    start_date: dt.date = DEFAULT_START_DATE,
    experiments: tuple[SyntheticExperiment, ...] = GLEAN_EXPERIMENTS,
) -> dict[str, pa.Table]:
    """The Glean tables of `experiments` (apps in APPS), by table name."""
    for exp in experiments:
        app = APPS.get(exp.app_name)
        if app is None or app_dataset(exp.app_id) != app.dataset:
            raise ValueError(
                f"{exp.slug}: no synthetic Glean app {exp.app_name!r} with app id "
                f"{exp.app_id!r}; known: {', '.join(APPS)}"
            )
    base = generate(clients, days, seed, start_date, experiments)
    daily = base[st.CLIENTS_DAILY]
    ping_info = pa.StructArray.from_arrays(
        [_glean_experiments(daily.column("experiments"))], names=["experiments"]
    )
    out: dict[str, pa.Table] = {}
    searches = []
    for name, app in APPS.items():
        slugs = [e.slug for e in experiments if e.app_name == name]
        client_info = _client_info(daily.column("client_id"), daily.column("os"), name)
        out[f"{app.dataset}.{gt.EVENTS_STREAM}"] = _events_stream(base[st.EVENTS], slugs, name)
        out[f"{app.dataset}.baseline"] = _baseline(daily, client_info, ping_info)
        out[f"{app.dataset}.metrics"] = _metrics(daily, client_info, ping_info)
        out[f"{app.platform}.active_users"] = _active_users(base[st.ACTIVE_USERS], daily)
        searches.append(_mobile_search(base[st.SEARCH_DAILY], daily, app.search_os))
    out[MOBILE_SEARCH] = pa.concat_tables(searches)
    return out


def _noon(dates: pa.ChunkedArray) -> pa.Array:
    micros = pc.cast(dates, pa.timestamp("us")).cast(pa.int64()).to_numpy() + 43_200_000_000
    return pa.array(micros, pa.int64()).cast(st.TS)


def _document_ids(ids: pa.ChunkedArray, dates: pa.ChunkedArray, kind: str) -> pa.Array:
    return pc.binary_join_element_wise(ids, pc.cast(dates, pa.string()), pa.scalar(kind), "/")


def _client_info(ids: pa.ChunkedArray, os: pa.ChunkedArray, app: str) -> pa.StructArray:
    n = len(ids)
    os_name = "Android" if app == "fenix" else "iOS"
    return pa.StructArray.from_arrays(
        [
            ids.combine_chunks(),
            pa.array(["release"] * n, pa.string()),
            pa.array([os_name] * n, pa.string()),
        ],
        fields=list(gt.CLIENT_INFO),
    )


def _glean_experiments(simple: pa.ChunkedArray) -> pa.Array:
    """A simple experiments map (key, branch string) as Glean's ping_info.experiments
    (key, value STRUCT<branch, extra>)."""
    arr = simple.combine_chunks()
    items = arr.values
    extra_type = gt.GLEAN_EXPERIMENTS.value_type.field("value").type.field("extra").type
    value = pa.StructArray.from_arrays(
        [items.field("value"), pa.nulls(len(items), extra_type)],
        fields=list(gt.GLEAN_EXPERIMENTS.value_type.field("value").type),
    )
    entries = pa.StructArray.from_arrays(
        [items.field("key"), value], fields=list(gt.GLEAN_EXPERIMENTS.value_type)
    )
    return pa.ListArray.from_arrays(arr.offsets, entries, type=gt.GLEAN_EXPERIMENTS)


def _native_experiments(simple: pa.ChunkedArray) -> pa.Array:
    arr = simple.combine_chunks()
    items = arr.values
    value = pa.StructArray.from_arrays([items.field("value")], names=["branch"])
    entries = pa.StructArray.from_arrays([items.field("key"), value], names=["key", "value"])
    return pa.ListArray.from_arrays(arr.offsets, entries, type=st.NATIVE_EXPERIMENTS)


def _events_stream(events: pa.Table, slugs: list[str], app: str) -> pa.Table:
    keep = pc.and_(
        pc.equal(events.column("event_category"), "normandy"),
        pc.and_(
            pc.is_in(events.column("event_method"), pa.array(_EVENT_METHODS)),
            pc.is_in(events.column("event_string_value"), pa.array(slugs, pa.string())),
        ),
    )
    ev = events.filter(keep)
    n = ev.num_rows
    branch = pc.list_element(_first_value(ev.column("event_map_values")), 0)
    extra = pc.binary_join_element_wise(
        '{"experiment": "',
        ev.column("event_string_value"),
        '", "branch": "',
        branch,
        '"}',
        "",
    )
    names = pc.replace_substring_regex(ev.column("event_method"), "^enroll$", "enrollment")
    names = pc.replace_substring_regex(names, "^expose$", "exposure")
    names = pc.replace_substring_regex(names, "^unenroll$", "unenrollment")
    ids = ev.column("client_id")
    return pa.Table.from_arrays(
        [
            ev.column("event_timestamp"),
            ev.column("submission_date"),
            ids,
            ev.column("sample_id"),
            pa.array(["nimbus_events"] * n, pa.string()),
            names,
            extra,
            pa.array(["{}"] * n, pa.string()),
            _client_info(ids, pa.chunked_array([pa.nulls(n, pa.string())]), app),
            pa.StructArray.from_arrays([pa.nulls(n, gt.GLEAN_EXPERIMENTS)], names=["experiments"]),
        ],
        schema=gt.EVENTS_STREAM_SCHEMA,
    )


def _first_value(maps: pa.ChunkedArray) -> pa.Array:
    """The value of each row's first map entry, as a one-element list per row."""
    arr = maps.combine_chunks()
    values = arr.values.field("value")
    return pa.ListArray.from_arrays(arr.offsets, values)


def _baseline(daily: pa.Table, client_info: pa.Array, ping_info: pa.Array) -> pa.Table:
    n = daily.num_rows
    seconds = np.round(daily.column("active_hours_sum").to_numpy() * 3600).astype(np.int64)
    # a tenth of the profiles never use the app in the foreground: their baseline pings
    # have no duration (so per-client activity metrics vary, as in real mobile data)
    seconds[daily.column("sample_id").to_numpy() % 10 == 0] = 0
    duration = pa.StructArray.from_arrays([pa.array(seconds)], names=["value"])
    timespan = pa.StructArray.from_arrays([duration], names=["glean_baseline_duration"])
    metrics = pa.StructArray.from_arrays([timespan], names=["timespan"])
    isp = pa.StructArray.from_arrays([pa.array(["Example ISP"] * n, pa.string())], names=["name"])
    metadata = pa.StructArray.from_arrays([isp], names=["isp"])
    dates = daily.column("submission_date")
    return pa.Table.from_arrays(
        [
            _noon(dates),
            _document_ids(daily.column("client_id"), dates, "baseline"),
            daily.column("sample_id"),
            client_info,
            metrics,
            metadata,
            ping_info,
        ],
        schema=BASELINE_PING_SCHEMA,
    )


def _metrics(daily: pa.Table, client_info: pa.Array, ping_info: pa.Array) -> pa.Table:
    uri = daily.column(
        "scalar_parent_browser_engagement_total_uri_count_normal_and_private_mode_sum"
    ).combine_chunks()
    counter = pa.StructArray.from_arrays(
        [uri, uri],
        names=["events_normal_and_private_uri_count", "tabs_normal_and_private_uri_count"],
    )
    dates = daily.column("submission_date")
    return pa.Table.from_arrays(
        [
            _noon(dates),
            _document_ids(daily.column("client_id"), dates, "metrics"),
            daily.column("sample_id"),
            client_info,
            pa.StructArray.from_arrays([counter], names=["counter"]),
            ping_info,
        ],
        schema=METRICS_PING_SCHEMA,
    )


def _days_since_active(bits: np.ndarray) -> pa.Array:
    """Days since the last active day from a days-active bit pattern (bit 0 = today);
    NULL when none of the last 64 days was active."""
    out = np.full(len(bits), -1, dtype=np.int64)
    left = bits.astype(np.uint64)
    for k in range(64):
        hit = (out < 0) & ((left >> np.uint64(k)) & np.uint64(1)).astype(bool)
        out[hit] = k
    return pa.array(np.where(out < 0, 0, out), mask=out < 0)


def _active_users(active: pa.Table, daily: pa.Table) -> pa.Table:
    # one row per client-day seen in both tables, in the same order (daily.day_tables)
    assert active.num_rows == daily.num_rows
    assert pc.all(pc.equal(active.column("client_id"), daily.column("client_id"))).as_py()
    n = active.num_rows
    return pa.Table.from_arrays(
        [
            active.column("submission_date"),
            active.column("client_id"),
            active.column("sample_id"),
            pa.array([True] * n),
            active.column("is_dau"),
            _days_since_active(active.column("days_active_bits").to_numpy()),
            _native_experiments(daily.column("experiments")),
        ],
        schema=ACTIVE_USERS_SCHEMA,
    )


def _mobile_search(search: pa.Table, daily: pa.Table, os_name: str) -> pa.Table:
    # the day's annotation of the client (list columns cannot ride through a join)
    rows = daily.select(["client_id", "submission_date"]).append_column(
        "_row", pa.array(np.arange(daily.num_rows))
    )
    joined = search.join(rows, ["client_id", "submission_date"], join_type="left outer")
    joined = joined.sort_by([("submission_date", "ascending"), ("client_id", "ascending")])
    experiments = daily.column("experiments").combine_chunks().take(joined.column("_row"))
    n = joined.num_rows
    return pa.Table.from_arrays(
        [
            joined.column("submission_date"),
            joined.column("client_id"),
            joined.column("sample_id"),
            pa.array([os_name] * n, pa.string()),
            joined.column("engine"),
            joined.column("source"),
            joined.column("sap"),
            joined.column("tagged_sap"),
            joined.column("tagged_follow_on"),
            joined.column("search_with_ads"),
            joined.column("ad_click"),
            joined.column("organic"),
            experiments,
        ],
        schema=MOBILE_SEARCH_SCHEMA,
    )
