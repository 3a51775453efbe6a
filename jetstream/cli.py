"""The `jetstream` command line. Thin: each command lives in `jetstream.commands.<module>`
and is imported only when invoked, so `jetstream --help` and every pod start fast.

Exit codes: 0 ok; 1 findings or failed tasks; 2 usage or config error; 75 transient error
(retried by the runners)."""

from __future__ import annotations

import importlib
import sys

import click

from jetstream import __version__

# name -> (module:attribute, one-line help). Help is kept here so --help imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate-config": (
        "jetstream.commands.validate:command",
        "Check config files strictly; print every problem.",
    ),
    "synthetic": (
        "jetstream.commands.synthetic:command",
        "Generate deterministic synthetic telemetry into a warehouse.",
    ),
    "run": (
        "jetstream.commands.run:run",
        "Analyse experiments for a date: enrollments, metrics, statistics, export.",
    ),
    "rerun": ("jetstream.commands.run:rerun", "Recompute an experiment over a range of dates."),
    "rerun-config-changed": (
        "jetstream.commands.changes:command",
        "Recompute only what a config change touched.",
    ),
    "rerun-skip": (
        "jetstream.commands.changes:skip_command",
        "Mark a config change as applied without recomputing anything.",
    ),
    "task": (
        "jetstream.commands.task:task",
        "Run one node of the task graph (what runners and pods call).",
    ),
    "controller": (
        "jetstream.commands.controller:command",
        "Scheduled entry point: plan the previous day and submit it.",
    ),
    "statistics": (
        "jetstream.commands.statistics:group",
        "Compute statistics on per-client data (ad hoc).",
    ),
    "shred": (
        "jetstream.commands.shred:command",
        "Delete clients from every table of every experiment.",
    ),
    "export": (
        "jetstream.commands.task:export_cmd",
        "Publish statistics, metadata and errors JSON for an experiment.",
    ),
    "report": (
        "jetstream.commands.report:command",
        "Render the self-contained HTML results dashboard.",
    ),
    "preview": (
        "jetstream.commands.preview:command",
        "Preview a config on a sample, cheaply, before merging it.",
    ),
    "monitor": ("jetstream.commands.monitor:group", "Live enrollment monitoring jobs and page."),
    "webhook": ("jetstream.commands.webhook:group", "Config-repository webhook server."),
    "workflows": ("jetstream.commands.workflows:group", "Render Argo workflow manifests."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (target, _) in COMMANDS.items() if _importable(target))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Jetstream's command names and option spellings run as aliases of ours
        (`jetstream.commands.aliases`, hidden from --help)."""
        if args:
            from jetstream.commands import aliases

            name = args[0]
            if aliases.needs_translation(name, args[1:]):
                return (
                    name,
                    aliases.AliasCommand(name, lambda n: self.get_command(ctx, n)),
                    args[1:],
                )
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        cmd = getattr(module, attr)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, COMMANDS[n][1]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _importable(target: str) -> bool:
    import importlib.util

    module_name = target.split(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jetstream")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR.")
# Jetstream's global options (scripts and Argo templates pass them): --debug is
# --log-level DEBUG; its BigQuery log handler is replaced by the warehouse's errors table.
@click.option("--debug", is_flag=True, hidden=True)
@click.option(
    "--log_to_bigquery", "--log-to-bigquery", "log_to_bigquery", is_flag=True, hidden=True
)
@click.option("--log_project_id", "--log-project-id", hidden=True)
@click.option("--log_dataset_id", "--log-dataset-id", hidden=True)
@click.option("--log_table_id", "--log-table-id", hidden=True)
@click.option("--log_source", "--log-source", hidden=True)
@click.option("--task_profiling_log_table_id", "--task-profiling-log-table-id", hidden=True)
@click.option("--task_monitoring_log_table_id", "--task-monitoring-log-table-id", hidden=True)
def cli(log_level: str | None, debug: bool = False, **_jetstream_logging: object) -> None:
    """Experiment analysis: metric-hub configs in, statistics JSON out.

    Exit codes: 0 ok, 1 findings or failed tasks, 2 usage or config error,
    75 transient error (retried).
    """
    from jetstream import logs

    logs.configure("DEBUG" if debug and not log_level else log_level)


def main(argv: list[str] | None = None) -> None:
    from jetstream.errors import JetstreamError

    try:
        # in non-standalone mode click returns ctx.exit(code)'s code instead of exiting
        rv = cli.main(args=argv, prog_name="jetstream", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except JetstreamError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
