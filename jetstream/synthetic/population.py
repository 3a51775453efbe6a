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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jetstream import synthetic_tables as st

DEMO_DIR = Path(__file__).resolve().parent / "data" / "demo"
DEFAULT_START_DATE = dt.date(2026, 1, 5)
DEFAULT_DAYS = 35  # through 2026-02-08, the end of the 3-branch demo experiment
PRE_PERIOD_DAYS = 28

_MASK28 = (1 << 28) - 1
_EPOCH = dt.date(1970, 1, 1)

# Stream ids for numpy SeedSequence([seed, stream, ...]).
_S_CLIENTS, _S_EVENTS, _S_DAY, _S_LIVE_EVENTS, _S_LIVE_SEARCH = 0, 1, 2, 3, 4


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


_EFFECT_FIELDS = tuple(f.name for f in attrs.fields(BranchEffect))
_A, _H, _S, _C, _K, _U = range(len(_EFFECT_FIELDS))

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


# ---------------------------------------------------------------------------- truth + records


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


# ---------------------------------------------------------------------------- population


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


def _client_ids(rng: np.random.Generator, n: int) -> pa.Array:
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


def _choice(rng: np.random.Generator, n: int, probs: list[float]) -> np.ndarray:
    return np.searchsorted(np.cumsum(probs), rng.random(n) * np.sum(probs), side="right")


def _neg_binomial(rng: np.random.Generator, shape: float, mean: np.ndarray) -> np.ndarray:
    p = shape / (shape + np.maximum(mean, 0.0))
    return rng.negative_binomial(shape, p).astype(np.int64)


_OS = pa.array(["Windows_NT", "Darwin", "Linux"])
_COUNTRIES = pa.array(["US", "DE", "FR", "GB", "CA", "IN", "BR", "JP"])
_ENGINES = pa.array(["google", "bing", "ddg", "ecosia", "wikipedia"])
_SOURCES = pa.array(["urlbar", "searchbar", "contextmenu", "newtab", "urlbar-handoff"])
_SIDEBAR_FEATURES = ("bookmarks", "history", "synced_tabs")


class _Population:
    """Client-level values and experiment assignments (internal, built once per run)."""

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
        rng = _rng(seed, _S_CLIENTS)
        self.ids = _client_ids(rng, n)
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
        self.os = _choice(rng, n, [0.75, 0.15, 0.10])
        self.country = _choice(rng, n, [0.3, 0.12, 0.1, 0.1, 0.08, 0.15, 0.1, 0.05])
        self.engine = _choice(rng, n, [0.7, 0.15, 0.1, 0.04, 0.01])
        self.second_engine = (self.engine + 1 + rng.integers(0, 4, n)) % len(_ENGINES)
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
            self.branch[e] = _choice(rng, n, list(ratios))
            first = PRE_PERIOD_DAYS + exp.start_offset
            t0 = first + rng.integers(0, exp.enrollment_days, n)
            self.enrolled[e] = (rng.random(n) < exp.share) & (t0 < total_days)
            self.t_enroll[e] = np.where(self.enrolled[e], t0, never)
            self.unannotated_day0[e] = rng.random(n) < 0.15
            eff = np.array([[b.effect.factor(f) for f in _EFFECT_FIELDS] for b in exp.branches])
            self.effects.append(eff)
            u_prob = 0.05 * eff[self.branch[e], _U]
            leaves = self.enrolled[e] & (rng.random(n) < u_prob)
            t_u = t0 + rng.geometric(0.08, n)
            self.t_unenroll[e] = np.where(leaves, t_u, never)
            self.label_offset[e] = len(labels)
            labels.extend(b.slug for b in exp.branches)
        self.slugs = pa.array([exp.slug for exp in experiments], pa.string())
        self.branch_labels = pa.array(labels, pa.string())
        peak = np.prod([eff[:, _A].max() for eff in self.effects]) if self.effects else 1.0
        if peak * self.p_seen.max() > 1.0:
            raise ValueError("activity effects too large: a chance of being seen exceeds 1")

    def date(self, t: int) -> dt.date:
        return self.first_date + dt.timedelta(days=t)

    def factors(self, t: int, idx: np.ndarray) -> np.ndarray:
        """(len(idx), fields) effect factors of clients `idx` on day t."""
        out = np.ones((len(idx), len(_EFFECT_FIELDS)))
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


def _experiments_column(
    pop: _Population, mask: np.ndarray, labels: np.ndarray, native: bool
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


def _day_dates(pop: _Population, t: np.ndarray) -> pa.Array:
    days = (pop.first_date - _EPOCH).days + np.asarray(t)
    return pa.array(days.astype(np.int32)).cast(pa.date32())


def _dates(date: dt.date, n: int) -> pa.Array:
    return pa.array(np.full(n, (date - _EPOCH).days, dtype=np.int32)).cast(pa.date32())


def _timestamps(micros: np.ndarray) -> pa.Array:
    return pa.array(micros.astype(np.int64)).cast(st.TS)


def _table(name: str, columns: dict[str, Any]) -> pa.Table:
    schema = st.SCHEMAS[name]
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


# ---------------------------------------------------------------------------- events


def _events(pop: _Population, seed: int) -> pa.Table:
    """The Normandy events of every experiment plus some noise, ordered by time."""
    rng = _rng(seed, _S_EVENTS)
    t_end = pop.total_days
    client: list[np.ndarray] = []
    day: list[np.ndarray] = []
    method: list[np.ndarray] = []  # index into _METHODS
    exp_idx: list[np.ndarray] = []
    label: list[np.ndarray] = []  # index into branch labels, -1 none
    map_key: list[np.ndarray] = []  # index into _MAP_KEYS for the branch entry

    def add(c: np.ndarray, t: np.ndarray, m: int, e: int, lab: np.ndarray, key: int) -> None:
        keep = t < t_end
        client.append(c[keep])
        day.append(t[keep])
        method.append(np.full(int(keep.sum()), m))
        exp_idx.append(np.full(int(keep.sum()), e))
        label.append(lab[keep])
        map_key.append(np.full(int(keep.sum()), key))

    for e, exp in enumerate(pop.experiments):
        idx = np.flatnonzero(pop.enrolled[e])
        t0 = pop.t_enroll[e, idx]
        br = pop.branch[e, idx]
        lab = pop.label_offset[e] + br
        add(idx, t0, _M_ENROLL, e, lab, _K_BRANCH)
        dup = rng.random(len(idx)) < 0.05
        add(idx[dup], t0[dup], _M_ENROLL, e, lab[dup], _K_BRANCH)
        # A few clients also enroll in another branch of the same experiment.
        n_br = len(exp.branches)
        two = (rng.random(len(idx)) < 0.004) & (n_br > 1)
        other = (br[two] + 1 + rng.integers(0, max(n_br - 1, 1), int(two.sum()))) % n_br
        t_two = t0[two] + rng.integers(0, 3, int(two.sum()))
        add(idx[two], t_two, _M_ENROLL, e, pop.label_offset[e] + other, _K_BRANCH)
        exposed = rng.random(len(idx)) < exp.exposure_share
        t_x = t0 + rng.geometric(0.5, len(idx)) - 1
        add(idx[exposed], t_x[exposed], _M_EXPOSE, e, lab[exposed], _K_BRANCH_SLUG)
        again = exposed & (rng.random(len(idx)) < 0.3)
        t_x2 = t_x + rng.integers(0, 5, len(idx))
        add(idx[again], t_x2[again], _M_EXPOSE, e, lab[again], _K_BRANCH_SLUG)
        left = pop.t_unenroll[e, idx] < np.iinfo(np.int64).max
        add(idx[left], pop.t_unenroll[e, idx[left]], _M_UNENROLL, e, lab[left], _K_BRANCH)
        # Noise on the same experiment: failures and updates.
        first = PRE_PERIOD_DAYS + exp.start_offset
        k = max(1, pop.n // 500)
        c = rng.integers(0, pop.n, k)
        t = first + rng.integers(0, exp.enrollment_days, k)
        add(c, t, _M_ENROLL_FAILED, e, np.full(k, -1), _K_NONE)
        k2 = max(1, len(idx) // 200)
        pick = rng.integers(0, max(len(idx), 1), k2) if len(idx) else np.zeros(0, np.int64)
        add(
            idx[pick], t0[pick] + rng.integers(1, 10, len(pick)), _M_UPDATE, e, lab[pick], _K_BRANCH
        )
    # Non-Normandy events, filtered out by event_category.
    k = max(1, pop.n // 50)
    add(rng.integers(0, pop.n, k), rng.integers(0, t_end, k), _M_OTHER, -1, np.full(k, -1), _K_NONE)

    c_all = np.concatenate(client)
    t_all = np.concatenate(day)
    m_all = np.concatenate(method)
    e_all = np.concatenate(exp_idx)
    l_all = np.concatenate(label)
    k_all = np.concatenate(map_key)
    micros = (t_all + (pop.first_date - _EPOCH).days) * 86_400_000_000 + rng.integers(
        0, 86_400_000_000, len(t_all)
    )
    order = np.lexsort((c_all, micros))
    c_all, t_all, m_all, e_all, l_all, k_all, micros = (
        a[order] for a in (c_all, t_all, m_all, e_all, l_all, k_all, micros)
    )
    n = len(order)
    is_other = m_all == _M_OTHER
    has_exp = e_all >= 0
    string_value = pc.if_else(
        pa.array(has_exp),
        pop.slugs.take(pa.array(np.where(has_exp, e_all, 0))),
        pa.scalar(None, pa.string()),
    )
    # event_map_values of Normandy events: [branch entry, experimentType] with a branch (the
    # key is "branch" on enroll/unenroll/update, "branchSlug" on expose), else
    # [experimentType]; other events have none.
    has_branch = l_all >= 0
    counts = has_branch.astype(np.int32) + (~is_other).astype(np.int32)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    first_item = offsets[:-1][has_branch]
    key_idx = np.full(int(offsets[-1]), _K_EXPERIMENT_TYPE, dtype=np.int64)
    key_idx[first_item] = k_all[has_branch]
    is_branch_item = np.zeros(int(offsets[-1]), dtype=bool)
    is_branch_item[first_item] = True
    row_of_item = pa.array(np.repeat(np.arange(n), counts))
    item_values = pc.if_else(
        pa.array(is_branch_item),
        pop.branch_labels.take(pa.array(np.maximum(l_all, 0))).take(row_of_item),
        pa.scalar("nimbus", pa.string()),
    )
    items = pa.StructArray.from_arrays(
        [_MAP_KEYS.take(pa.array(key_idx)), item_values], names=["key", "value"]
    )
    # experiments (native): the event's own experiment and branch, on Normandy events with
    # a branch (a second-branch enrollment carries its own branch).
    mask = np.zeros((n, len(pop.experiments)), dtype=bool)
    mask[np.flatnonzero(has_branch), e_all[has_branch]] = True
    labels = np.repeat(l_all[:, None], len(pop.experiments), axis=1)
    return _table(
        st.EVENTS,
        {
            "submission_date": _day_dates(pop, t_all),
            "client_id": pop.ids.take(pa.array(c_all)),
            "sample_id": pa.array(pop.sample_id[c_all]),
            "event_timestamp": _timestamps(micros),
            "event_category": _CATEGORIES.take(pa.array(is_other.astype(np.int64))),
            "event_method": _METHOD_NAMES.take(pa.array(m_all)),
            "event_object": _OBJECTS.take(pa.array(is_other.astype(np.int64))),
            "event_string_value": string_value,
            "event_map_values": pa.ListArray.from_arrays(
                pa.array(offsets), items, type=st.MAP_VALUES
            ),
            "experiments": _experiments_column(pop, mask, labels, native=True),
        },
    )


_M_ENROLL, _M_EXPOSE, _M_UNENROLL, _M_ENROLL_FAILED, _M_UPDATE, _M_OTHER = range(6)
_METHOD_NAMES = pa.array(["enroll", "expose", "unenroll", "enrollFailed", "update", "search"])
_OBJECTS = pa.array(["nimbus_experiment", "urlbar"])
_CATEGORIES = pa.array(["normandy", "navigation"])
_K_BRANCH, _K_BRANCH_SLUG, _K_EXPERIMENT_TYPE, _K_NONE = range(4)
_MAP_KEYS = pa.array(["branch", "branchSlug", "experimentType", ""])


# ---------------------------------------------------------------------------- daily tables


class _Bits:
    """Rolling 28-day seen/active bit patterns (bit 0 = today), carried across days."""

    def __init__(self, n: int):
        self.seen = np.zeros(n, dtype=np.int64)
        self.active = np.zeros(n, dtype=np.int64)

    def push(self, seen: np.ndarray, active: np.ndarray) -> None:
        self.seen = ((self.seen << 1) | seen) & _MASK28
        self.active = ((self.active << 1) | active) & _MASK28


def _day_tables(pop: _Population, seed: int, t: int, bits: _Bits) -> dict[str, pa.Table]:
    """The daily activity tables of day t (rows for clients seen that day)."""
    rng = _rng(seed, _S_DAY, t)
    n_all = pop.n
    all_idx = np.arange(n_all)
    f_all = pop.factors(t, all_idx)
    enrolls_today = (pop.t_enroll == t).any(axis=0)
    # Every enrollee is seen on its enrollment day; the activity effect starts the day after.
    activity = np.where(enrolls_today, 1.0, f_all[:, _A])
    seen = (rng.random(n_all) < pop.p_seen * activity) | enrolls_today
    idx = np.flatnonzero(seen)
    n = len(idx)
    f = f_all[idx]
    date = pop.date(t)
    dates = _dates(date, n)
    ids = pop.ids.take(pa.array(idx))
    sample = pa.array(pop.sample_id[idx])
    ann = pop.annotation(t, idx)
    labels = pop.labels(idx)

    # clients_daily
    hours = np.exp(pop.hours_mu[idx] + rng.standard_normal(n)) * f[:, _H]
    hours[rng.random(n) < 0.12] = 0.0
    used = hours > 0
    uri = np.where(used, _neg_binomial(rng, 1.2, pop.uri_mean[idx]), 0)
    uri_all = uri + np.where(used, rng.poisson(0.05 * pop.uri_mean[idx]), 0)
    default = pop.default_browser[idx] ^ (rng.random(n) < 0.02)
    clients_daily = _table(
        st.CLIENTS_DAILY,
        {
            "submission_date": dates,
            "client_id": ids,
            "sample_id": sample,
            "os": _OS.take(pa.array(pop.os[idx])),
            "country": _COUNTRIES.take(pa.array(pop.country[idx])),
            "pings_aggregated_by_this_row": pa.array(1 + rng.poisson(2.0, n)),
            "active_hours_sum": pa.array(hours),
            "scalar_parent_browser_engagement_total_uri_count_sum": pa.array(uri),
            "scalar_parent_browser_engagement_total_uri_count_normal_and_private_mode_sum": (
                pa.array(uri_all)
            ),
            "is_default_browser": pa.array(default),
            "scalar_parent_os_environment_is_taskbar_pinned": pa.array(pop.pinned[idx]),
            "experiments": _experiments_column(pop, ann, labels, native=False),
        },
    )

    # desktop_active_users
    dau = used & (uri > 0)
    dau_all = np.zeros(n_all, dtype=bool)
    dau_all[idx] = dau
    bits.push(seen.astype(np.int64), dau_all.astype(np.int64))
    active_users = _table(
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
    sap = _neg_binomial(rng, 0.7, pop.sap_mean[idx] * f[:, _S])
    organic = _neg_binomial(rng, 0.5, pop.organic_mean[idx])
    tagged = rng.binomial(sap, 0.85)
    follow_on = rng.binomial(tagged, 0.25)
    with_ads = rng.binomial(sap, 0.6)
    clicks = rng.binomial(with_ads, np.minimum(pop.ctr[idx] * f[:, _C], 1.0))
    counts = np.stack([sap, tagged, follow_on, with_ads, clicks, organic])
    second = np.zeros_like(counts)
    split = np.flatnonzero(pop.two_engines[idx])
    second[:, split] = rng.binomial(counts[:, split], 0.3)
    first = counts - second
    parts = []
    for part, engine, source in (
        (first, pop.engine[idx], np.zeros(n, dtype=np.int64)),
        (second, pop.second_engine[idx], rng.integers(0, len(_SOURCES), n)),
    ):
        keep = part.any(axis=0)
        parts.append((np.flatnonzero(keep), part[:, keep], engine[keep], source[keep]))
    rows = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts], axis=1)
    search = _table(
        st.SEARCH_DAILY,
        {
            "submission_date": _dates(date, len(rows)),
            "client_id": ids.take(pa.array(rows)),
            "sample_id": sample.take(pa.array(rows)),
            "engine": _ENGINES.take(pa.array(np.concatenate([p[2] for p in parts]))),
            "source": _SOURCES.take(pa.array(np.concatenate([p[3] for p in parts]))),
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
    k_clicks = rng.poisson(1.5 * f[opened, _K])
    per_feature = rng.multinomial(k_clicks, [0.5, 0.3, 0.2])
    f_rows = [opened]
    f_name = [np.zeros(len(opened), dtype=np.int64)]
    f_feature = [np.zeros(len(opened), dtype=np.int64)]
    f_count = [opens]
    for j in range(len(_SIDEBAR_FEATURES)):
        has = per_feature[:, j] > 0
        f_rows.append(opened[has])
        f_name.append(np.ones(int(has.sum()), dtype=np.int64))
        f_feature.append(np.full(int(has.sum()), j + 1))
        f_count.append(per_feature[has, j])
    fr = np.concatenate(f_rows)
    order = np.argsort(fr, kind="stable")
    fr = fr[order]
    features = _table(
        st.FEATURE_EVENTS,
        {
            "submission_date": _dates(date, len(fr)),
            "client_id": ids.take(pa.array(fr)),
            "sample_id": sample.take(pa.array(fr)),
            "event_name": _FEATURE_EVENT_NAMES.take(pa.array(np.concatenate(f_name)[order])),
            "feature": _FEATURE_NAMES.take(pa.array(np.concatenate(f_feature)[order])),
            "event_count": pa.array(np.concatenate(f_count)[order].astype(np.int64)),
            "experiments": _experiments_column(pop, ann[fr], labels[fr], native=False),
        },
    )
    return {
        st.CLIENTS_DAILY: clients_daily,
        st.SEARCH_DAILY: search,
        st.ACTIVE_USERS: active_users,
        st.FEATURE_EVENTS: features,
    }


_FEATURE_EVENT_NAMES = pa.array(["sidebar_opened", "sidebar_click"])
_FEATURE_NAMES = pa.array(["sidebar", *_SIDEBAR_FEATURES])


# ---------------------------------------------------------------------------- public API


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
    pop = _Population(clients, seed, start_date, experiments, total)
    yield st.TRUTH, truth(experiments)
    yield st.EVENTS, _events(pop, seed)
    bits = _Bits(pop.n)
    for t in range(total):
        yield from _day_tables(pop, seed, t, bits).items()


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


# ---------------------------------------------------------------------------- live stream

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
    pop = _Population(clients, seed, DEFAULT_START_DATE, experiments, PRE_PERIOD_DAYS + 1)
    now_us = int(now.timestamp() * 1_000_000)
    last_minute = now_us // _MINUTE_US
    rate = max(clients / 2000.0, 0.5)
    shares = [exp.share for exp in experiments]
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("ev", "sub", "c", "e", "type")}
    for m in range(last_minute - hours * 60 + 1, last_minute + 1):
        rng = _rng(seed, _S_LIVE_EVENTS, m)
        k = int(rng.poisson(rate * _diurnal(m)))
        if not k:
            continue
        e = _choice(rng, k, shares)
        c = rng.integers(0, pop.n, k)
        kind = _choice(rng, k, _LIVE_TYPE_PROBS)
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
    events_live = _table(
        st.EVENTS_LIVE,
        {
            "event_timestamp": _timestamps(ev),
            "submission_timestamp": _timestamps(sub),
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
        rng = _rng(seed, _S_LIVE_SEARCH, w)
        c = np.unique(rng.integers(0, pop.n, int(rng.poisson(clients * 0.01 * _diurnal(w * 5)))))
        f = pop.factors(np.iinfo(np.int64).max - 1, c)
        searches = 1 + _neg_binomial(rng, 0.8, 1.5 * pop.sap_mean[c] * f[:, _S] + 0.5)
        with_ads = rng.binomial(searches, 0.6)
        clicks = rng.binomial(with_ads, np.minimum(pop.ctr[c] * f[:, _C], 1.0))
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
    search_live = _table(
        st.SEARCH_LIVE,
        {
            "window_start": _timestamps(w_),
            "submission_timestamp": _timestamps(sub_),
            "client_id": pop.ids.take(pa.array(c_, pa.int64())),
            "searches": pa.array(s_, pa.int64()),
            "searches_with_ads": pa.array(a_, pa.int64()),
            "ad_clicks": pa.array(k_, pa.int64()),
        },
    )
    return {st.EVENTS_LIVE: events_live, st.SEARCH_LIVE: search_live}


# ---------------------------------------------------------------------------- writing


class Loader(Protocol):
    def load_arrow(self, table: str, data: pa.Table, mode: str = "replace") -> Any: ...


def write(
    warehouse: Loader,
    tables: Mapping[str, pa.Table] | Iterable[tuple[str, pa.Table]],
    batch_rows: int = 2_000_000,
) -> dict[str, int]:
    """Load tables (a dict, or (name, chunk) pairs as from `iter_tables`) into the
    warehouse: the first load of each name replaces the table, later ones append. Chunks
    are batched up to `batch_rows` rows per load. Returns rows written per table."""
    items = tables.items() if isinstance(tables, Mapping) else tables
    pending: dict[str, list[pa.Table]] = {}
    rows: dict[str, int] = {}
    loaded: set[str] = set()

    def flush(name: str) -> None:
        parts = pending.pop(name, [])
        if not parts:
            return
        mode = "append" if name in loaded else "replace"
        warehouse.load_arrow(name, pa.concat_tables(parts), mode=mode)
        loaded.add(name)

    for name, table in items:
        pending.setdefault(name, []).append(table)
        rows[name] = rows.get(name, 0) + table.num_rows
        if sum(t.num_rows for t in pending[name]) >= batch_rows:
            flush(name)
    for name in list(pending):
        flush(name)
    return rows
