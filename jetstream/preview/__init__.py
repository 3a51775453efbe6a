"""`jetstream preview`: run a config on a small sample, cheaply, before merging it.

The preview reuses the engine unchanged: the task bodies (`ensure_enrollments`,
`run_metrics_unit`, `run_export`) run in-process against a *recording* warehouse that puts
every table of the run in a scratch location (a DuckDB schema or a BigQuery dataset with
7-day table expiration), estimates each statement's bytes before it runs (refusing to pass
`--max-bytes` without `--yes`), and writes each statement to a numbered `.sql` file.

Modules: `dates` (which days to analyse, pure), `population` (sampling and generated
populations as spec changes, pure), `cost` (byte estimates, prices, expiration),
`scratch` (where tables go; registry and cleanup), `recording` (the warehouse proxy),
`sources` (config file / repo / experiment record -> spec), `run` (the whole preview).
"""

from jetstream.preview.dates import PreviewDates, preview_dates

__all__ = ["PreviewDates", "preview_dates"]
