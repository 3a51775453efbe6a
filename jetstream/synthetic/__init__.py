"""Deterministic synthetic Firefox-Desktop-like telemetry with known per-branch effects.

Pure generation into pyarrow tables (the only I/O is `write`, through a warehouse object).
The same (clients, days, seed, start_date) gives bit-identical tables: client-level values
come from one seeded stream, each day from its own stream keyed by (seed, day), so the
daily tables of a run with more days start with exactly those of a shorter run.

Calendar: `start_date` is the first enrollment day of the default experiments. Data covers
the `PRE_PERIOD_DAYS` (28) days before it and then `days` days from it on.

Model (per client i, per day): a latent activity level u_i ~ N(0, 1) drives the chance of
being seen, hours, URIs and searches before and after enrollment alike, so pre-period
covariates predict post-period metrics. Active hours are lognormal with 12% zero days,
searches negative binomial with 30% of clients never searching. From its enrollment day
on, an enrolled client's per-day quantities are multiplied by its branch's effects
(`BranchEffect`); `truth()` gives the resulting relative effect per metric. The activity
effect does not apply on the enrollment day itself (every enrollee is seen that day).

Quirks put in on purpose: clients enrolled in two branches of one experiment, duplicate
enrollment events, clients never exposed, unenrollments, clients_daily rows on the
enrollment day without the experiment annotation, failed-enrollment and non-Normandy
events, clients enrolled in several experiments at once.

Modules: `tables` (schemas), `experiments` (the experiments, effects and truth),
`population` (clients and assignments), `events`, `daily` and `live` (the tables), `batch`
(a whole run), `writer` (loading into a warehouse), `demo` (`python -m
jetstream.synthetic.demo`), `glean_tables` and `glean` (Glean-shaped tables of mobile
experiments, for the non-Normandy enrollment queries and the fenix / firefox_ios
defaults; `generate_glean`). The names below are the package's public API.
"""

from __future__ import annotations

from jetstream.synthetic.batch import generate, iter_tables
from jetstream.synthetic.experiments import (
    DEFAULT_DAYS,
    DEFAULT_EXPERIMENTS,
    DEFAULT_START_DATE,
    DEMO_DIR,
    PRE_PERIOD_DAYS,
    TRUTH_METRICS,
    BranchEffect,
    SyntheticBranch,
    SyntheticExperiment,
    experimenter_records,
    truth,
)
from jetstream.synthetic.glean import GLEAN_EXPERIMENTS, generate_glean
from jetstream.synthetic.live import generate_live
from jetstream.synthetic.writer import Loader, write

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_EXPERIMENTS",
    "DEFAULT_START_DATE",
    "DEMO_DIR",
    "GLEAN_EXPERIMENTS",
    "PRE_PERIOD_DAYS",
    "TRUTH_METRICS",
    "BranchEffect",
    "Loader",
    "SyntheticBranch",
    "SyntheticExperiment",
    "experimenter_records",
    "generate",
    "generate_glean",
    "generate_live",
    "iter_tables",
    "truth",
    "write",
]
