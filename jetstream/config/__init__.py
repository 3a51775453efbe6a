"""The metric-hub config language: model, parsing, resolution, validation. No I/O here
except reading the files named by the caller in `repo.py`.

Steps: `schema.check` checks the parsed TOML once; `tables` turns checked tables into
typed values; `resolve` merges the layers (`layers`) and resolves the settings, data
sources, metrics and segments from the typed tables. Statistics and pre-treatments are
named in `jetstream.statistics.catalogue`.

Public API:
    ConfigRepo.load(path)                                   (jetstream.config.repo)
    resolve_spec(experiment, config, repo, config_path)     (jetstream.config.resolve)
    load_spec(slug, experiments, config_repo, platform)     (here)
    validate_file(path, repo, experiments, platform)        (here)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jetstream.config.model import AnalysisSpec
from jetstream.config.problems import Problem
from jetstream.config.repo import ConfigRepo
from jetstream.config.resolve import placeholder_experiment, resolve_spec
from jetstream.config.validate import validate_file

if TYPE_CHECKING:
    from jetstream.experiments import Experiment

__all__ = [
    "AnalysisSpec",
    "ConfigRepo",
    "Problem",
    "load_spec",
    "placeholder_experiment",
    "resolve_spec",
    "validate_file",
]


def load_spec(
    slug: str,
    experiments: Mapping[str, Experiment],
    config_repo: Path,
    platform: str | None = None,
) -> AnalysisSpec:
    """Resolve experiment `slug` from the experiments source and the config repo (its
    jetstream/<slug>.toml if any). Without a record, `platform` gives a placeholder
    experiment (branches control and treatment). Raises ConfigError."""
    from jetstream import slugs
    from jetstream.errors import ConfigError

    bad = slugs.problem(slug)
    if bad is not None:  # the slug names a file below jetstream/: no '/', no '..'
        raise ConfigError(f"experiment slug {bad}")
    repo = ConfigRepo.load(Path(config_repo))
    path = repo.experiment_config_path(slug)
    config = repo.experiment_config(slug)
    broken = [p for p in repo.load_problems if p.file == repo.label(path)]
    if broken:
        raise ConfigError(str(broken[0]), problems=[str(p) for p in broken])
    exp: Any = experiments.get(slug)
    placeholder = False
    if exp is None:
        if platform is None:
            raise ConfigError(
                f"experiment {slug!r} is not in the experiments source; "
                "pass a platform to analyse it with a placeholder record"
            )
        exp = placeholder_experiment(platform, slug)
        placeholder = True
    return resolve_spec(
        exp, config, repo, str(path) if config is not None else "<experiment>", placeholder
    )
