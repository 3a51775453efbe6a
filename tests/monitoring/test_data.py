"""Hand-made live event streams for the monitoring tests, and an independent computation
of every derived value from the raw rows (pandas), following the documented rules:

- a 5-minute window's values come from the layer that covers it (daily if its day was
  finalized, else hourly if its hour was, else recents), and that layer saw the events that
  had arrived by its run time (`submission_timestamp <= at`);
- a client is enrolled from its first known `enroll` event; searches and activity count
  for the branch of that first enrollment once it is before the end of the window.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from jetstream.config.model import Branch
from jetstream.experiments import Experiment

UTC = dt.UTC
D = dt.datetime(2026, 3, 1, tzinfo=UTC)  # day D; D+1 is partly there
BRANCHES = {"exp-a": (("control", 1.0), ("treatment", 1.0)),
            "exp-b": (("a", 1.0), ("b", 1.0), ("c", 2.0))}  # fmt: skip
OTHER_EXPERIMENT = "exp-not-monitored"
TYPES = ["enroll", "unenroll", "graduate", "update", "enroll_failed", "unenroll_failed",
         "update_failed", "weird_type"]  # fmt: skip
TYPE_P = [0.45, 0.12, 0.05, 0.12, 0.08, 0.06, 0.06, 0.06]
US = pa.timestamp("us", tz="UTC")
FIVE = pd.Timedelta(minutes=5)


def experiments(paused: bool = False) -> list[Experiment]:
    return [
        Experiment(
            slug=slug,
            app_name="demo",
            app_id=None,
            branches=tuple(Branch(b, r) for b, r in branches),
            reference_branch=branches[0][0],
            start_date=D.date(),
            end_date=None,
            proposed_enrollment=7,
            enrollment_end_date=None,
            is_enrollment_paused=paused,
            is_rollout=False,
            status="Live",
        )  # fmt: skip
        for slug, branches in BRANCHES.items()
    ]


def _us(t: dt.datetime) -> int:
    return int(t.timestamp()) * 1_000_000 + t.microsecond


def make_stream(seed: int = 7, clients: int = 300, events: int = 5000) -> dict[str, pa.Table]:
    rng = np.random.default_rng(seed)
    ids = np.array([f"client-{i:04d}" for i in range(clients)])
    slugs = [*BRANCHES, OTHER_EXPERIMENT]
    branch_of: dict[tuple[str, str], str] = {}
    for slug in slugs:
        names = [b for b, _ in BRANCHES.get(slug, (("x", 1.0), ("y", 1.0)))]
        ratios = np.array([r for _, r in BRANCHES.get(slug, (("x", 1.0), ("y", 1.0)))])
        picks = rng.choice(len(names), size=clients, p=ratios / ratios.sum())
        for c, p in zip(ids, picks, strict=True):
            branch_of[(slug, str(c))] = names[p]
    span_us = int(31.5 * 3600 * 1e6)
    start = _us(D)
    ts = start + rng.integers(0, span_us, events)
    late = rng.random(events) < 0.15
    delay = np.where(late, rng.integers(300e6, 170 * 60e6, events), rng.integers(0, 120e6, events))
    exp_idx = rng.choice(len(slugs), size=events, p=[0.45, 0.45, 0.10])
    client = rng.choice(ids, size=events)
    kinds = rng.choice(len(TYPES), size=events, p=TYPE_P)
    rows = {
        "event_timestamp": list(ts),
        "submission_timestamp": list(ts + delay),
        "client_id": [str(c) for c in client],
        "experiment": [slugs[i] for i in exp_idx],
        "event_type": [TYPES[k] for k in kinds],
    }
    # Exactly on and next to hour and day boundaries, and late across them.
    boundary = [
        (D + dt.timedelta(hours=25) - dt.timedelta(microseconds=1), 30, "client-0001"),
        (D + dt.timedelta(hours=25), 30, "client-0002"),
        (D + dt.timedelta(days=1) - dt.timedelta(microseconds=1), 170 * 60, "client-0003"),
        (D + dt.timedelta(days=1), 1, "client-0004"),
        (D + dt.timedelta(hours=22, minutes=59, seconds=59), 2 * 3600, "client-0005"),
        (D + dt.timedelta(hours=25, minutes=5), 0, "client-0006"),
    ]
    for t, late_s, c in boundary:
        rows["event_timestamp"].append(_us(t))
        rows["submission_timestamp"].append(_us(t) + late_s * 1_000_000)
        rows["client_id"].append(c)
        rows["experiment"].append("exp-a")
        rows["event_type"].append("enroll")
    rows["branch"] = [branch_of[(e, c)] for e, c in zip(rows["experiment"], rows["client_id"],
                                                            strict=True)]  # fmt: skip
    events_live = pa.table(
        {
            "event_timestamp": pa.array(rows["event_timestamp"], pa.int64()).cast(US),
            "submission_timestamp": pa.array(rows["submission_timestamp"], pa.int64()).cast(US),
            "client_id": rows["client_id"],
            "experiment": rows["experiment"],
            "branch": rows["branch"],
            "event_type": rows["event_type"],
        }
    )
    # Searches: per 5-minute window, a random set of clients.
    s_rows: dict[str, list] = {k: [] for k in ("w", "sub", "c", "s", "a", "k")}
    for w in range(int(31.5 * 12)):
        w_us = start + w * 300_000_000
        who = rng.choice(ids, size=int(rng.integers(0, 12)), replace=False)
        for c in who:
            s = int(rng.integers(1, 6))
            a = int(rng.integers(0, s + 1))
            k = int(rng.integers(0, a + 1))
            d = (
                int(rng.integers(0, 600e6))
                if rng.random() > 0.1
                else int(rng.integers(600e6, 2 * 3600e6))
            )
            s_rows["w"].append(w_us)
            s_rows["sub"].append(w_us + 300_000_000 + d)
            s_rows["c"].append(str(c))
            s_rows["s"].append(s)
            s_rows["a"].append(a)
            s_rows["k"].append(k)
    search_live = pa.table(
        {
            "window_start": pa.array(s_rows["w"], pa.int64()).cast(US),
            "submission_timestamp": pa.array(s_rows["sub"], pa.int64()).cast(US),
            "client_id": pa.array(s_rows["c"], pa.string()),
            "searches": pa.array(s_rows["s"], pa.int64()),
            "searches_with_ads": pa.array(s_rows["a"], pa.int64()),
            "ad_clicks": pa.array(s_rows["k"], pa.int64()),
        }
    )
    return {"telemetry.events_live": events_live, "telemetry.search_live": search_live}


# -- the independent computation ------------------------------------------------------------


class Layers:
    """Which run covers each window: `daily`: {date: at}; `hourly`: {hour start: at};
    everything else is recents as of `now`."""

    def __init__(self, now: dt.datetime, daily: dict, hourly: dict):
        self.now = pd.Timestamp(now)
        self.daily = {pd.Timestamp(k).date(): pd.Timestamp(v) for k, v in daily.items()}
        self.hourly = {pd.Timestamp(k): pd.Timestamp(v) for k, v in hourly.items()}

    def seen_by(self, window: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        """(run time of the covering layer, end of the event times it covers)."""
        if window.date() in self.daily:
            return self.daily[window.date()], pd.Timestamp(window.date(), tz="UTC") + pd.Timedelta(
                days=1
            )
        hour = window.floor("h")
        if hour in self.hourly:
            return self.hourly[hour], hour + pd.Timedelta(hours=1)
        return self.now, self.now


def _frames(stream: dict[str, pa.Table]) -> tuple[pd.DataFrame, pd.DataFrame]:
    ev = stream["telemetry.events_live"].to_pandas()
    se = stream["telemetry.search_live"].to_pandas()
    ev["window"] = ev["event_timestamp"].dt.floor("5min")
    se["window"] = se["window_start"].dt.floor("5min")
    return ev, se


def _visible(df: pd.DataFrame, time_col: str, layers: Layers) -> pd.DataFrame:
    seen = df["window"].map(lambda w: layers.seen_by(w))
    at = seen.map(lambda p: p[0])
    end = seen.map(lambda p: p[1])
    keep = (df["submission_timestamp"] <= at) & (df[time_col] < end)
    return df[keep].assign(at=at[keep])


def _first_enroll(ev: pd.DataFrame, slug: str, at: pd.Timestamp) -> pd.DataFrame:
    e = ev[(ev["experiment"] == slug) & (ev["event_type"] == "enroll")
           & (ev["submission_timestamp"] <= at)]  # fmt: skip
    e = e.sort_values(["event_timestamp", "branch"]).drop_duplicates("client_id")
    return e.set_index("client_id")[["event_timestamp", "branch"]]


def expected(stream: dict[str, pa.Table], layers: Layers, slug: str) -> dict[str, pd.DataFrame]:
    """Every derived table for one experiment: DataFrames (time, branch, value)."""
    ev, se = _frames(stream)
    first = D
    last = (layers.now - pd.Timedelta(microseconds=1)).floor("5min")
    times = pd.date_range(first, last, freq="5min")
    branches = [b for b, _ in BRANCHES[slug]]
    grid = pd.MultiIndex.from_product([times, branches], names=["time", "branch"])

    vis = _visible(ev[ev["experiment"] == slug], "event_timestamp", layers)
    counts = vis.groupby(["window", "branch", "event_type"]).size()

    def per_window(types: list[str] | None, exclude: list[str] | None = None) -> pd.Series:
        sel = vis
        if types is not None:
            sel = sel[sel["event_type"].isin(types)]
        if exclude is not None:
            sel = sel[~sel["event_type"].isin(exclude)]
        s = sel.groupby(["window", "branch"]).size()
        s.index.names = ["time", "branch"]
        return s.reindex(grid, fill_value=0)

    del counts
    enroll = per_window(["enroll"])
    unenroll = per_window(["unenroll"])
    graduate = per_window(["graduate"])
    other = per_window(None, exclude=["enroll", "unenroll"])

    def running(s: pd.Series) -> pd.Series:
        return s.groupby(level="branch").cumsum()

    # Searches of enrolled clients, with the enrollment known to the covering run.
    svis = _visible(se, "window_start", layers)
    sums = {k: {} for k in ("searches", "searches_with_ads", "ad_clicks")}
    for at, chunk in svis.groupby("at"):
        enrolled = _first_enroll(ev, slug, at)
        j = chunk.join(enrolled, on="client_id", how="inner")
        j = j[j["event_timestamp"] < j["window"] + FIVE]
        for col in sums:
            for key, v in j.groupby(["window", "branch"])[col].sum().items():
                sums[col][key] = sums[col].get(key, 0) + int(v)

    def series(d: dict) -> pd.Series:
        s = pd.Series(d, dtype="int64")
        if s.empty:
            return pd.Series(0, index=grid, dtype="int64")
        s.index = pd.MultiIndex.from_tuples(s.index, names=["time", "branch"])
        return s.reindex(grid, fill_value=0)

    # Daily active population: enrolled clients active (any live event or search row).
    act = pd.concat(
        [
            _visible(ev, "event_timestamp", layers)[["window", "client_id", "at"]],
            _visible(se, "window_start", layers)[["window", "client_id", "at"]],
        ]
    )
    firsts: dict[tuple, pd.Timestamp] = {}
    for at, chunk in act.groupby("at"):
        enrolled = _first_enroll(ev, slug, at)
        j = chunk.join(enrolled, on="client_id", how="inner")
        j = j[j["event_timestamp"] < j["window"] + FIVE]
        for row in j.itertuples():
            key = (row.client_id, row.branch, row.window.date())
            if key not in firsts or row.window < firsts[key]:
                firsts[key] = row.window
    newly: dict[tuple, int] = {}
    for (_c, branch, _day), w in firsts.items():
        newly[(w, branch)] = newly.get((w, branch), 0) + 1
    new_active = series(newly)
    dap = new_active.groupby([new_active.index.get_level_values("time").date,
                              new_active.index.get_level_values("branch")]).cumsum()  # fmt: skip

    out = {
        "experiment_enrollment_overall": enroll,
        "experiment_unenrollment_overall": unenroll,
        "experiment_enrollment_other_events_overall": other,
        "experiment_enrollment_cumulative_population_estimate": running(
            enroll - unenroll - graduate
        ),
        "experiment_enrollment_daily_active_population": dap,
        "experiment_cumulative_ad_clicks": running(series(sums["ad_clicks"])),
        "experiment_cumulative_search_count": running(series(sums["searches"])),
        "experiment_cumulative_search_with_ads_count": running(series(sums["searches_with_ads"])),
    }
    return {
        name: s.rename("value").reset_index().sort_values(["time", "branch"]).reset_index(drop=True)
        for name, s in out.items()
    }


def expected_first_enrollments(
    stream: dict[str, pa.Table], layers: Layers, slug: str
) -> dict[str, int]:
    """Distinct clients per branch by their first visible enrollment."""
    ev, _ = _frames(stream)
    vis = _visible(ev[(ev["experiment"] == slug) & (ev["event_type"] == "enroll")],
                   "event_timestamp", layers)  # fmt: skip
    first = vis.sort_values(["window", "branch"]).drop_duplicates("client_id")
    return {str(k): int(v) for k, v in first.groupby("branch").size().items()}


# -- the generator itself ------------------------------------------------------------------


def test_stream_has_late_and_boundary_events():
    stream = make_stream()
    ev = stream["telemetry.events_live"].to_pandas()
    delay = ev["submission_timestamp"] - ev["event_timestamp"]
    assert (delay > pd.Timedelta(minutes=5)).mean() > 0.1
    assert (ev["event_timestamp"] == pd.Timestamp(D + dt.timedelta(days=1))).any()
    assert set(ev["event_type"]) == set(TYPES)
    assert stream["telemetry.search_live"].num_rows > 1000
    # Deterministic: the same seed gives the same rows.
    assert make_stream()["telemetry.events_live"].equals(stream["telemetry.events_live"])
