"""`summarise`: one statistic of one metric for every branch and comparison.

The engine calls it once per (metric, statistic, period, window, segment, basis) with a
seed from `derive_seed`. It never raises for bad data or parameters: problems come back as
`StatisticError` values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from jetstream.statistics import catalogue
from jetstream.statistics.base import StatisticInput
from jetstream.statistics.branches import BranchRows
from jetstream.statistics.implementations import StatisticSpec, registry
from jetstream.statistics.pretreatments import PRE_TREATMENTS, apply_pre_treatment
from jetstream.statistics.rows import (
    MSG_ALL_NULL,
    MSG_BAD_PARAMS,
    MSG_COVARIATE_MISSING,
    MSG_EMPTY_BRANCH,
    MSG_FAILED,
    MSG_MISSING_COLUMN,
    MSG_NO_BRANCH_COLUMN,
    MSG_NO_FINITE,
    MSG_NO_REFERENCE,
    MSG_SINGLE_BRANCH,
    MSG_SOME_INFINITE,
    MSG_UNKNOWN_PRE_TREATMENT,
    MSG_UNKNOWN_STATISTIC,
    StatisticError,
    StatisticRow,
)

Result = tuple[list[StatisticRow], list[StatisticError]]


@attrs.frozen(eq=False)
class SummaryRequest:
    """What to summarise.

    `table` holds per-client columns including "branch"; `metric` names the column of
    values (NaN = null). `pre_treatments` run in order on the metric column (dropping rows
    drops them from every column); then rows with a null metric are dropped. With
    `reference_branch` None every branch is the reference in turn (every pair both ways).
    `branches` lists the experiment's branches so that empty ones are reported.
    `analysis_period_days` is the window length normalize_over_analysis_period divides by.

    `branch_codes` replaces the "branch" column: either `(codes, names)` (row i is in
    branch `names[codes[i]]`, negative = none; e.g. a pyarrow `dictionary_encode()` of
    the column) or a `BranchRows` built once and passed to every request over the same
    rows (the fastest: no per-call work on the branch column at all).
    """

    table: Mapping[str, np.ndarray]
    metric: str
    statistic: str
    params: Mapping[str, Any] | None = None
    pre_treatments: Sequence[tuple[str, Mapping[str, Any]]] = ()
    covariate: str | None = None
    reference_branch: str | None = None
    branches: Sequence[str] | None = None
    seed: int = 0
    analysis_period_days: int = 1
    branch_codes: BranchRows | tuple[np.ndarray, Sequence[str]] | None = None


class _Failed(Exception):
    """One error that ends this summary with no rows."""


def summarise(request: SummaryRequest) -> Result:
    """Compute one statistic of one metric for every branch and comparison. Rows come back
    with segment, analysis_basis and window_index None."""
    warnings: list[StatisticError] = []

    def fail(message: str) -> Result:
        error = StatisticError(metric=request.metric, statistic=request.statistic, message=message)
        return [], [*warnings, error]

    try:
        inp, spec = _prepare(request, warnings)
    except _Failed as exc:
        return fail(str(exc))
    try:
        outcome = spec.function(inp)
    except Exception as exc:  # noqa: BLE001 - one statistic never stops the others
        return fail(
            MSG_FAILED.format(statistic=request.statistic, metric=request.metric, detail=repr(exc))
        )
    # Errors name the statistic as configured (rows keep their published labels).
    statistic = request.statistic
    infinite = _infinite_results(inp, outcome.rows, statistic)
    if infinite is not None:
        warnings.append(
            StatisticError(metric=request.metric, statistic=statistic, message=infinite)
        )
    return outcome.rows, warnings + [
        e if e.statistic == statistic else attrs.evolve(e, statistic=statistic)
        for e in outcome.errors
    ]


def _infinite_results(inp: StatisticInput, rows: list[StatisticRow], statistic: str) -> str | None:
    """The error when infinite metric values made results non-finite (null points)."""
    bad = sum(1 for r in rows if r.point is None)
    if not bad:
        return None
    count = sum(int(np.isinf(v).sum()) for v in inp.values.values())
    if not count:
        return None
    return MSG_SOME_INFINITE.format(
        metric=inp.metric, count=count, bad=bad, total=len(rows), statistic=statistic
    )


def _prepare(
    request: SummaryRequest, warnings: list[StatisticError]
) -> tuple[StatisticInput, StatisticSpec]:
    """The statistic's input; warnings are appended to `warnings`. Raises _Failed."""
    spec = registry.get(request.statistic)
    if spec is None:
        raise _Failed(
            MSG_UNKNOWN_STATISTIC.format(statistic=request.statistic, known=sorted(registry))
        )
    try:
        resolved = spec.resolve_params(request.params)
    except (ValueError, TypeError) as exc:
        raise _Failed(MSG_BAD_PARAMS.format(statistic=request.statistic, problem=exc)) from None
    groups = _branch_rows(request)
    values, keep = _metric_values(request, spec, groups.size)
    extra = _ratio_columns(request, spec, resolved, keep)
    cov = _covariate(request, spec, resolved, warnings)
    columns = _Columns(values, keep, extra, cov)
    return _split(request, spec, resolved, groups, columns, warnings), spec


@attrs.frozen(eq=False)
class _Columns:
    """The cleaned per-client columns, all rows: the metric after pre-treatments, the rows
    to keep, population_ratio's columns and the covariate."""

    values: np.ndarray
    keep: np.ndarray
    extra: Mapping[str, np.ndarray]
    covariate: np.ndarray | None


def _warning(request: SummaryRequest, message: str) -> StatisticError:
    return StatisticError(
        metric=request.metric, statistic=request.statistic, level="warning", message=message
    )


def _branch_rows(request: SummaryRequest) -> BranchRows:
    codes = request.branch_codes
    if codes is None:
        if "branch" not in request.table:
            raise _Failed(MSG_NO_BRANCH_COLUMN)
        return BranchRows.from_labels(np.asarray(request.table["branch"]), request.branches or ())
    if isinstance(codes, BranchRows):
        return codes
    try:
        return BranchRows.from_codes(*codes)
    except ValueError as exc:
        raise _Failed(f"branch_codes: {exc}") from None


def _metric_values(
    request: SummaryRequest, spec: StatisticSpec, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The metric column after the pre-treatments, and the mask of rows to keep."""
    table, metric = request.table, request.metric
    if metric in table:
        values = _numeric(table, metric)
    elif spec.reads_metric_column:
        raise _Failed(MSG_MISSING_COLUMN.format(column=metric))
    else:
        values = np.zeros(n)
    if values.shape != (n,):
        raise _Failed(f"column {metric!r} has shape {values.shape}; the branch column has {n} rows")
    keep = np.ones(n, dtype=bool)
    for name, args in request.pre_treatments:
        if name not in PRE_TREATMENTS:
            raise _Failed(MSG_UNKNOWN_PRE_TREATMENT.format(name=name, known=sorted(PRE_TREATMENTS)))
        problem = _pre_treatment_problem(name, args or {})
        if problem:
            raise _Failed(f"pre-treatment {name!r} for {metric!r}: {problem}")
        try:
            values, mask = apply_pre_treatment(
                name, values, args or {}, request.analysis_period_days
            )
        except (TypeError, ValueError) as exc:
            raise _Failed(f"pre-treatment {name!r} for {metric!r}: {exc}") from None
        keep &= mask
    keep &= ~np.isnan(values)
    counts_only = spec.name == "count" or not spec.reads_metric_column
    if not counts_only and keep.any() and not np.isfinite(values[keep]).any():
        raise _Failed(MSG_NO_FINITE.format(metric=metric))
    return values, keep


def _pre_treatment_problem(name: str, args: Mapping[str, Any]) -> str | None:
    """The catalogue's rules for a pre-treatment's arguments (as the config validator)."""
    definition = catalogue.PRE_TREATMENTS.get(name)
    if definition is None:
        return None
    for key, value in args.items():
        param = definition.params.get(key)
        if param is None:
            return f"unknown argument {key!r}; known: {', '.join(definition.params) or 'none'}"
        msg = param.check(value)
        if msg:
            return f"{key} {msg}"
    return None


def _numeric(table: Mapping[str, np.ndarray], column: str) -> np.ndarray:
    """A column as float64 (null = NaN); _Failed when it does not hold numbers."""
    try:
        return np.asarray(table[column], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        dtype = getattr(table[column], "dtype", type(table[column]).__name__)
        raise _Failed(f"column {column!r} does not hold numbers ({dtype}): {exc}") from None


def _ratio_columns(
    request: SummaryRequest, spec: StatisticSpec, resolved: Mapping[str, Any], keep: np.ndarray
) -> dict[str, np.ndarray]:
    """population_ratio's numerator and denominator columns (rows with a null in either
    are dropped from `keep`, in place)."""
    extra: dict[str, np.ndarray] = {}
    if spec.name != "population_ratio":
        return extra
    for key in ("numerator", "denominator"):
        column = str(resolved[key])
        if column not in request.table:
            raise _Failed(MSG_MISSING_COLUMN.format(column=column))
        extra[column] = _numeric(request.table, column)
        keep &= ~np.isnan(extra[column])
    return extra


def _covariate(
    request: SummaryRequest,
    spec: StatisticSpec,
    resolved: dict[str, Any],
    warnings: list[StatisticError],
) -> np.ndarray | None:
    covariate = request.covariate
    if not spec.uses_covariate:
        return None
    if covariate is not None and covariate in request.table:
        resolved["covariate_name"] = covariate
        return _numeric(request.table, covariate)
    if covariate is not None or resolved.get("covariate_adjustment"):
        warnings.append(_warning(request, MSG_COVARIATE_MISSING.format(metric=request.metric)))
    return None


def _split(
    request: SummaryRequest,
    spec: StatisticSpec,
    resolved: dict[str, Any],
    groups: BranchRows,
    columns: _Columns,
    warnings: list[StatisticError],
) -> StatisticInput:
    """The kept rows by branch, the references, and warnings for empty branches."""
    values, keep, extra, cov = columns.values, columns.keep, columns.extra, columns.covariate
    reference = request.reference_branch
    names = list(dict.fromkeys([*(request.branches or ()), *groups.names]))
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
            if b != reference:
                empty.append(
                    _warning(request, MSG_EMPTY_BRANCH.format(branch=b, metric=request.metric))
                )
            continue
        data[b] = values[rows]
        if cov is not None:
            covs[b] = cov[rows]
        cols[b] = {c: v[rows] for c, v in extra.items()}
    if not data:
        raise _Failed(MSG_ALL_NULL.format(metric=request.metric))
    warnings.extend(empty)
    present = tuple(b for b in names if b in data)
    return StatisticInput(
        metric=request.metric,
        values=data,
        branches=present,
        references=_references(request, spec, present, warnings),
        params=resolved,
        seed=request.seed,
        covariates=covs if cov is not None else None,
        columns=cols,
    )


def _references(
    request: SummaryRequest,
    spec: StatisticSpec,
    present: tuple[str, ...],
    warnings: list[StatisticError],
) -> tuple[str, ...]:
    reference = request.reference_branch
    references: tuple[str, ...] = present
    if reference is not None:
        references = (reference,) if reference in present else ()
        if not references and spec.has_comparisons:
            warnings.append(
                StatisticError(
                    metric=request.metric,
                    statistic=request.statistic,
                    message=MSG_NO_REFERENCE.format(branch=reference),
                )
            )
    if spec.has_comparisons and len(present) == 1:
        warnings.append(_warning(request, MSG_SINGLE_BRANCH.format(branch=present[0])))
    return references
