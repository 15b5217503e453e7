"""The candle grid: which bucket an exchange timestamp falls in, for every timeframe.

Buckets are anchored at the OPEN OF THE SESSION that contains the timestamp (09:15 IST on a
regular day), so 60-minute candles start 09:15, 10:15, ..., 15:15 and the last one is clipped to
the session close (15:15-15:30). A special session (e.g. 2024-03-02: 09:15-10:00 and 11:30-12:30)
anchors its buckets at its own open. The `day` bucket spans every session of the date.

Sessions come from a `SessionsOf` callable (date -> sessions): `NseCalendar.sessions` of
shared.calendar fits as is; `regular_sessions()` says every date has the regular 09:15-15:30
session ("a bucket only exists where ticks arrive": a holiday simply produces no ticks);
`data_sessions(calendar)` is the backtester's rule (a date present in the data is a trading day:
its calendar sessions, or the regular session when the calendar calls it closed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from shared.calendar import NseCalendar, Session
from shared.clock import IST
from shared.messages import Timeframe

TIMEFRAMES: tuple[Timeframe, ...] = (
    "minute",
    "3minute",
    "5minute",
    "15minute",
    "30minute",
    "60minute",
    "day",
)
# Minutes per intraday bucket; `day` has none (one bucket per trading date).
TIMEFRAME_MINUTES: dict[Timeframe, int] = {
    "minute": 1,
    "3minute": 3,
    "5minute": 5,
    "15minute": 15,
    "30minute": 30,
    "60minute": 60,
}


# One continuous trading window of a date, IST-aware, `close` exclusive (the calendar's type).
TradingSession = Session

SessionsOf = Callable[[date], Sequence[TradingSession]]


class Bucket(NamedTuple):
    """A candle's time span [start, end) and the session it belongs to."""

    start: datetime
    end: datetime
    session: TradingSession


def session_on(day: date, open_at: time, close_at: time) -> TradingSession:
    """The session of `day` between two IST wall times."""
    return TradingSession(
        datetime.combine(day, open_at, tzinfo=IST), datetime.combine(day, close_at, tzinfo=IST)
    )


def regular_sessions(open_at: time = time(9, 15), close_at: time = time(15, 30)) -> SessionsOf:
    """Every date has one regular session (the data decides which dates trade)."""
    cache: dict[date, tuple[TradingSession, ...]] = {}

    def sessions_of(day: date) -> tuple[TradingSession, ...]:
        found = cache.get(day)
        if found is None:
            found = cache[day] = (session_on(day, open_at, close_at),)
        return found

    return sessions_of


def weekday_sessions(open_at: time = time(9, 15), close_at: time = time(15, 30)) -> SessionsOf:
    """Regular sessions on Monday-Friday only: a planning default when no calendar is at hand."""
    every_day = regular_sessions(open_at, close_at)

    def sessions_of(day: date) -> Sequence[TradingSession]:
        return every_day(day) if day.weekday() < 5 else ()

    return sessions_of


def data_sessions(calendar: NseCalendar) -> SessionsOf:
    """The calendar's sessions, or the regular session on a date it calls closed (data wins).
    Remembered per date: a builder's slow path asks for them on every new bucket."""
    every_day = regular_sessions()
    cache: dict[date, tuple[TradingSession, ...]] = {}

    def sessions_of(day: date) -> Sequence[TradingSession]:
        found = cache.get(day)
        if found is None:
            found = cache[day] = tuple(calendar.sessions(day)) or tuple(every_day(day))
        return found

    return sessions_of


def bucket_of(when: datetime, timeframe: Timeframe, sessions_of: SessionsOf) -> Bucket | None:
    """The bucket containing `when` (aware), or None when it is outside every session."""
    if when.tzinfo is None:
        raise ValueError(f"naive timestamp {when!r}: the zone is unknown")
    when = when.astimezone(IST)
    sessions = sessions_of(when.date())
    for session in sessions:
        if session.open <= when < session.close:
            if timeframe == "day":
                return Bucket(sessions[0].open, sessions[-1].close, session)
            step = timedelta(minutes=TIMEFRAME_MINUTES[timeframe])
            start = session.open + ((when - session.open) // step) * step
            return Bucket(start, min(start + step, session.close), session)
    return None


def buckets_in(
    start: datetime, end: datetime, timeframe: Timeframe, sessions_of: SessionsOf
) -> Iterator[Bucket]:
    """Every bucket of the grid whose start lies in [start, end), in time order."""
    if start >= end:
        return
    day = start.astimezone(IST).date()
    last_day = end.astimezone(IST).date()
    while day <= last_day:
        sessions = sessions_of(day)
        if sessions and timeframe == "day":
            if start <= sessions[0].open < end:
                yield Bucket(sessions[0].open, sessions[-1].close, sessions[0])
        elif sessions:
            step = timedelta(minutes=TIMEFRAME_MINUTES[timeframe])
            for session in sessions:
                bucket_start = session.open
                if bucket_start < start:
                    # First grid point at or after `start`.
                    bucket_start += -((session.open - start) // step) * step
                while bucket_start < session.close and bucket_start < end:
                    yield Bucket(bucket_start, min(bucket_start + step, session.close), session)
                    bucket_start += step
        day += timedelta(days=1)


def day_close(day: date, sessions_of: SessionsOf) -> datetime | None:
    """The end of the last session of `day`, or None if it has none."""
    sessions = sessions_of(day)
    return sessions[-1].close if sessions else None
