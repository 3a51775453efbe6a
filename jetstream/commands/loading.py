"""Loading experiments and resolving specs for the analysis commands (I/O lives here)."""

from __future__ import annotations

from pathlib import Path

from jetstream.config.model import AnalysisSpec
from jetstream.errors import ConfigError
from jetstream.logs import get_logger

log = get_logger("jetstream.commands")


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
    from jetstream.config import load_spec

    exps = load_experiments(experiments)
    if slug not in exps:
        raise ConfigError(f"experiment {slug!r} is not in {experiments}")
    return load_spec(slug, exps, _repo(config_repo))


def load_many(
    experiments: str, config_repo: Path | str | None, slugs: tuple[str, ...] = ()
) -> tuple[list[AnalysisSpec], dict[str, str]]:
    """Specs for the chosen (or all) experiments; configs that fail are reported, not fatal."""
    from jetstream.config import load_spec

    exps = load_experiments(experiments)
    unknown = [s for s in slugs if s not in exps]
    if unknown:
        raise ConfigError(f"experiments not found in {experiments}: {', '.join(unknown)}")
    specs, failures = [], {}
    for slug in slugs or tuple(exps):
        try:
            specs.append(load_spec(slug, exps, _repo(config_repo)))
        except ConfigError as exc:
            failures[slug] = "; ".join(exc.problems)
            log.error("config failed", experiment=slug, problems=exc.problems)
    return specs, failures
