"""The built-in enrollment and exposure queries, one per `enrollments_query_type`, reading
the same tables and columns as mozanalysis (`Experiment._build_enrollments_query*`,
`_build_exposure_query*`). BigQuery dialect, pure.

`enrollment_rows_sql` gives one row per (analysis_id, branch) with the first enrollment date
and the number of enrollment events; `exposure_rows_sql` one row per exposed
(analysis_id, branch) of an enrolled-clients table, counting exposure events on or after
the client's enrollment date and carrying the enrolled branch.

Dates are the enrollment period as mozanalysis's TimeLimits has it: the start date through
the last enrollment date (start + enrollment_period). `sample_size` keeps the rows with
`sample_id < sample_size`, as mozanalysis does, for every built-in query but cirrus (which
mozanalysis does not sample); a custom `enrollment_query` is never sampled.
"""

from __future__ import annotations

import datetime as dt

from jetstream.config.model import ExperimentSettings, app_dataset
from jetstream.sql import literals as lit

NORMANDY = "normandy"
GLEAN_EVENT = "glean-event"
FENIX_FALLBACK = "fenix-fallback"
CIRRUS = "cirrus"
BACKGROUND_UPDATE = "background-update"
QUERY_TYPES = (NORMANDY, GLEAN_EVENT, FENIX_FALLBACK, CIRRUS, BACKGROUND_UPDATE)
CLIENT_ID = "client_id"
PROFILE_GROUP_ID = "profile_group_id"
ANALYSIS_UNITS = (CLIENT_ID, PROFILE_GROUP_ID)

DESKTOP_EVENTS = "`moz-fx-data-shared-prod.telemetry.events`"
BACKGROUND_UPDATE_EVENTS_STREAM = (
    "`moz-fx-data-shared-prod.firefox_desktop_background_update.events_stream`"
)
BACKGROUND_UPDATE_PINGS = "`mozdata.firefox_desktop_background_update.background_update`"
BACKGROUND_UPDATE_TOAST_EVENTS = "`mozdata.telemetry.events`"
FENIX_FALLBACK_DATASET = "org_mozilla_firefox"  # mozanalysis: app_id or org_mozilla_firefox


__all__ = ["app_dataset"]


class UnsupportedEnrollment(ValueError):
    pass


def _need_dataset(exp: ExperimentSettings, what: str) -> str:
    dataset = app_dataset(exp.app_id)
    if dataset is None:
        raise UnsupportedEnrollment(
            f"experiment {exp.slug}: the {what} query reads the app's Glean tables, but the "
            "experiment has no app_id (set it in Experimenter, or set [experiment] "
            "enrollment_query)"
        )
    return dataset


def _need_client_unit(exp: ExperimentSettings, what: str) -> None:
    if exp.analysis_unit != CLIENT_ID:
        raise UnsupportedEnrollment(
            f"experiment {exp.slug}: {what} enrollments support only analysis_unit "
            f"'client_id', not {exp.analysis_unit!r} (as in mozanalysis)"
        )


def _sample(exp: ExperimentSettings, column: str = "sample_id") -> str:
    # Jetstream passes `sample_size or None` and mozanalysis `sample_size or 100`: no
    # sample_size, 0 and 100 all mean every client
    if not exp.sample_size or exp.sample_size >= 100:
        return ""
    return f"\n  AND {column} < {int(exp.sample_size)}"


def _between(column: str, start: dt.date, last: dt.date) -> str:
    return f"{column} BETWEEN {lit.date(start)} AND {lit.date(last)}"


def enrollment_rows_sql(exp: ExperimentSettings, start: dt.date, last: dt.date) -> str:
    """(analysis_id, branch, enrollment_date, num_enrollment_events) per enrolled
    (analysis_id, branch) of the experiment's built-in query type."""
    kind = exp.enrollments_query_type
    slug = lit.string(exp.slug)
    if kind == NORMANDY:
        unit = PROFILE_GROUP_ID if exp.analysis_unit == PROFILE_GROUP_ID else CLIENT_ID
        return f"""SELECT {unit} AS analysis_id,
       mozfun.map.get_key(event_map_values, 'branch') AS branch,
       MIN(submission_date) AS enrollment_date,
       COUNT(submission_date) AS num_enrollment_events
FROM {DESKTOP_EVENTS}
WHERE event_category = 'normandy'
  AND event_method = 'enroll'
  AND {_between("submission_date", start, last)}
  AND event_string_value = {slug}{_sample(exp)}
GROUP BY 1, 2"""
    if kind == GLEAN_EVENT:
        _need_client_unit(exp, "glean-event")
        return _glean_events_stream(exp, _need_dataset(exp, "glean-event"), start, last)
    if kind == FENIX_FALLBACK:
        _need_client_unit(exp, "fenix-fallback")
        dataset = app_dataset(exp.app_id) or FENIX_FALLBACK_DATASET
        sample = _sample(exp, "b.sample_id")
        # ping_info.experiments of baseline pings, from a week before the start so that
        # clients already enrolled earlier are left out (HAVING)
        return f"""SELECT b.client_info.client_id AS analysis_id,
       mozfun.map.get_key(b.ping_info.experiments, {slug}).branch AS branch,
       DATE(MIN(b.submission_timestamp)) AS enrollment_date,
       COUNT(b.submission_date) AS num_enrollment_events
FROM `moz-fx-data-shared-prod.{dataset}.baseline` b
WHERE b.client_info.client_id IS NOT NULL
  AND {_between("DATE(b.submission_timestamp)", start - dt.timedelta(days=7), last)}
  AND mozfun.map.get_key(b.ping_info.experiments, {slug}).branch IS NOT NULL{sample}
GROUP BY 1, 2
HAVING enrollment_date >= {lit.date(start)}"""
    if kind == CIRRUS:
        _need_client_unit(exp, "cirrus")
        dataset = _need_dataset(exp, "cirrus")
        user = "mozfun.map.get_key(e.extra, 'nimbus_user_id')"
        return f"""SELECT {user} AS analysis_id,
       mozfun.map.get_key(e.extra, 'branch') AS branch,
       DATE(MIN(events.submission_timestamp)) AS enrollment_date,
       COUNT(events.submission_timestamp) AS num_enrollment_events
FROM `moz-fx-data-shared-prod.{dataset}.enrollment` events
CROSS JOIN UNNEST(events.events) AS e
WHERE {user} IS NOT NULL
  AND {_between("DATE(events.submission_timestamp)", start, last)}
  AND e.category = 'cirrus_events'
  AND mozfun.map.get_key(e.extra, 'experiment') = {slug}
  AND e.name = 'enrollment'
  AND events.client_info.app_channel = 'production'
GROUP BY 1, 2"""
    if kind == BACKGROUND_UPDATE:
        return _background_update(exp, start, last)
    raise UnsupportedEnrollment(
        f"experiment {exp.slug}: unknown enrollments_query_type {kind!r}; expected one of "
        + ", ".join(QUERY_TYPES)
    )


def _glean_events_stream(
    exp: ExperimentSettings, dataset: str, start: dt.date, last: dt.date
) -> str:
    return f"""SELECT client_id AS analysis_id,
       JSON_VALUE(event_extra, '$.branch') AS branch,
       DATE(MIN(submission_timestamp)) AS enrollment_date,
       COUNT(submission_timestamp) AS num_enrollment_events
FROM `moz-fx-data-shared-prod.{dataset}.events_stream`
WHERE client_id IS NOT NULL
  AND {_between("DATE(submission_timestamp)", start, last)}
  AND event_category = 'nimbus_events'
  AND JSON_VALUE(event_extra, '$.experiment') = {lit.string(exp.slug)}
  AND event_name = 'enrollment'{_sample(exp)}
GROUP BY 1, 2"""


def _background_update(exp: ExperimentSettings, start: dt.date, last: dt.date) -> str:
    """Background-update enrollments: the task's enrollment events, its pings'
    experiment annotations and the desktop notification toasts; each client's earliest."""
    slug = lit.string(exp.slug)
    toast = lit.string(exp.slug + ":")  # the toast's name is 'slug:branch'
    bu_id = "JSON_VALUE(metrics, '$.uuid.background_update_client_id')"
    return f"""SELECT analysis_id, branch, enrollment_date, num_enrollment_events
FROM (
    SELECT {bu_id} AS analysis_id,
           JSON_VALUE(event_extra, '$.branch') AS branch,
           MIN(DATE(submission_timestamp)) AS enrollment_date,
           COUNT(submission_timestamp) AS num_enrollment_events
    FROM {BACKGROUND_UPDATE_EVENTS_STREAM}
    WHERE {_between("DATE(submission_timestamp)", start, last)}
      AND event_category = 'nimbus_events'
      AND event_name = 'enrollment'
      AND JSON_VALUE(event_extra, '$.experiment') = {slug}
      AND {bu_id} IS NOT NULL{_sample(exp)}
    GROUP BY 1, 2
    UNION ALL
    SELECT m.metrics.uuid.background_update_client_id AS analysis_id,
           x.value.branch AS branch,
           MIN(DATE(m.submission_timestamp)) AS enrollment_date,
           1 AS num_enrollment_events
    FROM {BACKGROUND_UPDATE_PINGS} AS m
    CROSS JOIN UNNEST(m.ping_info.experiments) AS x
    WHERE {_between("DATE(m.submission_timestamp)", start, last)}
      AND x.key = {slug}{_sample(exp, "m.sample_id")}
    GROUP BY 1, 2
    UNION ALL
    SELECT client_id AS analysis_id,
           SPLIT(mozfun.map.get_key(event_map_values, 'name'), ':')[SAFE_OFFSET(1)] AS branch,
           MIN(submission_date) AS enrollment_date,
           COUNT(submission_date) AS num_enrollment_events
    FROM {BACKGROUND_UPDATE_TOAST_EVENTS}
    WHERE {_between("submission_date", start, last)}
      AND event_category = 'browser.launched_to_handle'
      AND event_method = 'system_notification'
      AND event_object = 'toast'
      AND STARTS_WITH(mozfun.map.get_key(event_map_values, 'name'), {toast}){_sample(exp)}
    GROUP BY 1, 2
)
QUALIFY ROW_NUMBER() OVER (
    PARTITION BY analysis_id ORDER BY enrollment_date, branch
) = 1"""


def exposure_rows_sql(
    exp: ExperimentSettings, enrolled_ref: str, start: dt.date, last: dt.date
) -> str:
    """(analysis_id, branch, exposure_date, num_exposure_events) for the clients of
    `enrolled_ref` (analysis_id, branch, enrollment_date) with an exposure event of their
    own branch on or after their enrollment date, within the enrollment period. The events
    are mozanalysis's: `expose` or `exposure`, by the query type's telemetry (Normandy
    events also for background-update)."""
    kind = exp.enrollments_query_type
    slug = lit.string(exp.slug)
    if kind in (NORMANDY, BACKGROUND_UPDATE):
        unit = PROFILE_GROUP_ID if exp.analysis_unit == PROFILE_GROUP_ID else CLIENT_ID
        events = f"""SELECT {unit} AS analysis_id,
           mozfun.map.get_key(event_map_values, 'branchSlug') AS branch,
           submission_date
    FROM {DESKTOP_EVENTS}
    WHERE event_category = 'normandy'
      AND event_method IN ('exposure', 'expose')
      AND {_between("submission_date", start, last)}
      AND event_string_value = {slug}"""
    elif kind in (GLEAN_EVENT, FENIX_FALLBACK):
        dataset = (
            _need_dataset(exp, "glean-event")
            if kind == GLEAN_EVENT
            else app_dataset(exp.app_id) or FENIX_FALLBACK_DATASET
        )
        events = f"""SELECT client_id AS analysis_id,
           JSON_VALUE(event_extra, '$.branch') AS branch,
           DATE(submission_timestamp) AS submission_date
    FROM `moz-fx-data-shared-prod.{dataset}.events_stream`
    WHERE {_between("DATE(submission_timestamp)", start, last)}
      AND event_category = 'nimbus_events'
      AND JSON_VALUE(event_extra, '$.experiment') = {slug}
      AND event_name IN ('expose', 'exposure')"""
    elif kind == CIRRUS:
        dataset = _need_dataset(exp, "cirrus")
        events = f"""SELECT mozfun.map.get_key(x.extra, 'nimbus_user_id') AS analysis_id,
           mozfun.map.get_key(x.extra, 'branch') AS branch,
           DATE(events.submission_timestamp) AS submission_date
    FROM `moz-fx-data-shared-prod.{dataset}.events` events
    CROSS JOIN UNNEST(events.events) AS x
    WHERE {_between("DATE(events.submission_timestamp)", start, last)}
      AND x.category = 'cirrus_events'
      AND mozfun.map.get_key(x.extra, 'experiment') = {slug}
      AND x.name IN ('expose', 'exposure')"""
    else:
        raise UnsupportedEnrollment(
            f"experiment {exp.slug}: unknown enrollments_query_type {kind!r}"
        )
    return f"""SELECT c.analysis_id, c.branch,
       MIN(x.submission_date) AS exposure_date,
       COUNT(x.submission_date) AS num_exposure_events
FROM {enrolled_ref} c
JOIN (
    {events}
) x
  ON x.analysis_id = c.analysis_id
 AND x.branch = c.branch
 AND x.submission_date >= c.enrollment_date
GROUP BY 1, 2"""
