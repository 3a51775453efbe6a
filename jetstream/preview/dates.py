"""Which days a preview analyses. Pure.

Terms: enrollment runs from `start`; `last_enrollment` is its last day, start +
`enrollment_period` as the engine has it (Jetstream's num_dates_enrollment =
enrollment_period + 1, `ExperimentSettings.last_enrollment_date`); analysis windows then run through `end` (`num_days` days of analysis from the last
enrollment day: the day windows 1..num_days).

Defaults (nothing given): `end` is the earlier of yesterday and the last date with
telemetry, and the analysis covers `num_days` (3) days ending there.
"""

from __future__ import annotations

import datetime as dt

import attrs

DEFAULT_NUM_DAYS = 3
DEFAULT_ENROLLMENT_PERIOD = 3


@attrs.frozen
class PreviewDates:
    start: dt.date
    enrollment_period: int
    end: dt.date

    @property
    def last_enrollment(self) -> dt.date:
        return self.start + dt.timedelta(days=self.enrollment_period)

    @property
    def num_days(self) -> int:
        return (self.end - self.last_enrollment).days + 1

    @property
    def analysis_dates(self) -> list[dt.date]:
        """The data dates on which windows close: last enrollment day through `end`."""
        return [self.last_enrollment + dt.timedelta(days=i) for i in range(self.num_days)]

    def describe(self) -> str:
        return (
            f"enrollment {self.start} .. {self.last_enrollment} "
            f"({self.enrollment_period} + 1 days), "
            f"analysis through {self.end} ({self.num_days} days)"
        )


def preview_dates(
    today: dt.date,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    num_days: int | None = None,
    enrollment_period: int | None = None,
    last_telemetry: dt.date | None = None,
) -> PreviewDates:
    """Resolve the preview's dates from what was given. Raises ValueError naming the
    option when they contradict each other."""
    period = DEFAULT_ENROLLMENT_PERIOD if enrollment_period is None else enrollment_period
    if period < 1:
        raise ValueError(f"--enrollment-period must be at least 1 day, got {period}")
    if num_days is not None and num_days < 1:
        raise ValueError(f"--num-days must be at least 1, got {num_days}")
    if start is not None and end is not None:
        if num_days is not None:
            raise ValueError("give at most two of --start-date, --end-date and --num-days")
        out = PreviewDates(start, period, end)
    elif start is not None:
        days = num_days or DEFAULT_NUM_DAYS
        last = start + dt.timedelta(days=period)
        out = PreviewDates(start, period, last + dt.timedelta(days=days - 1))
    else:
        if end is None:
            end = today - dt.timedelta(days=1)
            if last_telemetry is not None:
                end = min(end, last_telemetry)
        days = num_days or DEFAULT_NUM_DAYS
        last = end - dt.timedelta(days=days - 1)
        out = PreviewDates(last - dt.timedelta(days=period), period, end)
    if out.end < out.last_enrollment:
        raise ValueError(
            f"--end-date {out.end} is before the last enrollment day {out.last_enrollment} "
            f"(--start-date {out.start} + --enrollment-period {period} days)"
        )
    return out
