import datetime as dt

import pytest

from jetstream.periods import Period, due_window, window, windows_through

E = dt.date(2026, 1, 10)
END = dt.date(2026, 2, 20)


def d(n: int) -> dt.date:
    return E + dt.timedelta(days=n)


def test_spellings_round_trip():
    for p in Period:
        assert Period.parse(p.value) is p
        assert Period.parse(p.config_key) is p
        assert Period.parse(p.file_suffix) is p
    assert Period.parse("28_day") is Period.DAYS28
    with pytest.raises(ValueError, match="unknown analysis period 'fortnight'"):
        Period.parse("fortnight")


@pytest.mark.parametrize(
    "period,offset,index,start,end",
    [
        (Period.DAY, 0, 0, 0, 0),
        (Period.DAY, 5, 5, 5, 5),
        (Period.WEEK, 6, 0, 0, 6),
        (Period.WEEK, 13, 1, 7, 13),
        (Period.DAYS28, 27, 0, 0, 27),
        # Jetstream: pre-enrollment on start + enrollment_period + 1 = E + 1
        (Period.PREENROLLMENT_WEEK, 1, 0, -7, -1),
        (Period.PREENROLLMENT_DAYS28, 1, 0, -28, -1),
    ],
)
def test_due_windows(period, offset, index, start, end):
    w = due_window(period, d(offset), E, END)
    assert w is not None and (w.index, w.start, w.end) == (index, start, end)
    assert w.published_index == index + 1


@pytest.mark.parametrize(
    "period,offset",
    [
        (Period.WEEK, 5),
        (Period.WEEK, 7),
        (Period.DAYS28, 26),
        (Period.DAY, -1),
        (Period.PREENROLLMENT_WEEK, 0),
        (Period.PREENROLLMENT_WEEK, 2),
    ],
)
def test_not_due(period, offset):
    assert due_window(period, d(offset), E, END) is None


def test_overall_due_on_end_date_only():
    assert due_window(Period.OVERALL, END - dt.timedelta(days=1), E, END) is None
    w = due_window(Period.OVERALL, END, E, END)
    assert w == window(Period.OVERALL, 0, (END - E).days)
    # [0, end - E - 1]: the data ends the day before the end date
    assert w.start == 0 and w.end == 40
    # not while the experiment is not Complete (Jetstream checks the status)
    assert due_window(Period.OVERALL, END, E, END, complete=False) is None
    assert windows_through(Period.OVERALL, END, E, END, complete=False) == []
    assert due_window(Period.DAY, END + dt.timedelta(days=1), E, END) is None


def test_windows_through():
    assert [w.index for w in windows_through(Period.WEEK, d(20), E, END)] == [0, 1, 2]
    assert [w.index for w in windows_through(Period.WEEK, d(19), E, END)] == [0, 1]
    assert len(windows_through(Period.DAY, d(3), E, END)) == 4
    assert windows_through(Period.OVERALL, d(3), E, END) == []
    assert windows_through(Period.PREENROLLMENT_WEEK, d(0), E, END) == []
    assert windows_through(Period.PREENROLLMENT_WEEK, d(1), E, END)[0].start == -7


def test_demo_experiment_windows_are_jetstreams():
    """The demo's 3-branch experiment: start 2026-01-05, enrollment_period 7, end
    2026-02-08, Complete. Figures from jetstream analysis.py `_get_timelimits_if_ready`
    with mozanalysis `TimeLimits.for_ts` / `for_single_analysis_window`
    (num_dates_enrollment = enrollment_period + 1 = 8)."""
    from jetstream.config.model import Branch, ExperimentSettings

    exp = ExperimentSettings(
        slug="demo",
        app_name="firefox_desktop",
        branches=(Branch("control"), Branch("treatment")),
        reference_branch="control",
        start_date=dt.date(2026, 1, 5),
        end_date=dt.date(2026, 2, 8),
        enrollment_period=7,
        status="Complete",
    )
    # TimeLimits.last_enrollment_date = first + num_dates_enrollment - 1
    assert exp.num_dates_enrollment == 8
    last = exp.last_enrollment_date
    assert last == dt.date(2026, 1, 12)
    end = exp.end_date
    # for_ts: the first daily window (0..0) once data through 01-12 exists
    assert due_window(Period.DAY, dt.date(2026, 1, 11), last, end) is None
    assert due_window(Period.DAY, dt.date(2026, 1, 12), last, end) == window(Period.DAY, 0)
    # weekly window 0 (0..6) closes on 01-18; window 3 (21..27) would close on 02-08
    assert due_window(Period.WEEK, dt.date(2026, 1, 18), last, end) == window(Period.WEEK, 0)
    assert due_window(Period.WEEK, dt.date(2026, 2, 8), last, end) == window(Period.WEEK, 3)
    # pre-enrollment: current_date == start + enrollment_period + 1 = 01-13
    assert due_window(Period.PREENROLLMENT_WEEK, dt.date(2026, 1, 13), last, end) == window(
        Period.PREENROLLMENT_WEEK, 0
    )
    # overall: analysis_length_dates = (end - start) - num_dates_enrollment + 1 = 27,
    # i.e. days 0..26 after enrollment, due on the end date
    w = due_window(Period.OVERALL, end, last, end, complete=exp.is_complete)
    assert w is not None and (w.start, w.end) == (0, 26)
