"""Health of a live experiment: sample-ratio mismatch and silent enrollment. Pure.

The document `monitoring/<slug>_health.json`:

    {"experiment": slug, "at": ISO time, "ok": bool,
     "srm": {test, alpha, concentration, branches, expected_shares, observed_shares,
             enrolled_clients, unknown_branch_clients, e_value, max_e_value, p_value,
             mismatch, first_detected_window, looks},
     "no_recent_enrollments": {flag, enrollment_open, enrollments, window_start,
                               window_end}}

`ok` is false when either check raises its flag.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jetstream.experiments import Experiment
from jetstream.monitoring.schedule import WINDOW, day_start, last_window, utc
from jetstream.monitoring.srm import DEFAULT_ALPHA, DEFAULT_CONCENTRATION, srm_test

SRM_TEST_NAME = "dirichlet-multinomial mixture e-process (anytime-valid)"


def is_live(experiment: Experiment, at: dt.datetime) -> bool:
    """Started on or before the day of `at`, not ended before the day before it (the
    daily job still finalizes the last day)."""
    day = utc(at).date()
    if experiment.start_date is None or experiment.start_date > day:
        return False
    return experiment.end_date is None or experiment.end_date >= day - dt.timedelta(days=1)


def enrollment_open(experiment: Experiment, at: dt.datetime) -> bool:
    """Live, not paused, and the enrollment period (if known) has not ended."""
    day = utc(at).date()
    if not is_live(experiment, at) or experiment.is_enrollment_paused:
        return False
    if experiment.end_date is not None and experiment.end_date < day:
        return False
    return experiment.enrollment_end_date is None or experiment.enrollment_end_date >= day


def grid(experiment: Experiment, at: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """First and last 5-minute window (starts, inclusive) of the experiment's derived rows:
    from its start day up to the window holding `at` (or the end of its end day)."""
    if experiment.start_date is None:
        raise ValueError(f"experiment {experiment.slug!r} has no start date")
    first = day_start(experiment.start_date)
    last = last_window(at)
    if experiment.end_date is not None:
        last = min(last, day_start(experiment.end_date) + dt.timedelta(days=1) - WINDOW)
    return first, max(first, last)


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else utc(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def health_document(
    experiment: Experiment,
    at: dt.datetime,
    first_enrollments: Sequence[tuple[str, dt.datetime, int]],
    recent_enrollments: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    concentration: float = DEFAULT_CONCENTRATION,
    silence: dt.timedelta = dt.timedelta(hours=1),
) -> dict[str, Any]:
    """`first_enrollments`: (branch, window_start, clients) rows, the distinct clients whose
    first enrollment fell in each window. `recent_enrollments`: enroll events in the
    `silence` before `at`. Looks are taken at every window of the grid."""
    branches = [b.slug for b in experiment.branches]
    ratios = [float(b.ratio) for b in experiment.branches]
    first, last = grid(experiment, at)
    n_windows = int((last - first) / WINDOW) + 1
    index = {b: i for i, b in enumerate(branches)}
    per_window = np.zeros((n_windows, len(branches)), dtype=np.int64)
    unknown = 0
    for branch, window, clients in first_enrollments:
        pos = int((utc(window) - first) / WINDOW)
        if branch not in index:
            unknown += int(clients)
            continue
        per_window[min(max(pos, 0), n_windows - 1), index[branch]] += int(clients)
    cumulative = per_window.cumsum(axis=0)
    srm: dict[str, Any] = {
        "test": SRM_TEST_NAME,
        "alpha": alpha,
        "concentration": concentration,
        "branches": branches,
        "unknown_branch_clients": unknown,
        "looks": n_windows,
    }
    usable = len(branches) >= 2 and all(r > 0 and math.isfinite(r) for r in ratios)
    if usable:
        result = srm_test(cumulative, ratios, alpha=alpha, concentration=concentration)
        detected = result.first_detected
        srm.update(
            expected_shares=dict(zip(branches, result.expected_shares, strict=True)),
            observed_shares=dict(zip(branches, result.observed_shares, strict=True)),
            enrolled_clients=dict(zip(branches, result.counts, strict=True)),
            e_value=_finite(math.exp(min(result.log_e_value, 700.0))),
            max_e_value=_finite(math.exp(min(result.max_log_e_value, 700.0))),
            p_value=result.p_value,
            mismatch=result.mismatch,
            first_detected_window=_iso(first + detected * WINDOW) if detected is not None else None,
        )
    else:
        srm.update(
            enrolled_clients=dict(zip(branches, (int(v) for v in cumulative[-1]), strict=True)),
            mismatch=False,
            p_value=1.0,
            note="needs at least two branches with positive ratios",
        )
    open_ = enrollment_open(experiment, at)
    silent = {
        "flag": bool(open_ and recent_enrollments == 0),
        "enrollment_open": open_,
        "enrollments": int(recent_enrollments),
        "window_start": _iso(utc(at) - silence),
        "window_end": _iso(at),
    }
    return {
        "experiment": experiment.slug,
        "at": _iso(at),
        "ok": not (srm["mismatch"] or silent["flag"]),
        "srm": srm,
        "no_recent_enrollments": silent,
    }


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 1.7976931348623157e308


def rows_by_experiment(
    rows: Sequence[Mapping[str, Any]], key: str = "experiment"
) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        out.setdefault(str(row[key]), []).append(row)
    return out
