"""Per-client comparison of the mozanalysis oracle's rows with what the engine stored, and
the list of documented deliberate differences that the comparison expects.

A difference is a `Difference(kind, subject, period, basis, clients, example)`; the test
fails on any difference that no `Expected` entry matches."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

FLOAT_TOLERANCE = 1e-9


@attrs.frozen
class Difference:
    kind: str  # enrollment | segment | population | metric_missing | value
    subject: str  # column, segment or metric name ("" for the population)
    period: str = ""
    basis: str = ""
    clients: int = 0
    example: str = ""

    def __str__(self) -> str:
        where = " ".join(x for x in (self.period, self.basis) if x)
        return (
            f"{self.kind} {self.subject or '-'} [{where or 'enrollments table'}]: "
            f"{self.clients} client(s), e.g. {self.example}"
        )


@attrs.frozen
class Expected:
    """A deliberate difference from Jetstream/mozanalysis: which differences it covers,
    why, and the config switch (docs/config-reference.md) that restores the reference
    behaviour, if there is one."""

    kind: str
    subjects: frozenset[str] | None  # None: any subject
    reason: str
    switch: str = ""
    periods: frozenset[str] | None = None  # None: any period
    bases: frozenset[str] | None = None  # None: any basis

    def covers(self, diff: Difference) -> bool:
        period = diff.period.split("[")[0]
        return (
            diff.kind == self.kind
            and (self.subjects is None or diff.subject in self.subjects)
            and (self.periods is None or period in self.periods)
            and (self.bases is None or diff.basis in self.bases)
        )


def unexpected(diffs: Iterable[Difference], expected: Iterable[Expected]) -> list[Difference]:
    rules = list(expected)
    return [d for d in diffs if not any(r.covers(d) for r in rules)]


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return float(a) == float(b)
    if isinstance(a, dt.date) or isinstance(b, dt.date):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and math.isnan(a):
            return isinstance(b, float) and math.isnan(b)
        return math.isclose(float(a), float(b), rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)
    return a == b


def compare_columns(
    kind: str,
    oracle: Mapping[str, Mapping[str, Any]],
    ours: Mapping[str, Mapping[str, Any]],
    columns: Iterable[str],
    period: str = "",
    basis: str = "",
) -> tuple[list[Difference], int]:
    """Column by column over the clients both sides have; returns the differences and the
    number of values compared."""
    diffs: list[Difference] = []
    compared = 0
    common = sorted(set(oracle) & set(ours))
    for column in columns:
        bad = []
        for cid in common:
            a, b = oracle[cid].get(column), ours[cid].get(column)
            compared += 1
            if not _same(a, b):
                bad.append((cid, a, b))
        if bad:
            cid, a, b = bad[0]
            example = f"{cid}: mozanalysis {a!r}, ours {b!r}"
            diffs.append(Difference(kind, column, period, basis, len(bad), example))
    return diffs, compared


def split_multi_branch(
    rows: list[dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """mozanalysis keys enrollments by (client, branch): a client enrolled in several
    branches has a row per branch. The rows by client, and the clients with several."""
    by_client: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_client.setdefault(row["analysis_id"], []).append(row)
    multi = sorted(cid for cid, rs in by_client.items() if len(rs) > 1)
    return {cid: rs[0] for cid, rs in by_client.items() if len(rs) == 1}, multi


def compare_population(
    oracle: Iterable[str], ours: Iterable[str], period: str = "", basis: str = ""
) -> list[Difference]:
    o, u = set(oracle), set(ours)
    diffs = []
    if o - u:
        only = sorted(o - u)
        diffs.append(
            Difference("population", "only_mozanalysis", period, basis, len(only), only[0])
        )
    if u - o:
        only = sorted(u - o)
        diffs.append(Difference("population", "only_ours", period, basis, len(only), only[0]))
    return diffs
