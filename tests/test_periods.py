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
        (Period.PREENROLLMENT_WEEK, 0, 0, -7, -1),
        (Period.PREENROLLMENT_DAYS28, 0, 0, -28, -1),
    ],
)
def test_due_windows(period, offset, index, start, end):
    w = due_window(period, d(offset), E, END)
    assert w is not None and (w.index, w.start, w.end) == (index, start, end)
    assert w.published_index == index + 1


@pytest.mark.parametrize(
    "period,offset", [(Period.WEEK, 5), (Period.WEEK, 7), (Period.DAYS28, 26), (Period.DAY, -1)]
)
def test_not_due(period, offset):
    assert due_window(period, d(offset), E, END) is None


def test_overall_due_on_end_date_only():
    assert due_window(Period.OVERALL, END - dt.timedelta(days=1), E, END) is None
    w = due_window(Period.OVERALL, END, E, END)
    assert w == window(Period.OVERALL, 0, (END - E).days)
    assert w.start == 0 and w.end == 41
    assert due_window(Period.DAY, END + dt.timedelta(days=1), E, END) is None


def test_windows_through():
    assert [w.index for w in windows_through(Period.WEEK, d(20), E, END)] == [0, 1, 2]
    assert [w.index for w in windows_through(Period.WEEK, d(19), E, END)] == [0, 1]
    assert len(windows_through(Period.DAY, d(3), E, END)) == 4
    assert windows_through(Period.OVERALL, d(3), E, END) == []
    assert windows_through(Period.PREENROLLMENT_WEEK, d(0), E, END)[0].start == -7
