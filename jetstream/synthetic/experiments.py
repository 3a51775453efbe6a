"""The synthetic experiments: their branches, the effects each branch puts into the
telemetry (`BranchEffect`), the resulting ground truth per metric (`truth`) and the same
experiments as Experimenter v8 records (`experimenter_records`). Pure data, no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pyarrow as pa

from jetstream.synthetic import tables as st

DEMO_DIR = Path(__file__).resolve().parents[1] / "data" / "demo"
DEFAULT_START_DATE = dt.date(2026, 1, 5)
DEFAULT_DAYS = 35  # through 2026-02-08, the end of the 3-branch demo experiment
PRE_PERIOD_DAYS = 28


@attrs.frozen
class BranchEffect:
    """Relative changes (x means a factor 1 + x) applied from the enrollment day on."""

    activity: float = 0.0  # chance of being seen on a day (not on the enrollment day)
    active_hours: float = 0.0  # hours per seen day
    searches: float = 0.0  # SAP searches (and tagged, follow-on, with-ads) per seen day
    ad_ctr: float = 0.0  # ad clicks per search with ads
    sidebar_clicks: float = 0.0  # sidebar clicks per sidebar-opening day
    unenroll: float = 0.0  # chance of unenrolling

    def factor(self, name: str) -> float:
        return 1.0 + float(getattr(self, name))


EFFECT_FIELDS = tuple(f.name for f in attrs.fields(BranchEffect))
# Column indexes of EFFECT_FIELDS in the per-client factor arrays.
F_ACTIVITY, F_ACTIVE_HOURS, F_SEARCHES, F_AD_CTR, F_SIDEBAR_CLICKS, F_UNENROLL = range(
    len(EFFECT_FIELDS)
)

# metric slug -> the effect factors whose product is its per-day effect.
TRUTH_METRICS: dict[str, tuple[str, ...]] = {
    "days_of_use": ("activity",),
    "retained_days": ("activity",),
    "client_level_daily_active_users_v2": ("activity",),
    "qualified_cumulative_days_of_use": ("activity",),
    "uri_count": ("activity",),
    "active_hours": ("activity", "active_hours"),
    "search_count": ("activity", "searches"),
    "tagged_search_count": ("activity", "searches"),
    "tagged_follow_on_search_count": ("activity", "searches"),
    "searches_with_ads": ("activity", "searches"),
    "organic_search_count": ("activity",),
    "ad_clicks": ("activity", "searches", "ad_ctr"),
    "sidebar_opens": ("activity",),
    "sidebar_clicks": ("activity", "sidebar_clicks"),
    "unenroll": ("unenroll",),
}


@attrs.frozen
class SyntheticBranch:
    slug: str
    ratio: int = 1
    effect: BranchEffect = BranchEffect()


@attrs.frozen
class SyntheticExperiment:
    """An experiment the generator enrolls clients into. Offsets are days from start_date."""

    slug: str
    app_name: str
    app_id: str
    branches: tuple[SyntheticBranch, ...]
    start_offset: int
    enrollment_days: int
    end_offset: int  # the experiment's end date
    share: float  # fraction of all clients that enroll
    exposure_share: float = 0.75  # fraction of enrollees with a Normandy expose event
    is_rollout: bool = False
    outcomes: tuple[str, ...] = ()
    feature_id: str = "demo-feature"
    user_facing_name: str = ""
    description: str = ""

    @property
    def reference_branch(self) -> str:
        return self.branches[0].slug


DEFAULT_EXPERIMENTS: tuple[SyntheticExperiment, ...] = (
    SyntheticExperiment(
        slug="demo-sidebar-redesign",
        app_name="demo",
        app_id="org.mozilla.demo",
        branches=(
            SyntheticBranch("control"),
            SyntheticBranch(
                "treatment-a", effect=BranchEffect(active_hours=0.08, sidebar_clicks=0.30)
            ),
            SyntheticBranch(
                "treatment-b",
                effect=BranchEffect(
                    activity=0.04, searches=0.10, ad_ctr=-0.05, sidebar_clicks=0.10, unenroll=0.5
                ),
            ),
        ),
        start_offset=0,
        enrollment_days=7,
        end_offset=34,
        share=0.6,
        outcomes=("search_monetization",),
        feature_id="sidebar",
        user_facing_name="Demo: sidebar redesign",
        description="Two sidebar designs against the current one.",
    ),
    SyntheticExperiment(
        slug="desktop-search-defaults",
        app_name="firefox_desktop",
        app_id="firefox-desktop",
        branches=(
            SyntheticBranch("control"),
            SyntheticBranch("treatment", effect=BranchEffect(searches=0.05, ad_ctr=0.10)),
        ),
        start_offset=2,
        enrollment_days=5,
        end_offset=34,
        share=0.5,
        exposure_share=0.6,
        feature_id="search",
        user_facing_name="Desktop: search defaults",
        description="Analysed with the real firefox_desktop defaults (no custom config).",
    ),
    SyntheticExperiment(
        slug="demo-toolbar-rollout",
        app_name="demo",
        app_id="org.mozilla.demo",
        branches=(SyntheticBranch("control"), SyntheticBranch("treatment")),
        start_offset=7,
        enrollment_days=7,
        end_offset=27,
        share=0.2,
        is_rollout=True,
        feature_id="toolbar",
        user_facing_name="Demo: toolbar rollout",
        description="A rollout: skipped by the analysis.",
    ),
)


def truth(experiments: Iterable[SyntheticExperiment] = DEFAULT_EXPERIMENTS) -> pa.Table:
    """The `synthetic_truth` table: relative effect of each branch vs the reference branch
    on the expected per-client, per-day value of each metric after the enrollment day."""
    rows: dict[str, list[Any]] = {f.name: [] for f in st.SCHEMAS[st.TRUTH]}
    for exp in experiments:
        ref = exp.branches[0]
        for br in exp.branches[1:]:
            for metric, factors in TRUTH_METRICS.items():
                t = np.prod([br.effect.factor(f) for f in factors])
                r = np.prod([ref.effect.factor(f) for f in factors])
                rows["experiment"].append(exp.slug)
                rows["branch"].append(br.slug)
                rows["reference_branch"].append(ref.slug)
                rows["metric"].append(metric)
                rows["relative_effect"].append(round(float(t / r - 1.0), 12))
    return pa.Table.from_pydict(rows, schema=st.SCHEMAS[st.TRUTH])


def experimenter_records(
    start_date: dt.date = DEFAULT_START_DATE,
    experiments: Iterable[SyntheticExperiment] = DEFAULT_EXPERIMENTS,
    today: dt.date | None = None,
) -> list[dict[str, Any]]:
    """The experiments as Experimenter v8 API records, dated from `start_date`.
    `status` is "Complete" when the end date is before `today` (default: never)."""
    out = []
    for exp in experiments:
        start = start_date + dt.timedelta(days=exp.start_offset)
        enrollment_end = start + dt.timedelta(days=exp.enrollment_days - 1)
        end = start_date + dt.timedelta(days=exp.end_offset)
        live = today is not None and end >= today
        out.append(
            {
                "schemaVersion": "1.12.0",
                "slug": exp.slug,
                "id": exp.slug,
                "appName": exp.app_name,
                "appId": exp.app_id,
                "channel": "release",
                "userFacingName": exp.user_facing_name or exp.slug,
                "userFacingDescription": exp.description,
                "isEnrollmentPaused": True,
                "isRollout": exp.is_rollout,
                "bucketConfig": {
                    "randomizationUnit": "normandy_id",
                    "namespace": f"{exp.app_name}-{exp.slug}",
                    "start": 0,
                    "count": int(round(exp.share * 10000)),
                    "total": 10000,
                },
                "featureIds": [exp.feature_id],
                "branches": [{"slug": b.slug, "ratio": b.ratio} for b in exp.branches],
                "referenceBranch": exp.reference_branch,
                "startDate": start.isoformat(),
                "enrollmentEndDate": enrollment_end.isoformat(),
                "endDate": None if live else end.isoformat(),
                "proposedDuration": exp.end_offset - exp.start_offset + 1,
                "proposedEnrollment": exp.enrollment_days,
                "status": "Live" if live else "Complete",
                "outcomes": [{"slug": o, "priority": "primary"} for o in exp.outcomes],
                "probeSets": [],
                "targeting": "true",
            }
        )
    return out
