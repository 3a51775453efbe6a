"""An independent pandas computation of the demo platform's metric values from the raw
synthetic tables, written without the SQL builders: enrollment rules, exposure signal,
windows, the experiments-annotation rule on the enrollment day, and each metric's
definition re-expressed in pandas."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd


def _s(df: pd.DataFrame, col: str) -> float:
    return float(df[col].fillna(0).sum()) if len(df) else 0.0


# metric slug -> (source table, function of the client's rows in the window)
METRICS = {
    "active_hours": ("telemetry.clients_daily", lambda d: _s(d, "active_hours_sum")),
    "days_of_use": ("telemetry.clients_daily", lambda d: float(d["submission_date"].notna().sum())),
    "uri_count": (
        "telemetry.clients_daily",
        lambda d: _s(d, "scalar_parent_browser_engagement_total_uri_count_sum"),
    ),
    "retained": (
        "telemetry.clients_daily",
        lambda d: float(_s(d, "pings_aggregated_by_this_row") > 0),
    ),
    "is_default_browser": (
        "telemetry.clients_daily",
        lambda d: float(bool(d["is_default_browser"].fillna(False).any())),
    ),
    "qualified_days_of_use": (
        "telemetry.clients_daily",
        lambda d: float(
            (
                (d["active_hours_sum"] > 0)
                & (
                    d["scalar_parent_browser_engagement_total_uri_count_normal_and_private_mode_sum"]
                    > 0
                )
            ).sum()
        ),
    ),
    "dau_days": ("telemetry.desktop_active_users", lambda d: float(d["is_dau"].fillna(False).sum())),
    "search_count": ("search.search_clients_engines_sources_daily", lambda d: _s(d, "sap")),
    "tagged_search_count": (
        "search.search_clients_engines_sources_daily",
        lambda d: _s(d, "tagged_sap"),
    ),
    "searches_with_ads": (
        "search.search_clients_engines_sources_daily",
        lambda d: _s(d, "search_with_ads"),
    ),
    "ad_clicks": ("search.search_clients_engines_sources_daily", lambda d: _s(d, "ad_click")),
    "organic_search_count": (
        "search.search_clients_engines_sources_daily",
        lambda d: _s(d, "organic"),
    ),
    "distinct_search_engines": (
        "search.search_clients_engines_sources_daily",
        lambda d: float(d["engine"].dropna().nunique()),
    ),
    "sidebar_opens": (
        "demo.feature_events",
        lambda d: float(d.loc[d["event_name"] == "sidebar_opened", "event_count"].fillna(0).sum()),
    ),
    "sidebar_clicks": (
        "demo.feature_events",
        lambda d: float(d.loc[d["event_name"] == "sidebar_click", "event_count"].fillna(0).sum()),
    ),
    "promoted_feature_clicks": (
        "demo.feature_events",
        lambda d: float(
            d.loc[
                (d["event_name"] == "sidebar_click") & (d["feature"] == "bookmarks"), "event_count"
            ]
            .fillna(0)
            .sum()
        ),
    ),
    "used_sidebar": (
        "demo.feature_events",
        lambda d: float(bool((d["event_name"] == "sidebar_opened").any())),
    ),
}
# sources whose rows on the enrollment day count only with the experiment annotation
ANNOTATED = {"telemetry.clients_daily", "demo.feature_events"}


def _has_slug(value, slug: str) -> bool:
    if value is None:
        return False
    return any(item["key"] == slug for item in value)


def enrollments(tables: dict, slug: str, start: dt.date, last: dt.date) -> pd.DataFrame:
    ev = tables["telemetry.events"].to_pandas()
    ev = ev[
        (ev.event_category == "normandy")
        & (ev.event_method == "enroll")
        & (ev.event_string_value == slug)
        & (ev.submission_date >= start)
        & (ev.submission_date <= last)
    ].copy()
    ev["branch"] = [
        next((kv["value"] for kv in m if kv["key"] == "branch"), None) for m in ev.event_map_values
    ]
    ev = ev[ev.branch.notna()]
    g = ev.groupby("client_id").agg(
        branch=("branch", "min"),
        branches=("branch", "nunique"),
        enrollment_date=("submission_date", "min"),
    )
    return g[g.branches == 1].drop(columns="branches")


def signal_days(tables: dict, clients: pd.DataFrame) -> pd.DataFrame:
    fe = tables["demo.feature_events"].to_pandas()
    fe = fe[fe.event_name == "sidebar_opened"][["client_id", "submission_date"]].drop_duplicates()
    return fe[fe.client_id.isin(clients.index)]


def source_rows(tables: dict, source: str, slug: str, enr: pd.DataFrame) -> pd.DataFrame:
    df = tables[source].to_pandas()
    df = df[df.client_id.isin(enr.index)].copy()
    df["enrollment_date"] = enr.loc[df.client_id, "enrollment_date"].to_numpy()
    if source in ANNOTATED:
        keep = (df.submission_date != df.enrollment_date) | np.array(
            [_has_slug(v, slug) for v in df["experiments"]], dtype=bool
        )
        df = df[keep]
    return df


def expected_values(
    tables: dict,
    slug: str,
    start: dt.date,
    last: dt.date,
    metric: str,
    basis: str,
    window_start: int,
    window_end: int,
) -> dict[str, float]:
    """Per client of the basis population: the metric over its window."""
    enr = enrollments(tables, slug, start, last)
    population = enr
    if basis == "exposures":  # custom signal: opened the sidebar in [enrollment, window end]
        sig = signal_days(tables, enr)
        sig = sig.merge(enr[["enrollment_date"]], left_on="client_id", right_index=True)
        lo = sig.enrollment_date
        hi = sig.enrollment_date + pd.to_timedelta(window_end, unit="D")
        hits = sig[(sig.submission_date >= lo) & (sig.submission_date.astype("datetime64[ns]") <= hi)]
        population = enr[enr.index.isin(hits.client_id)]
    source, fn = METRICS[metric]
    rows = source_rows(tables, source, slug, population)
    d = pd.to_datetime(rows.submission_date)
    e = pd.to_datetime(rows.enrollment_date)
    rows = rows[(d >= e + pd.Timedelta(days=window_start)) & (d <= e + pd.Timedelta(days=window_end))]
    grouped = dict(tuple(rows.groupby("client_id")))
    empty = rows.iloc[0:0]
    return {cid: fn(grouped.get(cid, empty)) for cid in population.index}
