"""A production day shaped like the public metric-hub: about 150 firefox_desktop
experiments, for measuring what the Argo runner submits (object sizes, pod counts).

The experiment configs are the real `jetstream/*.toml` files of the metric-hub corpus
(../shared/metric-hub); Experimenter records are invented for them (app firefox_desktop,
branches control/treatment, 7 days of enrollment, start dates spread over the 120 days
before the analysis date so the due periods vary as they do in production). Configs that
do not resolve on firefox_desktop (other platforms' metrics) are left out, as the
controller leaves out any experiment whose config fails.

- `daily_graph`: what `jetstream controller` plans for the day;
- `rerun_graph`: a definitions-wide rerun (a change to definitions/firefox_desktop.toml):
  every experiment over every date since its enrollment ended, as the webhook plans it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DATE = dt.date(2026, 8, 20)  # the corpus' commit is from 2026-08-21
SPREAD_DAYS = 120
ENROLLMENT_DAYS = 7
DEFAULT_SIZE = 150


def _offset(slug: str) -> int:
    return int(hashlib.sha1(slug.encode()).hexdigest()[:8], 16) % SPREAD_DAYS


def experiment_records(slugs: Sequence[str], date: dt.date = DATE) -> list[dict[str, Any]]:
    """Experimenter v8 records: live experiments started 8 to 127 days before `date`."""
    out = []
    for slug in slugs:
        start = date - dt.timedelta(days=ENROLLMENT_DAYS + 1 + _offset(slug))
        out.append(
            {
                "slug": slug,
                "appName": "firefox_desktop",
                "appId": "firefox-desktop",
                "branches": [{"slug": "control", "ratio": 1}, {"slug": "treatment", "ratio": 1}],
                "referenceBranch": "control",
                "startDate": start.isoformat(),
                "endDate": None,
                "proposedEnrollment": ENROLLMENT_DAYS,
                "enrollmentEndDate": (start + dt.timedelta(days=ENROLLMENT_DAYS)).isoformat(),
                "isEnrollmentPaused": True,
                "isRollout": False,
                "status": "Live",
                "outcomes": [],
                "bucketConfig": {"randomizationUnit": "normandy_id"},
            }
        )
    return out


def specs(metric_hub: Path, size: int = DEFAULT_SIZE, date: dt.date = DATE) -> list[Any]:
    """The first `size` experiment configs of the corpus (by name) that resolve on
    firefox_desktop, as analysis specs."""
    from jetstream.config import ConfigRepo, resolve_spec
    from jetstream.errors import ConfigError
    from jetstream.experiments import parse_experiments

    repo = ConfigRepo.load(metric_hub)
    slugs = sorted(p.stem for p in (metric_hub / "jetstream").glob("*.toml"))
    exps = parse_experiments(experiment_records(slugs, date), "production-day")
    out = []
    for slug in slugs:
        try:
            config = repo.experiment_config(slug)
            path = str(repo.experiment_config_path(slug))
            out.append(resolve_spec(exps[slug], config, repo, path))
        except ConfigError:
            continue
        if len(out) == size:
            break
    return out


def daily_graph(specs: Sequence[Any], date: dt.date = DATE) -> Any:
    from jetstream.graph import plan

    return plan(specs, date)


def rerun_graph(specs: Sequence[Any], date: dt.date = DATE) -> Any:
    """Every experiment over every date from its last enrollment date to `date`."""
    from jetstream.changes import merge_graphs
    from jetstream.graph import plan_dates

    parts = []
    for spec in specs:
        first = spec.experiment.last_enrollment_date
        dates = [first + dt.timedelta(days=i) for i in range((date - first).days + 1)]
        parts.append(plan_dates([spec], dates, force=True))
    return merge_graphs(parts)
