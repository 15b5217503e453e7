"""The NSE calendar's pure functions, as tables over the shipped calendar file."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from shared.calendar import (
    CalendarError,
    NseCalendar,
    Session,
    load_calendar,
    parse_calendar,
    pre_open_window,
)
from shared.clock import IST


@pytest.fixture(scope="module")
def nse() -> NseCalendar:
    return load_calendar()


def ist(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=IST)


@pytest.mark.parametrize(
    ("day", "trading"),
    [
        (date(2024, 1, 1), True),  # Monday, no holiday
        (date(2024, 1, 6), False),  # Saturday
        (date(2024, 1, 7), False),  # Sunday
        (date(2024, 1, 20), True),  # Saturday special full session
        (date(2024, 1, 22), False),  # special holiday (Ram Mandir)
        (date(2024, 1, 26), False),  # Republic Day
        (date(2024, 3, 2), True),  # Saturday DR-drill sessions
        (date(2024, 5, 20), False),  # Mumbai elections
        (date(2024, 11, 1), True),  # Diwali holiday, but a Muhurat session in the evening
        (date(2024, 11, 20), False),  # Maharashtra elections
        (date(2023, 6, 29), False),  # Bakri Id after the June 2023 change
        (date(2023, 6, 28), True),  # the originally announced Bakri Id date
        (date(2025, 2, 1), True),  # Budget Saturday
        (date(2025, 3, 14), False),  # Holi
        (date(2026, 12, 25), False),  # Christmas
        (date(2022, 11, 8), False),  # added: the source list stops in October 2022
        (date(2013, 11, 14), True),  # removed: a settlement-only holiday in the source
        (date(2007, 1, 26), False),  # from the 2007-2022 list
    ],
)
def test_is_trading_day_follows_weekends_holidays_and_special_sessions(
    nse: NseCalendar, day: date, trading: bool
) -> None:
    assert nse.is_trading_day(day) is trading


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 1, 2), [((9, 15), (15, 30))]),
        (date(2024, 1, 20), [((9, 15), (15, 30))]),
        (date(2024, 3, 2), [((9, 15), (10, 0)), ((11, 30), (12, 30))]),
        (date(2024, 5, 18), [((9, 15), (10, 0)), ((11, 30), (12, 30))]),
        (date(2024, 11, 1), [((18, 0), (19, 0))]),
        (date(2023, 11, 12), [((18, 15), (19, 15))]),
        (date(2025, 10, 21), [((13, 45), (14, 45))]),
        (date(2024, 1, 26), []),
        (date(2024, 1, 27), []),
    ],
)
def test_sessions_of_a_day_are_ist_intervals(
    nse: NseCalendar, day: date, expected: list[tuple[tuple[int, int], tuple[int, int]]]
) -> None:
    want = [
        Session(datetime.combine(day, time(*o), IST), datetime.combine(day, time(*c), IST))
        for o, c in expected
    ]
    assert nse.sessions(day) == want


@pytest.mark.parametrize(
    ("ts", "is_open", "minutes_left"),
    [
        (ist(2024, 1, 2, 9, 14, 59), False, None),
        (ist(2024, 1, 2, 9, 15), True, 375.0),
        (ist(2024, 1, 2, 15, 29, 30), True, 0.5),
        (ist(2024, 1, 2, 15, 30), False, None),  # close is exclusive
        (datetime(2024, 1, 2, 3, 45, tzinfo=UTC), True, 375.0),  # 09:15 IST given in UTC
        (ist(2024, 3, 2, 9, 59), True, 151.0),  # split day: counts to the day's final close
        (ist(2024, 3, 2, 10, 30), False, None),  # the break between the two sessions
        (ist(2024, 3, 2, 12, 0), True, 30.0),
        (ist(2024, 11, 1, 10, 0), False, None),  # Diwali daytime
        (ist(2024, 11, 1, 18, 30), True, 30.0),  # Muhurat
        (ist(2024, 1, 6, 11, 0), False, None),  # Saturday
    ],
)
def test_market_open_and_minutes_to_close(
    nse: NseCalendar, ts: datetime, is_open: bool, minutes_left: float | None
) -> None:
    assert nse.is_market_open(ts) is is_open
    assert nse.minutes_to_close(ts) == minutes_left


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (ist(2024, 1, 2, 8, 0), ist(2024, 1, 2, 9, 15)),
        (ist(2024, 1, 2, 9, 15), ist(2024, 1, 2, 9, 15)),  # exactly an open
        (ist(2024, 1, 2, 9, 16), ist(2024, 1, 3, 9, 15)),  # already open: the next session
        (ist(2024, 1, 19, 16, 0), ist(2024, 1, 20, 9, 15)),  # Friday -> special Saturday
        (ist(2024, 1, 20, 16, 0), ist(2024, 1, 23, 9, 15)),  # skips Sunday and the 22nd holiday
        (ist(2024, 3, 2, 10, 0), ist(2024, 3, 2, 11, 30)),  # second half of a split day
        (ist(2024, 3, 22, 16, 0), ist(2024, 3, 26, 9, 15)),  # weekend + Holi
        (ist(2024, 3, 28, 16, 0), ist(2024, 4, 1, 9, 15)),  # Good Friday + weekend
        (ist(2024, 10, 31, 16, 0), ist(2024, 11, 1, 18, 0)),  # Muhurat
        (ist(2024, 11, 1, 19, 0), ist(2024, 11, 4, 9, 15)),
        (datetime(2024, 1, 1, 20, 0, tzinfo=UTC), ist(2024, 1, 2, 9, 15)),  # 01:30 IST next day
    ],
)
def test_next_open(nse: NseCalendar, ts: datetime, expected: datetime) -> None:
    assert nse.next_open(ts) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 1, 2), ist(2024, 1, 2, 15, 30)),
        (date(2024, 3, 2), ist(2024, 3, 2, 12, 30)),
        (date(2024, 11, 1), ist(2024, 11, 1, 19, 0)),
        (date(2024, 1, 26), None),
    ],
)
def test_session_close_is_the_days_final_close(
    nse: NseCalendar, day: date, expected: datetime | None
) -> None:
    assert nse.session_close(day) == expected


@pytest.mark.parametrize(
    ("day", "after", "before"),
    [
        (date(2024, 1, 19), date(2024, 1, 20), date(2024, 1, 18)),
        (date(2024, 1, 20), date(2024, 1, 23), date(2024, 1, 19)),
        (date(2024, 3, 28), date(2024, 4, 1), date(2024, 3, 27)),
        (date(2024, 3, 26), date(2024, 3, 27), date(2024, 3, 22)),
    ],
)
def test_next_and_previous_trading_day(
    nse: NseCalendar, day: date, after: date, before: date
) -> None:
    assert nse.next_trading_day(day) == after
    assert nse.previous_trading_day(day) == before


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 1, 2), "regular session 09:15-15:30 IST"),
        (date(2024, 1, 6), "weekend (Saturday)"),
        (date(2024, 3, 25), "holiday: Holi"),
        (
            date(2024, 11, 1),
            "special session 18:00-19:00 IST: Muhurat trading (Diwali Laxmi Pujan)"
            " (otherwise holiday: Diwali Laxmi Pujan)",
        ),
    ],
)
def test_describe_gives_the_reason(nse: NseCalendar, day: date, expected: str) -> None:
    assert nse.describe(day) == expected


def test_a_datetime_passed_as_a_day_is_taken_in_ist(nse: NseCalendar) -> None:
    # 2024-01-25 20:00 UTC is 01:30 on the 26th (Republic Day) in IST.
    assert nse.is_trading_day(datetime(2024, 1, 25, 20, 0, tzinfo=UTC)) is False


def test_a_naive_timestamp_is_rejected(nse: NseCalendar) -> None:
    with pytest.raises(ValueError, match="naive"):
        nse.is_market_open(datetime(2024, 1, 2, 10, 0))


@pytest.mark.parametrize(
    ("day", "covered"),
    [(date(2006, 12, 29), False), (date(2007, 1, 2), True), (date(2026, 12, 31), True),
     (date(2027, 1, 1), False)],
)  # fmt: skip
def test_covers_tells_when_the_file_needs_its_yearly_update(
    nse: NseCalendar, day: date, covered: bool
) -> None:
    assert nse.covers(day) is covered


@pytest.mark.parametrize(
    ("session", "window"),
    [
        (((9, 15), (15, 30)), ((9, 0), (9, 8))),
        (((11, 30), (12, 30)), ((11, 15), (11, 23))),
        (((18, 0), (19, 0)), ((17, 45), (17, 53))),
    ],
)
def test_pre_open_window_precedes_each_session(
    session: tuple[tuple[int, int], tuple[int, int]],
    window: tuple[tuple[int, int], tuple[int, int]],
) -> None:
    day = date(2024, 1, 2)
    s = Session(
        datetime.combine(day, time(*session[0]), IST), datetime.combine(day, time(*session[1]), IST)
    )
    assert pre_open_window(s) == Session(
        datetime.combine(day, time(*window[0]), IST), datetime.combine(day, time(*window[1]), IST)
    )


HEADER = "date,kind,open,close,description\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no header"),
        ("date,kind\n", "expected the header"),
        (HEADER + "2024-13-01,holiday,,,x\n", "date '2024-13-01' is not YYYY-MM-DD"),
        (HEADER + "2024-01-01,closed,,,x\n", "kind 'closed'"),
        (HEADER + "2024-01-01,session,9:15am,10:00,x\n", "time '9:15am' is not HH:MM"),
        (HEADER + "2024-01-01,session,10:00,09:15,x\n", "after its close"),
        (HEADER + "2024-01-01,holiday,09:15,,x\n", "a holiday has no open/close"),
        (HEADER + "2024-01-01,holiday,,x\n", "expected 5 columns"),
        (
            HEADER + "2024-01-06,session,09:15,10:00,a\n2024-01-06,session,09:45,11:00,b\n",
            "overlaps",
        ),
        ("# only comments\n" + HEADER, "lists no holidays"),
    ],
)
def test_a_malformed_calendar_file_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        parse_calendar(text, source="cal.csv")


def test_errors_name_the_file_and_line() -> None:
    with pytest.raises(CalendarError, match=r"^cal\.csv:3: kind 'x'"):
        parse_calendar("# comment\n" + HEADER + "2024-01-01,x,,,y\n", source="cal.csv")


def test_an_overriding_file_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "cal.csv"
    path.write_text(HEADER + "2030-01-02,holiday,,,Test holiday\n", encoding="utf-8")
    cal = load_calendar(str(path))
    assert cal.is_trading_day(date(2030, 1, 2)) is False
    assert cal.is_trading_day(date(2030, 1, 3)) is True
    assert cal.is_trading_day(date(2024, 1, 26)) is True  # not in the override
    assert (cal.first_year, cal.last_year) == (2030, 2030)


def test_a_missing_calendar_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="cannot read the market calendar"):
        load_calendar(tmp_path / "nope.csv")
