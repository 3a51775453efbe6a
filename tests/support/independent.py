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


RowFn = Callable[[pd.DataFrame], pd.Series]


def _col(name: str) -> RowFn:
    return lambda d: d[name].fillna(0)


def _flag(fn: RowFn) -> RowFn:
    return lambda d: fn(d).fillna(False).astype(bool).astype(int)


def _events_of(name: str, extra: RowFn | None = None) -> RowFn:
    def value(d: pd.DataFrame) -> pd.Series:
        keep = d["event_name"] == name
        if extra is not None:
            keep &= extra(d)
        return d["event_count"].where(keep, 0).fillna(0)

    return value


# metric slug -> (source table, value per row, how rows combine per client):
#   sum: SUM (0 for no rows); any: LOGICAL_OR of a flag (FALSE for no rows);
#   positive: SUM(...) > 0; nunique: COUNT(DISTINCT ...)
METRICS: dict[str, tuple[str, RowFn, str]] = {
    "active_hours": (CLIENTS_DAILY, _col("active_hours_sum"), "sum"),
    "days_of_use": (CLIENTS_DAILY, _flag(lambda d: d["submission_date"].notna()), "sum"),
    "uri_count": (
        CLIENTS_DAILY,
        _col("scalar_parent_browser_engagement_total_uri_count_sum"),
        "sum",
    ),
    "retained": (CLIENTS_DAILY, _col("pings_aggregated_by_this_row"), "positive"),
    "is_default_browser": (CLIENTS_DAILY, _flag(lambda d: d["is_default_browser"]), "any"),
    "qualified_days_of_use": (
        CLIENTS_DAILY,
        _flag(
            lambda d: (
                (d["active_hours_sum"] > 0)
                & (
                    d[
                        "scalar_parent_browser_engagement_total_uri_count_normal_and_private_mode_sum"
                    ]
                    > 0
                )
            )
        ),
        "sum",
    ),
    # active_users is `desktop_active_users WHERE is_desktop`
    "dau_days": (
        ACTIVE_USERS,
        _flag(lambda d: d["is_dau"].fillna(False) & d["is_desktop"].fillna(False)),
        "sum",
    ),
    "search_count": (SEARCH_DAILY, _col("sap"), "sum"),
    "tagged_search_count": (SEARCH_DAILY, _col("tagged_sap"), "sum"),
    "searches_with_ads": (SEARCH_DAILY, _col("search_with_ads"), "sum"),
    "ad_clicks": (SEARCH_DAILY, _col("ad_click"), "sum"),
    "organic_search_count": (SEARCH_DAILY, _col("organic"), "sum"),
    "distinct_search_engines": (SEARCH_DAILY, lambda d: d["engine"], "nunique"),
    "sidebar_opens": (FEATURE_EVENTS, _events_of("sidebar_opened"), "sum"),
    "sidebar_clicks": (FEATURE_EVENTS, _events_of("sidebar_click"), "sum"),
    "promoted_feature_clicks": (
        FEATURE_EVENTS,
        _events_of("sidebar_click", lambda d: d["feature"] == SIDEBAR_FEATURE),
        "sum",
    ),
    "used_sidebar": (FEATURE_EVENTS, _flag(lambda d: d["event_name"] == "sidebar_opened"), "any"),
    # normandy_events = events WHERE event_category = 'normandy'; the slug is filled in by
    # `metric_fn` ({experiment_slug} in the definition)
    "unenroll": (EVENTS, lambda d: pd.Series(0, index=d.index), "any"),
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


def metric_fn(metric: str, slug: str) -> tuple[str, RowFn, str]:
    if metric == "unenroll":
        return (
            EVENTS,
            _flag(lambda d: (d["event_method"] == "unenroll") & (d["event_string_value"] == slug)),
            "any",
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
        self._counted: dict[str, pd.DataFrame] = {}
        self._exposed: dict[int, set[str]] = {}
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
        """Opened the sidebar on or after enrollment, between the start date (window_start
        0) and start + window_end + the enrollment period (window_end
        analysis_window_end): Jetstream's exposure_signal `_window_limit_to_int` and
        mozanalysis `ExposureSignal.build_query`."""
        if window_end in self._exposed:
            return self._exposed[window_end]
        sig = self.signal_days().merge(
            self.enrollments[["enrollment_date"]], left_on="client_id", right_index=True
        )
        period = (self.last - self.start).days
        hi = self.start + pd.to_timedelta(window_end + period, unit="D")
        hit = sig[(sig.day >= sig.enrollment_date) & (sig.day >= self.start) & (sig.day <= hi)]
        self._exposed[window_end] = set(hit.client_id)
        return self._exposed[window_end]

    def population(self, basis: str, window_end: int) -> pd.DataFrame:
        if basis == "enrollments":
            return self.enrollments
        if basis == "exposures":
            return self.enrollments[self.enrollments.index.isin(self.exposed(window_end))]
        raise ValueError(f"unknown basis {basis!r}")

    # ------------------------------------------------------------------ metrics

    def _rows(self, source: str, population: pd.DataFrame) -> pd.DataFrame:
        """The source's rows of the population's clients, with their enrollment date, after
        the annotation rule for the enrollment day."""
        if source not in self._counted:
            enr = self.enrollments
            df = self.frame(source)
            df = df[df.client_id.isin(enr.index)].copy()
            df["enrollment_date"] = enr.loc[df.client_id, "enrollment_date"].to_numpy()
            kind = ANNOTATED.get(source)
            if kind is not None:
                on_day = (df.day == df.enrollment_date).to_numpy()
                ann = np.array([_annotated(v, self.slug, kind) for v in df["experiments"]], bool)
                df = df[~on_day | ann]
            self._counted[source] = df
        df = self._counted[source]
        return df[df.client_id.isin(population.index)]

    def values(
        self, metric: str, basis: str, window_start: int, window_end: int
    ) -> dict[str, float]:
        """Per client of the basis population: the metric over its window."""
        population = self.population(basis, window_end)
        source, fn, how = metric_fn(metric, self.slug)
        rows = self._rows(source, population)
        lo = rows.enrollment_date + pd.to_timedelta(window_start, unit="D")
        hi = rows.enrollment_date + pd.to_timedelta(window_end, unit="D")
        rows = rows[(rows.day >= lo) & (rows.day <= hi)]
        per_row = pd.Series(fn(rows).to_numpy(), index=rows.client_id.to_numpy())
        grouped = per_row.groupby(level=0)
        if how == "nunique":
            agg = grouped.nunique()
        elif how == "any":
            agg = (grouped.max() > 0).astype(float)
        elif how == "positive":
            agg = (grouped.sum() > 0).astype(float)
        else:
            agg = grouped.sum()
        return {cid: float(agg.get(cid, 0.0)) for cid in population.index}

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
