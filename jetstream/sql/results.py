"""Every statement on the result tables: DDL, the row-per-metric insert, the one builder of
"delete these result rows" (per unit, per basis, removed metrics, dropped windows), the
pivot views, and the error rows. BigQuery dialect, pure: strings only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jetstream.sql import literals as lit

Columns = tuple[tuple[str, str], ...]  # (name, BigQuery type)

# the column naming the metric of a row, per result table
METRICS_METRIC_COLUMN = "metric_slug"
STATISTICS_METRIC_COLUMN = "metric"
NONE = "''"  # the IN list of no values (matches no metric slug)


def create_table_sql(ref: str, columns: Columns) -> str:
    """Column names are backtick-quoted: `window` is a reserved word in GoogleSQL."""
    cols = ", ".join(f"`{name}` {typ}" for name, typ in columns)
    return f"CREATE TABLE IF NOT EXISTS {ref} ({cols})"


def _values(column: str, values: Sequence[str]) -> str:
    """`column = 'v'` for one value, else `column IN (...)`."""
    if len(values) == 1:
        return f"{column} = {lit.string(values[0])}"
    return f"{column} IN ({lit.strings(values) or NONE})"


def delete_rows_sql(
    table_ref: str,
    *,
    metric_column: str = METRICS_METRIC_COLUMN,
    period: str | None = None,
    window_index: int | None = None,
    windows_from: int | None = None,
    data_source: str | None = None,
    bases: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    keep_metrics: Sequence[str] | None = None,
) -> str:
    """DELETE the rows of a result table matching every filter given (none: every row).

    `metrics` deletes the rows of those metrics (an empty list matches none), `keep_metrics`
    every other metric's rows (an empty list: every row of the other filters);
    `windows_from` the windows from that index on; `metric_column` names the metric column
    (`metric_slug` in metrics tables, `metric` in statistics tables)."""
    where: list[str] = []
    if period is not None:
        where.append(f"period = {lit.string(period)}")
    if window_index is not None:
        where.append(f"window_index = {int(window_index)}")
    if windows_from is not None:
        where.append(f"window_index >= {int(windows_from)}")
    if data_source is not None:
        where.append(f"data_source = {lit.string(data_source)}")
    if bases is not None:
        where.append(_values("analysis_basis", list(bases)))
    if metrics is not None:
        where.append(f"{metric_column} IN ({lit.strings(metrics) or NONE})")
    if keep_metrics is not None:
        where.append(f"{metric_column} NOT IN ({lit.strings(keep_metrics) or NONE})")
    return f"DELETE FROM {table_ref} WHERE " + (" AND ".join(where) or "TRUE")


def cleanup_sql(
    tables: Sequence[tuple[str, str]],
    removed: Mapping[str, Sequence[str]],
    windows_from: Mapping[str, int],
) -> list[str]:
    """The rows of removed metrics (period -> metric slugs) and of dropped windows (period
    -> first window index) in each of `tables` ((reference, metric column) pairs)."""
    out = [
        delete_rows_sql(ref, metric_column=column, period=period, metrics=names)
        for period, names in removed.items()
        for ref, column in tables
    ]
    out += [
        delete_rows_sql(ref, metric_column=column, period=period, windows_from=first)
        for period, first in windows_from.items()
        for ref, column in tables
    ]
    return out


def removed_metrics_sql(
    metrics_ref: str,
    statistics_ref: str,
    analysed: Mapping[str, Sequence[str]],
    identity: str,
) -> list[str]:
    """Per period (period -> the metric slugs analysed in it, every period listed), the
    rows of every other metric; the statistics' `identity` rows stay while the period
    analyses some metric."""
    out = []
    for period, names in analysed.items():
        out.append(delete_rows_sql(metrics_ref, period=period, keep_metrics=names))
        out.append(
            delete_rows_sql(
                statistics_ref,
                metric_column=STATISTICS_METRIC_COLUMN,
                period=period,
                keep_metrics=[*names, identity] if names else [],
            )
        )
    return out


def to_float(column: str, sql_type: str) -> str:
    """A wide column as FLOAT64 (BigQuery cannot CAST BOOL to FLOAT64 directly)."""
    t = sql_type.upper()
    if t.startswith("BOOL"):
        return f"IF({column} IS NULL, NULL, IF({column}, 1.0, 0.0))"
    return f"CAST({column} AS FLOAT64)"


def insert_metric_rows_sql(
    metrics_ref: str,
    staging_ref: str,
    column_types: Mapping[str, str],
    metric_names: Sequence[str],
    *,
    basis: str,
    period: str,
    window_index: int,
    window_start: int,
    window_end: int,
    data_source: str,
    hashes: Mapping[str, str],
) -> str:
    """Unpivot a wide staging table into row-per-metric inserts."""
    parts = []
    for name in metric_names:
        col = lit.ident(name)
        parts.append(
            f"""SELECT analysis_id, branch, {lit.string(basis)} AS analysis_basis,
       {lit.string(period)} AS period, {int(window_index)} AS window_index,
       {int(window_start)} AS window_start, {int(window_end)} AS window_end,
       {lit.string(data_source)} AS data_source, {lit.string(name)} AS metric_slug,
       {to_float(col, column_types.get(name, "FLOAT64"))} AS metric_value,
       {lit.string(hashes.get(name, ""))} AS definition_hash
FROM {staging_ref}"""
        )
    union = "\nUNION ALL\n".join(parts)
    return f"INSERT INTO {metrics_ref}\n{union}"


def copy_rows_sql(ref: str, source_ref: str, columns: Columns) -> str:
    """Insert every row of `source_ref` (a staging table with `columns`) into `ref`."""
    cols = ", ".join(name for name, _ in columns)
    return f"INSERT INTO {ref} ({cols}) SELECT {cols} FROM {source_ref}"


def select_all_sql(ref: str) -> str:
    return f"SELECT * FROM {ref}"


def pivot_view_sql(metrics_ref: str, metric_names: Sequence[str], period: str) -> str:
    """One row per client, basis and window of a period, one column per metric."""
    cols = ",\n       ".join(
        f"MAX(IF(metric_slug = {lit.string(n)}, metric_value, NULL)) AS {lit.ident(n)}"
        for n in metric_names
    )
    return f"""SELECT analysis_id, branch, analysis_basis, window_index, window_start, window_end,
       {cols}
FROM {metrics_ref}
WHERE period = {lit.string(period)}
GROUP BY analysis_id, branch, analysis_basis, window_index, window_start, window_end"""


def create_view_sql(
    view_ref: str, metrics_ref: str, metric_names: Sequence[str], period: str
) -> str:
    body = pivot_view_sql(metrics_ref, metric_names, period)
    return f"CREATE OR REPLACE VIEW {view_ref} AS\n{body}"


# -- error rows --------------------------------------------------------------------------


def delete_errors_sql(
    errors_ref: str,
    experiment: str,
    period: str | None,
    window: int | None,
    data_source: str | None,
) -> str:
    """The error rows of one unit (NULL keys match NULL)."""
    where = [f"experiment = {lit.string(experiment)}"]
    for col, value in (("period", period), ("data_source", data_source)):
        where.append(f"{col} = {lit.string(value)}" if value is not None else f"{col} IS NULL")
    where.append(f"`window` = {int(window)}" if window is not None else "`window` IS NULL")
    return f"DELETE FROM {errors_ref} WHERE " + " AND ".join(where)


def insert_errors_sql(
    errors_ref: str, columns: Columns, rows: Sequence[Mapping[str, Any]]
) -> str | None:
    """Insert error rows (dicts by column name); None without rows."""
    if not rows:
        return None
    values = []
    for r in rows:
        vals = []
        for name, typ in columns:
            v = r.get(name)
            if v is None:
                vals.append(f"CAST(NULL AS {typ})")
            elif typ == "INT64":
                vals.append(str(int(v)))
            elif typ == "TIMESTAMP":
                vals.append(f"TIMESTAMP '{v.strftime('%Y-%m-%d %H:%M:%S')}+00'")
            else:
                vals.append(lit.string(str(v)))
        values.append("SELECT " + ", ".join(vals))
    cols = ", ".join(f"`{name}`" for name, _ in columns)
    return f"INSERT INTO {errors_ref} ({cols})\n" + "\nUNION ALL\n".join(values)


def ensure_errors_table_sql(ref: str, columns: Columns, added: Columns) -> list[str]:
    """Create the errors table, and add the `added` columns to one that predates them."""
    return [create_table_sql(ref, columns)] + [
        f"ALTER TABLE {ref} ADD COLUMN IF NOT EXISTS {lit.ident(name)} {typ}" for name, typ in added
    ]


def experiment_errors_sql(errors_ref: str, experiment: str) -> str:
    """An experiment's error rows, oldest first."""
    return (
        f"SELECT * FROM {errors_ref} WHERE experiment = {lit.string(experiment)} ORDER BY timestamp"
    )
