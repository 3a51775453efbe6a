"""The experiment's settings: the Experimenter record with `[experiment]` overrides, the
outcomes it lists, and the parameters its templates see."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from jetstream.config.context import Context
from jetstream.config.layers import OUTCOME, Layer, Ref
from jetstream.config.model import Branch, ExperimentSettings, MultipleComparisons
from jetstream.config.problems import did_you_mean, key_path
from jetstream.config.tables import ExperimentTable
from jetstream.config.templating import format_parameter

if TYPE_CHECKING:
    from jetstream.experiments import Experiment

DEFAULT_ENROLLMENT_PERIOD = 7
# enrollment query types whose built-in query has only client ids (mozanalysis raises
# IncompatibleAnalysisUnit for the others)
CLIENT_ID_ONLY = ("glean-event", "fenix-fallback", "cirrus")
PLACEHOLDER_SLUG = "placeholder-experiment"
PLACEHOLDER_START = dt.date(2025, 1, 6)
RECORD_OUTCOMES = "(outcomes of the experiment record)"


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


def load_outcomes(ctx: Context, table: ExperimentTable) -> tuple[str, ...]:
    """Add a layer for every outcome the config or the record lists; the slugs found."""
    wanted = [
        (slug, Ref(ctx.config_path, key_path("experiment.outcomes", i)))
        for i, slug in table.outcomes
    ]
    wanted += [(slug, Ref(ctx.config_path, RECORD_OUTCOMES)) for slug in ctx.exp.outcomes]
    repo, app = ctx.repo, ctx.app
    seen: set[str] = set()
    found: list[str] = []
    for slug, ref in wanted:
        if slug in seen:
            continue
        seen.add(slug)
        doc = repo.outcomes.get((app, slug))
        if doc is None:
            elsewhere = sorted(a for (a, s) in repo.outcomes if s == slug)
            hint = (
                f"; it exists for {', '.join(elsewhere)}"
                if elsewhere
                else did_you_mean(slug, repo.outcome_slugs(app))
            )
            ctx.error_at(ref, f"unknown outcome {slug!r} for platform {app!r}{hint}")
            continue
        found.append(slug)
        ctx.layers.outcomes.append(Layer.of(repo.outcome_path(app, slug), doc, OUTCOME))
    return tuple(found)


def _dates(ctx: Context, table: ExperimentTable) -> tuple[dt.date | None, dt.date | None]:
    start = table.start_date or ctx.exp.start_date
    end = table.end_date or ctx.exp.end_date
    if ctx.placeholder and table.start_date is None and start and end:
        # The invented record must not contradict the config's own end date.
        start = min(start, end - dt.timedelta(days=28))
    if start and end and end < start:
        ctx.error(
            ctx.config_path, "experiment.end_date", f"end date {end} is before start date {start}"
        )
    return start, end


def _enrollment_period(ctx: Context, table: ExperimentTable, start: dt.date | None) -> int:
    exp = ctx.exp
    period = table.enrollment_period
    if period is None:
        if exp.enrollment_end_date is not None and start is not None:
            return (exp.enrollment_end_date - start).days + 1
        if exp.proposed_enrollment is not None:
            return exp.proposed_enrollment
        return DEFAULT_ENROLLMENT_PERIOD
    if period < 1:
        ctx.error(
            ctx.config_path, "experiment.enrollment_period", f"must be at least 1, got {period}"
        )
    return period


def _reference_branch(ctx: Context, table: ExperimentTable) -> str | None:
    exp = ctx.exp
    reference = table.reference_branch or exp.reference_branch
    branch_slugs = [b.slug for b in exp.branches]
    if (
        table.reference_branch
        and not ctx.placeholder
        and branch_slugs
        and reference not in branch_slugs
    ):
        ctx.error(
            ctx.config_path,
            "experiment.reference_branch",
            f"{reference!r} is not a branch of {exp.slug}"
            f"{did_you_mean(str(reference), branch_slugs)}"
            f"; branches: {', '.join(branch_slugs)}",
        )
    return reference


def settings(ctx: Context, table: ExperimentTable, outcomes: tuple[str, ...]) -> ExperimentSettings:
    exp = ctx.exp
    start, end = _dates(ctx, table)
    period = _enrollment_period(ctx, table, start)
    reference = _reference_branch(ctx, table)
    if table.is_private and not table.dataset_id:
        ctx.error(
            ctx.config_path, "experiment.is_private", "a private experiment needs a dataset_id"
        )
    # Jetstream's platform_config.toml: normandy on desktop, the parser's default
    # (glean-event) elsewhere
    eqt = table.enrollments_query_type or (
        "normandy" if ctx.app == "firefox_desktop" else "glean-event"
    )
    # metric-config-parser `Experiment.analysis_unit`: the config's, else profile_group_id
    # for experiments randomized by group_id, else client_id
    unit = table.analysis_unit or (
        "profile_group_id" if exp.randomization_unit == "group_id" else "client_id"
    )
    if unit != "client_id" and eqt in CLIENT_ID_ONLY and not table.enrollment_query:
        ctx.error(
            ctx.config_path,
            "experiment.analysis_unit",
            f"{eqt} enrollments support only analysis_unit 'client_id' (as mozanalysis), "
            f"not {unit!r}"
            + ("" if table.analysis_unit else " (from the randomization unit group_id)"),
        )
    mc = table.multiple_comparisons
    return ExperimentSettings(
        slug=exp.slug,
        app_name=ctx.app,
        branches=tuple(exp.branches),
        reference_branch=reference,
        start_date=start,
        end_date=end,
        enrollment_period=period,
        is_rollout=exp.is_rollout,
        is_enrollment_paused=exp.is_enrollment_paused,
        # an end date set in the config counts as Complete (metric-config-parser
        # `Experiment.status`), so the overall window runs on that date
        status="Complete" if table.end_date else exp.status,
        app_id=exp.app_id,
        randomization_unit=exp.randomization_unit or "normandy_id",
        outcomes=outcomes,
        skip=table.skip,
        is_private=table.is_private,
        dataset_id=table.dataset_id,
        enrollment_query=table.enrollment_query,
        enrollments_query_type=eqt,
        analysis_unit=unit,
        sample_size=table.sample_size,
        multiple_comparisons=(
            MultipleComparisons(mc)
            if mc is not None and mc in MultipleComparisons._value2member_map_
            else MultipleComparisons.NONE
        ),
    )


def parameters(ctx: Context) -> dict[str, str]:
    """Outcome parameters with the config's (and defaults') overrides, as SQL text."""
    out: dict[str, str] = {}
    branches = [b.slug for b in ctx.exp.branches]
    for name, (p, ref) in ctx.layers.parameters().items():
        value, distinct = p.value, p.distinct_by_branch
        if value is None:
            ctx.error_at(ref, "parameter has neither a value nor a default")
            continue
        if distinct and not isinstance(value, dict):
            ctx.error_at(
                ref,
                "distinct_by_branch = true needs a table of values by branch, e.g. "
                'value = { control = "a", treatment = "b" }',
            )
            continue
        if not distinct and not isinstance(value, str):
            ctx.error_at(
                ref, f"value must be a string (or set distinct_by_branch = true), got {value!r}"
            )
            continue
        if distinct:
            missing = [b for b in branches if b not in value]
            if missing and not ctx.placeholder:
                ctx.warn(
                    ref.file,
                    ref.key,
                    f"no value for branch(es) {', '.join(missing)}: they get NULL",
                )
        out[name] = format_parameter(name, value, distinct)
    return out
