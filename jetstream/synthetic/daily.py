"""The daily activity tables of one day (clients_daily, desktop_active_users, search
clients, demo feature events): rows for the clients seen that day, with each enrolled
client's branch effects applied from its enrollment day on."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from jetstream.synthetic import tables as st
from jetstream.synthetic.experiments import (
    F_ACTIVE_HOURS,
    F_ACTIVITY,
    F_AD_CTR,
    F_SEARCHES,
    F_SIDEBAR_CLICKS,
)
from jetstream.synthetic.population import (
    COUNTRIES,
    ENGINES,
    OS_NAMES,
    SEARCH_SOURCES,
    SIDEBAR_FEATURES,
    STREAM_DAY,
    Population,
    build_table,
    date_column,
    experiments_column,
    neg_binomial,
    rng_for,
)

_MASK28 = (1 << 28) - 1

_FEATURE_EVENT_NAMES = pa.array(["sidebar_opened", "sidebar_click"])
_FEATURE_NAMES = pa.array(["sidebar", *SIDEBAR_FEATURES])


class ActivityBits:
    """Rolling 28-day seen/active bit patterns (bit 0 = today), carried across days."""

    def __init__(self, n: int):
        self.seen = np.zeros(n, dtype=np.int64)
        self.active = np.zeros(n, dtype=np.int64)

    def push(self, seen: np.ndarray, active: np.ndarray) -> None:
        self.seen = ((self.seen << 1) | seen) & _MASK28
        self.active = ((self.active << 1) | active) & _MASK28


def day_tables(pop: Population, seed: int, t: int, bits: ActivityBits) -> dict[str, pa.Table]:
    """The daily activity tables of day t (rows for clients seen that day)."""
    rng = rng_for(seed, STREAM_DAY, t)
    n_all = pop.n
    all_idx = np.arange(n_all)
    f_all = pop.factors(t, all_idx)
    enrolls_today = (pop.t_enroll == t).any(axis=0)
    # Every enrollee is seen on its enrollment day; the activity effect starts the day after.
    activity = np.where(enrolls_today, 1.0, f_all[:, F_ACTIVITY])
    seen = (rng.random(n_all) < pop.p_seen * activity) | enrolls_today
    idx = np.flatnonzero(seen)
    n = len(idx)
    f = f_all[idx]
    date = pop.date(t)
    dates = date_column(date, n)
    ids = pop.ids.take(pa.array(idx))
    sample = pa.array(pop.sample_id[idx])
    ann = pop.annotation(t, idx)
    labels = pop.labels(idx)

    # clients_daily
    hours = np.exp(pop.hours_mu[idx] + rng.standard_normal(n)) * f[:, F_ACTIVE_HOURS]
    hours[rng.random(n) < 0.12] = 0.0
    used = hours > 0
    uri = np.where(used, neg_binomial(rng, 1.2, pop.uri_mean[idx]), 0)
    uri_all = uri + np.where(used, rng.poisson(0.05 * pop.uri_mean[idx]), 0)
    default = pop.default_browser[idx] ^ (rng.random(n) < 0.02)
    clients_daily = build_table(
        st.CLIENTS_DAILY,
        {
            "submission_date": dates,
            "client_id": ids,
            "sample_id": sample,
            "os": OS_NAMES.take(pa.array(pop.os[idx])),
            "country": COUNTRIES.take(pa.array(pop.country[idx])),
            "pings_aggregated_by_this_row": pa.array(1 + rng.poisson(2.0, n)),
            "active_hours_sum": pa.array(hours),
            "scalar_parent_browser_engagement_total_uri_count_sum": pa.array(uri),
            "scalar_parent_browser_engagement_total_uri_count_normal_and_private_mode_sum": (
                pa.array(uri_all)
            ),
            "is_default_browser": pa.array(default),
            "scalar_parent_os_environment_is_taskbar_pinned": pa.array(pop.pinned[idx]),
            "experiments": experiments_column(pop, ann, labels, native=False),
        },
    )

    # desktop_active_users
    dau = used & (uri > 0)
    dau_all = np.zeros(n_all, dtype=bool)
    dau_all[idx] = dau
    bits.push(seen.astype(np.int64), dau_all.astype(np.int64))
    active_users = build_table(
        st.ACTIVE_USERS,
        {
            "submission_date": dates,
            "client_id": ids,
            "sample_id": sample,
            "is_desktop": pa.array(pop.desktop[idx]),
            "is_dau": pa.array(dau),
            "days_seen_bits": pa.array(bits.seen[idx]),
            "days_active_bits": pa.array(bits.active[idx]),
        },
    )

    # search_clients_engines_sources_daily: a primary-engine row, and for some clients a
    # second-engine row taking ~30% of each count.
    sap = neg_binomial(rng, 0.7, pop.sap_mean[idx] * f[:, F_SEARCHES])
    organic = neg_binomial(rng, 0.5, pop.organic_mean[idx])
    tagged = rng.binomial(sap, 0.85)
    follow_on = rng.binomial(tagged, 0.25)
    with_ads = rng.binomial(sap, 0.6)
    clicks = rng.binomial(with_ads, np.minimum(pop.ctr[idx] * f[:, F_AD_CTR], 1.0))
    counts = np.stack([sap, tagged, follow_on, with_ads, clicks, organic])
    second = np.zeros_like(counts)
    split = np.flatnonzero(pop.two_engines[idx])
    second[:, split] = rng.binomial(counts[:, split], 0.3)
    first = counts - second
    parts = []
    for part, engine, source in (
        (first, pop.engine[idx], np.zeros(n, dtype=np.int64)),
        (second, pop.second_engine[idx], rng.integers(0, len(SEARCH_SOURCES), n)),
    ):
        keep = part.any(axis=0)
        parts.append((np.flatnonzero(keep), part[:, keep], engine[keep], source[keep]))
    rows = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts], axis=1)
    search = build_table(
        st.SEARCH_DAILY,
        {
            "submission_date": date_column(date, len(rows)),
            "client_id": ids.take(pa.array(rows)),
            "sample_id": sample.take(pa.array(rows)),
            "engine": ENGINES.take(pa.array(np.concatenate([p[2] for p in parts]))),
            "source": SEARCH_SOURCES.take(pa.array(np.concatenate([p[3] for p in parts]))),
            "sap": pa.array(c[0]),
            "tagged_sap": pa.array(c[1]),
            "tagged_follow_on": pa.array(c[2]),
            "search_with_ads": pa.array(c[3]),
            "ad_click": pa.array(c[4]),
            "organic": pa.array(c[5]),
        },
    )

    # demo.feature_events: sidebar opens (feature "sidebar") and clicks per feature.
    opened = np.flatnonzero(rng.random(n) < pop.sidebar_q[idx])
    opens = 1 + rng.poisson(0.8, len(opened))
    k_clicks = rng.poisson(1.5 * f[opened, F_SIDEBAR_CLICKS])
    per_feature = rng.multinomial(k_clicks, [0.5, 0.3, 0.2])
    f_rows = [opened]
    f_name = [np.zeros(len(opened), dtype=np.int64)]
    f_feature = [np.zeros(len(opened), dtype=np.int64)]
    f_count = [opens]
    for j in range(len(SIDEBAR_FEATURES)):
        has = per_feature[:, j] > 0
        f_rows.append(opened[has])
        f_name.append(np.ones(int(has.sum()), dtype=np.int64))
        f_feature.append(np.full(int(has.sum()), j + 1))
        f_count.append(per_feature[has, j])
    fr = np.concatenate(f_rows)
    order = np.argsort(fr, kind="stable")
    fr = fr[order]
    features = build_table(
        st.FEATURE_EVENTS,
        {
            "submission_date": date_column(date, len(fr)),
            "client_id": ids.take(pa.array(fr)),
            "sample_id": sample.take(pa.array(fr)),
            "event_name": _FEATURE_EVENT_NAMES.take(pa.array(np.concatenate(f_name)[order])),
            "feature": _FEATURE_NAMES.take(pa.array(np.concatenate(f_feature)[order])),
            "event_count": pa.array(np.concatenate(f_count)[order].astype(np.int64)),
            "experiments": experiments_column(pop, ann[fr], labels[fr], native=False),
        },
    )
    return {
        st.CLIENTS_DAILY: clients_daily,
        st.SEARCH_DAILY: search,
        st.ACTIVE_USERS: active_users,
        st.FEATURE_EVENTS: features,
    }
