"""The layers of a resolution and how a named definition is merged across them.

Precedence, low to high, for every named definition (metric, data source, segment, segment
data source, parameter), merged key by key so a higher layer may override one key only:

    definitions/<app>  <  jetstream/definitions/<app>  <  jetstream/defaults/<app>
        <  outcomes (in the order listed)  <  the experiment config

(the two definitions files are already merged by the ConfigRepo). A merged table comes
back as a typed table (`jetstream.config.tables`) with where each key came from.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from jetstream.config import tables
from jetstream.config.problems import key_path
from jetstream.periods import CONFIG_KEYS, Period

T = TypeVar("T")

DEFINITIONS = "definitions"
DEFAULTS = "defaults"
OUTCOME = "outcome"
CONFIG = "config"

METRICS = "metrics"
DATA_SOURCES = "data_sources"
SEGMENTS = "segments"
SEGMENT_DATA_SOURCES = "segment_data_sources"
PARAMETERS = "parameters"
_PREFIX = {SEGMENT_DATA_SOURCES: "segments.data_sources"}

OUTCOME_PERIODS = (Period.WEEK, Period.OVERALL)


@attrs.frozen
class Ref:
    """Where something was set or referenced: reported when it cannot be resolved."""

    file: str
    key: str


@attrs.frozen
class Found:
    """A definition merged over the layers: the typed table, where each key came from,
    and the highest layer that defines it."""

    table: Any
    origin: Mapping[str, Ref]
    top: Ref


def _sections(doc: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """The named tables of a file by section (tables only: anything else was reported by
    the structural check)."""
    segs = doc.get("segments")
    raw = {
        METRICS: doc.get("metrics"),
        DATA_SOURCES: doc.get("data_sources"),
        PARAMETERS: doc.get("parameters"),
        SEGMENT_DATA_SOURCES: segs.get("data_sources") if isinstance(segs, dict) else None,
        SEGMENTS: (
            {k: v for k, v in segs.items() if k != "data_sources"}
            if isinstance(segs, dict)
            else None
        ),
    }
    return {
        section: {k: v for k, v in found.items() if isinstance(v, dict)}
        if isinstance(found, dict)
        else {}
        for section, found in raw.items()
    }


def _period_lists(doc: Mapping[str, Any]) -> dict[Period, tables.Indexed] | None:
    """`[metrics]` period lists (`weekly = [...]`, ...); None when the file has none."""
    sec = doc.get("metrics")
    if not isinstance(sec, dict):
        return None
    found = {
        period: tables.indexed(sec[key])
        for key, period in CONFIG_KEYS.items()
        if isinstance(sec.get(key), list)
    }
    return found or None


@attrs.frozen
class Layer:
    file: str
    kind: str  # definitions | defaults | outcome | config
    sections: dict[str, dict[str, dict[str, Any]]] = attrs.field(hash=False)
    periods: dict[Period, tables.Indexed] | None = attrs.field(hash=False)
    experiment: dict[str, Any] | None = attrs.field(hash=False)

    @classmethod
    def of(cls, file: str, doc: Mapping[str, Any], kind: str) -> Layer:
        exp = doc.get("experiment")
        return cls(
            file,
            kind,
            _sections(doc),
            _period_lists(doc),
            exp if isinstance(exp, dict) else None,
        )

    def tables(self, section: str) -> dict[str, dict[str, Any]]:
        """The named tables of a section, without wildcard tables (`patterns`)."""
        return {k: v for k, v in self.sections[section].items() if not is_pattern(k)}

    def patterns(self, section: str, name: str) -> list[tuple[str, dict[str, Any]]]:
        """Wildcard tables (`[metrics.'*']`, `[data_sources.'search_*']`) matching `name`,
        in file order: as in metric-hub, they update the matching definitions of the
        layers below."""
        return [
            (k, v)
            for k, v in self.sections[section].items()
            if is_pattern(k) and fnmatch.fnmatchcase(name, k)
        ]


def is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


_CONVERTERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    METRICS: tables.metric_table,
    DATA_SOURCES: tables.data_source_table,
    SEGMENTS: tables.segment_table,
    SEGMENT_DATA_SOURCES: tables.segment_data_source_table,
}


class Layers:
    """Definitions and defaults of the platform, the outcomes (added as they are found),
    and the experiment config."""

    def __init__(self, definitions: Layer | None, defaults: Layer | None, config: Layer):
        self.definitions = definitions
        self.defaults = defaults
        self.config = config
        self.outcomes: list[Layer] = []
        self._found: dict[tuple[str, str], Found | None] = {}

    @property
    def all(self) -> list[Layer]:
        base = [x for x in (self.definitions, self.defaults) if x is not None]
        return [*base, *self.outcomes, self.config]

    def find(self, section: str, name: str) -> Found | None:
        """The typed definition of `name` merged over every layer; None if none defines it."""
        key = (section, name)
        if key not in self._found:
            self._found[key] = self._merge(section, name)
        return self._found[key]

    def _merge(self, section: str, name: str) -> Found | None:
        merged: dict[str, Any] | None = None
        origin: dict[str, Ref] = {}
        top: Ref | None = None
        base = key_path(_PREFIX.get(section, section), name)
        for layer in self.all:
            if section == METRICS and layer.kind != DEFINITIONS and name in CONFIG_KEYS:
                continue
            below = merged is not None
            table = layer.tables(section).get(name)
            if table is not None:
                merged = {**(merged or {}), **table}
                top = Ref(layer.file, base)
                for k in table:
                    origin[k] = Ref(layer.file, f"{base}.{k}")  # keys of a known table are bare
            for pattern, wild in layer.patterns(section, name) if below else ():
                merged = {**(merged or {}), **wild}
                for k in wild:
                    origin[k] = Ref(layer.file, key_path(_PREFIX.get(section, section), pattern, k))
        if merged is None or top is None:
            return None
        return Found(_CONVERTERS[section](merged), origin, top)

    def known_names(self, section: str) -> set[str]:
        names: set[str] = set()
        for layer in self.all:
            names.update(layer.tables(section))
        return names

    def experiment(self) -> tables.ExperimentTable:
        """`[experiment]` of the defaults overlaid key by key with the config's."""
        out: dict[str, Any] = {}
        for layer in (self.defaults, self.config):
            if layer is not None and layer.experiment is not None:
                out.update(layer.experiment)
        return tables.experiment_table(out)

    def period_lists(self) -> dict[Period, dict[str, Ref]]:
        """Metric names by period, each with where it was first listed: the union of the
        defaults', the config's and the outcomes' lists (an outcome without lists puts
        each of its metrics in OUTCOME_PERIODS)."""
        out: dict[Period, dict[str, Ref]] = {p: {} for p in Period}
        listing = [x for x in (self.defaults, self.config) if x is not None]
        for layer in [*listing, *self.outcomes]:
            if layer.periods is None:
                if layer.kind == OUTCOME:
                    for name in layer.tables(METRICS):
                        for period in OUTCOME_PERIODS:
                            out[period].setdefault(name, Ref(layer.file, key_path("metrics", name)))
                continue
            for period, listed in layer.periods.items():
                for i, name in listed:
                    ref = Ref(layer.file, key_path("metrics", period.config_key, i))
                    out[period].setdefault(name, ref)
        return out

    def parameters(self) -> dict[str, tuple[tables.ParameterTable, Ref]]:
        """Parameters of the outcomes overridden by the defaults' and the config's, merged
        key by key (tables of values by branch merged too), with the last layer that
        sets each."""
        merged: dict[str, dict[str, Any]] = {}
        origin: dict[str, Ref] = {}
        order = [*self.outcomes, *(x for x in (self.defaults,) if x is not None), self.config]
        for layer in order:
            for name, table in layer.tables(PARAMETERS).items():
                base = merged.get(name, {})
                new = {**base, **table}
                for k in ("value", "default"):
                    if isinstance(base.get(k), dict) and isinstance(table.get(k), dict):
                        new[k] = {**base[k], **table[k]}
                merged[name] = new
                origin[name] = Ref(layer.file, key_path("parameters", name))
        return {name: (tables.parameter_table(p), origin[name]) for name, p in merged.items()}
