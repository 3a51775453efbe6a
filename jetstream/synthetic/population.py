"""The simulated clients: client-level values (a latent activity level driving every
per-day quantity), experiment enrollment, branches and unenrollment, drawn once per run
from one seeded stream; plus the Arrow column builders the table generators share."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jetstream.synthetic import tables as st
from jetstream.synthetic.experiments import (
    EFFECT_FIELDS,
    F_ACTIVITY,
    F_UNENROLL,
    PRE_PERIOD_DAYS,
    SyntheticExperiment,
)

EPOCH = dt.date(1970, 1, 1)

# Stream ids for numpy SeedSequence([seed, stream, ...]).
STREAM_CLIENTS, STREAM_EVENTS, STREAM_DAY, STREAM_LIVE_EVENTS, STREAM_LIVE_SEARCH = 0, 1, 2, 3, 4


def rng_for(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


def client_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """n random version-4 UUID strings, vectorised."""
    b = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    hexd = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)
    pos = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])
    chars[:, pos[0::2]] = hexd[b >> 4]
    chars[:, pos[1::2]] = hexd[b & 0x0F]
    return pa.array(chars.view("S36").ravel()).cast(pa.string())


def choice(rng: np.random.Generator, n: int, probs: list[float]) -> np.ndarray:
    return np.searchsorted(np.cumsum(probs), rng.random(n) * np.sum(probs), side="right")


def neg_binomial(rng: np.random.Generator, shape: float, mean: np.ndarray) -> np.ndarray:
    p = shape / (shape + np.maximum(mean, 0.0))
    return rng.negative_binomial(shape, p).astype(np.int64)


OS_NAMES = pa.array(["Windows_NT", "Darwin", "Linux"])
COUNTRIES = pa.array(["US", "DE", "FR", "GB", "CA", "IN", "BR", "JP"])
ENGINES = pa.array(["google", "bing", "ddg", "ecosia", "wikipedia"])
SEARCH_SOURCES = pa.array(["urlbar", "searchbar", "contextmenu", "newtab", "urlbar-handoff"])
SIDEBAR_FEATURES = ("bookmarks", "history", "synced_tabs")


class Population:
    """Client-level values and experiment assignments (built once per run)."""

    def __init__(
        self,
        clients: int,
        seed: int,
        start_date: dt.date,
        experiments: tuple[SyntheticExperiment, ...],
        total_days: int,
    ):
        if clients < 1:
            raise ValueError(f"clients must be >= 1, got {clients}")
        n = clients
        self.n = n
        self.experiments = experiments
        self.total_days = total_days
        self.first_date = start_date - dt.timedelta(days=PRE_PERIOD_DAYS)
        rng = rng_for(seed, STREAM_CLIENTS)
        self.ids = client_ids(rng, n)
        u = rng.standard_normal(n)
        self.sample_id = rng.integers(0, 100, n)
        self.p_seen = np.clip(1.0 / (1.0 + np.exp(-(0.3 + 1.3 * u))), 0.03, 0.88)
        self.hours_mu = -0.6 + 0.55 * u + 0.3 * rng.standard_normal(n)
        self.uri_mean = 25.0 * np.exp(0.5 * u + 0.3 * rng.standard_normal(n))
        searcher = rng.random(n) < 0.7
        self.sap_mean = searcher * 1.6 * np.exp(0.6 * u + 0.5 * rng.standard_normal(n))
        self.organic_mean = 0.5 * np.exp(0.4 * u + 0.5 * rng.standard_normal(n))
        self.ctr = np.minimum(rng.beta(2.0, 8.0, n), 0.8)
        self.default_browser = rng.random(n) < 1.0 / (1.0 + np.exp(-(0.2 + 0.5 * u)))
        self.pinned = rng.random(n) < 0.3
        self.desktop = rng.random(n) < 0.99
        self.os = choice(rng, n, [0.75, 0.15, 0.10])
        self.country = choice(rng, n, [0.3, 0.12, 0.1, 0.1, 0.08, 0.15, 0.1, 0.05])
        self.engine = choice(rng, n, [0.7, 0.15, 0.1, 0.04, 0.01])
        self.second_engine = (self.engine + 1 + rng.integers(0, 4, n)) % len(ENGINES)
        self.two_engines = rng.random(n) < 0.15
        self.sidebar_q = np.where(rng.random(n) < 0.35, 0.0, rng.beta(2.0, 5.0, n))

        # Experiments: enrollment, branch, flags. Day index t: 0 = first_date.
        e_count = len(experiments)
        never = np.iinfo(np.int64).max
        self.enrolled = np.zeros((e_count, n), dtype=bool)
        self.branch = np.zeros((e_count, n), dtype=np.int64)
        self.t_enroll = np.full((e_count, n), never, dtype=np.int64)
        self.t_unenroll = np.full((e_count, n), never, dtype=np.int64)
        self.unannotated_day0 = np.zeros((e_count, n), dtype=bool)
        self.effects = []  # per experiment: (branches, fields) factors
        labels: list[str] = []
        self.label_offset = np.zeros(e_count, dtype=np.int64)
        for e, exp in enumerate(experiments):
            ratios = np.array([b.ratio for b in exp.branches], dtype=float)
            self.branch[e] = choice(rng, n, list(ratios))
            first = PRE_PERIOD_DAYS + exp.start_offset
            t0 = first + rng.integers(0, exp.enrollment_days, n)
            self.enrolled[e] = (rng.random(n) < exp.share) & (t0 < total_days)
            self.t_enroll[e] = np.where(self.enrolled[e], t0, never)
            self.unannotated_day0[e] = rng.random(n) < 0.15
            eff = np.array([[b.effect.factor(f) for f in EFFECT_FIELDS] for b in exp.branches])
            self.effects.append(eff)
            u_prob = 0.05 * eff[self.branch[e], F_UNENROLL]
            leaves = self.enrolled[e] & (rng.random(n) < u_prob)
            t_u = t0 + rng.geometric(0.08, n)
            self.t_unenroll[e] = np.where(leaves, t_u, never)
            self.label_offset[e] = len(labels)
            labels.extend(b.slug for b in exp.branches)
        self.slugs = pa.array([exp.slug for exp in experiments], pa.string())
        self.branch_labels = pa.array(labels, pa.string())
        peak = np.prod([eff[:, F_ACTIVITY].max() for eff in self.effects]) if self.effects else 1.0
        if peak * self.p_seen.max() > 1.0:
            raise ValueError("activity effects too large: a chance of being seen exceeds 1")

    def date(self, t: int) -> dt.date:
        return self.first_date + dt.timedelta(days=t)

    def factors(self, t: int, idx: np.ndarray) -> np.ndarray:
        """(len(idx), fields) effect factors of clients `idx` on day t."""
        out = np.ones((len(idx), len(EFFECT_FIELDS)))
        for e, eff in enumerate(self.effects):
            on = self.t_enroll[e, idx] <= t
            out[on] *= eff[self.branch[e, idx[on]]]
        return out

    def annotation(self, t: int, idx: np.ndarray) -> np.ndarray:
        """(len(idx), experiments) whether day-t rows of clients `idx` carry the slug."""
        te = self.t_enroll[:, idx]
        ann = (
            (te <= t) & (self.t_unenroll[:, idx] > t) & ~((te == t) & self.unannotated_day0[:, idx])
        )
        return ann.T

    def labels(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), experiments) branch-label indices of clients `idx`."""
        return (self.label_offset[:, None] + self.branch[:, idx]).T


def experiments_column(
    pop: Population, mask: np.ndarray, labels: np.ndarray, native: bool
) -> pa.Array:
    """An experiments map column: row r has (slug e, branch label labels[r, e]) where
    mask[r, e]. Native values are STRUCT<branch>, simple ones plain strings."""
    rows, e_count = mask.shape
    flat = mask.ravel()
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(mask.sum(axis=1), out=offsets[1:])
    keys = pop.slugs.take(pa.array(np.tile(np.arange(e_count), rows)[flat]))
    values: pa.Array = pop.branch_labels.take(pa.array(labels.ravel()[flat]))
    typ = st.SIMPLE_EXPERIMENTS
    if native:
        values = pa.StructArray.from_arrays([values], names=["branch"])
        typ = st.NATIVE_EXPERIMENTS
    items = pa.StructArray.from_arrays([keys, values], names=["key", "value"])
    return pa.ListArray.from_arrays(pa.array(offsets), items, type=typ)


def day_dates(pop: Population, t: np.ndarray) -> pa.Array:
    days = (pop.first_date - EPOCH).days + np.asarray(t)
    return pa.array(days.astype(np.int32)).cast(pa.date32())


def date_column(date: dt.date, n: int) -> pa.Array:
    return pa.array(np.full(n, (date - EPOCH).days, dtype=np.int32)).cast(pa.date32())


def timestamp_column(micros: np.ndarray) -> pa.Array:
    return pa.array(micros.astype(np.int64)).cast(st.TS)


def profile_group_ids(client_ids: pa.Array) -> pa.Array:
    """Each client's profile group (`profile_group_id`): one group per client, `pg-<id>`."""
    return pc.binary_join_element_wise("pg-", client_ids, "")


def build_table(name: str, columns: dict[str, Any]) -> pa.Table:
    """The table `name` from its columns; `profile_group_id`, when the schema has it and
    `columns` do not, from the client ids."""
    schema = st.SCHEMAS[name]
    if "profile_group_id" in schema.names and "profile_group_id" not in columns:
        columns = {**columns, "profile_group_id": profile_group_ids(columns["client_id"])}
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)
