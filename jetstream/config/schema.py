"""The key set of the config language, and a strict structural check of parsed TOML.

Every key used anywhere in the metric-hub corpus is known here (see docs/config-reference.md);
anything else is an error with a "did you mean" hint. Pure: takes parsed TOML, returns
problems. `jetstream.config.tables` then gives resolution the checked tables as typed
values.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from jetstream import slugs
from jetstream.config.problems import WARNING, Problem, did_you_mean, key_path
from jetstream.config.values import parse_date, parse_period
from jetstream.periods import CONFIG_KEYS
from jetstream.statistics import catalogue


class Kind(enum.Enum):
    STR = "a string"
    INT = "an integer"
    BOOL = "true or false"
    DATE = "a date written YYYY-MM-DD"
    STR_LIST = "a list of strings"
    STR_OR_LIST = "a string or a list of strings"
    STR_OR_TABLE = "a string or a table"
    TABLE = "a table"  # checked against `fields`
    SLUG_TABLES = "a table of named tables"  # {slug: table checked against `fields`}
    WINDOW = "an integer number of days or a symbolic window bound"
    STATISTICS = "a table of statistics"
    CHOICE = "one of the listed values"
    CHOICE_LIST = "a list of the listed values"


@attrs.frozen
class Field:
    kind: Kind
    fields: Mapping[str, Field] = attrs.field(factory=dict)
    choices: tuple[str, ...] = ()
    required: bool = False
    # Accepted for compatibility but without effect: a warning names the reason.
    no_effect: str | None = None
    # Bounds of an INT (or of a WINDOW's number of days), inclusive.
    minimum: int | None = None
    maximum: int | None = None

    def out_of_bounds(self, value: int) -> str | None:
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum}, got {value}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum}, got {value}"
        return None


def F(kind: Kind, **kw: Any) -> Field:  # noqa: N802 - short constructor for tables below
    return Field(kind, **kw)


# The longest span of days a setting may name: the same bound as Experimenter's enrollment
# (`jetstream.experiments.MAX_ENROLLMENT_DAYS`); dates beyond it overflow the date type.
MAX_DAYS = 3650
_WINDOW = {"minimum": -MAX_DAYS, "maximum": MAX_DAYS}

SEGMENT_WINDOW_BOUNDS = ("analysis_window_start", "analysis_window_end")
EXPOSURE_WINDOW_BOUNDS = (
    "analysis_window_start",
    "analysis_window_end",
    "enrollment_start",
    "enrollment_end",
)
ANALYSIS_UNITS = ("client_id", "profile_group_id")
ANALYSIS_BASES = ("enrollments", "exposures")
EXPERIMENTS_COLUMN_TYPES = ("none", "simple", "native", "glean", "events_stream")
ENROLLMENTS_QUERY_TYPES = (
    "normandy",
    "glean-event",
    "fenix-fallback",
    "cirrus",
    "background-update",
)
JOIN_RELATIONSHIPS = ("one_to_one", "many_to_one", "one_to_many", "many_to_many")
METRIC_LEVELS = ("gold", "silver", "bronze")

DATA_SOURCE = {
    "from_expression": F(Kind.STR, required=True),
    "experiments_column_type": F(Kind.CHOICE, choices=EXPERIMENTS_COLUMN_TYPES),
    "client_id_column": F(Kind.STR),
    "submission_date_column": F(Kind.STR),
    "default_dataset": F(Kind.STR),
    "joins": F(
        Kind.SLUG_TABLES,
        fields={
            "relationship": F(Kind.CHOICE, choices=JOIN_RELATIONSHIPS),
            "on_expression": F(Kind.STR),
        },
    ),
    "analysis_units": F(Kind.CHOICE_LIST, choices=ANALYSIS_UNITS),
    "group_id_column": F(Kind.STR),
    "friendly_name": F(Kind.STR),
    "description": F(Kind.STR),
    "build_id_column": F(Kind.STR),
    "columns_as_dimensions": F(Kind.BOOL),
    "glean_client_id_column": F(Kind.STR),
    "legacy_client_id_column": F(Kind.STR),
    "deprecated": F(Kind.BOOL),
}

METRIC = {
    "select_expression": F(Kind.STR),
    "data_source": F(Kind.STR),
    "depends_on": F(Kind.STR_LIST),
    "analysis_bases": F(Kind.CHOICE_LIST, choices=ANALYSIS_BASES),
    "analysis_units": F(Kind.CHOICE_LIST, choices=ANALYSIS_UNITS),
    "friendly_name": F(Kind.STR),
    "description": F(Kind.STR),
    "bigger_is_better": F(Kind.BOOL),
    "category": F(Kind.STR),
    "type": F(Kind.STR),
    "owner": F(Kind.STR_OR_LIST),
    "deprecated": F(Kind.BOOL),
    "level": F(Kind.CHOICE, choices=METRIC_LEVELS),
    "name": F(Kind.STR),  # redundant with the table name; must equal it
    "statistics": F(Kind.STATISTICS),
}

SEGMENT = {
    "select_expression": F(Kind.STR, required=True),
    "data_source": F(Kind.STR, required=True),
    "friendly_name": F(Kind.STR),
    "description": F(Kind.STR),
    "window_start": F(Kind.WINDOW, choices=SEGMENT_WINDOW_BOUNDS, **_WINDOW),
    "window_end": F(Kind.WINDOW, choices=SEGMENT_WINDOW_BOUNDS, **_WINDOW),
}

_SEGMENT_DS_NO_EFFECT = "a segment data source has no experiments filter or build-id column"
_SEGMENT_DS_CLIENT_ONLY = "segments are joined to enrollments on client_id_column"
SEGMENT_DATA_SOURCE = {
    "from_expression": F(Kind.STR, required=True),
    "window_start": F(Kind.WINDOW, choices=SEGMENT_WINDOW_BOUNDS, **_WINDOW),
    "window_end": F(Kind.WINDOW, choices=SEGMENT_WINDOW_BOUNDS, **_WINDOW),
    "client_id_column": F(Kind.STR),
    "submission_date_column": F(Kind.STR),
    "default_dataset": F(Kind.STR),
    "friendly_name": F(Kind.STR),
    "description": F(Kind.STR),
    "experiments_column_type": F(
        Kind.CHOICE, choices=EXPERIMENTS_COLUMN_TYPES, no_effect=_SEGMENT_DS_NO_EFFECT
    ),
    "build_id_column": F(Kind.STR, no_effect=_SEGMENT_DS_NO_EFFECT),
    # accepted as metric-config-parser does (a segment data source is a data source there)
    "group_id_column": F(Kind.STR, no_effect=_SEGMENT_DS_CLIENT_ONLY),
    "glean_client_id_column": F(Kind.STR, no_effect=_SEGMENT_DS_CLIENT_ONLY),
    "legacy_client_id_column": F(Kind.STR, no_effect=_SEGMENT_DS_CLIENT_ONLY),
}

PARAMETER = {
    "friendly_name": F(Kind.STR),
    "description": F(Kind.STR),
    "value": F(Kind.STR_OR_TABLE),
    "default": F(Kind.STR_OR_TABLE),
    "distinct_by_branch": F(Kind.BOOL),
}

EXPOSURE_SIGNAL = {
    "name": F(Kind.STR, required=True),
    "select_expression": F(Kind.STR, required=True),
    "data_source": F(Kind.STR, required=True),
    "friendly_name": F(Kind.STR),
    "description": F(Kind.STR),
    "window_start": F(Kind.WINDOW, choices=EXPOSURE_WINDOW_BOUNDS, **_WINDOW),
    "window_end": F(Kind.WINDOW, choices=EXPOSURE_WINDOW_BOUNDS, **_WINDOW),
}

EXPERIMENT = {
    "start_date": F(Kind.DATE),
    "end_date": F(Kind.DATE),
    "enrollment_period": F(Kind.INT, minimum=1, maximum=MAX_DAYS),
    "reference_branch": F(Kind.STR),
    "skip": F(Kind.BOOL),
    "is_private": F(Kind.BOOL),
    "dataset_id": F(Kind.STR),
    "exposure_signal": F(Kind.TABLE, fields=EXPOSURE_SIGNAL),
    "enrollment_query": F(Kind.STR),
    "sample_size": F(Kind.INT, minimum=1, maximum=100),  # whole percent
    "analysis_unit": F(Kind.CHOICE, choices=ANALYSIS_UNITS),
    "enrollments_query_type": F(Kind.CHOICE, choices=ENROLLMENTS_QUERY_TYPES),
    "segments": F(Kind.STR_LIST),
    "outcomes": F(Kind.STR_LIST),
    "multiple_comparisons": F(Kind.CHOICE, choices=("none", "holm", "bh")),
}

SEGMENTS = "segments"  # [segments.<slug>] plus [segments.data_sources.<slug>]

ANALYSIS_TOP = {
    "experiment": F(Kind.TABLE, fields=EXPERIMENT),
    "metrics": F(Kind.TABLE),  # checked by check_metrics_section
    "data_sources": F(Kind.SLUG_TABLES, fields=DATA_SOURCE),
    "segments": F(Kind.TABLE),  # checked by check_segments_section
    "parameters": F(Kind.SLUG_TABLES, fields=PARAMETER),
    "friendly_name": F(Kind.STR),
    "description": F(Kind.STR),
}

OUTCOME_TOP = {
    "friendly_name": F(Kind.STR, required=True),
    "description": F(Kind.STR, required=True),
    "metrics": F(Kind.TABLE),
    "data_sources": F(Kind.SLUG_TABLES, fields=DATA_SOURCE),
    "parameters": F(Kind.SLUG_TABLES, fields=PARAMETER),
    "default_metrics": F(Kind.STR_LIST),
}

DEFINITIONS_TOP = {
    "metrics": F(Kind.TABLE),
    "data_sources": F(Kind.SLUG_TABLES, fields=DATA_SOURCE),
    "segments": F(Kind.TABLE),
    "parameters": F(Kind.SLUG_TABLES, fields=PARAMETER),
    # operational-monitoring alert definitions share the definitions files
    "alerts": F(Kind.TABLE, no_effect="alerts are used by operational monitoring, not analyses"),
    "dimensions": F(
        Kind.SLUG_TABLES,
        fields={
            "data_source": F(Kind.STR, required=True),
            "select_expression": F(Kind.STR, required=True),
            "friendly_name": F(Kind.STR),
            "description": F(Kind.STR),
        },
    ),
    "friendly_name": F(Kind.STR),
    "description": F(Kind.STR),
}

FUNCTIONS_TOP = {
    "functions": F(
        Kind.SLUG_TABLES,
        fields={
            "definition": F(Kind.STR, required=True),
            "friendly_name": F(Kind.STR),
            "description": F(Kind.STR),
        },
    )
}

PERIOD_KEYS = tuple(CONFIG_KEYS)

# Keys that are not part of the language but that people write, with what to do instead.
HINTS = {
    "enrollment_end_date": (
        "the end of enrollment comes from Experimenter; set enrollment_period (days) to override it"
    ),
    "exposure_basis": 'did you mean analysis_bases = ["exposures"]?',
    "exposure_query_type": "there is no such key; an exposure signal is set with "
    "[experiment.exposure_signal]",
    "window_start": "a metric has no window of its own: its windows are the analysis "
    "periods it is listed in",
    "window_end": "a metric has no window of its own: its windows are the analysis "
    "periods it is listed in",
}  # daily, weekly, 28_day, overall, preenrollment_*


_METRIC_HINT_KEYS = ("exposure_basis", "window_start", "window_end")
HINTED: dict[int, dict[str, str]] = {
    id(EXPERIMENT): {k: v for k, v in HINTS.items() if k not in _METRIC_HINT_KEYS},
    id(METRIC): {k: v for k, v in HINTS.items() if k in _METRIC_HINT_KEYS},
}


class FileKind(enum.StrEnum):
    EXPERIMENT = "experiment"
    DEFAULTS = "defaults"
    OUTCOME = "outcome"
    DEFINITIONS = "definitions"
    FUNCTIONS = "functions"


TOP_LEVEL = {
    FileKind.EXPERIMENT: ANALYSIS_TOP,
    FileKind.DEFAULTS: ANALYSIS_TOP,
    FileKind.OUTCOME: OUTCOME_TOP,
    FileKind.DEFINITIONS: DEFINITIONS_TOP,
    FileKind.FUNCTIONS: FUNCTIONS_TOP,
}


def check(doc: Mapping[str, Any], kind: FileKind, file: str) -> list[Problem]:
    """Every structural problem in one parsed file: unknown keys at any depth, wrong value
    types, unknown statistics, pre-treatments and statistic parameters, bad dates."""
    c = _Checker(file)
    c.table(doc, TOP_LEVEL[kind], "")
    if isinstance(doc.get("metrics"), dict):
        c.metrics_section(doc["metrics"], "metrics", allow_periods=kind != FileKind.DEFINITIONS)
    if isinstance(doc.get("segments"), dict):
        c.segments_section(doc["segments"], "segments")
    return c.problems


class _Checker:
    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def error(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.file, key, message))

    def warn(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.file, key, message, WARNING))

    def table(self, doc: Mapping[str, Any], fields: Mapping[str, Field], path: str) -> None:
        for key, value in doc.items():
            where = key_path(path, key)
            field = fields.get(key)
            if field is None:
                hint = HINTED.get(id(fields), {}).get(key)
                self.error(
                    where, f"unknown key{f'; {hint}' if hint else did_you_mean(key, fields)}"
                )
                continue
            if field.no_effect:
                self.warn(where, f"has no effect here: {field.no_effect}")
            self.value(value, field, where)
        for key, field in fields.items():
            if field.required and key not in doc:
                self.error(path or "(top level)", f"missing required key {key!r}")

    def name(self, name: str, where: str) -> None:
        """A metric, segment, data source, ... name: it becomes a SQL identifier."""
        rule = slugs.IDENTIFIER_PATTERN if "*" in name else slugs.IDENTIFIER
        msg = slugs.problem(name, rule)
        if msg:
            self.error(where, f"name {msg}")

    def value(self, value: Any, field: Field, where: str) -> None:
        k = field.kind
        if k is Kind.TABLE:
            if not isinstance(value, dict):
                self.error(where, f"must be a table, got {_show(value)}")
            elif field.fields:
                self.table(value, field.fields, where)
        elif k is Kind.SLUG_TABLES:
            if not isinstance(value, dict):
                self.error(where, f"must be a table of named tables, got {_show(value)}")
                return
            for slug, sub in value.items():
                sub_where = key_path(where, slug)
                self.name(slug, sub_where)
                if not isinstance(sub, dict):
                    self.error(sub_where, f"must be a table, got {_show(sub)}")
                elif any(c in str(slug) for c in "*?["):
                    # a wildcard table updates the definitions it matches: nothing required
                    self.table(
                        sub,
                        {k: attrs.evolve(f, required=False) for k, f in field.fields.items()},
                        sub_where,
                    )
                else:
                    self.table(sub, field.fields, sub_where)
        elif k is Kind.STR:
            if not isinstance(value, str):
                self.error(where, f"must be a string, got {_show(value)}")
        elif k is Kind.INT:
            if isinstance(value, float) and value.is_integer():
                self.warn(where, f"should be written as an integer ({int(value)}), got {value!r}")
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                self.error(where, f"must be an integer, got {_show(value)}")
            elif msg := field.out_of_bounds(value):
                self.error(where, msg)
        elif k is Kind.BOOL:
            if not isinstance(value, bool):
                self.error(where, f"must be true or false, got {_show(value)}")
        elif k is Kind.DATE:
            if parse_date(value) is None:
                self.error(where, f"must be a date written YYYY-MM-DD, got {_show(value)}")
        elif k is Kind.STR_LIST:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self.error(where, f"must be a list of strings, got {_show(value)}")
        elif k is Kind.STR_OR_LIST:
            if not isinstance(value, str) and not (
                isinstance(value, list) and all(isinstance(v, str) for v in value)
            ):
                self.error(where, f"must be a string or a list of strings, got {_show(value)}")
        elif k is Kind.STR_OR_TABLE:
            if not isinstance(value, str | dict):
                self.error(where, f"must be a string or a table, got {_show(value)}")
        elif k is Kind.CHOICE:
            if value not in field.choices:
                self.error(
                    where,
                    f"must be one of {_choices(field.choices)}, got {_show(value)}"
                    + (did_you_mean(value, field.choices) if isinstance(value, str) else ""),
                )
        elif k is Kind.CHOICE_LIST:
            if not isinstance(value, list):
                self.error(
                    where, f"must be a list of {_choices(field.choices)}, got {_show(value)}"
                )
                return
            for i, v in enumerate(value):
                if v not in field.choices:
                    self.error(
                        key_path(where, i),
                        f"must be one of {_choices(field.choices)}, got {_show(v)}"
                        + (did_you_mean(v, field.choices) if isinstance(v, str) else ""),
                    )
        elif k is Kind.WINDOW:
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, str) and value in field.choices)
            ):
                self.error(
                    where,
                    f"must be an integer number of days or one of {_choices(field.choices)}, "
                    f"got {_show(value)}",
                )
            elif isinstance(value, int) and (msg := field.out_of_bounds(value)):
                self.error(where, msg)
        elif k is Kind.STATISTICS:
            self.statistics(value, where)
        else:  # pragma: no cover
            raise AssertionError(k)

    def metrics_section(self, doc: Mapping[str, Any], path: str, allow_periods: bool) -> None:
        for key, value in doc.items():
            where = key_path(path, key)
            if allow_periods and key in PERIOD_KEYS:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    self.error(where, f"must be a list of metric names, got {_show(value)}")
                continue
            if not isinstance(value, dict):
                period = parse_period(key) if allow_periods else None
                if period is not None:
                    hint = f" (did you mean {period.config_key!r}?)"
                else:
                    hint = did_you_mean(key, PERIOD_KEYS) if allow_periods else ""
                what = "an analysis period" if allow_periods else "a metric"
                self.error(
                    where,
                    f"is neither {what} nor a metric table{hint}"
                    + (
                        f"; periods are {', '.join(PERIOD_KEYS)}"
                        if allow_periods and not hint
                        else ""
                    ),
                )
                continue
            self.name(key, where)
            self.table(value, METRIC, where)
            name = value.get("name")
            if isinstance(name, str) and name != key:
                self.error(key_path(where, "name"), f"must equal the table name {key!r}")

    def segments_section(self, doc: Mapping[str, Any], path: str) -> None:
        for key, value in doc.items():
            where = key_path(path, key)
            if key == "data_sources":
                self.value(value, F(Kind.SLUG_TABLES, fields=SEGMENT_DATA_SOURCE), where)
            elif not isinstance(value, dict):
                self.error(where, f"must be a segment table, got {_show(value)}")
            else:
                self.name(key, where)
                self.table(value, SEGMENT, where)

    def statistics(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            self.error(where, f"must be a table of statistics, got {_show(value)}")
            return
        for name, params in value.items():
            sw = key_path(where, name)
            stat = catalogue.STATISTICS.get(name)
            if stat is None:
                self.error(
                    sw,
                    f"unknown statistic {name!r}{did_you_mean(name, catalogue.STATISTICS)}",
                )
                continue
            if not isinstance(params, dict):
                self.error(sw, f"must be a table of parameters, got {_show(params)}")
                continue
            for pname, pvalue in params.items():
                pw = key_path(sw, pname)
                if pname == "pre_treatments":
                    self.pre_treatments(pvalue, pw)
                    continue
                param = stat.params.get(pname)
                if param is None:
                    known = [*stat.params, *catalogue.STATISTIC_TABLE_KEYS]
                    self.error(
                        pw,
                        f"unknown parameter for statistic {name!r}{did_you_mean(pname, known)}"
                        f"; known: {', '.join(known)}",
                    )
                    continue
                msg = param.check(pvalue)
                if msg:
                    self.error(pw, msg)
                elif pname == "covariate_adjustment":
                    self.covariate(pvalue, pw)
            for param in stat.params.values():
                if param.required and param.name not in params:
                    self.error(sw, f"statistic {name!r} needs parameter {param.name!r}")

    def covariate(self, value: Mapping[str, Any], where: str) -> None:
        for key, v in value.items():
            kw = key_path(where, key)
            if key == "period":
                period = parse_period(v) if isinstance(v, str) else None
                if period is None or not period.is_preenrollment:
                    self.error(
                        kw,
                        "must be a pre-enrollment period (preenrollment_week or "
                        f"preenrollment_days28), got {_show(v)}",
                    )
            elif key == "metric":
                if not isinstance(v, str):
                    self.error(kw, f"must be a metric name (string), got {_show(v)}")
            else:
                self.error(kw, f"unknown key{did_you_mean(key, ('period', 'metric'))}")
        if "period" not in value:
            self.error(where, "missing required key 'period'")

    def pre_treatments(self, value: Any, where: str) -> None:
        if not isinstance(value, list):
            self.error(where, f"must be a list of pre-treatments, got {_show(value)}")
            return
        for i, item in enumerate(value):
            iw = key_path(where, i)
            if isinstance(item, str):
                name, args = item, {}
            elif isinstance(item, dict):
                if not isinstance(item.get("name"), str):
                    self.error(iw, "a pre-treatment table needs a 'name' string")
                    continue
                name = item["name"]
                args = {k: v for k, v in item.items() if k != "name"}
            else:
                self.error(iw, f"must be a pre-treatment name or table, got {_show(item)}")
                continue
            pt = catalogue.PRE_TREATMENTS.get(name)
            if pt is None:
                self.error(
                    iw,
                    f"unknown pre-treatment {name!r}{did_you_mean(name, catalogue.PRE_TREATMENTS)}",
                )
                continue
            for aname, avalue in args.items():
                param = pt.params.get(aname)
                if param is None and aname == catalogue.PERIOD_LENGTH:
                    if isinstance(avalue, bool) or not isinstance(avalue, int) or avalue < 1:
                        self.error(
                            key_path(iw, aname),
                            f"must be a whole number of days >= 1, got {_show(avalue)}",
                        )
                    continue  # every pre-treatment accepts it, as in Jetstream
                if param is None:
                    known = ", ".join(pt.params) or "none"
                    self.error(
                        key_path(iw, aname),
                        f"unknown argument for pre-treatment {name!r}"
                        f"{did_you_mean(aname, pt.params)}; known: {known}",
                    )
                    continue
                msg = param.check(avalue)
                if msg:
                    self.error(key_path(iw, aname), msg)
            for param in pt.params.values():
                if param.required and param.name not in args:
                    self.error(iw, f"pre-treatment {name!r} needs argument {param.name!r}")


def _choices(choices: tuple[str, ...]) -> str:
    return ", ".join(repr(c) for c in choices)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
