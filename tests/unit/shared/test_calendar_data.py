"""The shipped calendar file checked against the real market data in shared/marketdata."""

from __future__ import annotations

import csv
import gzip
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from shared.calendar import NseCalendar, load_calendar

MARKETDATA = Path(__file__).parents[3] / "shared" / "marketdata"

# Trading days the 2024 1-minute files lack (see shared/marketdata/PROVENANCE.md): NOT holidays.
MISSING_FROM_2024_DATA = {
    date(2024, 2, 1),
    date(2024, 3, 4),
    date(2024, 4, 5),
    date(2024, 5, 7),
    date(2024, 7, 10),
}
# Sessions the daily NIFTY file shows but whose hours the calendar does not record (old Muhurat
# sessions and 2010-2014 Saturday special sessions): the calendar reports those days closed.
UNRECORDED_SESSIONS = {
    date(2007, 11, 9), date(2008, 10, 28), date(2009, 10, 17), date(2010, 2, 6),
    date(2010, 11, 5), date(2011, 10, 26), date(2012, 1, 7), date(2012, 3, 3),
    date(2012, 4, 28), date(2012, 9, 8), date(2012, 11, 13), date(2013, 5, 11),
    date(2013, 11, 3), date(2014, 3, 22), date(2015, 11, 11),
}  # fmt: skip


@pytest.fixture(scope="module")
def nse() -> NseCalendar:
    return load_calendar()


def minute_bars_2024() -> dict[date, list[datetime]]:
    bars: dict[date, list[datetime]] = {}
    path = MARKETDATA / "nifty50_index_1m_2024-01-01_2024-08-23.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            ts = datetime.fromisoformat(row["timestamp"])
            bars.setdefault(ts.date(), []).append(ts)
    return bars


def daily_dates_2007_2022() -> set[date]:
    path = MARKETDATA / "nifty50_index_1d_2007-01-02_2022-11-07.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return {date.fromisoformat(row["timestamp"][:10]) for row in csv.DictReader(f)}


def test_2024_weekdays_in_the_minute_data_are_trading_days_and_the_rest_are_holidays(
    nse: NseCalendar,
) -> None:
    bars = minute_bars_2024()
    first, last = min(bars), max(bars)
    day, wrong = first, []
    while day <= last:
        in_data = day in bars
        trading = nse.is_trading_day(day)
        if in_data and not trading:
            wrong.append(f"{day}: data has bars but the calendar says {nse.describe(day)}")
        if day.weekday() < 5 and not in_data and trading and day not in MISSING_FROM_2024_DATA:
            wrong.append(f"{day}: no data but the calendar says {nse.describe(day)}")
        if day in MISSING_FROM_2024_DATA and not trading:
            wrong.append(f"{day}: a known data gap, yet the calendar says {nse.describe(day)}")
        day += timedelta(days=1)
    assert wrong == []


def test_2024_minute_bars_fall_inside_the_calendars_sessions(nse: NseCalendar) -> None:
    """Every bar start lies in a session; 2024-01-20's flat bars after the close are the exception."""
    outside: dict[date, int] = {}
    for day, stamps in minute_bars_2024().items():
        for ts in stamps:
            if not nse.is_market_open(ts):
                outside[day] = outside.get(day, 0) + 1
    assert outside == {date(2024, 1, 20): 167}


def test_2024_sessions_are_fully_covered_by_minute_bars(nse: NseCalendar) -> None:
    bars = minute_bars_2024()
    for day, stamps in bars.items():
        expected = sum(int((s.close - s.open).total_seconds() // 60) for s in nse.sessions(day))
        inside = sum(1 for ts in stamps if nse.is_market_open(ts))
        assert inside == expected, day


def test_daily_data_2007_2022_agrees_with_the_calendar(nse: NseCalendar) -> None:
    """Every day with a daily NIFTY bar is a trading day, bar the documented unrecorded sessions."""
    disagree = [
        f"{d}: {nse.describe(d)}"
        for d in sorted(daily_dates_2007_2022())
        if not nse.is_trading_day(d) and d not in UNRECORDED_SESSIONS
    ]
    assert disagree == []


def test_every_holiday_of_the_2007_2022_source_list_is_kept_or_documented(
    nse: NseCalendar,
) -> None:
    documented_removals = {date(2009, 3, 27), date(2009, 8, 19), date(2012, 10, 26),
                           date(2013, 11, 14)}  # fmt: skip
    path = MARKETDATA / "nse_holidays_2007-2022_from_intrade_ai.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        listed = {date.fromisoformat(row[0]) for row in list(csv.reader(f))[1:]}
    missing = {d for d in listed if nse.holiday(d) is None}
    assert missing == documented_removals


@pytest.mark.parametrize("year", [2023, 2024, 2025, 2026])
def test_each_recent_year_lists_its_weekday_holidays(nse: NseCalendar, year: int) -> None:
    """NSE lists 14-17 weekday trading holidays a year; far fewer means a forgotten section."""
    day, count = date(year, 1, 1), 0
    while day.year == year:
        if day.weekday() < 5 and nse.holiday(day) is not None:
            count += 1
        day += timedelta(days=1)
    assert 13 <= count <= 18
