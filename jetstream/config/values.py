"""Reading raw TOML values the way metric-config-parser does: key case, dates, periods.
Pure functions over parsed documents (no I/O)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from jetstream.periods import Period

# sections whose tables are named ([metrics.<slug>]): the slugs keep their case, the keys
# of each named table are lower-cased
_NAMED = ("metrics", "data_sources", "parameters", "dimensions", "functions", "alerts")


def lower_keys(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Keys lower-cased as metric-config-parser reads them: top-level keys, the keys of
    `[experiment]` (and its exposure signal), and the keys of every named table in the
    named sections and under `[segments]` / `[segments.data_sources]`. Slugs, statistic
    names and parameter values are left as written."""

    def low(table: Any) -> Any:
        if not isinstance(table, Mapping):
            return table
        return {str(k).lower(): v for k, v in table.items()}

    def named(section: Any) -> Any:
        if not isinstance(section, Mapping):
            return section
        return {k: low(v) for k, v in section.items()}

    out = low(doc)
    for key in _NAMED:
        if key in out:
            out[key] = named(out[key])
    exp = out.get("experiment")
    if isinstance(exp, Mapping):
        out["experiment"] = low(exp)
        if isinstance(out["experiment"].get("exposure_signal"), Mapping):
            out["experiment"]["exposure_signal"] = low(out["experiment"]["exposure_signal"])
    segs = out.get("segments")
    if isinstance(segs, Mapping):
        segs = {
            ("data_sources" if str(k).lower() == "data_sources" else k): v for k, v in segs.items()
        }
        out["segments"] = {
            k: (named(v) if k == "data_sources" else low(v)) for k, v in segs.items()
        }
    return out


def parse_date(value: Any) -> dt.date | None:
    """A TOML date or a 'YYYY-MM-DD' string; None when it is neither."""
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def parse_period(text: str) -> Period | None:
    try:
        return Period.parse(text)
    except ValueError:
        return None
