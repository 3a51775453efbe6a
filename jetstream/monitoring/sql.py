"""BigQuery SQL of the monitoring jobs. Pure: strings in, strings out, no I/O.

Raw inputs (the live stream; shapes of `jetstream.synthetic.tables`):

- events table (`telemetry.events_live`): event_timestamp, submission_timestamp, client_id,
  experiment, branch, event_type (enroll, unenroll, graduate, update, enroll_failed,
  unenroll_failed, update_failed; anything else counts as `other`).
- search table (`telemetry.search_live`): window_start (5-minute window, event time),
  submission_timestamp, client_id, searches, searches_with_ads, ad_clicks.

Aggregates, one table family per kind, each in three layers `<kind>_daily`,
`<kind>_hourly`, `<kind>_recents` (see `KINDS`), keyed by event time `window_start`
(the 5-minute window):

- enrollment: experiment, branch, event_type, event_count
- search: experiment, branch, search_count, search_with_ads_count, ad_clicks_count, counted
  for clients enrolled in the experiment (first `enroll` event before the window ends), in
  the branch of their first enrollment
- first_enrollment: experiment, branch, client_id: a client's first enroll window within
  the partition (hour or day); the minimum over the live view is its first enrollment
- active: experiment, branch, client_id: an enrolled client's first window of activity
  (any live event or search row, after enrolling) within the partition (hour or day)

Every statement that writes takes its interval and run time as literals (the warehouse's
`transaction` takes no parameters); `literal_*` quote them safely.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

from jetstream.monitoring.schedule import Interval

EVENT_TYPES = (
    "enroll",
    "unenroll",
    "graduate",
    "update",
    "enroll_failed",
    "unenroll_failed",
    "update_failed",
)
OTHER = "other"
LAYERS = ("daily", "hourly", "recents")

# kind -> (column, BigQuery type) after window_start
KINDS: dict[str, tuple[tuple[str, str], ...]] = {
    "enrollment": (
        ("experiment", "STRING"),
        ("branch", "STRING"),
        ("event_type", "STRING"),
        ("event_count", "INT64"),
    ),
    "search": (
        ("experiment", "STRING"),
        ("branch", "STRING"),
        ("search_count", "INT64"),
        ("search_with_ads_count", "INT64"),
        ("ad_clicks_count", "INT64"),
    ),
    "first_enrollment": (
        ("experiment", "STRING"),
        ("branch", "STRING"),
        ("client_id", "STRING"),
    ),
    "active": (
        ("experiment", "STRING"),
        ("branch", "STRING"),
        ("client_id", "STRING"),
    ),
}

# Derived tables: name -> column of the summary that holds its value.
DERIVED: dict[str, str] = {
    "experiment_enrollment_overall": "enroll",
    "experiment_unenrollment_overall": "unenroll",
    "experiment_enrollment_other_events_overall": "other_events",
    "experiment_enrollment_cumulative_population_estimate": "cumulative_population_estimate",
    "experiment_enrollment_daily_active_population": "daily_active_population",
    "experiment_cumulative_ad_clicks": "cumulative_ad_clicks",
    "experiment_cumulative_search_count": "cumulative_search_count",
    "experiment_cumulative_search_with_ads_count": "cumulative_search_with_ads_count",
}
DERIVED_COLUMNS = (("time", "TIMESTAMP"), ("branch", "STRING"), ("experiment", "STRING"),
                   ("value", "INT64"))  # fmt: skip
COVERAGE_COLUMNS = (
    ("job", "STRING"),
    ("interval_start", "TIMESTAMP"),
    ("interval_end", "TIMESTAMP"),
    ("run_at", "TIMESTAMP"),
)

_SAFE_TEXT = re.compile(r"^[^'\\\n\r]*$")


# -- literals -------------------------------------------------------------------------------


def literal_string(value: str) -> str:
    if not _SAFE_TEXT.match(value):
        raise ValueError(f"refusing to quote {value!r}: quotes, backslashes or newlines")
    return f"'{value}'"


def literal_timestamp(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    utc = value.astimezone(dt.UTC)
    return f"TIMESTAMP '{utc.strftime('%Y-%m-%d %H:%M:%S.%f')}+00'"


def literal_list(values: Iterable[str]) -> str:
    items = [literal_string(v) for v in values]
    if not items:
        raise ValueError("an empty list of values cannot be written as SQL")
    return "(" + ", ".join(items) + ")"


# -- names ----------------------------------------------------------------------------------


def table_name(prefix: str, kind: str, layer: str) -> str:
    if kind not in KINDS or layer not in LAYERS:
        raise ValueError(f"unknown monitoring table {kind!r}/{layer!r}")
    return f"{prefix}{kind}_{layer}"


def coverage_table(prefix: str) -> str:
    return f"{prefix}coverage"


def summary_table(prefix: str) -> str:
    return f"{prefix}summary"


def window_of(column: str) -> str:
    """The start of the 5-minute window holding a TIMESTAMP (floor, sub-second exact)."""
    return (
        f"TIMESTAMP_ADD(TIMESTAMP_TRUNC({column}, HOUR), "
        f"INTERVAL DIV(EXTRACT(MINUTE FROM {column}), 5) * 5 MINUTE)"
    )


# -- DDL ------------------------------------------------------------------------------------


def _columns_sql(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{name} {kind}" for name, kind in columns)


def create_aggregate_table(ref: str, kind: str, layer: str) -> str:
    partition = {
        "daily": " PARTITION BY DATE(window_start)",
        "hourly": " PARTITION BY TIMESTAMP_TRUNC(window_start, HOUR)",
        "recents": "",
    }[layer]
    columns = (("window_start", "TIMESTAMP"), *KINDS[kind])
    return (
        f"CREATE TABLE IF NOT EXISTS {ref} ({_columns_sql(columns)}){partition} "
        "CLUSTER BY experiment"
    )


def create_table(ref: str, columns: Sequence[tuple[str, str]]) -> str:
    return f"CREATE TABLE IF NOT EXISTS {ref} ({_columns_sql(columns)})"


# -- aggregates over an interval ------------------------------------------------------------


def _enrolled_cte(
    events: str, slugs: Sequence[str], history_from: dt.datetime, interval: Interval,
    at: dt.datetime,
) -> str:  # fmt: skip
    """Each client's first enroll event per experiment known at `at`, before the interval
    ends: experiment, client_id, branch, enrolled_at."""
    return f"""enrolled AS (
  SELECT experiment, client_id, branch, enrolled_at
  FROM (
    SELECT experiment, client_id, branch, event_timestamp AS enrolled_at,
      ROW_NUMBER() OVER (
        PARTITION BY experiment, client_id ORDER BY event_timestamp, branch
      ) AS _rank
    FROM {events}
    WHERE event_type = 'enroll'
      AND experiment IN {literal_list(slugs)}
      AND submission_timestamp >= {literal_timestamp(history_from)}
      AND submission_timestamp <= {literal_timestamp(at)}
      AND event_timestamp < {literal_timestamp(interval.end)}
  )
  WHERE _rank = 1
)"""


def _in_interval(column: str, interval: Interval) -> str:
    return (
        f"{column} >= {literal_timestamp(interval.start)} "
        f"AND {column} < {literal_timestamp(interval.end)}"
    )


def _arrived(interval: Interval, at: dt.datetime, clock_skew: dt.timedelta) -> str:
    """Submission bounds: what had arrived by `at`; the lower bound prunes partitions (an
    event cannot arrive before it happened, give or take the clients' clock skew)."""
    return (
        f"submission_timestamp >= {literal_timestamp(interval.start - clock_skew)} "
        f"AND submission_timestamp <= {literal_timestamp(at)}"
    )


def _bucket(layer: str, column: str) -> str:
    """The partition grain of client-level rows: the hour, or the day for `daily`."""
    return f"DATE({column})" if layer == "daily" else f"TIMESTAMP_TRUNC({column}, HOUR)"


def enrollment_select(
    events: str, slugs: Sequence[str], interval: Interval, at: dt.datetime,
    clock_skew: dt.timedelta,
) -> str:  # fmt: skip
    known = literal_list(EVENT_TYPES)
    return f"""SELECT
  {window_of("event_timestamp")} AS window_start,
  experiment,
  branch,
  CASE WHEN event_type IN {known} THEN event_type ELSE '{OTHER}' END AS event_type,
  COUNT(*) AS event_count
FROM {events}
WHERE {_in_interval("event_timestamp", interval)}
  AND {_arrived(interval, at, clock_skew)}
  AND experiment IN {literal_list(slugs)}
GROUP BY window_start, experiment, branch, event_type"""


def search_select(
    events: str, search: str, slugs: Sequence[str], interval: Interval, at: dt.datetime,
    history_from: dt.datetime, clock_skew: dt.timedelta,
) -> str:  # fmt: skip
    return f"""WITH {_enrolled_cte(events, slugs, history_from, interval, at)},
searches AS (
  SELECT {window_of("window_start")} AS window_start, client_id, searches,
    searches_with_ads, ad_clicks
  FROM {search}
  WHERE {_in_interval("window_start", interval)}
    AND {_arrived(interval, at, clock_skew)}
)
SELECT
  s.window_start,
  e.experiment,
  e.branch,
  SUM(COALESCE(s.searches, 0)) AS search_count,
  SUM(COALESCE(s.searches_with_ads, 0)) AS search_with_ads_count,
  SUM(COALESCE(s.ad_clicks, 0)) AS ad_clicks_count
FROM searches AS s
JOIN enrolled AS e
  ON e.client_id = s.client_id
  AND e.enrolled_at < TIMESTAMP_ADD(s.window_start, INTERVAL 5 MINUTE)
GROUP BY s.window_start, e.experiment, e.branch"""


def first_enrollment_select(
    events: str, slugs: Sequence[str], interval: Interval, at: dt.datetime, layer: str,
    clock_skew: dt.timedelta,
) -> str:  # fmt: skip
    return f"""SELECT window_start, experiment, branch, client_id
FROM (
  SELECT
    {window_of("event_timestamp")} AS window_start,
    experiment,
    branch,
    client_id,
    ROW_NUMBER() OVER (
      PARTITION BY experiment, client_id, {_bucket(layer, "event_timestamp")}
      ORDER BY event_timestamp, branch
    ) AS _rank
  FROM {events}
  WHERE event_type = 'enroll'
    AND {_in_interval("event_timestamp", interval)}
    AND {_arrived(interval, at, clock_skew)}
    AND experiment IN {literal_list(slugs)}
)
WHERE _rank = 1"""


def active_select(
    events: str, search: str, slugs: Sequence[str], interval: Interval, at: dt.datetime,
    layer: str, history_from: dt.datetime, clock_skew: dt.timedelta,
) -> str:  # fmt: skip
    return f"""WITH {_enrolled_cte(events, slugs, history_from, interval, at)},
activity AS (
  SELECT {window_of("event_timestamp")} AS window_start, client_id
  FROM {events}
  WHERE {_in_interval("event_timestamp", interval)} AND {_arrived(interval, at, clock_skew)}
  UNION ALL
  SELECT {window_of("window_start")} AS window_start, client_id
  FROM {search}
  WHERE {_in_interval("window_start", interval)} AND {_arrived(interval, at, clock_skew)}
)
SELECT MIN(a.window_start) AS window_start, e.experiment, e.branch, a.client_id
FROM activity AS a
JOIN enrolled AS e
  ON e.client_id = a.client_id
  AND e.enrolled_at < TIMESTAMP_ADD(a.window_start, INTERVAL 5 MINUTE)
GROUP BY e.experiment, e.branch, a.client_id, {_bucket(layer, "a.window_start")}"""


def recents_filter(uncovered_hours: Sequence[dt.datetime], column: str = "window_start") -> str:
    """Keep rows in the given hours only (recents: what neither daily nor hourly covers)."""
    if not uncovered_hours:
        return "FALSE"
    hours = ", ".join(literal_timestamp(h) for h in uncovered_hours)
    return f"TIMESTAMP_TRUNC({column}, HOUR) IN ({hours})"


# -- the live view: daily > hourly > recents -------------------------------------------------


def live_select(prefix: str, kind: str, ref: dict[str, str], coverage: str) -> str:
    """Union of the three layers of one kind; each 5-minute window comes from exactly one:
    the daily layer if its day is final, else the hourly layer if its hour is
    materialized, else recents. `ref` maps layer -> table reference."""
    cols = ", ".join(["window_start", *(c for c, _ in KINDS[kind])])
    daily_days = f"(SELECT DATE(interval_start) FROM {coverage} WHERE job = 'daily')"
    hourly_hours = f"(SELECT interval_start FROM {coverage} WHERE job = 'hourly')"
    return f"""SELECT {cols} FROM {ref["daily"]}
  UNION ALL
  SELECT {cols} FROM {ref["hourly"]}
  WHERE DATE(window_start) NOT IN {daily_days}
  UNION ALL
  SELECT {cols} FROM {ref["recents"]}
  WHERE DATE(window_start) NOT IN {daily_days}
    AND TIMESTAMP_TRUNC(window_start, HOUR) NOT IN {hourly_hours}"""


# -- derived tables -------------------------------------------------------------------------


def summary_select(
    live: dict[str, str],
    grids: Sequence[tuple[str, dt.datetime, dt.datetime]],
    branches: Sequence[tuple[str, str]],
) -> str:
    """One row per experiment, branch and 5-minute window of its grid (first and last window
    start, inclusive) with every derived value. `live` maps kind -> live SELECT.
    `branches` are the configured (experiment, branch) pairs; branches seen in the data are
    added."""
    slugs = literal_list(g[0] for g in grids)
    bounds = "\n    UNION ALL ".join(
        f"SELECT {literal_string(slug)} AS experiment, {literal_timestamp(first)} AS first_window, "
        f"{literal_timestamp(last)} AS last_window"
        for slug, first, last in grids
    )
    configured = (
        " UNION ALL ".join(
            f"SELECT {literal_string(e)} AS experiment, {literal_string(b)} AS branch"
            for e, b in branches
        )
        or "SELECT CAST(NULL AS STRING) AS experiment, CAST(NULL AS STRING) AS branch"
    )
    running = "OVER (PARTITION BY experiment, branch ORDER BY time ROWS UNBOUNDED PRECEDING)"
    daily = (
        "OVER (PARTITION BY experiment, branch, DATE(time) ORDER BY time ROWS UNBOUNDED PRECEDING)"
    )
    return f"""WITH
bounds AS (
    {bounds}
),
branch_list AS (
  SELECT DISTINCT experiment, branch FROM (
    {configured}
    UNION ALL
    SELECT experiment, branch FROM ({live["enrollment"]})
    WHERE experiment IN {slugs} AND branch IS NOT NULL
  )
  WHERE experiment IS NOT NULL
),
grid AS (
  SELECT b.experiment, l.branch, time
  FROM bounds AS b
  JOIN branch_list AS l ON l.experiment = b.experiment
  CROSS JOIN UNNEST(GENERATE_TIMESTAMP_ARRAY(b.first_window, b.last_window,
    INTERVAL 5 MINUTE)) AS time
),
enrollment AS (
  SELECT window_start AS time, experiment, branch,
    SUM(IF(event_type = 'enroll', event_count, 0)) AS enroll,
    SUM(IF(event_type = 'unenroll', event_count, 0)) AS unenroll,
    SUM(IF(event_type = 'graduate', event_count, 0)) AS graduate,
    SUM(IF(event_type NOT IN ('enroll', 'unenroll'), event_count, 0)) AS other_events
  FROM ({live["enrollment"]})
  WHERE experiment IN {slugs}
  GROUP BY time, experiment, branch
),
search AS (
  SELECT window_start AS time, experiment, branch,
    SUM(search_count) AS search_count,
    SUM(search_with_ads_count) AS search_with_ads_count,
    SUM(ad_clicks_count) AS ad_clicks
  FROM ({live["search"]})
  WHERE experiment IN {slugs}
  GROUP BY time, experiment, branch
),
active AS (
  SELECT first_active AS time, experiment, branch, COUNT(*) AS newly_active
  FROM (
    SELECT experiment, branch, client_id, MIN(window_start) AS first_active
    FROM ({live["active"]})
    WHERE experiment IN {slugs}
    GROUP BY experiment, branch, client_id, DATE(window_start)
  )
  GROUP BY time, experiment, branch
),
joined AS (
  SELECT g.time, g.experiment, g.branch,
    COALESCE(n.enroll, 0) AS enroll,
    COALESCE(n.unenroll, 0) AS unenroll,
    COALESCE(n.graduate, 0) AS graduate,
    COALESCE(n.other_events, 0) AS other_events,
    COALESCE(s.search_count, 0) AS search_count,
    COALESCE(s.search_with_ads_count, 0) AS search_with_ads_count,
    COALESCE(s.ad_clicks, 0) AS ad_clicks,
    COALESCE(a.newly_active, 0) AS newly_active
  FROM grid AS g
  LEFT JOIN enrollment AS n
    ON n.time = g.time AND n.experiment = g.experiment AND n.branch = g.branch
  LEFT JOIN search AS s
    ON s.time = g.time AND s.experiment = g.experiment AND s.branch = g.branch
  LEFT JOIN active AS a
    ON a.time = g.time AND a.experiment = g.experiment AND a.branch = g.branch
)
SELECT time, experiment, branch, enroll, unenroll, other_events,
  SUM(enroll - unenroll - graduate) {running} AS cumulative_population_estimate,
  SUM(newly_active) {daily} AS daily_active_population,
  SUM(ad_clicks) {running} AS cumulative_ad_clicks,
  SUM(search_count) {running} AS cumulative_search_count,
  SUM(search_with_ads_count) {running} AS cumulative_search_with_ads_count
FROM joined"""


def first_enrollment_counts_select(live_first_enrollment: str, slugs: Sequence[str]) -> str:
    """Distinct enrolled clients by the window of their first enrollment: experiment,
    branch, window_start, clients."""
    return f"""SELECT experiment, branch, window_start, COUNT(*) AS clients
FROM (
  SELECT experiment, client_id, branch, window_start,
    ROW_NUMBER() OVER (
      PARTITION BY experiment, client_id ORDER BY window_start, branch
    ) AS _rank
  FROM ({live_first_enrollment})
  WHERE experiment IN {literal_list(slugs)}
)
WHERE _rank = 1
GROUP BY experiment, branch, window_start"""


def recent_enrollments_select(
    live_enrollment: str, slugs: Sequence[str], start: dt.datetime, end: dt.datetime
) -> str:
    return f"""SELECT experiment, SUM(event_count) AS enrollments
FROM ({live_enrollment})
WHERE event_type = 'enroll'
  AND experiment IN {literal_list(slugs)}
  AND window_start >= {literal_timestamp(start)}
  AND window_start < {literal_timestamp(end)}
GROUP BY experiment"""
