"""The shipped calendar's 2023, 2025 and 2026 rows equal what the NSE circulars say.

No local prices cover these years; the dates come from the circulars' public reports listed in
shared/marketdata/PROVENANCE.md ("Holidays 2023-2026: evidence"). A change to these years in
nse_calendar.csv must come with its evidence there, and here.
"""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from shared.calendar import NseCalendar, load_calendar

WEEKDAY_HOLIDAYS = {
    2023: ["01-26", "03-07", "03-30", "04-04", "04-07", "04-14", "05-01", "06-29", "08-15",
           "09-19", "10-02", "10-24", "11-14", "11-27", "12-25"],
    2025: ["02-26", "03-14", "03-31", "04-10", "04-14", "04-18", "05-01", "08-15", "08-27",
           "10-02", "10-21", "10-22", "11-05", "12-25"],
    2026: ["01-15", "01-26", "03-03", "03-26", "03-31", "04-03", "04-14", "05-01", "05-28",
           "06-26", "09-14", "10-02", "10-20", "11-10", "11-24", "12-25"],
}  # fmt: skip
SPECIAL_SESSIONS = [
    (date(2023, 11, 12), time(18, 15), time(19, 15)),  # Muhurat, Sunday
    (date(2025, 2, 1), time(9, 15), time(15, 30)),  # Union Budget, Saturday
    (date(2025, 10, 21), time(13, 45), time(14, 45)),  # Muhurat, afternoon
    (date(2026, 2, 1), time(9, 15), time(15, 30)),  # Union Budget, Sunday
]


@pytest.fixture(scope="module")
def nse() -> NseCalendar:
    return load_calendar()


@pytest.mark.parametrize("year", sorted(WEEKDAY_HOLIDAYS))
def test_the_weekday_holidays_of_a_year_are_those_of_the_circulars(
    nse: NseCalendar, year: int
) -> None:
    day, listed = date(year, 1, 1), []
    while day.year == year:
        if day.weekday() < 5 and nse.holiday(day) is not None:
            listed.append(day.strftime("%m-%d"))
        day += timedelta(days=1)
    assert listed == WEEKDAY_HOLIDAYS[year]


@pytest.mark.parametrize(("day", "opens", "closes"), SPECIAL_SESSIONS)
def test_a_special_session_has_the_hours_of_its_circular(
    nse: NseCalendar, day: date, opens: time, closes: time
) -> None:
    [session] = nse.sessions(day)
    assert (session.open.time(), session.close.time()) == (opens, closes)


@pytest.mark.parametrize("day", [date(2023, 6, 28), date(2026, 3, 4), date(2026, 7, 21)])
def test_a_date_the_circulars_moved_away_from_is_a_regular_trading_day(
    nse: NseCalendar, day: date
) -> None:
    # 2023-06-28: Bakri Id moved to the 29th; 2026-03-04: Holi is the 3rd; 2026-07-21: one report
    # placed Muharram there, the exchanges closed on June 26.
    [session] = nse.sessions(day)
    assert (session.open.time(), session.close.time()) == (time(9, 15), time(15, 30))
