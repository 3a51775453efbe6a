"""Accuracy against the reference implementation's rows (../shared/reference/expected).

Every expected row must be matched by key. Tolerances (shared/reference/README.md):
deterministic rows relative 1e-6 (absolute 1e-12 near zero); Monte Carlo rows (bootstrap
means, population ratio, binomial comparisons, deciles) within 2.8% of the CI width for
the point and 5.7% for the bounds (14% for decile bounds); ci_width equal.

One documented deviation: the reference computes the linear models' relative-uplift
standard error with a forward finite-difference Jacobian (h = |coef| * sqrt(eps)), whose
rounding noise is ~1e-8 absolute; we use the exact gradient. Those bounds are compared
with relative 1e-6 of max(|value|, CI width) instead of |value|, which only matters for
a bound that happens to sit near zero.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import attrs
import numpy as np
import pytest

from jetstream.statistics import SummaryRequest, summarise
from tests.support.paths import REPO

DETERMINISTIC = {
    "count",
    "sum",
    "empirical_cdf",
    "kernel_density_estimate",
    "mean_lm",
    "per_client_dau_impact",
}
MODEL = {"mean_lm", "per_client_dau_impact"}
KEY = (
    "metric",
    "statistic",
    "branch",
    "comparison",
    "comparison_to_branch",
    "parameter",
    "segment",
    "analysis_basis",
)


def _cases() -> list[tuple[str, str, dict[str, str]]]:
    # Same location rule as tests/conftest.py (collection needs it before fixtures run).
    repo = REPO
    shared = Path(os.environ.get("JETSTREAM_SHARED_DIR", repo.parent / "shared"))
    path = shared / "reference" / "expected" / "COMMANDS.txt"
    if not path.is_file():
        return []
    cases = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        dataset, rest = line.split(" ", 1)
        name, args = rest.split(": ", 1)
        cases.append((dataset, name, dict(re.findall(r"(--[a-z-]+) (\{.*?\}|\S+)", args))))
    return cases


_TABLES: dict[str, dict[str, np.ndarray]] = {}


def _table(shared: Path, dataset: str) -> dict[str, np.ndarray]:
    if dataset not in _TABLES:
        import pyarrow.parquet as pq

        t = pq.read_table(shared / "reference" / "data" / f"{dataset}.parquet")
        _TABLES[dataset] = {c: t.column(c).to_numpy(zero_copy_only=False) for c in t.column_names}
    return _TABLES[dataset]


def _tolerance_failures(expected: dict, ours: dict) -> list[str]:
    problems = []
    stat = expected["statistic"]
    if expected["ci_width"] != ours["ci_width"]:
        problems.append(f"ci_width {ours['ci_width']} != {expected['ci_width']}")
    deterministic = stat in DETERMINISTIC or (stat == "binomial" and expected["comparison"] is None)
    for field in ("point", "lower", "upper"):
        e, o = expected[field], ours[field]
        if e is None or o is None:
            if e != o:
                problems.append(f"{field}: {o} != {e}")
            continue
        if deterministic:
            scale = abs(e)
            if stat in MODEL and expected["comparison"] == "relative_uplift" and field != "point":
                scale = max(scale, expected["upper"] - expected["lower"])
            ok = abs(o - e) <= 1e-12 or abs(o - e) <= 1e-6 * scale
            tol = "relative 1e-6"
        else:
            width = expected["upper"] - expected["lower"]
            frac = 0.028 if field == "point" else (0.14 if stat == "deciles" else 0.057)
            ok = abs(o - e) <= frac * width
            tol = f"{frac:.1%} of CI width {width:.6g}"
        if not ok:
            problems.append(f"{field}: ours {o!r} vs expected {e!r} (tolerance {tol})")
    return problems


@pytest.mark.shared
@pytest.mark.parametrize(
    "dataset,name,args", _cases(), ids=[f"{d}__{n}" for d, n, _ in _cases()] or None
)
def test_matches_reference(shared_dir: Path, dataset: str, name: str, args: dict) -> None:
    table = _table(shared_dir, dataset)
    rows, errors = summarise(
        SummaryRequest(
            table,
            args["--metric"],
            args["--statistic"],
            params=json.loads(args.get("--params", "{}")),
            covariate=args.get("--covariate"),
            seed=0,
        )
    )
    assert not [e for e in errors if e.level == "error"], errors
    rows = [
        attrs.evolve(r, segment="all", analysis_basis="enrollments", window_index="1") for r in rows
    ]
    ours = {tuple(r.to_dict()[k] for k in KEY): r.to_dict() for r in rows}
    assert len(ours) == len(rows), "duplicate keys in our rows"
    expected = json.loads(
        (shared_dir / "reference" / "expected" / f"{dataset}__{name}.json").read_text()
    )
    failures = []
    for e in expected:
        key = tuple(e[k] for k in KEY)
        if key not in ours:
            failures.append(f"missing row {key}")
            continue
        for problem in _tolerance_failures(e, ours[key]):
            failures.append(f"{key}: {problem}")
    assert not failures, "\n".join(failures[:20])
    assert len(rows) == len(expected), f"{len(rows)} rows, expected {len(expected)}"
