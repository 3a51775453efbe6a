"""An independent pandas computation of the demo platform's metric values from the raw
synthetic tables, written without the SQL builders: enrollment rules, the custom exposure
signal, windows, the experiments-annotation rule on the enrollment day, enrollment-time and
window-dependent segments, and each metric's definition re-expressed in pandas.

Everything here is read from the demo TOML by a person, not by the engine: if a definition
in jetstream/data/demo changes, this file must change with it (and the e2e tests say so).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

CLIENTS_DAILY = "telemetry.clients_daily"
SEARCH_DAILY = "search.search_clients_engines_sources_daily"
ACTIVE_USERS = "telemetry.desktop_active_users"
FEATURE_EVENTS = "demo.feature_events"
EVENTS = "telemetry.events"

# the promoted sidebar feature: [parameters.sidebar_feature] default of the demo experiment
SIDEBAR_FEATURE = "bookmarks"


def _sum(d: pd.DataFrame, col: str) -> float:
    return float(d[col].fillna(0).sum()) if len(d) else 0.0


def _count_if(mask: pd.Series) -> float:
    return float(mask.fillna(False).astype(bool).sum())


def _any(mask: pd.Series) -> float:
    return float(bool(mask.fillna(False).astype(bool).any()))


Fn = Callable[[pd.DataFrame], float]

# metric slug -> (source table, function of one client's rows in the window)
METRICS: dict[str, tuple[str, Fn]] = {
    "active_hours": (CLIENTS_DAILY, lambda d: _sum(d, "active_hours_sum")),
    "days_of_use": (CLIENTS_DAILY, lambda d: float(d["submission_date"].notna().sum())),
    "uri_count": (
        CLIENTS_DAILY,
        lambda d: _sum(d, "scalar_parent_browser_engagement_total_uri_count_sum"),
    ),
    "retained": (CLIENTS_DAILY, lambda d: float(_sum(d, "pings_aggregated_by_this_row") > 0)),
    "is_default_browser": (CLIENTS_DAILY, lambda d: _any(d["is_default_browser"])),
    "qualified_days_of_use": (
        CLIENTS_DAILY,
        lambda d: _count_if(
            (d["active_hours_sum"] > 0)
            & (d["scalar_parent_browser_engagement_total_uri_count_normal_and_private_mode_sum"] > 0)
        ),
    ),
    # active_users is `desktop_active_users WHERE is_desktop`
    "dau_days": (ACTIVE_USERS, lambda d: _count_if(d["is_dau"] & d["is_desktop"].fillna(False))),
    "search_count": (SEARCH_DAILY, lambda d: _sum(d, "sap")),
    "tagged_search_count": (SEARCH_DAILY, lambda d: _sum(d, "tagged_sap")),
    "searches_with_ads": (SEARCH_DAILY, lambda d: _sum(d, "search_with_ads")),
    "ad_clicks": (SEARCH_DAILY, lambda d: _sum(d, "ad_click")),
    "organic_search_count": (SEARCH_DAILY, lambda d: _sum(d, "organic")),
    "distinct_search_engines": (SEARCH_DAILY, lambda d: float(d["engine"].dropna().nunique())),
    "sidebar_opens": (
        FEATURE_EVENTS,
        lambda d: _sum(d[d["event_name"] == "sidebar_opened"], "event_count"),
    ),
    "sidebar_clicks": (
        FEATURE_EVENTS,
        lambda d: _sum(d[d["event_name"] == "sidebar_click"], "event_count"),
    ),
    "promoted_feature_clicks": (
        FEATURE_EVENTS,
        lambda d: _sum(
            d[(d["event_name"] == "sidebar_click") & (d["feature"] == SIDEBAR_FEATURE)],
            "event_count",
        ),
    ),
    "used_sidebar": (FEATURE_EVENTS, lambda d: _any(d["event_name"] == "sidebar_opened")),
    # normandy_events = events WHERE event_category = 'normandy'; {experiment_slug} is set
    # per experiment, so the function is built in `metric_fn`
    "unenroll": (EVENTS, lambda d: 0.0),
}
INTEGER_METRICS = {
    "days_of_use",
    "uri_count",
    "qualified_days_of_use",
    "dau_days",
    "search_count",
    "tagged_search_count",
    "searches_with_ads",
    "ad_clicks",
    "organic_search_count",
    "distinct_search_engines",
    "sidebar_opens",
    "sidebar_clicks",
    "promoted_feature_clicks",
}
BOOLEAN_METRICS = {"retained", "is_default_browser", "used_sidebar", "unenroll"}
FLOAT_METRICS = {"active_hours"}

# sources whose rows on the enrollment day count only with the experiment annotation:
# table -> "simple" (experiments value IS NOT NULL) or "native" (value.branch IS NOT NULL)
ANNOTATED = {CLIENTS_DAILY: "simple", FEATURE_EVENTS: "simple", EVENTS: "native"}


def metric_fn(metric: str, slug: str) -> tuple[str, Fn]:
    if metric == "unenroll":
        return EVENTS, lambda d: _any(
            (d["event_method"] == "unenroll") & (d["event_string_value"] == slug)
        )
    return METRICS[metric]


def _annotated(value: Any, slug: str, kind: str) -> bool:
    if value is None:
        return False
    for item in value:
        if item["key"] != slug:
            continue
        v = item["value"]
        if kind == "native":
            return v is not None and v.get("branch") is not None
        return v is not None
    return False


def _days(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series).astype("datetime64[ns]")


class Demo:
    """The demo experiment's population and values, computed from the raw tables."""

    def __init__(self, tables: dict, slug: str, start: dt.date, last: dt.date):
        self.slug = slug
        self.start = pd.Timestamp(start)
        self.last = pd.Timestamp(last)
        self._raw = tables
        self._frames: dict[str, pd.DataFrame] = {}
        self.all_clients, self.enrollments = self._enrollments()

    def frame(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            df = self._raw[name].to_pandas()
            df["day"] = _days(df["submission_date"])
            if name == EVENTS:
                df = df[df["event_category"] == "normandy"]
            self._frames[name] = df
        return self._frames[name]

    # ------------------------------------------------------------------ enrollments

    def _enrollments(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        ev = self.frame(EVENTS)
        ev = ev[
            (ev.event_method == "enroll")
            & (ev.event_string_value == self.slug)
            & (ev.day >= self.start)
            & (ev.day <= self.last)
        ].copy()
        ev["branch"] = [
            next((kv["value"] for kv in m if kv["key"] == "branch"), None)
            if m is not None
            else None
            for m in ev.event_map_values
        ]
        ev = ev[ev.branch.notna() & ev.client_id.notna()]
        g = ev.groupby("client_id").agg(
            branch=("branch", "min"),
            branches=("branch", "nunique"),
            enrollment_date=("day", "min"),
            num_enrollment_events=("day", "size"),
        )
        return g, g[g.branches == 1].drop(columns="branches")

    @property
    def multi_branch_clients(self) -> set[str]:
        return set(self.all_clients.index[self.all_clients.branches > 1])

    # ------------------------------------------------------------------ exposures

    def signal_days(self) -> pd.DataFrame:
        """(client_id, day) on which an enrolled client opened the sidebar."""
        fe = self.frame(FEATURE_EVENTS)
        fe = fe[(fe.event_name == "sidebar_opened") & fe.client_id.isin(self.all_clients.index)]
        return fe[["client_id", "day"]].drop_duplicates()

    def exposed(self, window_end: int) -> set[str]:
        """Opened the sidebar in [enrollment, enrollment + window_end]."""
        sig = self.signal_days().merge(
            self.enrollments[["enrollment_date"]], left_on="client_id", right_index=True
        )
        hi = sig.enrollment_date + pd.to_timedelta(window_end, unit="D")
        hit = sig[(sig.day >= sig.enrollment_date) & (sig.day <= hi)]
        return set(hit.client_id)

    def population(self, basis: str, window_end: int) -> pd.DataFrame:
        if basis == "enrollments":
            return self.enrollments
        if basis == "exposures":
            return self.enrollments[self.enrollments.index.isin(self.exposed(window_end))]
        raise ValueError(f"unknown basis {basis!r}")

    # ------------------------------------------------------------------ metrics

    def _rows(self, source: str, population: pd.DataFrame) -> pd.DataFrame:
        df = self.frame(source)
        df = df[df.client_id.isin(population.index)].copy()
        df["enrollment_date"] = population.loc[df.client_id, "enrollment_date"].to_numpy()
        kind = ANNOTATED.get(source)
        if kind is not None:
            on_day = (df.day == df.enrollment_date).to_numpy()
            ann = np.array([_annotated(v, self.slug, kind) for v in df["experiments"]], bool)
            df = df[~on_day | ann]
        return df

    def values(
        self, metric: str, basis: str, window_start: int, window_end: int
    ) -> dict[str, float]:
        """Per client of the basis population: the metric over its window."""
        population = self.population(basis, window_end)
        source, fn = metric_fn(metric, self.slug)
        rows = self._rows(source, population)
        lo = rows.enrollment_date + pd.to_timedelta(window_start, unit="D")
        hi = rows.enrollment_date + pd.to_timedelta(window_end, unit="D")
        rows = rows[(rows.day >= lo) & (rows.day <= hi)]
        grouped = {cid: g for cid, g in rows.groupby("client_id")}
        empty = rows.iloc[0:0]
        return {cid: fn(grouped.get(cid, empty)) for cid in population.index}

    # ------------------------------------------------------------------ segments

    def _segment_sum(self, source: str, column_fn: Callable, lo: int, hi: int) -> pd.Series:
        df = self.frame(source)
        enr = self.enrollments
        df = df[df.client_id.isin(enr.index)].copy()
        df["enrollment_date"] = enr.loc[df.client_id, "enrollment_date"].to_numpy()
        df = df[
            (df.day >= df.enrollment_date + pd.Timedelta(days=lo))
            & (df.day <= df.enrollment_date + pd.Timedelta(days=hi))
        ]
        df = df.assign(v=column_fn(df))
        return df.groupby("client_id")["v"].sum()

    def enrollment_segments(self) -> dict[str, dict[str, bool]]:
        """default_browser_at_enrollment: default browser on the enrollment day;
        heavy_users_before_enrollment: >= 7 active hours in days -7..-1."""
        default = self._segment_sum(
            CLIENTS_DAILY, lambda d: d["is_default_browser"].fillna(False).astype(int), 0, 0
        )
        heavy = self._segment_sum(
            CLIENTS_DAILY, lambda d: d["active_hours_sum"].fillna(0.0), -7, -1
        )
        ids = self.enrollments.index
        return {
            "default_browser_at_enrollment": {c: bool(default.get(c, 0) > 0) for c in ids},
            "heavy_users_before_enrollment": {c: bool(heavy.get(c, 0.0) >= 7) for c in ids},
        }

    def sidebar_regulars(self, window_end: int) -> dict[str, bool]:
        """>= 3 sidebar opens between enrollment and the end of the analysis window."""
        opens = self._segment_sum(
            FEATURE_EVENTS,
            lambda d: np.where(d["event_name"] == "sidebar_opened", d["event_count"], 0),
            0,
            window_end,
        )
        return {c: bool(opens.get(c, 0) >= 3) for c in self.enrollments.index}
