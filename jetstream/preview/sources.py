"""Where a preview's config comes from: a config file (path or URL), a config repo (path or
git URL, cloned), and the experiment's record (Experimenter, a v8 JSON file, or none: a
draft that is not in Experimenter gets a placeholder record on `--platform`)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import attrs

from jetstream import nesting
from jetstream.config.model import AnalysisSpec
from jetstream.errors import ConfigError, ExperimentSourceError, TransientError
from jetstream.logs import get_logger

log = get_logger(__name__)

DEFAULT_PLATFORM = "firefox_desktop"


@attrs.frozen
class PreviewSource:
    spec: AnalysisSpec
    config_label: str  # the config file (path or URL), or "<none>"
    in_experimenter: bool
    repo_path: Path


def is_url(text: str) -> bool:
    return "://" in text or text.startswith("git@")


def fetch_text(url: str, timeout: float = 30.0) -> str:
    import httpx

    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise TransientError(f"{url}: cannot fetch the config file: {exc}") from exc
    if response.status_code != 200:
        raise ConfigError(f"{url}: fetching the config file gave HTTP {response.status_code}")
    return response.text


def parse_config(text: str, label: str) -> dict[str, Any]:
    try:
        return nesting.loads_toml(text, label)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{label}: malformed TOML: {exc}") from exc
    except nesting.NestingError as exc:
        raise ConfigError(str(exc)) from None


def _repo_of(config_file: Path) -> Path | None:
    """The metric-hub repo a config file sits in (`<repo>/jetstream/<slug>.toml`)."""
    parent = config_file.resolve().parent
    if parent.name == "jetstream" and (
        (parent.parent / "definitions").is_dir() or (parent / "definitions").is_dir()
    ):
        return parent.parent
    return None


def load_preview_source(
    *,
    slug: str | None,
    config_file: str | None,
    config_repo: str | None,
    experiments: str | None,
    platform: str | None,
    work_dir: Path,
) -> PreviewSource:
    """Resolve the spec to preview. Raises ConfigError (exit 2) naming what is missing."""
    from jetstream.config import ConfigRepo, placeholder_experiment, resolve_spec

    if not slug and not config_file:
        raise ConfigError("preview needs --slug or --config-file (or both)")
    config: dict[str, Any] | None = None
    label = "<none>"
    if config_file:
        if is_url(config_file):
            text = fetch_text(config_file)
        else:
            path = Path(config_file)
            if not path.is_file():
                raise ConfigError(f"{config_file}: config file not found")
            text = path.read_text(encoding="utf-8")
        label = config_file
        config = parse_config(text, label)
        if not slug:
            slug = Path(config_file.split("?")[0]).stem
    assert slug is not None
    if config_repo:
        # a git URL may carry @REF (the chart's JETSTREAM_CONFIG_REPO does): the shared
        # checkout code understands it, `git clone` does not
        from jetstream.config_checkout import checkout

        repo_path = checkout(config_repo) if is_url(config_repo) else Path(config_repo)
    elif config_file and not is_url(config_file) and _repo_of(Path(config_file)) is not None:
        repo_path = _repo_of(Path(config_file))  # type: ignore[assignment]
    else:
        raise ConfigError(
            "preview needs --config-repo (a metric-hub checkout or git URL) for the platform "
            "definitions and defaults"
        )
    repo = ConfigRepo.load(Path(repo_path))
    if config is None:
        path = repo.experiment_config_path(slug)
        config = repo.experiment_config(slug)
        if config is not None:
            label = str(path)
        broken = [p for p in repo.load_problems if p.file == repo.label(path)]
        if broken:
            raise ConfigError(str(broken[0]), problems=[str(p) for p in broken])
    exp = None
    if experiments:
        from jetstream.experiments import load_experiments

        try:
            exp = load_experiments(experiments).get(slug)
        except (ExperimentSourceError, TransientError) as exc:
            raise ConfigError(f"--experiments {experiments}: {exc}") from exc
    in_experimenter = exp is not None
    if exp is None:
        exp = placeholder_experiment(platform or DEFAULT_PLATFORM, slug)
        log.info("preview.placeholder_experiment", slug=slug, platform=exp.app_name)
    spec = resolve_spec(
        exp,
        config,
        repo,
        label if config is not None else "<experiment>",
        placeholder=not in_experimenter,
    )
    return PreviewSource(spec, label, in_experimenter, Path(repo_path))
