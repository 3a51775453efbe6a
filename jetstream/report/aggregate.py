"""What the report page draws, pre-aggregated from the published rows: per period, analysis
basis and segment, the client counts and sample-ratio test of every window, and per
(metric, statistic, branch pair) the relative uplift, the absolute difference and the
p-value of every window, plus each branch's own estimate. Only statistics without a
parameter are kept (deciles, densities and the like are counted, not shipped): the views
are a scorecard, a forest plot and windows over time, none of which draws a parameter.
Pure: no I/O.

The shapes (all lists indexed by the period's `windows`):

    {"windows": [1, 2, ...], "cells": {basis: {segment: {
        "counts": {branch: [n, ...]},
        "srm": [{"p": .., "observed": {branch: share}, "expected": {branch: share}} | None],
        "values": [{"m": metric, "s": statistic, "b": branch, "v": [[point, lower, upper]|None]}],
        "comparisons": [{"m", "s", "b", "to", "rel": [[p, l, u]|None], "abs": [..],
                         "p": [p-value|None], "q": [adjusted p-value|None], "ci": 0.95}],
    }}}, "omitted": {statistic: rows}}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jetstream.export import DEFAULT_ANALYSIS_BASIS, DEFAULT_SEGMENT

# The published metric name of the per-branch client counts and the sample-ratio test.
IDENTITY = "identity"
SRM = "srm"
COUNT = "count"
RELATIVE = "relative_uplift"
DIFFERENCE = "difference"
SIGNIFICANT_DIGITS = 6

Row = Mapping[str, Any]


def rounded(value: Any) -> float | None:
    """A finite number to SIGNIFICANT_DIGITS significant digits (the page shows at most 4),
    None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{SIGNIFICANT_DIGITS}g}")


def _triple(row: Row) -> list[float | None]:
    return [rounded(row.get("point")), rounded(row.get("lower")), rounded(row.get("upper"))]


def _window(row: Row) -> int:
    w = row.get("window_index")
    try:
        return int(w) if w is not None else 1
    except (TypeError, ValueError):
        return 1


def reference_branch(metadata: Mapping[str, Any] | None, rows: Iterable[Row]) -> str | None:
    """The branch treatments are compared with: the metadata's external config says so when
    present; otherwise `control` when there is one; otherwise the branch most comparisons
    are made against (the alphabetically first on a tie)."""
    ext = (metadata or {}).get("external_config") or {}
    if isinstance(ext, Mapping) and ext.get("reference_branch"):
        return str(ext["reference_branch"])
    against: dict[str, int] = {}
    branches: set[str] = set()
    for r in rows:
        if r.get("branch"):
            branches.add(str(r["branch"]))
        to = r.get("comparison_to_branch")
        if r.get("comparison") and to:
            against[str(to)] = against.get(str(to), 0) + 1
    # Published comparisons run both ways between every pair, so counts rarely decide:
    # `control` wins when it is compared against at all.
    if "control" in against or (not against and "control" in branches):
        return "control"
    if against:
        return max(sorted(against), key=lambda b: against[b])
    return min(branches) if branches else None


def metric_order(
    metadata: Mapping[str, Any] | None, published: Iterable[str]
) -> tuple[list[dict[str, Any]], str]:
    """The metrics in scorecard order with their display information, and a sentence saying
    where the order came from. Primary: the metrics of the published outcomes, in outcome
    order; then the rest in the order of the metadata's `metrics` (the configuration's
    order); metrics only in the rows come last, alphabetically."""
    md = metadata or {}
    info = md.get("metrics") or {}
    outcomes = md.get("outcomes") or {}
    seen = set(published)
    primary: list[str] = []
    outcome_of: dict[str, str] = {}
    for oslug, outcome in outcomes.items() if isinstance(outcomes, Mapping) else ():
        for m in (outcome or {}).get("metrics") or ():
            if m in seen and m not in outcome_of:
                outcome_of[m] = str((outcome or {}).get("friendly_name") or oslug)
                primary.append(m)
    rest = [m for m in info if m in seen and m not in outcome_of]
    rest += sorted(m for m in seen if m not in outcome_of and m not in info)
    if primary:
        names = ", ".join(sorted(set(outcome_of.values())))
        source = (
            f"Primary: the metrics of the published outcomes ({names}); "
            "then the other metrics in configuration order."
        )
    elif info:
        source = (
            "No outcomes were published with the results, so no metric is marked primary; "
            "metrics are in configuration order."
        )
    else:
        source = "No metadata was published; metrics are in alphabetical order."
    out = []
    for m in primary + rest:
        mi = info.get(m) or {}
        out.append(
            {
                "slug": m,
                "name": mi.get("friendly_name") or m,
                "description": mi.get("description") or "",
                "bigger_is_better": mi.get("bigger_is_better", True) is not False,
                "primary": m in outcome_of,
                "outcome": outcome_of.get(m),
            }
        )
    return out, source


def period_view(
    rows: Sequence[Row], reference: str | None = None, branches: Sequence[str] = ()
) -> dict[str, Any]:
    """One period's rows -> the shape in the module docstring. Comparisons are published
    both ways between every two branches; only one direction of each pair is kept (see
    `keep_direction`)."""
    windows = sorted({_window(r) for r in rows})
    at = {w: i for i, w in enumerate(windows)}
    n = len(windows)
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    values: dict[tuple[str, str, str, str, str], list[Any]] = {}
    comparisons: dict[tuple[str, str, str, str, str, str], dict[str, Any]] = {}
    omitted: dict[str, int] = {}
    for r in rows:
        basis = str(r.get("analysis_basis") or DEFAULT_ANALYSIS_BASIS)
        segment = str(r.get("segment") or DEFAULT_SEGMENT)
        cell = cells.setdefault(basis, {}).setdefault(segment, {"counts": {}, "srm": [None] * n})
        i = at[_window(r)]
        metric, statistic = str(r.get("metric")), str(r.get("statistic"))
        branch = str(r.get("branch") or "")
        if metric == IDENTITY and statistic == COUNT and not r.get("comparison"):
            cell["counts"].setdefault(branch, [None] * n)[i] = rounded(r.get("point"))
            continue
        if statistic == SRM:
            test = cell["srm"][i] or {
                "p": rounded(r.get("p_value")),
                "observed": {},
                "expected": {},
            }
            test["observed"][branch] = rounded(r.get("point"))
            test["expected"][branch] = _parameter_share(r.get("parameter"))
            cell["srm"][i] = test
            continue
        if r.get("parameter") not in (None, ""):
            omitted[statistic] = omitted.get(statistic, 0) + 1
            continue
        kind = r.get("comparison")
        if not kind:
            values.setdefault((basis, segment, metric, statistic, branch), [None] * n)[i] = _triple(
                r
            )
            continue
        if kind not in (RELATIVE, DIFFERENCE):
            omitted[f"{statistic} ({kind})"] = omitted.get(f"{statistic} ({kind})", 0) + 1
            continue
        to = str(r.get("comparison_to_branch") or "")
        c = comparisons.setdefault(
            (basis, segment, metric, statistic, branch, to),
            {
                "m": metric,
                "s": statistic,
                "b": branch,
                "to": to,
                "rel": [None] * n,
                "abs": [None] * n,
                "p": [None] * n,
                "q": [None] * n,
                "ci": rounded(r.get("ci_width")),
            },
        )
        c["rel" if kind == RELATIVE else "abs"][i] = _triple(r)
        # the relative uplift's p-values, the difference's where there is no uplift
        if kind == RELATIVE or c["p"][i] is None:
            c["p"][i] = rounded(r.get("p_value"))
            c["q"][i] = rounded(r.get("p_value_adjusted"))
    for (basis, segment, metric, statistic, branch), v in values.items():
        cells[basis][segment].setdefault("values", []).append(
            {"m": metric, "s": statistic, "b": branch, "v": v}
        )
    for (basis, segment, metric, statistic, branch, to), c in comparisons.items():
        mirrored = (basis, segment, metric, statistic, to, branch) in comparisons
        if mirrored and not keep_direction(branch, to, reference, branches):
            continue
        cells[basis][segment].setdefault("comparisons", []).append(c)
    for by_segment in cells.values():
        for cell in by_segment.values():
            cell.setdefault("values", [])
            cell.setdefault("comparisons", [])
    return {"windows": windows, "cells": cells, "omitted": omitted}


def keep_direction(branch: str, to: str, reference: str | None, branches: Sequence[str]) -> bool:
    """Of `branch` vs `to` and its mirror `to` vs `branch`, whether to keep this one: the
    one against the reference branch, else the later branch (in `branches` order, then
    alphabetically) against the earlier."""
    if to == reference:
        return True
    if branch == reference:
        return False

    def rank(b: str) -> tuple[int, str]:
        return (branches.index(b) if b in branches else len(branches), b)

    return rank(branch) > rank(to)


def _parameter_share(value: Any) -> float | None:
    try:
        return rounded(float(value))
    except (TypeError, ValueError):
        return None


def branch_order(reference: str | None, rows: Iterable[Row]) -> list[str]:
    """Every branch named in the rows, the reference first, then alphabetically."""
    names = {str(r["branch"]) for r in rows if r.get("branch")}
    names |= {str(r["comparison_to_branch"]) for r in rows if r.get("comparison_to_branch")}
    rest = sorted(n for n in names if n != reference)
    return ([reference] if reference in names else []) + rest
