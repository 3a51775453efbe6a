"""The Normandy enrollment events table (`telemetry.events`): enrollments, exposures,
unenrollments and the deliberate noise (duplicates, second-branch enrollments, failed
enrollments, updates, non-Normandy events)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jetstream.synthetic import tables as st
from jetstream.synthetic.experiments import PRE_PERIOD_DAYS
from jetstream.synthetic.population import (
    EPOCH,
    STREAM_EVENTS,
    Population,
    build_table,
    day_dates,
    experiments_column,
    rng_for,
    timestamp_column,
)

_M_ENROLL, _M_EXPOSE, _M_UNENROLL, _M_ENROLL_FAILED, _M_UPDATE, _M_OTHER = range(6)
_METHOD_NAMES = pa.array(["enroll", "expose", "unenroll", "enrollFailed", "update", "search"])
_OBJECTS = pa.array(["nimbus_experiment", "urlbar"])
_CATEGORIES = pa.array(["normandy", "navigation"])
_K_BRANCH, _K_BRANCH_SLUG, _K_EXPERIMENT_TYPE, _K_NONE = range(4)
_MAP_KEYS = pa.array(["branch", "branchSlug", "experimentType", ""])


def enrollment_events(pop: Population, seed: int) -> pa.Table:
    """The Normandy events of every experiment plus some noise, ordered by time."""
    rng = rng_for(seed, STREAM_EVENTS)
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
    micros = (t_all + (pop.first_date - EPOCH).days) * 86_400_000_000 + rng.integers(
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
    return build_table(
        st.EVENTS,
        {
            "submission_date": day_dates(pop, t_all),
            "client_id": pop.ids.take(pa.array(c_all)),
            "sample_id": pa.array(pop.sample_id[c_all]),
            "event_timestamp": timestamp_column(micros),
            "event_category": _CATEGORIES.take(pa.array(is_other.astype(np.int64))),
            "event_method": _METHOD_NAMES.take(pa.array(m_all)),
            "event_object": _OBJECTS.take(pa.array(is_other.astype(np.int64))),
            "event_string_value": string_value,
            "event_map_values": pa.ListArray.from_arrays(
                pa.array(offsets), items, type=st.MAP_VALUES
            ),
            "experiments": experiments_column(pop, mask, labels, native=True),
        },
    )
