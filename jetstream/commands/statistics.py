"""`jetstream statistics compute`: one statistic over a per-client parquet file (ad hoc)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from jetstream import nesting
from jetstream.errors import JetstreamError


@click.group(name="statistics")
def group() -> None:
    """Compute statistics on per-client data (ad hoc)."""


def _read_parquet(path: Path) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        return {
            name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names
        }
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise click.BadParameter(
            f"{path} cannot be read as a parquet file: {exc}", param_hint="--input"
        ) from None


def _pre_treatments(text: str) -> list[tuple[str, dict]]:
    """`--pre-treatments`: a JSON list of [name, {args}] pairs (or bare names)."""
    hint = 'a JSON list of [name, {args}] pairs, e.g. [["remove_nulls", {}]]'
    try:
        items = nesting.loads_json(text, "--pre-treatments")
    except ValueError as exc:
        raise click.BadParameter(f"--pre-treatments: {exc}") from exc
    if not isinstance(items, list):
        raise click.BadParameter(f"--pre-treatments: must be {hint}")
    out: list[tuple[str, dict]] = []
    for item in items:
        if isinstance(item, str):
            item = [item, {}]
        if (
            not isinstance(item, list)
            or len(item) not in (1, 2)
            or not isinstance(item[0], str)
            or not isinstance(item[-1] if len(item) == 2 else {}, dict | None)
        ):
            raise click.BadParameter(f"--pre-treatments: {item!r} is not [name, {{args}}]; {hint}")
        out.append((item[0], dict(item[1] or {}) if len(item) == 2 else {}))
    return out


@group.command("compute")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Per-client parquet file with a 'branch' column.",
)
@click.option("--metric", required=True, help="Column with the metric's values.")
@click.option("--statistic", required=True, help="Statistic name, e.g. bootstrap_mean.")
@click.option(
    "--params", "params_json", default="{}", help="Statistic parameters as a JSON object."
)
@click.option("--covariate", default=None, help="Covariate column (linear models).")
@click.option(
    "--reference-branch",
    default=None,
    help="Compare only against this branch (default: every branch in turn).",
)
@click.option(
    "--pre-treatments",
    "pre_json",
    default="[]",
    help='JSON list of [name, {args}] pairs, e.g. [["remove_nulls", {}]].',
)
@click.option(
    "--seed", default=0, type=int, show_default=True, help="Seed of the Monte Carlo draws."
)
@click.option(
    "--analysis-period-days",
    default=1,
    type=int,
    show_default=True,
    help="Days in the analysis window (normalize_over_analysis_period).",
)
@click.option(
    "--segment", default="all", show_default=True, help="Value of the segment column in the output."
)
@click.option(
    "--analysis-basis",
    default="enrollments",
    show_default=True,
    help="Value of the analysis_basis column in the output.",
)
@click.option(
    "--window-index",
    default="1",
    show_default=True,
    help="Value of the window_index column in the output.",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the rows (JSON array).",
)
def compute(
    input_path: Path,
    metric: str,
    statistic: str,
    params_json: str,
    covariate: str | None,
    reference_branch: str | None,
    pre_json: str,
    seed: int,
    analysis_period_days: int,
    segment: str,
    analysis_basis: str,
    window_index: str,
    out_path: Path,
) -> None:
    """Compute one statistic and write its rows as JSON (the published row shape).
    Problems are printed to stderr; the exit code is 1 if any is an error."""
    import attrs

    from jetstream.logs import get_logger
    from jetstream.statistics import SummaryRequest, summarise

    try:
        params = nesting.loads_json(params_json, "--params")
        if not isinstance(params, dict):
            raise ValueError("must be a JSON object")
    except ValueError as exc:
        raise click.BadParameter(f"--params: {exc}") from exc
    pre = _pre_treatments(pre_json)

    table = _read_parquet(input_path)
    rows, errors = summarise(
        SummaryRequest(
            table,
            metric,
            statistic,
            params=params,
            pre_treatments=pre,
            covariate=covariate,
            reference_branch=reference_branch,
            seed=seed,
            analysis_period_days=analysis_period_days,
        )
    )
    rows = [
        attrs.evolve(r, segment=segment, analysis_basis=analysis_basis, window_index=window_index)
        for r in rows
    ]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps([r.to_dict() for r in rows], indent=1) + "\n")
    log = get_logger("jetstream.statistics")
    for e in errors:
        (log.error if e.level == "error" else log.warning)(
            e.message, metric=e.metric, statistic=e.statistic
        )
    log.info("statistics written", rows=len(rows), out=str(out_path))
    failed = [e for e in errors if e.level == "error"]
    if failed:
        # JetstreamError maps to exit code 1 (findings) in jetstream.cli.main.
        raise JetstreamError(f"{len(failed)} statistic error(s): {failed[0].message}")
