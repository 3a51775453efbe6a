"""Jetstream's command and option spellings, accepted as aliases of ours so that scripts,
CI jobs and Argo templates written for Jetstream run unchanged (docs/migration.md lists
them). None of them appears in `--help`.

An invocation is translated before click parses it: `translate(name, args)` gives the
command of ours to run and its arguments, once per experiment for the commands of ours
that take one experiment. Options of ours pass through untouched, so both spellings can be
mixed. Jetstream options that configure what this platform does differently (its GKE
cluster, its BigQuery log handler, memory requests, ...) are accepted and ignored, with a
note on stderr; options whose effect cannot be reproduced fail with a usage error."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import click

# Jetstream's defaults for the warehouse when only one of --project_id / --dataset_id is given
JETSTREAM_PROJECT = "moz-fx-data-experiments"
JETSTREAM_DATASET = "mozanalysis"


@attrs.frozen
class Alias:
    """A Jetstream command name: our command (`task ensure-enrollments`: a subcommand),
    arguments always added, and whether it runs once per `--experiment_slug`."""

    target: tuple[str, ...]
    extra: tuple[str, ...] = ()
    per_experiment: bool = False
    date_default: bool = False  # add --date <yesterday> when none is given


ALIASES: dict[str, Alias] = {
    "validate_config": Alias(("validate-config",)),
    "run-argo": Alias(("run",), extra=("--runner", "argo")),
    "export-statistics-to-json": Alias(("export",), per_experiment=True),
    "export-metadata-to-json": Alias(("export",), per_experiment=True),
    "export-experiment-logs-to-json": Alias(("export",), per_experiment=True),
    "ensure-enrollments": Alias(
        ("task", "ensure-enrollments"), per_experiment=True, date_default=True
    ),
}
# our commands that also accept Jetstream's option spellings
TRANSLATED = frozenset(
    {"run", "rerun", "rerun-config-changed", "rerun-skip", "validate-config", "export"}
)


@attrs.frozen
class Rule:
    """What one Jetstream option becomes: `rename` (the value under our option name),
    `flag` (fixed arguments of ours, no value), `ignore` (dropped, with `takes_value`
    saying whether it has one), or a collected value for `Translation` to combine."""

    kind: str  # rename | flag | ignore | collect
    ours: tuple[str, ...] = ()
    takes_value: bool = True
    note: str = ""
    dest: str = ""  # collect: the Translation attribute


def _both(*names: str) -> list[str]:
    """`--a_b` -> ["--a_b", "--a-b"]: Jetstream accepts both spellings of most options."""
    out: list[str] = []
    for n in names:
        out += [n, n.replace("_", "-"), n.replace("-", "_")]
    return list(dict.fromkeys(out))


def _rules() -> dict[str, Rule]:
    table: dict[str, Rule] = {}

    def add(names: list[str], rule: Rule) -> None:
        for n in names:
            table[n] = rule

    add(_both("--experiment_slug"), Rule("collect", dest="slugs"))
    add(_both("--analysis_periods"), Rule("rename", ("--period",)))
    add(_both("--metric_slug"), Rule("rename", ("--metric",)))
    add(_both("--recreate_enrollments"), Rule("flag", ("--recreate-enrollments",), False))
    add(["--argo"], Rule("flag", ("--runner", "argo"), False))
    add(_both("--return_status"), Rule("flag", ("--wait",), False))
    add(_both("--project_id"), Rule("collect", dest="project"))
    add(_both("--dataset_id"), Rule("collect", dest="dataset"))
    add(["--bucket"], Rule("collect", dest="bucket"))
    add(_both("--config_repos"), Rule("collect", dest="config_repos"))
    add(
        _both("--statistics_only") + ["--stats-only", "--skip-metrics"],
        Rule("collect", dest="statistics_only"),
    )
    ignored_values = {
        "--zone": "the cluster comes from the Argo settings",
        "--cluster_id": "the cluster comes from the Argo settings",
        "--cluster_ip": "the cluster comes from the Argo settings",
        "--cluster_cert": "the cluster comes from the Argo settings",
        "--monitor_status": "--return-status (or --wait) waits for the workflow",
        "--image_version": "the task image is pinned by JETSTREAM_IMAGE (NAME@sha256:...)",
        "--memory_request": "pod resources come from the Argo settings",
        "--private_config_repos": "give private configs in the --config-repo checkout",
        "--log_project_id": "errors are written to the warehouse's errors table",
        "--log_dataset_id": "errors are written to the warehouse's errors table",
        "--log_table_id": "errors are written to the warehouse's errors table",
        "--high-data-threshold": "use `jetstream preview` for cost estimates",
        "--moderate-data-threshold": "use `jetstream preview` for cost estimates",
        "--sql_output_dir": "use `jetstream preview` to see the generated SQL",
        "-p": "rerun-skip recomputes nothing",
    }
    for name, why in ignored_values.items():
        add(_both(name), Rule("ignore", note=why))
    ignored_flags = {
        "--is_private": "configs are validated the same way",
        "--use-glean-ids": "the enrollment query type comes from the config",
        "--glean-only": "the enrollment query type comes from the config",
        "--discrete-metrics": "metrics are always computed per data source",
        "--no-discrete-metrics": "metrics are always computed per data source",
    }
    for name, why in ignored_flags.items():
        add(_both(name), Rule("ignore", takes_value=False, note=why))
    return table


RULES = _rules()


def jetstream_options() -> list[str]:
    """Every Jetstream option spelling accepted (for the docs and tests)."""
    return sorted(RULES)


@attrs.define
class Translation:
    args: list[str] = attrs.field(factory=list)  # passed through as written
    converted: list[list[str]] = attrs.field(factory=list)  # ours, one option per item
    slugs: list[str] = attrs.field(factory=list)
    project: str | None = None
    dataset: str | None = None
    bucket: str | None = None
    config_repos: list[str] = attrs.field(factory=list)
    statistics_only: str | None = None
    notes: list[str] = attrs.field(factory=list)
    used: bool = False  # a Jetstream spelling was seen


def _parse(args: Sequence[str]) -> Translation:
    t = Translation()
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token == "--":
            t.args += args[i - 1 :]
            break
        name, eq, inline = token.partition("=")
        rule = RULES.get(name) if token.startswith("-") else None
        if rule is None:
            t.args.append(token)
            continue
        t.used = True
        value: str | None = None
        if rule.takes_value and rule.kind != "flag":
            if eq:
                value = inline
            elif i < len(args):
                value = args[i]
                i += 1
            else:
                raise click.UsageError(f"option {name} needs a value")
        elif eq:
            raise click.UsageError(f"option {name} does not take a value")
        _apply(t, name, rule, value)
    return t


def _apply(t: Translation, name: str, rule: Rule, value: str | None) -> None:
    if rule.kind == "flag":
        t.converted.append(list(rule.ours))
    elif rule.kind == "rename":
        t.converted.append([rule.ours[0], str(value)])
    elif rule.kind == "ignore":
        t.notes.append(f"{name} ignored: {rule.note}")
    elif isinstance(getattr(t, rule.dest), list):
        getattr(t, rule.dest).append(str(value))
    else:
        setattr(t, rule.dest, value)


def config_repo_of(values: Sequence[str]) -> str | None:
    """Our `--config-repo` for Jetstream's `--config_repos` list: the first local directory
    in the metric-hub layout (a `jetstream/` directory given beside its parent is part of
    it), else a git URL (`.../tree/REF/jetstream` becomes `URL@REF`)."""
    for v in values:
        p = Path(v)
        if p.is_dir() and ((p / "jetstream").is_dir() or (p / "definitions").is_dir()):
            return v
    for v in values:
        p = Path(v)
        if p.is_dir() and p.resolve().name == "jetstream":
            return str(p.resolve().parent)
    for v in values:
        if "://" in v:
            head, sep, tail = v.partition("/tree/")
            if sep:
                ref = tail.split("/")[0]
                return f"{head}@{ref}" if ref else head
            return v
    return values[0] if values else None


def _true(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "y", "t", "on")


def _yesterday() -> str:
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


def translate(
    name: str, args: Sequence[str], accepts: Callable[[str], bool] | None = None
) -> tuple[tuple[str, ...], list[list[str]], list[str]]:
    """(our command path, argument lists (one per invocation), notes) for `jetstream NAME
    ARGS` written with Jetstream's spellings. `accepts(option)` says whether our command
    takes an option: a Jetstream option it has no counterpart for is dropped, with a note."""
    alias = ALIASES.get(name)
    target = alias.target if alias else (name,)
    t = _parse(args)
    passed = list(t.args)
    if name == "validate_config":
        passed = _validate_paths(passed, t.notes)
        if not any(not a.startswith("-") for a in passed):
            return target, [], [*t.notes, "no config files to validate"]
        # Jetstream looks each experiment up in Experimenter: ours reads the experiments
        # source the deployment is configured with
        source = os.environ.get("JETSTREAM_EXPERIMENTS")
        if source and "--experiments" not in passed:
            t.converted.append(["--experiments", source])
    if t.project or t.dataset:
        project, dataset = t.project or JETSTREAM_PROJECT, t.dataset or JETSTREAM_DATASET
        t.converted.append(["--warehouse", f"bigquery:{project}.{dataset}"])
    if t.bucket and t.bucket.lower() not in ("none", "null", ""):
        t.converted.append(["--out", f"gs://{t.bucket}"])
    repo = config_repo_of(t.config_repos)
    if repo:
        t.converted.append(["--config-repo", repo])
    if t.statistics_only is not None and _true(t.statistics_only):
        raise click.UsageError(
            "--statistics-only: statistics are computed with their metrics here; "
            "rerun the metrics (`jetstream rerun --metric ...`) instead"
        )
    if alias and alias.date_default and "--date" not in passed:
        t.converted.append(["--date", _yesterday()])
    if alias and alias.extra:
        t.converted.insert(0, list(alias.extra))
    converted = []
    for option in t.converted:
        if accepts is None or accepts(option[0]):
            converted += option
        else:
            t.notes.append(f"{option[0]} ({name} here has no such option) ignored")
    base = [*converted, *passed]
    if alias and alias.per_experiment:
        if not t.slugs:
            raise click.UsageError(f"{name} needs --experiment_slug")
        return target, [[*base, "--experiment", s] for s in t.slugs], t.notes
    extra_slugs = [a for s in t.slugs for a in ("--experiment", s)]
    return target, [[*base, *extra_slugs]], t.notes


def _validate_paths(args: list[str], notes: list[str]) -> list[str]:
    """Jetstream's validate_config skips directories and `.example` configs."""
    out = []
    for a in args:
        if not a.startswith("-") and Path(a).is_dir():
            notes.append(f"skipping {a}: not a file")
        elif not a.startswith("-") and ".example" in Path(a).suffixes:
            notes.append(f"Skipping example config {a}")
        else:
            out.append(a)
    return out


def needs_translation(name: str, args: Sequence[str]) -> bool:
    if name in ALIASES:
        return True
    if name not in TRANSLATED:
        return False
    return any(a.partition("=")[0] in RULES for a in args if a.startswith("-"))


def _accepts(cmd: click.Command, name: str) -> Callable[[str], bool]:
    """Whether our command (the subcommand, for `task ...` aliases) takes an option."""
    alias = ALIASES.get(name)
    if alias and len(alias.target) > 1 and isinstance(cmd, click.Group):
        cmd = cmd.commands.get(alias.target[1], cmd)
    opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    return lambda option: option in opts


class AliasCommand(click.Command):
    """Runs the translated invocations of our command, in order; exits with the worst
    exit code."""

    def __init__(self, name: str, resolve: Callable[[str], click.Command | None]):
        super().__init__(
            name,
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
            add_help_option=False,
            hidden=True,
        )
        self._resolve = resolve

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.args = list(args)
        return []

    def invoke(self, ctx: click.Context) -> int:
        name = self.name or ""
        cmd = self._resolve(ALIASES[name].target[0] if name in ALIASES else name)
        if cmd is None:
            raise click.UsageError(f"no such command: {name}")
        target, invocations, notes = translate(name, ctx.args, _accepts(cmd, name))
        for note in notes:
            click.echo(f"note: {note}", err=True)
        prefix = list(target[1:])
        worst = 0
        for argv in invocations:
            try:
                rv = cmd.main(
                    args=[*prefix, *argv],
                    prog_name=f"{ctx.find_root().info_name} {' '.join(target)}",
                    standalone_mode=False,
                    parent=ctx.parent,
                )
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            else:
                code = rv if isinstance(rv, int) else 0
            worst = max(worst, code)
        if worst:
            raise SystemExit(worst)
        return 0
