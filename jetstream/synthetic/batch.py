"""The batch tables of a run: the truth, the events, then the daily tables day by day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyarrow as pa

from jetstream.synthetic import tables as st
from jetstream.synthetic.daily import ActivityBits, day_tables
from jetstream.synthetic.events import enrollment_events
from jetstream.synthetic.experiments import (
    DEFAULT_DAYS,
    DEFAULT_EXPERIMENTS,
    DEFAULT_START_DATE,
    PRE_PERIOD_DAYS,
    SyntheticExperiment,
    truth,
)
from jetstream.synthetic.population import Population


def iter_tables(
    clients: int,
    days: int = DEFAULT_DAYS,
    seed: int = 0,
    start_date: dt.date = DEFAULT_START_DATE,
    experiments: tuple[SyntheticExperiment, ...] = DEFAULT_EXPERIMENTS,
) -> Iterator[tuple[str, pa.Table]]:
    """(table name, chunk) pairs: the truth, the events, then the daily tables one day at a
    time (28 pre-period days, then `days` days from `start_date`). Memory stays at one
    day of rows plus per-client state."""
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    total = PRE_PERIOD_DAYS + days
    pop = Population(clients, seed, start_date, experiments, total)
    yield st.TRUTH, truth(experiments)
    yield st.EVENTS, enrollment_events(pop, seed)
    bits = ActivityBits(pop.n)
    for t in range(total):
        yield from day_tables(pop, seed, t, bits).items()


def generate(
    clients: int,
    days: int = DEFAULT_DAYS,
    seed: int = 0,
    start_date: dt.date = DEFAULT_START_DATE,
    experiments: tuple[SyntheticExperiment, ...] = DEFAULT_EXPERIMENTS,
) -> dict[str, pa.Table]:
    """Every batch table, whole: {"telemetry.events": ..., "telemetry.clients_daily": ...,
    "search.search_clients_engines_sources_daily": ..., "telemetry.desktop_active_users":
    ..., "demo.feature_events": ..., "synthetic_truth": ...}."""
    chunks: dict[str, list[pa.Table]] = {}
    for name, table in iter_tables(clients, days, seed, start_date, experiments):
        chunks.setdefault(name, []).append(table)
    return {name: pa.concat_tables(parts) for name, parts in chunks.items()}
