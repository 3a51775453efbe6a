"""`jetstream rerun-config-changed`: recompute only what a config change touched.

The config repository is a git work tree; "after" is the tree as it is (uncommitted edits
included), "before" is `--since` (default HEAD~1). Both are resolved, definition hashes
compared (see `jetstream.changes`), stale rows deleted, and the resulting graph run with
the same code as `jetstream run`."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import click

from jetstream.commands import options
from jetstream.commands.run import execute_graph, runner_options
from jetstream.logs import get_logger
from jetstream.rerun_cleanup import apply_cleanup

log = get_logger("jetstream.changes")


@click.command()
@click.option(
    "--since",
    default="HEAD~1",
    show_default=True,
    help="Git ref of the config repository before the change.",
)
@click.option(
    "--experiment",
    "slugs",
    multiple=True,
    help="Only these experiments (default: every one the change can affect).",
)
@options.date_option("--as-of", help="Last data date (default: yesterday, UTC).")
@click.option("--dry-run", is_flag=True, help="Print the plan as JSON; change nothing.")
@options.common
@runner_options
def command(since, slugs, as_of, dry_run, experiments, config_repo, warehouse, out, **runner_kw):
    """Recompute only what a config change touched (compares definition hashes)."""
    from jetstream import gitrepo
    from jetstream.changes import analyse_change, describe, yesterday
    from jetstream.commands.loading import load_experiments

    if config_repo is None:
        raise click.UsageError("--config-repo (a git work tree) is required")
    repo = Path(config_repo)
    try:
        git_dir = gitrepo.git_dir_of(repo)
        changed = gitrepo.worktree_changes(repo, since)
    except gitrepo.GitError as exc:
        raise click.UsageError(f"{repo}: {exc}") from None
    if _skip_requested(git_dir):
        raise SystemExit(0)
    exps = load_experiments(experiments)
    unknown = [s for s in slugs if s not in exps]
    if unknown:
        raise click.UsageError(f"experiments not found in {experiments}: {', '.join(unknown)}")
    tmp = Path(tempfile.mkdtemp(prefix="jetstream-before-"))
    try:
        try:
            before = gitrepo.export_tree(git_dir, since, tmp / "before")
        except gitrepo.GitError as exc:
            raise click.UsageError(f"{repo}: cannot read --since {since!r}: {exc}") from None
        analysis = analyse_change(
            exps, before, repo, as_of or yesterday(), changed=changed, slugs=slugs
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    click.echo(describe(analysis.plans, analysis.graph))
    if dry_run:
        click.echo(json.dumps(analysis.to_json(), indent=2))
        raise SystemExit(0)
    failures = [p for p in analysis.plans if p.error]
    apply_cleanup(warehouse, analysis.plans)
    code = execute_graph(
        analysis.graph,
        experiments=experiments,
        config_repo=config_repo,
        warehouse=warehouse,
        out=out,
        **runner_kw,
    )
    raise SystemExit(code or (1 if failures else 0))


def _skip_requested(git_dir: Path) -> bool:
    """HEAD's commit message carries `[ci rerun-skip]` (or a spelling of it): say so."""
    from jetstream import gitrepo
    from jetstream.changes import rerun_skip_requested

    try:
        message = gitrepo.text("log", "-1", "--format=%B", "HEAD", git_dir=git_dir)
    except gitrepo.GitError:
        return False  # no commit yet: nothing asks for a skip
    if not rerun_skip_requested(message):
        return False
    click.echo(
        f"Rerun skipped: the config repository's last commit asks for it "
        f"({message.splitlines()[0] if message else ''}). Nothing is recomputed; later "
        "runs use the new configs for the windows they compute."
    )
    return True


@click.command("rerun-skip")
@click.option(
    "--experiment", "slugs", multiple=True, help="The experiments whose rerun is skipped."
)
def skip_command(slugs: tuple[str, ...]) -> None:
    """Mark a config change as applied without recomputing anything (Jetstream's
    `rerun-skip`; metric-hub's CI runs it for commits tagged `[ci rerun-skip]`).

    Reruns here are decided by comparing the config repository before and after each
    change (`rerun-config-changed`), not by stored timestamps, so skipping needs no
    bookkeeping: the results computed so far stay, and every later run uses the new
    configs for the windows it computes."""
    which = ", ".join(slugs) if slugs else "every experiment the change affects"
    click.echo(f"Rerun skipped for {which}: results stay as computed.")
    log.info("rerun skipped", experiments=list(slugs))
