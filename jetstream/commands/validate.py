"""`jetstream validate-config PATH...`: check config files strictly, print every problem as
`FILE: key.path: message`, and the preview command for each valid experiment config.

Exit 0 when every file is valid (warnings allowed), 1 when any file has an error, 2 for a
usage error (no paths, a config repo that is not a directory, a bad experiments source).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import click

from jetstream.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE

DEFAULT_PLATFORM = "firefox_desktop"
AUTO = "auto"


@click.command("validate-config")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--config-repo",
    type=click.Path(path_type=Path),
    default=None,
    help="metric-hub layout directory the configs refer to (definitions, defaults, outcomes).",
)
@click.option(
    "--platform",
    default=None,
    help="Platform for configs not in the experiments source (default: the config repo's "
    "only platform, else firefox_desktop); 'auto' tries every platform that has defaults.",
)
@click.option(
    "--experiments",
    "experiments_source",
    default=None,
    help="Experimenter v8 JSON file or URL; gives each slug's platform, dates and branches.",
)
@click.option(
    "--changed-since",
    default=None,
    metavar="GIT_REF",
    help="Also validate the .toml files changed since GIT_REF (git diff in the config repo).",
)
@click.option(
    "--warehouse",
    envvar="JETSTREAM_WAREHOUSE",
    default=None,
    help="Only written into the printed preview command (duckdb:PATH or bigquery:P.D).",
)
def command(
    paths: tuple[Path, ...],
    config_repo: Path | None,
    platform: str | None,
    experiments_source: str | None,
    changed_since: str | None,
    warehouse: str | None,
) -> None:
    """Check config files strictly; print every problem."""
    from jetstream.config import ConfigRepo, validate_file
    from jetstream.config.validate import FileKind, file_kind
    from jetstream.errors import JetstreamError, TransientError

    files = list(paths)
    if changed_since:
        files += _changed_files(changed_since, config_repo or Path.cwd())
    if not files:
        raise click.UsageError("give at least one config file (or --changed-since GIT_REF)")
    repo = None
    if config_repo is None:
        config_repo = _layout_root(files)
        if config_repo is not None:
            click.echo(f"note: using config repo {config_repo} (the files sit in it)", err=True)
    if config_repo is not None:
        if not config_repo.is_dir():
            raise click.BadParameter(
                f"{config_repo} is not a directory", param_hint="--config-repo"
            )
        repo = ConfigRepo.load(config_repo)
        for p in repo.load_problems:
            click.echo(f"warning: config repo file skipped: {p}", err=True)
        if platform not in (None, "auto") and repo.platforms and platform not in repo.platforms:
            raise click.BadParameter(
                f"{platform!r} has no defaults in {config_repo}; "
                f"known: {', '.join(repo.platforms)}, auto",
                param_hint="--platform",
            )
    experiments = None
    if experiments_source:
        from jetstream.experiments import load_experiments

        try:
            experiments = load_experiments(experiments_source)
        except TransientError:
            raise  # exit 75: worth retrying
        except JetstreamError as exc:
            raise click.BadParameter(str(exc), param_hint="--experiments") from exc

    if platform is None:
        platform = _default_platform(repo, experiments, files)
    invalid = 0
    findings: list[str] = []
    if experiments is not None and experiments_source:
        findings = _record_findings(experiments, experiments_source, repo)
        for line in findings:
            click.echo(line)
    seen: set[Path] = set()
    for path in files:
        if path in seen:
            continue
        seen.add(path)
        problems = validate_file(path, repo, experiments, platform)
        errors = [p for p in problems if p.is_error]
        for p in problems:
            click.echo(str(p))
        if errors:
            invalid += 1
        elif path.is_file() and file_kind(path) is FileKind.EXPERIMENT:
            app = _platform_of(path.stem, experiments) or platform
            click.echo(_preview_command(path, config_repo, app, experiments_source, warehouse))
    total = len(seen)
    click.echo(f"{total} file(s) checked: {total - invalid} valid, {invalid} invalid", err=True)
    if findings:
        click.echo(
            f"{experiments_source}: {len(findings)} experiment record(s) cannot be analysed",
            err=True,
        )
    click.get_current_context().exit(EXIT_FINDINGS if invalid or findings else EXIT_OK)


def _record_findings(experiments, source: str, repo) -> list[str]:
    """The experiments source's records that cannot be analysed, one line each: rejected
    records (bad fields, slugs, colliding slugs) and records without usable branches (a
    config's `[experiment] reference_branch` in the config repo counts)."""
    from jetstream.experiments import branch_problems

    lines = [f"{source}: {message}" for message in getattr(experiments, "rejected", {}).values()]
    for slug, exp in experiments.items():
        reference = exp.reference_branch
        config = repo.experiment_config(slug) if repo is not None else None
        section = config.get("experiment") if isinstance(config, dict) else None
        if isinstance(section, dict) and isinstance(section.get("reference_branch"), str):
            reference = section["reference_branch"]
        lines += [f"{source}: {p}" for p in branch_problems(slug, exp.branch_slugs, reference)]
    return lines


def _preview_command(
    path: Path,
    config_repo: Path | None,
    platform: str,
    experiments_source: str | None,
    warehouse: str | None,
) -> str:
    """The `jetstream preview` command for a valid experiment config, every value quoted for
    the shell, with the platform and sources this validation used."""
    args = ["jetstream", "preview", "--slug", path.stem, "--config-file", str(path)]
    if config_repo is not None:
        args += ["--config-repo", str(config_repo)]
    if experiments_source:
        args += ["--experiments", experiments_source]
    if platform != AUTO:
        args += ["--platform", platform]
    if warehouse:
        args += ["--warehouse", warehouse]
    return shlex.join(args)


def _layout_root(files: list[Path]) -> Path | None:
    """The metric-hub checkout every file sits in (ROOT/jetstream/<slug>.toml,
    ROOT/jetstream/defaults|outcomes/..., ROOT/definitions/...), or None."""
    roots = set()
    for f in files:
        f = f.resolve()
        root = next(
            (
                p.parent
                for p in f.parents
                if p.name in ("jetstream", "definitions")
                and ((p.parent / "jetstream").is_dir() or (p.parent / "definitions").is_dir())
            ),
            None,
        )
        if root is None or not (root / "jetstream" / "defaults").is_dir():
            return None
        roots.add(root)
    return roots.pop() if len(roots) == 1 else None


def _platform_of(slug: str, experiments: object) -> str | None:
    """The app name of `slug` in the experiments source, when it is there."""
    if not isinstance(experiments, dict) or slug not in experiments:
        return None
    app = getattr(experiments[slug], "app_name", None)
    return app if isinstance(app, str) and app else None


def _default_platform(repo: object, experiments: object, files: list[Path]) -> str:
    """No --platform: the experiments' platform when every experiment file is there under
    one app name, else the config repo's only platform, else firefox_desktop (said)."""
    apps = {_platform_of(f.stem, experiments) for f in files}
    if len(apps) == 1 and None not in apps:
        app = apps.pop()
        assert app is not None
        return app
    platforms = list(getattr(repo, "platforms", []) or [])
    if len(platforms) == 1:
        click.echo(f"note: platform {platforms[0]} (the config repo's only platform)", err=True)
        return platforms[0]
    if platforms:
        click.echo(
            f"note: assuming platform {DEFAULT_PLATFORM}; the config repo has "
            f"{', '.join(platforms)} (choose with --platform, or --platform auto)",
            err=True,
        )
    return DEFAULT_PLATFORM


def _changed_files(ref: str, repo_dir: Path) -> list[Path]:
    """The .toml files changed since `ref` that still exist, via `git diff --name-only`."""
    try:
        out = subprocess.run(
            ["git", "diff", "--name-only", "--relative", ref, "--"],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise click.UsageError(f"--changed-since needs git: {exc}") from exc
    if out.returncode != 0:
        raise click.UsageError(
            f"--changed-since {ref}: git diff failed in {repo_dir}: {out.stderr.strip()}"
        )
    files = []
    for line in out.stdout.splitlines():
        p = repo_dir / line.strip()
        if p.suffix == ".toml" and p.is_file():
            files.append(p)
    return files


__all__ = ["command", "EXIT_USAGE"]
