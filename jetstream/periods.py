"""Analysis periods and windows, and which windows are due on a date. Pure: no I/O.

One spelling in code and tables (`day`, `week`, ...), the metric-hub spelling in configs
(`daily`, `weekly`, ...), and the established suffix in published file names.
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    DAYS28 = "days28"
    OVERALL = "overall"
    PREENROLLMENT_WEEK = "preenrollment_week"
    PREENROLLMENT_DAYS28 = "preenrollment_days28"

    @property
    def config_key(self) -> str:
        return _CONFIG_KEY[self]

    @property
    def file_suffix(self) -> str:
        return _FILE_SUFFIX[self]

    @property
    def is_preenrollment(self) -> bool:
        return self in (Period.PREENROLLMENT_WEEK, Period.PREENROLLMENT_DAYS28)

    @property
    def length(self) -> int | None:
        """Days per window, None for overall (depends on the experiment)."""
        return _LENGTH[self]

    @classmethod
    def parse(cls, text: str) -> Period:
        """Accept the code spelling, the config key, or the file suffix."""
        key = text.strip().lower()
        for p in cls:
            if key in (p.value, p.config_key, p.file_suffix):
                return p
        valid = ", ".join(p.value for p in cls)
        raise ValueError(f"unknown analysis period {text!r}; expected one of {valid}")


_CONFIG_KEY = {
    Period.DAY: "daily",
    Period.WEEK: "weekly",
    Period.DAYS28: "28_day",
    Period.OVERALL: "overall",
    Period.PREENROLLMENT_WEEK: "preenrollment_weekly",
    Period.PREENROLLMENT_DAYS28: "preenrollment_days28",
}
_FILE_SUFFIX = {
    Period.DAY: "daily",
    Period.WEEK: "weekly",
    Period.DAYS28: "days28",
    Period.OVERALL: "overall",
    Period.PREENROLLMENT_WEEK: "preenrollment_weekly",
    Period.PREENROLLMENT_DAYS28: "preenrollment_days28",
}
_LENGTH = {
    Period.DAY: 1,
    Period.WEEK: 7,
    Period.DAYS28: 28,
    Period.OVERALL: None,
    Period.PREENROLLMENT_WEEK: 7,
    Period.PREENROLLMENT_DAYS28: 28,
}
CONFIG_KEYS = {p.config_key: p for p in Period}


@attrs.frozen
class Window:
    """Window `index` (0-based; published as index+1) of a period: days
    [start, end] relative to each client's enrollment (or exposure) date."""

    period: Period
    index: int
    start: int
    end: int

    @property
    def published_index(self) -> int:
        return self.index + 1

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def window(period: Period, index: int, overall_days: int | None = None) -> Window:
    """The window `index` of `period`. `overall_days` = end_date - last enrollment date E.

    Overall is [0, end - E - 1]: Jetstream's `analysis_length_dates = (end - start) -
    num_dates_enrollment + 1`, which is end - E days since E = start + enrollment_period
    and num_dates_enrollment = enrollment_period + 1; its data ends the day before the end
    date (`last_date_full_data = current_date - 1`)."""
    if period is Period.OVERALL:
        if overall_days is None:
            raise ValueError("the overall window needs the experiment's analysis length")
        if overall_days < 1:
            raise ValueError(
                f"the experiment ends {overall_days} days after its last enrollment date: "
                "no overall window (enrollment longer than the analysis)"
            )
        return Window(period, 0, 0, overall_days - 1)
    if period is Period.PREENROLLMENT_WEEK:
        return Window(period, 0, -7, -1)
    if period is Period.PREENROLLMENT_DAYS28:
        return Window(period, 0, -28, -1)
    n = _LENGTH[period]
    assert n is not None
    return Window(period, index, n * index, n * index + n - 1)


def due_window(
    period: Period,
    data_date: dt.date,
    last_enrollment_date: dt.date,
    end_date: dt.date | None,
    complete: bool = True,
) -> Window | None:
    """The window of `period` that closes on `data_date`, if any.

    As Jetstream decides it (analysis.py `_get_timelimits_if_ready`, mozanalysis
    `TimeLimits.for_ts`), with E = last enrollment date = start + enrollment_period:
    day k closes at E+k, week k at E+7k+6, days28 k at E+28k+27; the pre-enrollment
    periods on E+1 (start + enrollment_period + 1); overall on the end date, only when the
    experiment is `complete`, over [0, end - E - 1]. Nothing is due after the end date.
    """
    offset = (data_date - last_enrollment_date).days
    if end_date is not None and data_date > end_date:
        return None
    if period is Period.OVERALL:
        if end_date is None or data_date != end_date or not complete:
            return None
        days = (end_date - last_enrollment_date).days
        return window(period, 0, days) if days >= 1 else None
    if period.is_preenrollment:
        return window(period, 0) if offset == 1 else None
    n = _LENGTH[period]
    assert n is not None
    if offset < n - 1 or (offset - (n - 1)) % n:
        return None
    return window(period, (offset - (n - 1)) // n)


def windows_through(
    period: Period,
    data_date: dt.date,
    last_enrollment_date: dt.date,
    end_date: dt.date | None,
    complete: bool = True,
) -> list[Window]:
    """Every window of `period` that has closed on or before `data_date`."""
    out: list[Window] = []
    if period.is_preenrollment:
        return [window(period, 0)] if data_date > last_enrollment_date else []
    if period is Period.OVERALL:
        if end_date is not None and data_date >= end_date:
            w = due_window(period, end_date, last_enrollment_date, end_date, complete)
            return [w] if w is not None else []
        return []
    last = min(data_date, end_date) if end_date else data_date
    n = _LENGTH[period]
    assert n is not None
    k = 0
    while True:
        w = window(period, k)
        if last_enrollment_date + dt.timedelta(days=w.end) > last:
            break
        out.append(w)
        k += 1
    return out
