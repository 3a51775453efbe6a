"""Errors and warnings aggregated by kind, so that the one that matters is not buried.

A statistic can repeat one warning thousands of times (deciles: "reference mean ... is not
positive" for every reference branch, segment, basis and window). Two stages fold them:

* `Tally`, per unit (one period and window): one row per (level, metric, statistic,
  exception type, message pattern) with the count and the segments and bases it came from,
  e.g. "... (12 times: segments all/new_users; bases enrollments)";
* `aggregate`, over the published errors document: the units' rows of one kind (level,
  metric, statistic, exception type, message pattern) become one row with the total count
  and the periods and windows, e.g. "(412 times: windows day 1-28/week 1-4; segments
  all/new_users; bases enrollments)", analysis_period and window_index null when several.

`ordered` puts errors first, then experiment-wide rows (no metric or statistic: "21
clients enrolled in more than one branch were excluded"), then the rest by count. Pure: no
I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def message_pattern(message: str) -> str:
    """The message with quoted names and numbers blanked out: what one kind shares."""
    return _NUMBER.sub("#", _QUOTED.sub("'…'", message)).strip()


_SUFFIX = re.compile(r" \((\d+) times: ([^()]*)\)$")


def split_count(message: str) -> tuple[str, int, dict[str, list[str]]]:
    """(the message without an aggregation suffix, its count (1 without), {facet: values}
    of the suffix's "segments a/b; bases c" parts)."""
    m = _SUFFIX.search(message)
    if m is None:
        return message, 1, {}
    facets: dict[str, list[str]] = {}
    for part in m.group(2).split("; "):
        name, _, values = part.partition(" ")
        if name in ("segments", "bases"):
            facets[name] = values.split("/")
    return message[: m.start()], int(m.group(1)), facets


def _windows(values: Iterable[int]) -> str:
    """[1, 2, 3, 5] -> "1-3, 5"."""
    out: list[str] = []
    nums = sorted(set(values))
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ", ".join(out)


def with_count(message: str, count: int, facets: Mapping[str, Sequence[str]]) -> str:
    if count <= 1:
        return message
    # sorted: the text must not depend on the order the rows were written in (a resumed run
    # publishes exactly what an uninterrupted one does)
    parts = [f"{name} {'/'.join(sorted(values))}" for name, values in facets.items() if values]
    return f"{message} ({count} times: {'; '.join(parts)})"


@attrs.define
class _Kind:
    message: str
    count: int = 0
    facets: dict[str, dict[str, None]] = attrs.field(factory=dict)

    def note(self, facet: str, value: Any) -> None:
        if value is not None and value != "":
            self.facets.setdefault(facet, {})[str(value)] = None


@attrs.define
class Tally:
    """One unit's problems by kind. `add` each occurrence; `rows` gives one
    (level, metric, statistic, exception_type, message) per kind, in first-seen order."""

    kinds: dict[tuple[Any, ...], _Kind] = attrs.field(factory=dict)

    def add(
        self,
        message: str,
        *,
        level: str,
        metric: str | None,
        statistic: str | None,
        exception_type: str | None = None,
        segment: str | None = None,
        basis: str | None = None,
    ) -> None:
        key = (level, metric, statistic, exception_type, message_pattern(message))
        kind = self.kinds.get(key)
        if kind is None:
            kind = self.kinds[key] = _Kind(message)
        kind.count += 1
        kind.note("segments", segment)
        kind.note("bases", basis)

    def rows(self) -> list[tuple[str, str | None, str | None, str | None, str]]:
        out = []
        for (level, metric, statistic, etype, _), kind in self.kinds.items():
            facets = {k: list(v) for k, v in kind.facets.items()}
            out.append(
                (level, metric, statistic, etype, with_count(kind.message, kind.count, facets))
            )
        return out


def aggregate(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Published error documents (keys log_level, analysis_period, window_index, metric,
    statistic, exception_type, message, ...) with the rows of one kind folded into one
    over every period and window (the first's other keys; analysis_period and
    window_index null when several), `ordered`."""
    groups: dict[tuple[Any, ...], list[tuple[dict[str, Any], str, int, dict[str, list[str]]]]]
    groups = {}
    for d in docs:
        base, count, facets = split_count(str(d.get("message") or ""))
        key = (
            d.get("log_level"),
            d.get("metric"),
            d.get("statistic"),
            d.get("exception_type"),
            message_pattern(base),
        )
        groups.setdefault(key, []).append((dict(d), base, count, facets))
    return ordered(_fold(members) for members in groups.values())


def _fold(members: Sequence[tuple[dict[str, Any], str, int, dict[str, list[str]]]]) -> dict:
    members = sorted(  # a canonical order, whatever order the rows were written in
        members,
        key=lambda m: (
            str(m[0].get("analysis_period") or ""),
            str(m[0].get("window_index") or "").zfill(6),
            m[1],
            str(m[0].get("data_source") or ""),
            str(m[0].get("segment") or ""),
            str(m[0].get("analysis_basis") or ""),
        ),
    )
    first = members[0][0]
    if len(members) == 1:
        return first
    total = sum(m[2] for m in members)
    windows: dict[str, list[int]] = {}
    for m in members:
        period, w = m[0].get("analysis_period"), m[0].get("window_index")
        windows.setdefault(str(period or "-"), [])
        if w is not None:
            windows[str(period or "-")].append(int(w))
    merged: dict[str, dict[str, None]] = {}
    spans = [f"{p} {_windows(ws)}" if ws else p for p, ws in windows.items()]
    if len(windows) > 1:
        merged["windows"] = dict.fromkeys(spans)
        first["analysis_period"] = None
        first["window_index"] = None
    elif any(windows.values()):
        merged["windows"] = {_windows(next(iter(windows.values()))): None}
        if len({m[0].get("window_index") for m in members}) > 1:
            first["window_index"] = None
    for _, _, _, facets in members:
        for name, values in facets.items():
            merged.setdefault(name, {}).update(dict.fromkeys(values))
    first["message"] = with_count(members[0][1], total, {k: list(v) for k, v in merged.items()})
    return first


def _count(doc: Mapping[str, Any]) -> int:
    return split_count(str(doc.get("message") or ""))[1]


def ordered(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Errors first, then experiment-wide rows (no metric or statistic), then by count
    (largest first); stable otherwise."""
    return sorted(
        docs,
        key=lambda d: (
            str(d.get("log_level") or d.get("level") or "").upper() != "ERROR",
            bool(d.get("metric") or d.get("statistic")),
            -_count(d),
        ),
    )
