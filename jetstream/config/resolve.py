"""Resolution: platform defaults, the experiment config and outcomes -> one AnalysisSpec.

The layers and their precedence are described in `jetstream.config.layers`: a named
definition is merged key by key over them, so where an experiment config and an outcome
define the same metric slug, the experiment config wins. A `statistics` table is replaced
as a whole by a higher layer's. Period lists are the union of the defaults', the config's
and the outcomes' (outcome metrics go to `weekly` and `overall` unless the outcome lists
periods itself).

The raw TOML is checked once (`schema.check`); resolution works on the typed tables of
`jetstream.config.tables`: the experiment settings and parameters (`settings`), data
sources (`sources`), metrics and statistics (`metrics`), segments and the exposure signal
(`segments`). Pure: the ConfigRepo has already read every file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from jetstream.config.context import Context
from jetstream.config.layers import CONFIG, DEFAULTS, DEFINITIONS, Layer, Layers
from jetstream.config.metrics import Metrics
from jetstream.config.model import AnalysisSpec, ExperimentSettings, Summary
from jetstream.config.problems import Problem, did_you_mean
from jetstream.config.repo import ConfigRepo
from jetstream.config.schema import FileKind, check
from jetstream.config.segments import exposure_signal, segments
from jetstream.config.settings import (
    load_outcomes,
    parameters,
    placeholder_experiment,
    settings,
)
from jetstream.config.sources import Sources
from jetstream.config.sql_check import from_problem, query_problem, sql_problem
from jetstream.config.templating import Renderer, TemplateError
from jetstream.config.units import for_analysis_unit
from jetstream.errors import ConfigError
from jetstream.periods import Period

if TYPE_CHECKING:
    from jetstream.experiments import Experiment

__all__ = [
    "from_problem",
    "placeholder_experiment",
    "query_problem",
    "resolve_spec",
    "resolve_with_problems",
    "sql_problem",
]


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
    ctx = _context(experiment, config or {}, repo, config_path, placeholder)
    spec = _resolve(ctx)
    problems.extend(ctx.problems)
    return spec, _dedupe(problems)


def _context(
    experiment: Experiment,
    config: dict,
    repo: ConfigRepo,
    config_path: str,
    placeholder: bool,
) -> Context:
    app = experiment.app_name
    defs = repo.definitions.get(app)
    defaults = repo.defaults.get(app)
    layers = Layers(
        Layer.of(repo.definitions_label(app), defs, DEFINITIONS) if defs is not None else None,
        Layer.of(repo.defaults_path(app), defaults, DEFAULTS) if defaults is not None else None,
        Layer.of(config_path, config, CONFIG),
    )
    ctx = Context(experiment, repo, layers, config_path, placeholder)
    if defs is None and defaults is None and repo.platforms:
        ctx.warn(
            config_path,
            "",
            f"platform {app!r} has no definitions or defaults in the config repo"
            f"{did_you_mean(app, repo.platforms)}; known: {', '.join(repo.platforms)}",
        )
    return ctx


def _resolve(ctx: Context) -> AnalysisSpec | None:
    table = ctx.layers.experiment()
    outcomes = load_outcomes(ctx, table)
    params = parameters(ctx)
    exp_settings = _with_enrollment_query(ctx, params, settings(ctx, table, outcomes))
    sources = Sources(ctx)
    metrics = Metrics(ctx, sources)
    summaries: dict[Period, list[Summary]] = {p: [] for p in Period}
    names: dict[Period, list[str]] = {p: [] for p in Period}
    for period, listed in ctx.layers.period_lists().items():
        for name, ref in listed.items():
            metric = metrics.metric(name, ref)
            if metric is None:
                continue
            if name not in names[period]:
                names[period].append(name)
            for stat in metrics.statistics(name):
                summaries[period].append(Summary(metric, stat))
                cov = stat.covariate_adjustment
                if cov is not None:
                    cov_name = cov.metric or name
                    if cov_name not in names[cov.period]:
                        names[cov.period].append(cov_name)
    segs = segments(ctx, sources, table)
    exposure = exposure_signal(ctx, sources, table)
    definitions = {k: v for k, v in metrics.metrics.items() if v is not None}
    metrics.no_statistic_warnings()  # also resolves (checks) the config's unlisted metrics
    if any(p.is_error for p in ctx.problems):
        return None
    spec = AnalysisSpec(
        experiment=exp_settings,
        metrics={p: tuple(_unique_summaries(s)) for p, s in summaries.items() if s},
        segments=tuple(segs),
        exposure_signal=exposure,
        parameters=params,
        metric_definitions=definitions,
        metric_names={p: tuple(n) for p, n in names.items() if n},
    )
    return for_analysis_unit(spec)


def _with_enrollment_query(
    ctx: Context, params: dict[str, str], exp_settings: ExperimentSettings
) -> ExperimentSettings:
    """Set up the renderer for the experiment; render and check its enrollment query."""
    ctx.renderer = Renderer(ctx.repo.functions, params, exp_settings)
    if exp_settings.enrollment_query:
        try:
            exp_settings = attrs.evolve(
                exp_settings, enrollment_query=ctx.renderer.render(exp_settings.enrollment_query)
            )
        except TemplateError as exc:
            ctx.error(ctx.config_path, "experiment.enrollment_query", str(exc))
        else:
            msg = query_problem(exp_settings.enrollment_query or "")
            if msg:
                ctx.error(ctx.config_path, "experiment.enrollment_query", msg)
    ctx.renderer.experiment = exp_settings
    return exp_settings


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
