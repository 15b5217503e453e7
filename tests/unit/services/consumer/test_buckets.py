from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time

import pytest

from services.consumer.buckets import (
    TradingSession,
    bucket_of,
    buckets_in,
    regular_sessions,
    session_on,
    weekday_sessions,
)
from shared.clock import IST
from shared.messages import Timeframe

DAY = date(2024, 3, 1)
SPECIAL_DAY = date(2024, 3, 2)  # the DR special session: 09:15-10:00 and 11:30-12:30


def special_sessions(day: date) -> Sequence[TradingSession]:
    if day == SPECIAL_DAY:
        return (
            session_on(day, time(9, 15), time(10, 0)),
            session_on(day, time(11, 30), time(12, 30)),
        )
    if day == date(2024, 11, 1):  # Muhurat trading, an evening session
        return (session_on(day, time(18, 0), time(19, 0)),)
    return regular_sessions()(day)


def at(day: date, hhmmss: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmmss), tzinfo=IST)


@pytest.mark.parametrize(
    ("timeframe", "day", "when", "expected"),
    [
        ("minute", DAY, "09:15:00", ("09:15", "09:16")),
        ("minute", DAY, "09:14:59", None),
        ("minute", DAY, "15:29:59", ("15:29", "15:30")),
        ("minute", DAY, "15:30:00", None),
        ("3minute", DAY, "15:28:00", ("15:27", "15:30")),
        ("5minute", DAY, "15:29:00", ("15:25", "15:30")),
        ("15minute", DAY, "09:29:59", ("09:15", "09:30")),
        ("15minute", DAY, "09:30:00", ("09:30", "09:45")),
        ("30minute", DAY, "15:14:00", ("14:45", "15:15")),
        ("30minute", DAY, "15:20:00", ("15:15", "15:30")),
        ("60minute", DAY, "10:14:59", ("09:15", "10:15")),
        ("60minute", DAY, "15:14:59", ("14:15", "15:15")),
        ("60minute", DAY, "15:15:00", ("15:15", "15:30")),  # the last, shorter bucket
        ("day", DAY, "12:00:00", ("09:15", "15:30")),
        ("day", DAY, "15:30:00", None),
        # Special sessions anchor at their own open and are clipped to their own close.
        ("30minute", SPECIAL_DAY, "11:31:00", ("11:30", "12:00")),
        ("60minute", SPECIAL_DAY, "09:50:00", ("09:15", "10:00")),
        ("60minute", SPECIAL_DAY, "12:10:00", ("11:30", "12:30")),
        ("minute", SPECIAL_DAY, "10:30:00", None),
        ("day", SPECIAL_DAY, "11:45:00", ("09:15", "12:30")),
        ("15minute", date(2024, 11, 1), "18:05:00", ("18:00", "18:15")),
        ("15minute", date(2024, 11, 1), "18:20:00", ("18:15", "18:30")),
        ("15minute", date(2024, 11, 1), "09:20:00", None),
    ],
)
def test_bucket_of_a_timestamp_is_anchored_at_its_session_open(
    timeframe: Timeframe, day: date, when: str, expected: tuple[str, str] | None
) -> None:
    bucket = bucket_of(at(day, when), timeframe, special_sessions)
    if expected is None:
        assert bucket is None
    else:
        assert bucket is not None
        assert (bucket.start, bucket.end) == (at(day, expected[0]), at(day, expected[1]))


def test_bucket_of_a_utc_timestamp_is_computed_in_ist() -> None:
    bucket = bucket_of(datetime(2024, 3, 1, 3, 45, 30, tzinfo=UTC), "minute", regular_sessions())
    assert bucket is not None and bucket.start == at(DAY, "09:15:00")


def test_bucket_of_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        bucket_of(datetime(2024, 3, 1, 9, 15), "minute", regular_sessions())


@pytest.mark.parametrize(
    ("timeframe", "start", "end", "expected_starts"),
    [
        ("minute", "09:16:00", "09:19:00", ["09:16", "09:17", "09:18"]),
        ("15minute", "09:20:00", "10:01:00", ["09:30", "09:45", "10:00"]),
        ("60minute", "14:00:00", "15:30:00", ["14:15", "15:15"]),
        ("minute", "09:15:00", "09:15:00", []),
    ],
)
def test_buckets_in_a_range_follow_the_grid(
    timeframe: Timeframe, start: str, end: str, expected_starts: list[str]
) -> None:
    found = [
        b.start for b in buckets_in(at(DAY, start), at(DAY, end), timeframe, regular_sessions())
    ]
    assert found == [at(DAY, s) for s in expected_starts]


def test_buckets_in_a_special_day_skip_the_break_between_sessions() -> None:
    found = list(
        buckets_in(
            at(SPECIAL_DAY, "09:45:00"), at(SPECIAL_DAY, "12:00:00"), "15minute", special_sessions
        )
    )
    assert [b.start.time() for b in found] == [time(9, 45), time(11, 30), time(11, 45)]


def test_weekday_sessions_have_no_session_on_weekends() -> None:
    sessions = weekday_sessions()
    assert sessions(date(2024, 3, 2)) == ()
    assert len(sessions(date(2024, 3, 1))) == 1


@pytest.mark.parametrize(
    ("when", "timeframe", "expected"),
    [
        ("2024-03-02T11:40:00", "60minute", ("11:30", "12:30")),  # DR-site session anchors at 11:30
        ("2024-11-01T18:10:00", "15minute", ("18:00", "18:15")),  # Muhurat trading
        ("2024-11-01T10:00:00", "15minute", None),  # the holiday part of that day
        ("2024-01-22T10:00:00", "15minute", None),  # a special holiday
    ],
)
def test_the_shared_calendar_plugs_in_as_the_session_source(
    when: str, timeframe: Timeframe, expected: tuple[str, str] | None
) -> None:
    from shared.calendar import load_calendar

    ts = datetime.fromisoformat(when).replace(tzinfo=IST)
    bucket = bucket_of(ts, timeframe, load_calendar().sessions)
    if expected is None:
        assert bucket is None
    else:
        assert bucket is not None
        assert (bucket.start.strftime("%H:%M"), bucket.end.strftime("%H:%M")) == expected


def test_data_sessions_trade_a_date_the_calendar_calls_closed() -> None:
    from services.consumer.buckets import data_sessions
    from shared.calendar import load_calendar

    sessions = data_sessions(load_calendar())
    assert [s.open.time() for s in sessions(date(2024, 1, 22))] == [
        time(9, 15)
    ]  # holiday: data wins
    assert [s.open.time() for s in sessions(date(2024, 3, 2))] == [time(9, 15), time(11, 30)]
