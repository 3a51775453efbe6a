"""The live stream tables for monitoring (`telemetry.events_live`, `telemetry.search_live`):
minute-resolution enrollment events and 5-minute search windows, with late arrivals."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from jetstream.synthetic import tables as st
from jetstream.synthetic.experiments import (
    DEFAULT_EXPERIMENTS,
    DEFAULT_START_DATE,
    F_AD_CTR,
    F_SEARCHES,
    PRE_PERIOD_DAYS,
    SyntheticExperiment,
)
from jetstream.synthetic.population import (
    STREAM_LIVE_EVENTS,
    STREAM_LIVE_SEARCH,
    Population,
    build_table,
    choice,
    neg_binomial,
    rng_for,
    timestamp_column,
)

_LIVE_TYPE_PROBS = [0.80, 0.06, 0.01, 0.04, 0.04, 0.01, 0.01, 0.03]  # st.LIVE_EVENT_TYPES
_MINUTE_US = 60_000_000


def _diurnal(minute: int) -> float:
    return 1.0 + 0.5 * np.sin(2.0 * np.pi * (minute % 1440) / 1440.0)


def generate_live(
    clients: int,
    seed: int,
    now: dt.datetime,
    hours: int = 24,
    experiments: tuple[SyntheticExperiment, ...] = DEFAULT_EXPERIMENTS,
) -> dict[str, pa.Table]:
    """The live tables for the `hours` up to `now`: `telemetry.events_live` (enrollment
    events at minute resolution; 15% arrive late, and events whose submission would be
    after `now` are not there yet) and `telemetry.search_live` (searches per client per
    5-minute window). Each minute and window has its own random stream, so a later call
    returns the same events plus the newly arrived ones."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    pop = Population(clients, seed, DEFAULT_START_DATE, experiments, PRE_PERIOD_DAYS + 1)
    now_us = int(now.timestamp() * 1_000_000)
    last_minute = now_us // _MINUTE_US
    rate = max(clients / 2000.0, 0.5)
    shares = [exp.share for exp in experiments]
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("ev", "sub", "c", "e", "type")}
    for m in range(last_minute - hours * 60 + 1, last_minute + 1):
        rng = rng_for(seed, STREAM_LIVE_EVENTS, m)
        k = int(rng.poisson(rate * _diurnal(m)))
        if not k:
            continue
        e = choice(rng, k, shares)
        c = rng.integers(0, pop.n, k)
        kind = choice(rng, k, _LIVE_TYPE_PROBS)
        late = rng.random(k) < 0.15
        delay_s = np.where(late, rng.integers(300, 7200, k), rng.integers(0, 120, k))
        sub = m * _MINUTE_US + delay_s * 1_000_000
        keep = sub <= now_us
        for key, arr in (
            ("ev", np.full(k, m * _MINUTE_US)),
            ("sub", sub),
            ("c", c),
            ("e", e),
            ("type", kind),
        ):
            cols[key].append(arr[keep])
    ev, sub, c, e, kind = (
        np.concatenate(cols[k]) if cols[k] else np.zeros(0, np.int64)
        for k in ("ev", "sub", "c", "e", "type")
    )
    labels = pop.label_offset[e] + pop.branch[e, c]
    events_live = build_table(
        st.EVENTS_LIVE,
        {
            "event_timestamp": timestamp_column(ev),
            "submission_timestamp": timestamp_column(sub),
            "client_id": pop.ids.take(pa.array(c, pa.int64())),
            "experiment": pop.slugs.take(pa.array(e, pa.int64())),
            "branch": pop.branch_labels.take(pa.array(labels, pa.int64())),
            "event_type": pa.array(list(st.LIVE_EVENT_TYPES)).take(pa.array(kind, pa.int64())),
        },
    )

    window_us = 5 * _MINUTE_US
    last_window = now_us // window_us
    scols: dict[str, list[np.ndarray]] = {k: [] for k in ("w", "sub", "c", "s", "a", "k")}
    for w in range(last_window - hours * 12 + 1, last_window + 1):
        rng = rng_for(seed, STREAM_LIVE_SEARCH, w)
        c = np.unique(rng.integers(0, pop.n, int(rng.poisson(clients * 0.01 * _diurnal(w * 5)))))
        f = pop.factors(np.iinfo(np.int64).max - 1, c)
        searches = 1 + neg_binomial(rng, 0.8, 1.5 * pop.sap_mean[c] * f[:, F_SEARCHES] + 0.5)
        with_ads = rng.binomial(searches, 0.6)
        clicks = rng.binomial(with_ads, np.minimum(pop.ctr[c] * f[:, F_AD_CTR], 1.0))
        late = rng.random(len(c)) < 0.1
        delay_s = np.where(late, rng.integers(300, 3600, len(c)), rng.integers(0, 120, len(c)))
        sub = (w + 1) * window_us + delay_s * 1_000_000
        keep = sub <= now_us
        for key, arr in (
            ("w", np.full(len(c), w * window_us)),
            ("sub", sub),
            ("c", c),
            ("s", searches),
            ("a", with_ads),
            ("k", clicks),
        ):
            scols[key].append(arr[keep])
    w_, sub_, c_, s_, a_, k_ = (
        np.concatenate(scols[k]) if scols[k] else np.zeros(0, np.int64)
        for k in ("w", "sub", "c", "s", "a", "k")
    )
    search_live = build_table(
        st.SEARCH_LIVE,
        {
            "window_start": timestamp_column(w_),
            "submission_timestamp": timestamp_column(sub_),
            "client_id": pop.ids.take(pa.array(c_, pa.int64())),
            "searches": pa.array(s_, pa.int64()),
            "searches_with_ads": pa.array(a_, pa.int64()),
            "ad_clicks": pa.array(k_, pa.int64()),
        },
    )
    return {st.EVENTS_LIVE: events_live, st.SEARCH_LIVE: search_live}
