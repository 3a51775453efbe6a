"""Validation of one config file of any kind (experiment config, defaults, outcome,
definitions, functions) against a config repo: structure first, then full resolution."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from jetstream.config.problems import ERROR, Problem, key_path
from jetstream.config.repo import ConfigRepo, read_toml
from jetstream.config.resolve import placeholder_experiment, resolve_with_problems
from jetstream.config.schema import FileKind, check
from jetstream.config.sql_check import sql_problem
from jetstream.config.templating import Renderer, TemplateError

INFO = "info"
DEFAULT_PLATFORM = "firefox_desktop"
AUTO = "auto"


def file_kind(path: Path) -> FileKind:
    """What a file is, from where it sits in the metric-hub layout."""
    if path.name == "functions.toml" and path.parent.name == "definitions":
        return FileKind.FUNCTIONS
    if path.parent.name == "definitions":
        return FileKind.DEFINITIONS
    if path.parent.name == "defaults":
        return FileKind.DEFAULTS
    if path.parent.parent.name == "outcomes":
        return FileKind.OUTCOME
    return FileKind.EXPERIMENT


def validate_file(
    path: Path,
    repo: ConfigRepo | None,
    experiments: Mapping[str, Any] | None,
    platform: str,
) -> list[Problem]:
    """Every problem in one file, errors and warnings, plus `info` notes (which platforms an
    experiment config resolves on). Never raises for a bad file."""
    path = Path(path)
    label = str(path)
    doc, problems = read_toml(path, label)
    if doc is None:
        return problems
    if not doc:
        return [Problem(label, "", "file is empty: nothing to analyse", "warning")]
    kind = file_kind(path)
    problems = check(doc, kind, label)
    repo = repo or ConfigRepo.empty()
    if kind is FileKind.EXPERIMENT:
        problems += _experiment(path, label, doc, repo, experiments, platform)
    elif kind is FileKind.DEFAULTS:
        app = path.stem
        if app in repo.definitions:
            r = _with(repo, defaults={**repo.defaults, app: doc})
            problems += _resolve_quiet(r, app, {}, label, r.defaults_path(app), label)
    elif kind is FileKind.OUTCOME:
        app, slug = path.parent.name, path.stem
        r = _with(repo, outcomes={**repo.outcomes, (app, slug): doc})
        problems += _resolve_quiet(
            r,
            app,
            {"experiment": {"outcomes": [slug]}},
            "<outcome check>",
            r.outcome_path(app, slug),
            label,
        )
    elif kind is FileKind.DEFINITIONS:
        problems += _definitions_sql(doc, label, repo)
    return _sorted(problems)


def _experiment(
    path: Path,
    label: str,
    doc: dict[str, Any],
    repo: ConfigRepo,
    experiments: Mapping[str, Any] | None,
    platform: str,
) -> list[Problem]:
    slug = path.stem
    if experiments and slug in experiments:
        exp = experiments[slug]
        _, problems = resolve_with_problems(exp, doc, repo, label, check_structure=False)
        return problems
    platforms = (repo.platforms or [DEFAULT_PLATFORM]) if platform == AUTO else [platform]
    results: dict[str, list[Problem]] = {}
    for app in platforms:
        _, problems = resolve_with_problems(
            placeholder_experiment(app, slug),
            doc,
            repo,
            label,
            placeholder=True,
            check_structure=False,
        )
        results[app] = problems
    good = [app for app, ps in results.items() if not any(p.is_error for p in ps)]
    if platform != AUTO:
        return results[platform]
    if good:
        chosen = DEFAULT_PLATFORM if DEFAULT_PLATFORM in good else good[0]
        note = Problem(label, "", f"resolves on platform(s): {', '.join(good)}", INFO)
        return [note, *results[chosen]]
    chosen = min(
        results, key=lambda a: (sum(p.is_error for p in results[a]), a != DEFAULT_PLATFORM, a)
    )
    note = Problem(
        label,
        "",
        f"resolves on no platform ({', '.join(platforms)}); problems shown for {chosen}",
        INFO,
    )
    return [note, *results[chosen]]


def _resolve_quiet(
    repo: ConfigRepo,
    app: str,
    config: dict[str, Any],
    config_path: str,
    owner: str,
    label: str,
) -> list[Problem]:
    """Resolve a placeholder experiment using a support file; keep the problems that are in
    it (`owner` is its name in the repo), named `label`."""
    _, problems = resolve_with_problems(
        placeholder_experiment(app),
        config,
        repo,
        config_path,
        placeholder=True,
        check_structure=False,
    )
    return [attrs.evolve(p, file=label) for p in problems if p.file == owner]


def _definitions_sql(doc: Mapping[str, Any], label: str, repo: ConfigRepo) -> list[Problem]:
    """A definitions file: every select_expression must render with the functions and parse."""
    out: list[Problem] = []
    renderer = Renderer(repo.functions)
    tables: list[tuple[str, Any]] = []
    for section in ("metrics", "segments", "dimensions"):
        sec = doc.get(section)
        if isinstance(sec, dict):
            tables += [(key_path(section, k), v) for k, v in sec.items() if k != "data_sources"]
    for where, table in tables:
        if not isinstance(table, dict) or not isinstance(table.get("select_expression"), str):
            continue
        expr = table["select_expression"]
        if "parameters." in expr or "experiment." in expr:
            continue  # needs an experiment: checked when a config uses it
        key = key_path(where, "select_expression")
        try:
            rendered = renderer.render(expr)
        except TemplateError as exc:
            out.append(Problem(label, key, str(exc)))
            continue
        msg = sql_problem(rendered.replace("{experiment_slug}", "placeholder"))
        if msg:
            out.append(Problem(label, key, msg))
    return out


def _with(repo: ConfigRepo, **attrs_: Any) -> ConfigRepo:
    clone = copy.copy(repo)
    for k, v in attrs_.items():
        setattr(clone, k, v)
    return clone


_LEVEL_ORDER = {INFO: 0, ERROR: 1, "warning": 2}


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.file, _LEVEL_ORDER.get(p.level, 3)))
