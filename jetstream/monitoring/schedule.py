"""When the monitoring jobs run and which event-time interval each one materializes. Pure.

- `hourly` (cron `30 * * * *`): the last complete hour, 30 minutes after it ends (late
  data): at 10:30..11:29 it covers 09:00-10:00.
- `daily` (cron `0 3 * * *`): the whole previous UTC day, from complete data.
- `five-minute` (cron `*/5 * * * *`): every hour of the last `recents_lookback` that neither
  the daily nor the hourly job has covered, up to the run time, into the recents tables;
  then the derived tables, the JSON export and the health checks.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable

import attrs

WINDOW = dt.timedelta(minutes=5)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
HOURLY_LAG = dt.timedelta(minutes=30)


class Job(enum.StrEnum):
    FIVE_MINUTE = "five-minute"
    HOURLY = "hourly"
    DAILY = "daily"


CRON: dict[Job, str] = {
    Job.FIVE_MINUTE: "*/5 * * * *",
    Job.HOURLY: "30 * * * *",
    Job.DAILY: "0 3 * * *",
}


@attrs.frozen
class Interval:
    """[start, end) in UTC."""

    start: dt.datetime
    end: dt.datetime

    def __attrs_post_init__(self) -> None:
        for t in (self.start, self.end):
            if t.tzinfo is None:
                raise ValueError(f"interval bound {t!r} has no time zone")
        if self.end <= self.start:
            raise ValueError(f"empty interval {self.start} .. {self.end}")

    def hours(self) -> list[dt.datetime]:
        out, t = [], floor_hour(self.start)
        while t < self.end:
            out.append(t)
            t += HOUR
        return out


def utc(t: dt.datetime) -> dt.datetime:
    """Naive times are taken as UTC; aware ones converted."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def parse_time(text: str) -> dt.datetime:
    """ISO 8601 (`2026-01-05T10:35`, `...Z`, `...+00:00`); naive means UTC."""
    try:
        return utc(dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 timestamp (e.g. 2026-01-05T10:35Z)"
        ) from None


def floor_window(t: dt.datetime) -> dt.datetime:
    t = utc(t)
    return t.replace(minute=t.minute - t.minute % 5, second=0, microsecond=0)


def floor_hour(t: dt.datetime) -> dt.datetime:
    return utc(t).replace(minute=0, second=0, microsecond=0)


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def last_window(at: dt.datetime) -> dt.datetime:
    """The last window that has started before `at` (the current, partial one)."""
    return floor_window(utc(at) - dt.timedelta(microseconds=1))


def hourly_interval(at: dt.datetime, lag: dt.timedelta = HOURLY_LAG) -> Interval:
    end = floor_hour(utc(at) - lag)
    return Interval(end - HOUR, end)


def daily_interval(at: dt.datetime) -> Interval:
    day = utc(at).date() - dt.timedelta(days=1)
    return Interval(day_start(day), day_start(day) + DAY)


def uncovered_hours(
    at: dt.datetime,
    lookback: dt.timedelta,
    hourly_covered: Iterable[dt.datetime],
    daily_covered: Iterable[dt.date],
) -> list[dt.datetime]:
    """Hours from `at - lookback` up to the hour holding `at` that neither layer covers."""
    at = utc(at)
    hours = {utc(h) for h in hourly_covered}
    days = set(daily_covered)
    out, t = [], floor_hour(at - lookback)
    while t < at:
        if t not in hours and t.date() not in days:
            out.append(t)
        t += HOUR
    return out
