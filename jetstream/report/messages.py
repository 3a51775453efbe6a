"""Errors and warnings grouped by kind: the same level, exception type and message pattern
(the message with its numbers, quoted names and bracketed details blanked out), errors
first, then the most frequent. A report shows one line per kind with its count instead of
thousands of near-identical rows. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from jetstream import problems
from jetstream.problems import split_count

# How many example occurrences each kind keeps for the page, and how many distinct values
# of each facet (metric, period, ...) it lists before saying "and N more".
EXAMPLES = 5
FACET_VALUES = 12
_FACETS = ("metric", "statistic", "analysis_period", "segment", "analysis_basis")

_SEGMENT = re.compile(r"\[segment [^,\]]+, (\w+) basis\]")
_SPACES = re.compile(r"\s+")


def message_pattern(message: str) -> str:
    """The message with what varies between occurrences of one kind blanked out:
    `"12 clients ... 'x'"` -> `"# clients ... '…'"`."""
    text = problems.message_pattern(_SEGMENT.sub(r"[segment …, \1 basis]", message))
    return _SPACES.sub(" ", text).strip()


def _level(entry: Mapping[str, Any]) -> str:
    return str(entry.get("log_level") or entry.get("level") or "ERROR").upper()


def group_messages(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One dict per kind: level, exception_type, pattern, count, facets ({facet: [values],
    plus `<facet>_more`: how many values were left out}), `experiment_wide` (no metric or
    statistic named: a data-quality finding about the whole experiment) and up to EXAMPLES
    examples. ERROR kinds come first, then experiment-wide kinds, then by count (largest
    first): a one-off "clients enrolled in more than one branch" is not buried under
    thousands of per-statistic warnings."""
    kinds: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in entries:
        level = _level(e)
        etype = str(e.get("exception_type") or "")
        message = str(e.get("message") or "")
        # a row the errors document folded counts as the occurrences it stands for
        base, occurrences, _ = split_count(message)
        key = (level, etype, message_pattern(base))
        kind = kinds.get(key)
        if kind is None:
            kind = kinds[key] = {
                "level": level,
                "exception_type": etype,
                "pattern": key[2],
                "count": 0,
                "facets": {f: {} for f in _FACETS},
                "examples": [],
            }
        kind["count"] += occurrences
        for f in _FACETS:
            value = e.get(f)
            if value is not None and value != "":
                kind["facets"][f][str(value)] = None
        if len(kind["examples"]) < EXAMPLES:
            kind["examples"].append(
                {
                    "message": message,
                    "analysis_period": e.get("analysis_period"),
                    "window_index": e.get("window_index"),
                    "metric": e.get("metric"),
                    "statistic": e.get("statistic"),
                    "segment": e.get("segment"),
                    "analysis_basis": e.get("analysis_basis"),
                }
            )
    out = []
    for kind in kinds.values():
        facets: dict[str, Any] = {}
        for f, values in kind["facets"].items():
            names = list(values)
            if names:
                facets[f] = names[:FACET_VALUES]
                if len(names) > FACET_VALUES:
                    facets[f + "_more"] = len(names) - FACET_VALUES
        kind["facets"] = facets
        kind["experiment_wide"] = "metric" not in facets and "statistic" not in facets
        out.append(kind)
    out.sort(
        key=lambda k: (k["level"] != "ERROR", not k["experiment_wide"], -k["count"], k["pattern"])
    )
    return out
