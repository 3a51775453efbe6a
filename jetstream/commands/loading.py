"""Loading experiments and resolving specs for the analysis commands (I/O lives here).

One experiment that cannot be loaded, resolved or planned never stops the others: it is left
out with a message (`load_many`, `plan_each`), `record_skipped` writes that message as an
error row and publishes the experiment's errors file, and the command exits 1."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jetstream.config.model import AnalysisSpec
from jetstream.errors import ConfigError, TransientError
from jetstream.logs import get_logger

if TYPE_CHECKING:
    from jetstream.experiments import Experiment

log = get_logger("jetstream.commands")

SKIPPED_EXCEPTION = "ExperimentSkipped"


def load_experiments(source: str) -> dict:
    from jetstream.experiments import load_experiments as load

    return load(source)


def _repo(config_repo: Path | str | None) -> Path:
    """The local config repo: a directory, or a git URL[@REF] checked out into a cache."""
    from jetstream import config_checkout

    if config_repo is None or str(config_repo) == "":
        raise ConfigError("--config-repo (or JETSTREAM_CONFIG_REPO) is required")
    return config_checkout.resolve(config_repo)


def load_one(slug: str, experiments: str, config_repo: Path | str | None) -> AnalysisSpec:
    return load_one_with_record(slug, experiments, config_repo)[0]


def load_one_with_record(
    slug: str, experiments: str, config_repo: Path | str | None
) -> tuple[AnalysisSpec, Experiment]:
    """The experiment's spec and its Experimenter record as published (before the config's
    overrides), from one read of the experiments source."""
    from jetstream.config import load_spec

    exps = load_experiments(experiments)
    if slug not in exps:
        rejected = getattr(exps, "rejected", {}).get(slug)
        if rejected:
            raise ConfigError(f"experiment {slug!r} cannot be analysed: {rejected}")
        raise ConfigError(f"experiment {slug!r} is not in {experiments}")
    return load_spec(slug, exps, _repo(config_repo)), exps[slug]


def load_many(
    experiments: str, config_repo: Path | str | None, slugs: tuple[str, ...] = ()
) -> tuple[list[AnalysisSpec], dict[str, str]]:
    """Specs for the chosen (or all) experiments, and {experiment: problem} for the records
    that were rejected and the experiments whose config failed: those are reported, not
    fatal. Only a transient error (network, warehouse) stops the whole load."""
    from jetstream.config import load_spec
    from jetstream.experiments import spec_problems

    exps = load_experiments(experiments)
    rejected: Mapping[str, str] = getattr(exps, "rejected", {})
    unknown = [s for s in slugs if s not in exps and s not in rejected]
    if unknown:
        raise ConfigError(f"experiments not found in {experiments}: {', '.join(unknown)}")
    failures: dict[str, str] = {
        label: message for label, message in rejected.items() if not slugs or label in slugs
    }
    for label, message in failures.items():
        log.error("experiment skipped: record rejected", experiment=label, problem=message)
    specs = []
    repo = _repo(config_repo)
    for slug in slugs or tuple(exps):
        if slug in failures:
            continue
        try:
            spec = load_spec(slug, exps, repo)
            problems = spec_problems(spec)
        except TransientError:
            raise
        except ConfigError as exc:
            problems = list(exc.problems)
        except Exception as exc:  # one record never stops the others
            problems = [f"experiment {slug!r}: cannot be resolved: {type(exc).__name__}: {exc}"]
        if problems:
            failures[slug] = "; ".join(problems)
            log.error("experiment skipped: config failed", experiment=slug, problems=problems)
        else:
            specs.append(spec)
    return specs, failures


def plan_each(
    specs: Sequence[AnalysisSpec],
    date: dt.date,
    periods: Any = None,
    metrics: Sequence[str] = (),
    failures: dict[str, str] | None = None,
) -> Any:  # -> TaskGraph
    """`graph.plan` of the specs that plan on their own and whose task names are their own;
    each other spec is added to `failures` (and logged) instead of failing the graph."""
    from jetstream.graph import plan

    failures = failures if failures is not None else {}
    names: dict[str, str] = {}
    clashing: set[str] = set()
    good: list[AnalysisSpec] = []
    for spec in specs:
        try:
            nodes = plan([spec], date, periods, metrics).nodes
        except TransientError:
            raise
        except Exception as exc:
            failures[spec.slug] = (
                f"experiment {spec.slug!r}: cannot be planned: {type(exc).__name__}: {exc}"
            )
            log.error("experiment skipped: planning failed", experiment=spec.slug, error=str(exc))
            continue
        for node in nodes:
            other = names.setdefault(node.name, spec.slug)
            if other != spec.slug:
                clashing.update((other, spec.slug))
        good.append(spec)
    for slug in sorted(clashing):
        failures[slug] = (
            f"experiment {slug!r}: its task names clash with another experiment's "
            f"({', '.join(sorted(clashing - {slug}))}); none of them is analysed"
        )
        log.error("experiment skipped: task names clash", experiment=slug)
    return plan([s for s in good if s.slug not in clashing], date, periods, metrics)


def describe_skipped(label: str, message: str) -> str:
    """One line for the terminal: the message, prefixed with the label unless it has it."""
    return f"skipped: {message if message.startswith(label) else f'{label}: {message}'}"


def record_skipped(failures: Mapping[str, str], warehouse: str, out: str) -> None:
    """Each skipped experiment as an error row in the warehouse's errors table (replacing
    the previous load error of that experiment) and, for those with a valid slug, its
    published errors file. A failure here is logged: the command exits 1 anyway."""
    if not failures:
        return
    from jetstream import results, slugs
    from jetstream.sql import results as result_sql
    from jetstream.tasks.context import ErrorCollector
    from jetstream.warehouse import open_warehouse

    run = uuid.uuid4().hex[:12]
    collectors = []
    for label, message in failures.items():
        errs = ErrorCollector(run=run, experiment=label)
        errs.add(message, exception_type=SKIPPED_EXCEPTION)
        collectors.append(errs)
    published: dict[str, list[dict[str, Any]]] = {}
    try:
        wh = open_warehouse(warehouse)
        try:
            ref = wh.table_ref(results.ERRORS_TABLE)
            for stmt in result_sql.ensure_errors_table_sql(
                ref, results.ERRORS_COLUMNS, results.ERRORS_ADDED_COLUMNS
            ):
                wh.execute(stmt)
            for errs in collectors:
                insert = errs.insert_sql(ref)
                wh.transaction([errs.delete_sql(ref), *([insert] if insert else [])])
                if slugs.problem(errs.experiment) is None:
                    published[errs.experiment] = wh.query(
                        result_sql.experiment_errors_sql(ref, errs.experiment)
                    ).to_pylist()
        finally:
            wh.close()
    except Exception as exc:  # the skips are on stderr and in the exit code already
        log.error("could not record skipped experiments", warehouse=warehouse, error=str(exc))
        published = {
            e.experiment: e.rows for e in collectors if slugs.problem(e.experiment) is None
        }
    _publish_errors(published, out)


def _publish_errors(rows_by_slug: Mapping[str, list[dict[str, Any]]], out: str) -> None:
    from jetstream import artifacts, export

    try:
        store = artifacts.open_store(out)
        for slug, rows in rows_by_slug.items():
            for r in rows:
                if r.get("window") is not None:
                    r["window"] = r["window"] + 1  # tables hold k, published files k + 1
            store.write_json(export.errors_path(slug), export.errors_document(rows))
    except Exception as exc:
        log.error("could not publish errors of skipped experiments", out=out, error=str(exc))
