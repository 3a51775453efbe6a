"""Resolution: platform defaults, the experiment config and outcomes -> one AnalysisSpec.

Precedence, low to high, for every named definition (metric, data source, segment, segment
data source, parameter), merged key by key so a higher layer may override one key only:

    definitions/<app>  <  jetstream/definitions/<app>  <  jetstream/defaults/<app>
        <  outcomes (in the order listed)  <  the experiment config

so where an experiment config and an outcome define the same metric slug, the experiment
config wins. A `statistics` table is replaced as a whole by a higher layer's. Period lists
are the union of the defaults', the config's and the outcomes' (outcome metrics go to
`weekly` and `overall` unless the outcome lists periods itself).

Pure: the ConfigRepo has already read every file.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import sqlglot
import sqlglot.errors

from jetstream.statistics import catalogue
from jetstream.config.model import (
    AnalysisBasis,
    AnalysisSpec,
    Branch,
    CovariateAdjustment,
    DataSource,
    DataSourceJoin,
    ExperimentsColumnType,
    ExperimentSettings,
    ExposureSignal,
    Metric,
    MultipleComparisons,
    PreTreatment,
    Segment,
    SegmentDataSource,
    StatisticSpec,
    Summary,
)
from jetstream.config.problems import WARNING, Problem, did_you_mean, key_path
from jetstream.config.repo import ConfigRepo
from jetstream.config.schema import PERIOD_KEYS, FileKind, check, parse_date, parse_period
from jetstream.config.templating import (
    Renderer,
    TemplateError,
    format_parameter,
    render_from_expression,
    substitute_dataset,
)
from jetstream.errors import ConfigError
from jetstream.periods import CONFIG_KEYS, Period

if TYPE_CHECKING:
    from jetstream.experiments import Experiment

DEFAULT_ENROLLMENT_PERIOD = 7
RECORD_SEGMENTS = "(segments of the experiment record)"
OUTCOME_PERIODS = (Period.WEEK, Period.OVERALL)
PLACEHOLDER_SLUG = "placeholder-experiment"
PLACEHOLDER_START = dt.date(2025, 1, 6)


def resolve_spec(
    experiment: Experiment,
    config: dict | None,
    repo: ConfigRepo,
    config_path: str = "<experiment>",
    placeholder: bool = False,
) -> AnalysisSpec:
    """Resolve one experiment. Raises ConfigError(message, problems=[...]) listing every
    error (`FILE: key.path: message`). `placeholder` marks an invented experiment record
    (validation without Experimenter): branch names are then not checked."""
    spec, problems = resolve_with_problems(experiment, config, repo, config_path, placeholder)
    errs = [p for p in problems if p.is_error]
    if spec is None or errs:
        raise ConfigError(
            f"{config_path}: {len(errs)} problem(s) resolving experiment {experiment.slug!r}: "
            f"{errs[0] if errs else 'unknown error'}",
            problems=[str(p) for p in errs],
        )
    return spec


def resolve_with_problems(
    experiment: Experiment,
    config: dict | None,
    repo: ConfigRepo,
    config_path: str = "<experiment>",
    placeholder: bool = False,
    check_structure: bool = True,
) -> tuple[AnalysisSpec | None, list[Problem]]:
    """Like resolve_spec, but returns (spec or None, problems incl. warnings)."""
    problems: list[Problem] = []
    if config is not None and check_structure:
        problems.extend(check(config, FileKind.EXPERIMENT, config_path))
    r = _Resolution(experiment, config or {}, repo, config_path, placeholder)
    spec = r.run()
    problems.extend(r.problems)
    return spec, _dedupe(problems)


def placeholder_experiment(app_name: str, slug: str = PLACEHOLDER_SLUG) -> Experiment:
    """An experiment record for validating a config without Experimenter: branches control
    and treatment, a fixed start date, 7 days of enrollment, no end date."""
    from jetstream.experiments import Experiment

    return Experiment(
        slug=slug,
        app_name=app_name,
        app_id=None,
        branches=(Branch("control", 1), Branch("treatment", 1)),
        reference_branch="control",
        start_date=PLACEHOLDER_START,
        end_date=None,
        proposed_enrollment=DEFAULT_ENROLLMENT_PERIOD,
        enrollment_end_date=None,
        is_enrollment_paused=False,
        is_rollout=False,
        status="Live",
    )


@functools.lru_cache(maxsize=16384)
def sql_problem(expression: str) -> str | None:
    """None when `SELECT <expression>` parses as BigQuery SQL, else the parser's reason."""
    try:
        sqlglot.parse_one(f"SELECT {expression}", read="bigquery")
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        desc = first.get("description") or str(exc).splitlines()[0]
        near = (first.get("highlight") or "").strip()
        return f"does not parse as BigQuery SQL: {desc}" + (f" (near {near!r})" if near else "")
    except sqlglot.errors.SqlglotError as exc:
        return f"does not parse as BigQuery SQL: {str(exc).splitlines()[0]}"
    return None


@functools.lru_cache(maxsize=4096)
def from_problem(from_expression: str) -> str | None:
    """None when `SELECT * FROM <from_expression>` parses as BigQuery SQL."""
    return sql_problem(f"* FROM {from_expression}")


@functools.lru_cache(maxsize=1024)
def query_problem(query: str) -> str | None:
    """None when `query` parses as BigQuery SQL."""
    try:
        sqlglot.parse_one(query, read="bigquery")
    except sqlglot.errors.SqlglotError as exc:
        return f"does not parse as BigQuery SQL: {str(exc).splitlines()[0]}"
    return None


@attrs.frozen
class _Layer:
    file: str
    doc: Mapping[str, Any]
    kind: str  # definitions | defaults | outcome | config


@attrs.frozen
class _Ref:
    """Where a name was referenced: reported when it cannot be resolved."""

    file: str
    key: str


class _Resolution:
    def __init__(
        self,
        experiment: Experiment,
        config: Mapping[str, Any],
        repo: ConfigRepo,
        config_path: str,
        placeholder: bool,
    ):
        self.exp = experiment
        self.config = config
        self.repo = repo
        self.config_path = config_path
        self.placeholder = placeholder
        self.app = experiment.app_name
        self.problems: list[Problem] = []
        self.metrics: dict[str, Metric | None] = {}
        self.metric_stats: dict[str, Mapping[str, Any]] = {}
        self.data_sources: dict[str, DataSource | None] = {}
        self.building: list[str] = []
        self.used_by_others: set[str] = set()
        self._lookups: dict[tuple[str, str], Any] = {}
        self._statistics: dict[str, list[StatisticSpec]] = {}

        self.layers: list[_Layer] = []
        defs = repo.definitions.get(self.app)
        if defs is not None:
            self.layers.append(_Layer(repo.definitions_label(self.app), defs, "definitions"))
        defaults = repo.defaults.get(self.app)
        self.defaults_layer = None
        if defaults is not None:
            self.defaults_layer = _Layer(repo.defaults_path(self.app), defaults, "defaults")
            self.layers.append(self.defaults_layer)
        if defs is None and defaults is None and repo.platforms:
            self.warn(
                config_path,
                "",
                f"platform {self.app!r} has no definitions or defaults in the config repo"
                f"{did_you_mean(self.app, repo.platforms)}; known: {', '.join(repo.platforms)}",
            )
        self.config_layer = _Layer(config_path, config, "config")
        self.outcome_layers: list[_Layer] = []

    # -- problems ---------------------------------------------------------------------
    def error(self, file: str, key: str, message: str) -> None:
        self.problems.append(Problem(file, key, message))

    def warn(self, file: str, key: str, message: str) -> None:
        self.problems.append(Problem(file, key, message, WARNING))

    # -- lookups ----------------------------------------------------------------------
    def _tables(self, layer: _Layer, section: str) -> Mapping[str, Any]:
        doc = layer.doc
        if section == "segment_data_sources":
            segs = doc.get("segments")
            out = segs.get("data_sources") if isinstance(segs, dict) else None
        elif section == "segments":
            segs = doc.get("segments")
            out = (
                {k: v for k, v in segs.items() if k != "data_sources"}
                if isinstance(segs, dict)
                else None
            )
        else:
            out = doc.get(section)
        return out if isinstance(out, dict) else {}

    def lookup(
        self, section: str, name: str
    ) -> tuple[dict[str, Any] | None, dict[str, _Ref], _Ref | None]:
        """Merged table for `name` across layers; where each key came from; and the
        highest layer that defines the table."""
        key = (section, name)
        if key not in self._lookups:
            self._lookups[key] = self._lookup(section, name)
        return self._lookups[key]

    def _lookup(
        self, section: str, name: str
    ) -> tuple[dict[str, Any] | None, dict[str, _Ref], _Ref | None]:
        merged: dict[str, Any] | None = None
        origin: dict[str, _Ref] = {}
        top: _Ref | None = None
        prefix = {"segment_data_sources": "segments.data_sources"}.get(section, section)
        for layer in self.all_layers:
            table = self._tables(layer, section).get(name)
            if section == "metrics" and layer.kind != "definitions" and name in PERIOD_KEYS:
                continue
            if not isinstance(table, dict):
                continue
            merged = {**(merged or {}), **table}
            base = key_path(prefix, name)
            top = _Ref(layer.file, base)
            for k in table:
                origin[k] = _Ref(layer.file, f"{base}.{k}")  # keys of a known table are bare
        return merged, origin, top

    def known_names(self, section: str) -> set[str]:
        names: set[str] = set()
        for layer in self.all_layers:
            names.update(k for k, v in self._tables(layer, section).items() if isinstance(v, dict))
        return names

    @property
    def all_layers(self) -> list[_Layer]:
        return [*self.layers, *self.outcome_layers, self.config_layer]

    # -- main -------------------------------------------------------------------------
    def run(self) -> AnalysisSpec | None:
        exp_section = self.experiment_section()
        self.load_outcomes(exp_section)
        parameters = self.parameters()
        settings = self.settings(exp_section)
        self.renderer = Renderer(self.repo.functions, parameters, settings)
        if settings.enrollment_query:
            try:
                settings = attrs.evolve(
                    settings, enrollment_query=self.renderer.render(settings.enrollment_query)
                )
            except TemplateError as exc:
                self.error(self.config_path, "experiment.enrollment_query", str(exc))
            else:
                msg = query_problem(settings.enrollment_query or "")
                if msg:
                    self.error(self.config_path, "experiment.enrollment_query", msg)
        self.renderer.experiment = settings
        self.platform_dataset = self.app

        metric_lists = self.period_lists()
        summaries: dict[Period, list[Summary]] = {p: [] for p in Period}
        names: dict[Period, list[str]] = {p: [] for p in Period}
        for period, listed in metric_lists.items():
            for name, ref in listed.items():
                metric = self.metric(name, ref)
                if metric is None:
                    continue
                if name not in names[period]:
                    names[period].append(name)
                for stat in self.statistics(name, metric):
                    summaries[period].append(Summary(metric, stat))
                    cov = stat.covariate_adjustment
                    if cov is not None:
                        cov_name = cov.metric or name
                        if cov_name not in names[cov.period]:
                            names[cov.period].append(cov_name)

        segments = self.segments(exp_section)
        exposure = self.exposure_signal(exp_section)
        self.no_statistic_warnings()

        metrics_out = {p: tuple(_unique_summaries(s)) for p, s in summaries.items() if s}
        if any(p.is_error for p in self.problems):
            return None
        return AnalysisSpec(
            experiment=settings,
            metrics=metrics_out,
            segments=tuple(segments),
            exposure_signal=exposure,
            parameters=parameters,
            metric_definitions={k: v for k, v in self.metrics.items() if v is not None},
            metric_names={p: tuple(n) for p, n in names.items() if n},
        )

    # -- experiment -------------------------------------------------------------------
    def experiment_section(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for layer in (self.defaults_layer, self.config_layer):
            if layer is not None and isinstance(layer.doc.get("experiment"), dict):
                out.update(layer.doc["experiment"])
        return out

    def load_outcomes(self, exp_section: Mapping[str, Any]) -> None:
        wanted: list[tuple[str, _Ref]] = []
        cfg_outcomes = exp_section.get("outcomes")
        if isinstance(cfg_outcomes, list):
            for i, slug in enumerate(cfg_outcomes):
                if isinstance(slug, str):
                    wanted.append(
                        (slug, _Ref(self.config_path, key_path("experiment.outcomes", i)))
                    )
        for slug in self.exp.outcomes:
            wanted.append((slug, _Ref(self.config_path, "(outcomes of the experiment record)")))
        seen: set[str] = set()
        found: list[str] = []
        for slug, ref in wanted:
            if slug in seen:
                continue
            seen.add(slug)
            doc = self.repo.outcomes.get((self.app, slug))
            if doc is None:
                elsewhere = sorted(a for (a, s) in self.repo.outcomes if s == slug)
                hint = (
                    f"; it exists for {', '.join(elsewhere)}"
                    if elsewhere
                    else did_you_mean(slug, self.repo.outcome_slugs(self.app))
                )
                self.error(
                    ref.file, ref.key, f"unknown outcome {slug!r} for platform {self.app!r}{hint}"
                )
                continue
            found.append(slug)
            self.outcome_layers.append(
                _Layer(self.repo.outcome_path(self.app, slug), doc, "outcome")
            )
        self.outcome_slugs = tuple(found)

    def settings(self, sec: Mapping[str, Any]) -> ExperimentSettings:
        exp = self.exp
        cp = self.config_path

        def get(key: str, typ: type | tuple[type, ...]) -> Any:
            v = sec.get(key)
            return v if isinstance(v, typ) and not (typ is int and isinstance(v, bool)) else None

        start = parse_date(sec.get("start_date")) or exp.start_date
        end = parse_date(sec.get("end_date")) or exp.end_date
        if self.placeholder and parse_date(sec.get("start_date")) is None and start and end:
            # The invented record must not contradict the config's own end date.
            start = min(start, end - dt.timedelta(days=28))
        if start and end and end < start:
            self.error(cp, "experiment.end_date", f"end date {end} is before start date {start}")
        period = get("enrollment_period", int)
        if period is None:
            if exp.enrollment_end_date is not None and start is not None:
                period = (exp.enrollment_end_date - start).days + 1
            elif exp.proposed_enrollment is not None:
                period = exp.proposed_enrollment
            else:
                period = DEFAULT_ENROLLMENT_PERIOD
        elif period < 1:
            self.error(cp, "experiment.enrollment_period", f"must be at least 1, got {period}")
        reference = get("reference_branch", str) or exp.reference_branch
        branch_slugs = [b.slug for b in exp.branches]
        if (
            get("reference_branch", str)
            and not self.placeholder
            and branch_slugs
            and reference not in branch_slugs
        ):
            self.error(
                cp,
                "experiment.reference_branch",
                f"{reference!r} is not a branch of {exp.slug}"
                f"{did_you_mean(str(reference), branch_slugs)}"
                f"; branches: {', '.join(branch_slugs)}",
            )
        is_private = bool(get("is_private", bool))
        dataset_id = get("dataset_id", str)
        if is_private and not dataset_id:
            self.error(cp, "experiment.is_private", "a private experiment needs a dataset_id")
        eqt = get("enrollments_query_type", str) or (
            "normandy" if self.app == "firefox_desktop" else "glean-event"
        )
        mc = get("multiple_comparisons", str)
        outcomes = list(self.outcome_slugs)
        return ExperimentSettings(
            slug=exp.slug,
            app_name=self.app,
            branches=tuple(exp.branches),
            reference_branch=reference,
            start_date=start,
            end_date=end,
            enrollment_period=period,
            is_rollout=exp.is_rollout,
            is_enrollment_paused=exp.is_enrollment_paused,
            status=exp.status,
            app_id=exp.app_id,
            randomization_unit=exp.randomization_unit or "normandy_id",
            outcomes=tuple(outcomes),
            skip=bool(get("skip", bool)),
            is_private=is_private,
            dataset_id=dataset_id,
            enrollment_query=get("enrollment_query", str),
            enrollments_query_type=eqt,
            analysis_unit=get("analysis_unit", str) or "client_id",
            sample_size=get("sample_size", int),
            multiple_comparisons=(
                MultipleComparisons(mc)
                if mc in MultipleComparisons._value2member_map_
                else MultipleComparisons.NONE
            ),
        )

    # -- parameters -------------------------------------------------------------------
    def parameters(self) -> dict[str, str]:
        """Outcome parameters with the config's (and defaults') overrides, as SQL text."""
        merged: dict[str, dict[str, Any]] = {}
        origin: dict[str, _Ref] = {}
        order = [*self.outcome_layers, *(x for x in self.layers if x.kind == "defaults")]
        for layer in [*order, self.config_layer]:
            for name, table in self._tables(layer, "parameters").items():
                if not isinstance(table, dict):
                    continue
                base = merged.get(name, {})
                new = {**base, **table}
                for k in ("value", "default"):
                    if isinstance(base.get(k), dict) and isinstance(table.get(k), dict):
                        new[k] = {**base[k], **table[k]}
                merged[name] = new
                origin[name] = _Ref(layer.file, key_path("parameters", name))
        out: dict[str, str] = {}
        branches = [b.slug for b in self.exp.branches]
        for name, p in merged.items():
            ref = origin[name]
            value = p.get("value", p.get("default"))
            if isinstance(p.get("value"), dict) and isinstance(p.get("default"), dict):
                value = {**p["default"], **p["value"]}
            distinct = p.get("distinct_by_branch") is True
            if value is None:
                self.error(ref.file, ref.key, "parameter has neither a value nor a default")
                continue
            if distinct and not isinstance(value, dict):
                self.error(
                    ref.file,
                    ref.key,
                    "distinct_by_branch = true needs a table of values by branch, e.g. "
                    'value = { control = "a", treatment = "b" }',
                )
                continue
            if not distinct and not isinstance(value, str):
                self.error(
                    ref.file,
                    ref.key,
                    f"value must be a string (or set distinct_by_branch = true), got {value!r}",
                )
                continue
            if distinct:
                missing = [b for b in branches if b not in value]
                if missing and not self.placeholder:
                    self.warn(
                        ref.file,
                        ref.key,
                        f"no value for branch(es) {', '.join(missing)}: they get NULL",
                    )
            out[name] = format_parameter(name, value, distinct)
        return out

    # -- periods ----------------------------------------------------------------------
    def period_lists(self) -> dict[Period, dict[str, _Ref]]:
        out: dict[Period, dict[str, _Ref]] = {p: {} for p in Period}

        def add_lists(layer: _Layer) -> bool:
            sec = layer.doc.get("metrics")
            found = False
            if not isinstance(sec, dict):
                return found
            for key, period in CONFIG_KEYS.items():
                listed = sec.get(key)
                if not isinstance(listed, list):
                    continue
                found = True
                for i, name in enumerate(listed):
                    if isinstance(name, str):
                        out[period].setdefault(name, _Ref(layer.file, key_path("metrics", key, i)))
            return found

        if self.defaults_layer is not None:
            add_lists(self.defaults_layer)
        add_lists(self.config_layer)
        for layer in self.outcome_layers:
            if add_lists(layer):
                continue
            sec = layer.doc.get("metrics")
            if isinstance(sec, dict):
                for name, table in sec.items():
                    if isinstance(table, dict):
                        for period in OUTCOME_PERIODS:
                            out[period].setdefault(
                                name, _Ref(layer.file, key_path("metrics", name))
                            )
        return out

    # -- metrics ----------------------------------------------------------------------
    def metric(self, name: str, ref: _Ref) -> Metric | None:
        if name in self.metrics:
            return self.metrics[name]
        if name in self.building:
            cycle = " -> ".join([*self.building[self.building.index(name) :], name])
            self.error(ref.file, ref.key, f"metrics depend on each other in a cycle: {cycle}")
            return None
        raw, origin, top = self.lookup("metrics", name)
        if raw is None or top is None:
            self.error(
                ref.file,
                ref.key,
                f"undefined metric {name!r} for platform {self.app!r}"
                f"{did_you_mean(name, self.known_names('metrics'))}",
            )
            self.metrics[name] = None
            return None
        self.building.append(name)
        try:
            metric = self._build_metric(name, raw, origin, top)
        finally:
            self.building.pop()
        self.metrics[name] = metric
        stats = raw.get("statistics")
        self.metric_stats[name] = stats if isinstance(stats, dict) else {}
        return metric

    def _build_metric(
        self, name: str, raw: Mapping[str, Any], origin: Mapping[str, _Ref], top: _Ref
    ) -> Metric | None:
        ok = True
        depends: list[str] = []
        deps = raw.get("depends_on")
        if isinstance(deps, list):
            dref = origin["depends_on"]
            for i, dep in enumerate(deps):
                if not isinstance(dep, str):
                    continue
                self.used_by_others.add(dep)
                if self.metric(dep, _Ref(dref.file, key_path(dref.key, i))) is None:
                    ok = False
                depends.append(dep)
        select = raw.get("select_expression")
        ds_name = raw.get("data_source")
        data_source: DataSource | None = None
        rendered: str | None = None
        if not isinstance(select, str):
            if not depends:
                self.error(
                    top.file,
                    top.key,
                    f"undefined metric {name!r} for platform {self.app!r}: this table has no "
                    "select_expression or depends_on, and no definitions file defines it"
                    f"{did_you_mean(name, self.known_names('metrics') - {name})}",
                )
                return None
        else:
            sref = origin["select_expression"]
            if not isinstance(ds_name, str):
                self.error(
                    top.file, top.key, f"metric {name!r} has a select_expression but no data_source"
                )
                ok = False
            else:
                data_source = self.data_source(ds_name, origin["data_source"])
                ok = ok and data_source is not None
            rendered = self.render_select(select, sref)
            if rendered is None:
                return None
        if not ok:
            return None
        owner = raw.get("owner")
        owners = (
            (owner,)
            if isinstance(owner, str)
            else tuple(o for o in owner or () if isinstance(o, str))
        )
        bases = raw.get("analysis_bases")
        units = raw.get("analysis_units")
        return Metric(
            name=name,
            select_expression=rendered or "",
            data_source=data_source,
            friendly_name=_str(raw.get("friendly_name")),
            description=_str(raw.get("description")),
            bigger_is_better=raw.get("bigger_is_better") is not False,
            analysis_bases=(
                tuple(AnalysisBasis(b) for b in bases if b in ("enrollments", "exposures"))
                if isinstance(bases, list)
                else (AnalysisBasis.ENROLLMENTS, AnalysisBasis.EXPOSURES)
            ),
            depends_on=tuple(depends),
            type=_str(raw.get("type")) or "scalar",
            category=_str(raw.get("category")),
            owner=owners,
            deprecated=raw.get("deprecated") is True,
            analysis_units=(
                tuple(u for u in units if isinstance(u, str))
                if isinstance(units, list)
                else ("client_id",)
            ),
            level=_str(raw.get("level")),
        )

    def statistics(self, name: str, metric: Metric) -> list[StatisticSpec]:
        """The statistics of a metric (the same in every period it is listed in)."""
        if name not in self._statistics:
            self._statistics[name] = self._build_statistics(name)
        return self._statistics[name]

    def _build_statistics(self, name: str) -> list[StatisticSpec]:
        stats = self.metric_stats.get(name) or {}
        out: list[StatisticSpec] = []
        _, origin, _ = self.lookup("metrics", name)
        sref = origin.get("statistics")
        for stat_name, params in stats.items():
            sdef = catalogue.STATISTICS.get(stat_name)
            if sdef is None or not isinstance(params, dict):
                if sref and sref.file != self.config_path:
                    self.error(
                        sref.file,
                        key_path(sref.key, stat_name),
                        f"unknown statistic {stat_name!r}{did_you_mean(stat_name, catalogue.STATISTICS)}",
                    )
                continue
            where = _Ref(sref.file, key_path(sref.key, stat_name)) if sref else _Ref("", "")
            given = {
                k: v
                for k, v in params.items()
                if k not in ("pre_treatments", "covariate_adjustment") and k in sdef.params
            }
            for k in ("numerator", "denominator"):
                if isinstance(given.get(k), str):
                    self.used_by_others.add(given[k])
                    self.metric(given[k], _Ref(where.file, key_path(where.key, k)))
            cov = None
            cov_raw = params.get("covariate_adjustment")
            if isinstance(cov_raw, dict):
                period = parse_period(str(cov_raw.get("period", "")))
                cov_metric = cov_raw.get("metric")
                if period is not None and period.is_preenrollment:
                    cov = CovariateAdjustment(
                        period, cov_metric if isinstance(cov_metric, str) else None
                    )
                    if isinstance(cov_metric, str):
                        self.used_by_others.add(cov_metric)
                        self.metric(
                            cov_metric,
                            _Ref(where.file, key_path(where.key, "covariate_adjustment", "metric")),
                        )
            pts: list[PreTreatment] = []
            raw_pts = params.get("pre_treatments")
            for pt in raw_pts if isinstance(raw_pts, list) else ():
                if isinstance(pt, str) and pt in catalogue.PRE_TREATMENTS:
                    pts.append(PreTreatment(pt))
                elif isinstance(pt, dict) and str(pt.get("name")) in catalogue.PRE_TREATMENTS:
                    pts.append(
                        PreTreatment(pt["name"], {k: v for k, v in pt.items() if k != "name"})
                    )
            out.append(
                StatisticSpec(
                    name=stat_name,
                    params=given,  # defaults are applied by the statistics engine
                    pre_treatments=tuple(pts),
                    covariate_adjustment=cov,
                )
            )
        return out

    def no_statistic_warnings(self) -> None:
        """Warnings for metrics of the config that are never analysed."""
        sec = self.config.get("metrics")
        if not isinstance(sec, dict):
            return
        for name, table in sec.items():
            if name in PERIOD_KEYS or not isinstance(table, dict) or name in self.used_by_others:
                continue
            where = key_path("metrics", name)
            if name not in self.metrics:
                self.warn(
                    self.config_path,
                    where,
                    "metric is not listed in any analysis period, no other metric uses it and "
                    "no outcome of this experiment lists it: it is not computed",
                )
            elif self.metrics[name] is not None and not self.metric_stats.get(name):
                self.warn(
                    self.config_path,
                    where,
                    "metric has no statistic and nothing depends on it: "
                    "it is computed but never analysed",
                )

    # -- data sources -----------------------------------------------------------------
    def data_source(self, name: str, ref: _Ref) -> DataSource | None:
        if name in self.data_sources:
            return self.data_sources[name]
        self.data_sources[name] = None  # guards join cycles
        found = self._source_head(
            "data_sources",
            "data source",
            name,
            ref,
            lambda text, dataset: render_from_expression(
                text, self.renderer, dataset or self.platform_dataset
            ),
        )
        if found is None:
            return None
        raw, origin, rendered, default_dataset = found
        joins: list[DataSourceJoin] = []
        if isinstance(raw.get("joins"), dict):
            jref = origin["joins"]
            for jname, jtable in raw["joins"].items():
                if self.data_source(jname, _Ref(jref.file, key_path(jref.key, jname))) is None:
                    return None
                jtable = jtable if isinstance(jtable, dict) else {}
                joins.append(
                    DataSourceJoin(
                        jname, _str(jtable.get("relationship")), _str(jtable.get("on_expression"))
                    )
                )
        ect = str(raw.get("experiments_column_type") or "simple").lower()
        if ect not in ExperimentsColumnType._value2member_map_:
            r = origin["experiments_column_type"]
            self.error(r.file, r.key, f"unknown experiments_column_type {ect!r}")
            return None
        units = raw.get("analysis_units")
        ds = DataSource(
            name=name,
            from_expression=rendered,
            client_id_column=_str(raw.get("client_id_column")) or "client_id",
            submission_date_column=_str(raw.get("submission_date_column")) or "submission_date",
            experiments_column_type=ExperimentsColumnType(ect),
            default_dataset=default_dataset,
            group_id_column=_str(raw.get("group_id_column")),
            analysis_units=(
                tuple(u for u in units if isinstance(u, str))
                if isinstance(units, list)
                else ("client_id",)
            ),
            joins=tuple(joins),
            friendly_name=_str(raw.get("friendly_name")),
            description=_str(raw.get("description")),
        )
        self.data_sources[name] = ds
        return ds

    def _source_head(
        self,
        section: str,
        label: str,
        name: str,
        ref: _Ref,
        render: Callable[[str, str | None], str],
    ) -> tuple[Mapping[str, Any], Mapping[str, _Ref], str, str | None] | None:
        """Look up a (segment) data source and render its from_expression; on any problem
        record it and return None. Returns (raw table, key origins, rendered SQL,
        default_dataset)."""
        raw, origin, top = self.lookup(section, name)
        if raw is None or top is None:
            self.error(
                ref.file,
                ref.key,
                f"undefined {label} {name!r} for platform {self.app!r}"
                f"{did_you_mean(name, self.known_names(section))}",
            )
            return None
        from_expr = raw.get("from_expression")
        if not isinstance(from_expr, str):
            self.error(top.file, top.key, f"{label} {name!r} has no from_expression")
            return None
        fref = origin["from_expression"]
        default_dataset = _str(raw.get("default_dataset"))
        try:
            rendered = render(from_expr, default_dataset)
        except TemplateError as exc:
            self.error(fref.file, fref.key, str(exc))
            return None
        msg = from_problem(rendered)
        if msg:
            self.error(fref.file, fref.key, msg)
            return None
        return raw, origin, rendered, default_dataset

    def render_select(self, select: str, ref: _Ref) -> str | None:
        """A select_expression with Jinja rendered, checked to parse as BigQuery SQL; on a
        problem it is recorded at `ref` and None returned."""
        try:
            rendered = self.renderer.render(select)
        except TemplateError as exc:
            self.error(ref.file, ref.key, str(exc))
            return None
        msg = sql_problem(rendered)
        if msg:
            self.error(ref.file, ref.key, msg)
            return None
        return rendered

    def render_from(self, from_expr: str, default_dataset: str | None) -> str:
        """A segment data source's from_expression: Jinja (as the reference tool), then
        `{dataset}`."""
        text = self.renderer.render(from_expr)
        return substitute_dataset(text, default_dataset or self.platform_dataset)

    # -- segments ---------------------------------------------------------------------
    def segments(self, sec: Mapping[str, Any]) -> list[Segment]:
        wanted: list[tuple[str, _Ref]] = []
        if isinstance(sec.get("segments"), list):
            for i, s in enumerate(sec["segments"]):
                if isinstance(s, str):
                    wanted.append((s, _Ref(self.config_path, key_path("experiment.segments", i))))
        for s in self.exp.segments:
            wanted.append((s, _Ref(self.config_path, RECORD_SEGMENTS)))
        out: list[Segment] = []
        seen: set[str] = set()
        for name, ref in wanted:
            if name in seen:
                continue
            seen.add(name)
            if ref.key == RECORD_SEGMENTS and self.lookup("segments", name)[0] is None:
                # The config cannot fix the record: skip the segment, do not fail the analysis.
                self.warn(ref.file, ref.key, f"segment {name!r} is not defined: not analysed")
                continue
            seg = self.segment(name, ref)
            if seg is not None:
                out.append(seg)
        return out

    def segment(self, name: str, ref: _Ref) -> Segment | None:
        raw, origin, top = self.lookup("segments", name)
        if raw is None or top is None:
            self.error(
                ref.file,
                ref.key,
                f"undefined segment {name!r} for platform {self.app!r}"
                f"{did_you_mean(name, self.known_names('segments'))}",
            )
            return None
        select, ds_name = raw.get("select_expression"), raw.get("data_source")
        if not isinstance(select, str) or not isinstance(ds_name, str):
            self.error(
                top.file, top.key, f"segment {name!r} needs select_expression and data_source"
            )
            return None
        sds = self.segment_data_source(ds_name, origin["data_source"])
        sref = origin["select_expression"]
        rendered = self.render_select(select, sref)
        if rendered is None:
            return None
        if sds is None:
            return None
        return Segment(
            name=name,
            select_expression=rendered,
            data_source=sds,
            friendly_name=_str(raw.get("friendly_name")),
            description=_str(raw.get("description")),
            window_start=_window(raw.get("window_start")),
            window_end=_window(raw.get("window_end")),
        )

    def segment_data_source(self, name: str, ref: _Ref) -> SegmentDataSource | None:
        found = self._source_head(
            "segment_data_sources", "segment data source", name, ref, self.render_from
        )
        if found is None:
            return None
        raw, origin, rendered, default_dataset = found
        start = _window(raw.get("window_start"))
        end = _window(raw.get("window_end"))
        return SegmentDataSource(
            name=name,
            from_expression=rendered,
            window_start=0 if start is None else start,
            window_end=0 if end is None else end,
            client_id_column=_str(raw.get("client_id_column")) or "client_id",
            submission_date_column=_str(raw.get("submission_date_column")) or "submission_date",
            default_dataset=default_dataset,
        )

    # -- exposure signal --------------------------------------------------------------
    def exposure_signal(self, sec: Mapping[str, Any]) -> ExposureSignal | None:
        raw = sec.get("exposure_signal")
        if not isinstance(raw, dict):
            return None
        base = "experiment.exposure_signal"
        select, ds_name, name = (
            raw.get("select_expression"),
            raw.get("data_source"),
            raw.get("name"),
        )
        if not (isinstance(select, str) and isinstance(ds_name, str) and isinstance(name, str)):
            return None  # the structural check reports the missing keys
        ds = self.data_source(ds_name, _Ref(self.config_path, f"{base}.data_source"))
        rendered = self.render_select(select, _Ref(self.config_path, f"{base}.select_expression"))
        if rendered is None:
            return None
        if ds is None:
            return None
        return ExposureSignal(
            name=name,
            select_expression=rendered,
            data_source=ds,
            friendly_name=_str(raw.get("friendly_name")),
            description=_str(raw.get("description")),
            window_start=_window(raw.get("window_start")),
            window_end=_window(raw.get("window_end")),
        )


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _window(v: Any) -> int | str | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | str):
        return v
    return None


def _unique_summaries(summaries: Iterable[Summary]) -> list[Summary]:
    seen: set[tuple[str, str]] = set()
    out: list[Summary] = []
    for s in summaries:
        k = (s.metric.name, s.statistic.name)
        if k not in seen:
            seen.add(k)
            out.append(s)
    return out


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out
