"""Statistics over per-client arrays: pure functions, a registry by name, explicit seeds.

The engine calls `summarise` once per (metric, statistic, period, window, segment, basis)
with a seed from `derive_seed`, fills segment/analysis_basis/window_index with
`attrs.evolve`, then `adjust_p_values` per period. Nothing here does I/O, and no
statistic raises: problems come back as `StatisticError` values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from jetstream.statistics.base import StatisticInput
from jetstream.statistics.branches import BranchRows
from jetstream.statistics.multiple_testing import adjust_p_values
from jetstream.statistics.pretreatments import PRE_TREATMENTS, apply_pre_treatment
from jetstream.statistics.registry import registry
from jetstream.statistics.rows import (
    MSG_ALL_NULL,
    MSG_BAD_PARAMS,
    MSG_COVARIATE_MISSING,
    MSG_EMPTY_BRANCH,
    MSG_FAILED,
    MSG_MISSING_COLUMN,
    MSG_NO_BRANCH_COLUMN,
    MSG_NO_REFERENCE,
    MSG_SINGLE_BRANCH,
    MSG_UNKNOWN_PRE_TREATMENT,
    MSG_UNKNOWN_STATISTIC,
    StatisticError,
    StatisticRow,
)
from jetstream.statistics.seeds import derive_seed
from jetstream.statistics.srm import srm, srm_check

__all__ = [
    "BranchRows",
    "StatisticError",
    "StatisticRow",
    "adjust_p_values",
    "derive_seed",
    "registry",
    "srm",
    "srm_check",
    "summarise",
]


def summarise(
    table: Mapping[str, np.ndarray],
    metric: str,
    statistic: str,
    params: Mapping[str, Any] | None = None,
    pre_treatments: Sequence[tuple[str, Mapping[str, Any]]] = (),
    covariate: str | None = None,
    reference_branch: str | None = None,
    branches: Sequence[str] | None = None,
    seed: int = 0,
    analysis_period_days: int = 1,
    branch_codes: BranchRows | tuple[np.ndarray, Sequence[str]] | None = None,
) -> tuple[list[StatisticRow], list[StatisticError]]:
    """Compute one statistic of one metric for every branch and comparison.

    `table` holds per-client columns including "branch"; `metric` names the column of
    values (NaN = null). Pre-treatments run in order on the metric column (dropping rows
    drops them from every column); then rows with a null metric are dropped. With
    `reference_branch` None every branch is the reference in turn (every pair both ways).
    `branches` lists the experiment's branches so that empty ones are reported. Rows
    come back with segment, analysis_basis and window_index None.

    `branch_codes` replaces the "branch" column: either `(codes, names)` (row i is in
    branch `names[codes[i]]`, negative = none; e.g. a pyarrow `dictionary_encode()` of
    the column) or a `BranchRows` built once and passed to every call over the same rows
    (the fastest: no per-call work on the branch column at all).
    """
    errors: list[StatisticError] = []

    def fail(message: str) -> tuple[list[StatisticRow], list[StatisticError]]:
        errors.append(StatisticError(metric=metric, statistic=statistic, message=message))
        return [], errors

    spec = registry.get(statistic)
    if spec is None:
        return fail(MSG_UNKNOWN_STATISTIC.format(statistic=statistic, known=sorted(registry)))
    try:
        resolved = spec.resolve_params(params)
    except (ValueError, TypeError) as exc:
        return fail(MSG_BAD_PARAMS.format(statistic=statistic, problem=exc))
    if branch_codes is None:
        if "branch" not in table:
            return fail(MSG_NO_BRANCH_COLUMN)
        groups = BranchRows.from_labels(np.asarray(table["branch"]), branches or ())
    elif isinstance(branch_codes, BranchRows):
        groups = branch_codes
    else:
        try:
            groups = BranchRows.from_codes(*branch_codes)
        except ValueError as exc:
            return fail(f"branch_codes: {exc}")
    n = groups.size

    if metric in table:
        values = np.asarray(table[metric], dtype=np.float64)
    elif spec.reads_metric_column:
        return fail(MSG_MISSING_COLUMN.format(column=metric))
    else:
        values = np.zeros(n)
    if values.shape != (n,):
        return fail(f"column {metric!r} has shape {values.shape}; the branch column has {n} rows")
    keep = np.ones(n, dtype=bool)
    for name, args in pre_treatments:
        if name not in PRE_TREATMENTS:
            return fail(MSG_UNKNOWN_PRE_TREATMENT.format(name=name, known=sorted(PRE_TREATMENTS)))
        try:
            values, mask = apply_pre_treatment(name, values, args or {}, analysis_period_days)
        except (TypeError, ValueError) as exc:
            return fail(f"pre-treatment {name!r} for {metric!r}: {exc}")
        keep &= mask
    keep &= ~np.isnan(values)

    extra: dict[str, np.ndarray] = {}
    if spec.name == "population_ratio":
        for key in ("numerator", "denominator"):
            column = str(resolved[key])
            if column not in table:
                return fail(MSG_MISSING_COLUMN.format(column=column))
            extra[column] = np.asarray(table[column], dtype=np.float64)
            keep &= ~np.isnan(extra[column])

    cov: np.ndarray | None = None
    if spec.uses_covariate:
        if covariate is not None and covariate in table:
            cov = np.asarray(table[covariate], dtype=np.float64)
            resolved["covariate_name"] = covariate
        elif covariate is not None or resolved.get("covariate_adjustment"):
            errors.append(
                StatisticError(
                    metric=metric,
                    statistic=statistic,
                    level="warning",
                    message=MSG_COVARIATE_MISSING.format(metric=metric),
                )
            )

    names = list(dict.fromkeys([*(branches or ()), *groups.names]))
    keep_all = bool(keep.all())
    data: dict[str, np.ndarray] = {}
    covs: dict[str, np.ndarray] = {}
    cols: dict[str, dict[str, np.ndarray]] = {}
    empty: list[StatisticError] = []
    for b in names:
        rows = groups.of(b)
        if rows is not None and not keep_all:
            rows = rows[keep[rows]]
        if rows is None or rows.size == 0:
            if b == reference_branch:
                continue
            empty.append(
                StatisticError(
                    metric=metric,
                    statistic=statistic,
                    level="warning",
                    message=MSG_EMPTY_BRANCH.format(branch=b, metric=metric),
                )
            )
            continue
        data[b] = values[rows]
        if cov is not None:
            covs[b] = cov[rows]
        cols[b] = {c: v[rows] for c, v in extra.items()}
    if not data:
        return fail(MSG_ALL_NULL.format(metric=metric))
    errors.extend(empty)
    present = tuple(b for b in names if b in data)
    if reference_branch is not None:
        if reference_branch in data:
            references: tuple[str, ...] = (reference_branch,)
        else:
            references = ()
            if spec.has_comparisons:
                errors.append(
                    StatisticError(
                        metric=metric,
                        statistic=statistic,
                        message=MSG_NO_REFERENCE.format(branch=reference_branch),
                    )
                )
    else:
        references = present
    if spec.has_comparisons and len(present) == 1:
        errors.append(
            StatisticError(
                metric=metric,
                statistic=statistic,
                level="warning",
                message=MSG_SINGLE_BRANCH.format(branch=present[0]),
            )
        )
    inp = StatisticInput(
        metric=metric,
        values=data,
        branches=present,
        references=references,
        params=resolved,
        seed=seed,
        covariates=covs if cov is not None else None,
        columns=cols,
    )
    try:
        outcome = spec.function(inp)
    except Exception as exc:  # noqa: BLE001 - one statistic never stops the others
        return fail(MSG_FAILED.format(statistic=statistic, metric=metric, detail=repr(exc)))
    # Errors name the statistic as configured (rows keep their published labels).
    return outcome.rows, errors + [
        e if e.statistic == statistic else attrs.evolve(e, statistic=statistic)
        for e in outcome.errors
    ]
