"""The NSE market calendar as pure functions of a date or an aware timestamp.

Holidays and special sessions come from a data file (`marketdata/nse_calendar.csv`, overridable by
the `market_calendar_path` setting) that users must update every year from NSE's circulars. Nothing
here reads the wall clock: callers pass `ts` (timezone-aware) or a date. Sessions are half-open
intervals `[open, close)` in IST, so 15:30:00 is already closed.

A date's sessions are, in order of precedence: the `session` rows for that date (special Saturday
sessions, Muhurat trading on a holiday, split DR-drill sessions), else nothing on a weekend or a
listed holiday, else the regular 09:15-15:30 session.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import NamedTuple

from shared.clock import IST, to_ist

REGULAR_OPEN = time(9, 15)
REGULAR_CLOSE = time(15, 30)
# Call auction before the open: order entry 09:00-09:08 (random close in the last minute), then
# matching and a buffer until 09:15. Special sessions have their own pre-open 15 minutes before.
PRE_OPEN_START = time(9, 0)
PRE_OPEN_END = time(9, 8)
PRE_OPEN_LEAD = timedelta(minutes=15)
PRE_OPEN_LENGTH = timedelta(minutes=8)
# Closing session: trades at the closing price only (no market-making on price), not traded by us.
CLOSING_SESSION_START = time(15, 40)
CLOSING_SESSION_END = time(16, 0)

DEFAULT_CALENDAR_PATH = Path(__file__).parent / "marketdata" / "nse_calendar.csv"
CSV_HEADER = ["date", "kind", "open", "close", "description"]
# How far next_open looks ahead before deciding the calendar is broken (the longest real closure
# is a few days; a year of nothing means a malformed file).
NEXT_OPEN_HORIZON_DAYS = 370


class CalendarError(ValueError):
    """A calendar file that cannot be used, or a question it cannot answer."""


class Session(NamedTuple):
    """One trading session, aware IST datetimes, `close` exclusive."""

    open: datetime
    close: datetime

    def contains(self, ts: datetime) -> bool:
        return self.open <= ts < self.close


class SpecialSession(NamedTuple):
    open: time
    close: time
    description: str


def _ist_date(day: date) -> date:
    # datetime is a subclass of date: take its IST date rather than its own (maybe UTC) date.
    return to_ist(day).date() if isinstance(day, datetime) else day


def _at(day: date, when: time) -> datetime:
    return datetime.combine(day, when, IST)


class NseCalendar:
    """Holidays and special sessions of NSE's equity and F&O segments; every method is pure."""

    def __init__(
        self,
        holidays: Mapping[date, str],
        special_sessions: Mapping[date, Sequence[SpecialSession]],
    ) -> None:
        self._holidays = dict(holidays)
        self._special = {day: tuple(sorted(rows)) for day, rows in special_sessions.items()}
        years = {d.year for d in self._holidays} | {d.year for d in self._special}
        if not years:
            raise CalendarError("the calendar lists no holidays and no sessions")
        self.first_year = min(years)
        self.last_year = max(years)

    def covers(self, day: date) -> bool:
        """Whether the file lists this date's year; outside it holidays are unknown (update it)."""
        return self.first_year <= _ist_date(day).year <= self.last_year

    def holiday(self, day: date) -> str | None:
        """The listed holiday on this date, or None (weekends are not listed, just closed)."""
        return self._holidays.get(_ist_date(day))

    def sessions(self, day: date) -> list[Session]:
        """The sessions of a date in time order; empty when the exchange is closed."""
        day = _ist_date(day)
        special = self._special.get(day)
        if special is not None:
            return [Session(_at(day, s.open), _at(day, s.close)) for s in special]
        if day.weekday() >= 5 or day in self._holidays:
            return []
        return [Session(_at(day, REGULAR_OPEN), _at(day, REGULAR_CLOSE))]

    def is_trading_day(self, day: date) -> bool:
        """True when the date has at least one session (a Muhurat-only day counts)."""
        return bool(self.sessions(day))

    def describe(self, day: date) -> str:
        """Why the date is open or closed, for logs and readiness reasons."""
        day = _ist_date(day)
        special = self._special.get(day)
        holiday = self._holidays.get(day)
        if special is not None:
            hours = ", ".join(f"{s.open:%H:%M}-{s.close:%H:%M}" for s in special)
            text = f"special session {hours} IST: {special[0].description}"
            return f"{text} (otherwise holiday: {holiday})" if holiday else text
        if holiday is not None:
            return f"holiday: {holiday}"
        if day.weekday() >= 5:
            return f"weekend ({day:%A})"
        return f"regular session {REGULAR_OPEN:%H:%M}-{REGULAR_CLOSE:%H:%M} IST"

    def current_session(self, ts: datetime) -> Session | None:
        """The session open at `ts` (aware), or None."""
        ts = to_ist(ts)
        return next((s for s in self.sessions(ts.date()) if s.contains(ts)), None)

    def is_market_open(self, ts: datetime) -> bool:
        return self.current_session(ts) is not None

    def next_open(self, ts: datetime) -> datetime:
        """The first session open at or after `ts`: `ts` itself when it is exactly an open."""
        ts = to_ist(ts)
        for day in _days_from(ts.date(), NEXT_OPEN_HORIZON_DAYS):
            for session in self.sessions(day):
                if session.open >= ts:
                    return session.open
        raise CalendarError(f"no session within {NEXT_OPEN_HORIZON_DAYS} days after {ts}")

    def session_close(self, day: date) -> datetime | None:
        """The close of the date's last session (the day's final close), or None when closed."""
        sessions = self.sessions(day)
        return sessions[-1].close if sessions else None

    def minutes_to_close(self, ts: datetime) -> float | None:
        """Minutes from `ts` to the day's final close while the market is open, else None.

        On a split day (two sessions) this counts to the close of the last one: positions are
        carried across the break, so square-off rules want the day's end.
        """
        ts = to_ist(ts)
        if not self.is_market_open(ts):
            return None
        close = self.session_close(ts.date())
        assert close is not None  # an open market has a session that day
        return (close - ts).total_seconds() / 60.0

    def next_trading_day(self, day: date) -> date:
        """The first trading day strictly after `day`."""
        for candidate in _days_from(_ist_date(day) + timedelta(days=1), NEXT_OPEN_HORIZON_DAYS):
            if self.is_trading_day(candidate):
                return candidate
        raise CalendarError(f"no trading day within {NEXT_OPEN_HORIZON_DAYS} days after {day}")

    def previous_trading_day(self, day: date) -> date:
        """The last trading day strictly before `day`."""
        start = _ist_date(day)
        for offset in range(1, NEXT_OPEN_HORIZON_DAYS + 1):
            candidate = start - timedelta(days=offset)
            if self.is_trading_day(candidate):
                return candidate
        raise CalendarError(f"no trading day within {NEXT_OPEN_HORIZON_DAYS} days before {day}")


def pre_open_window(session: Session) -> Session:
    """The pre-open call auction's order-entry window before a session (09:00-09:08 normally)."""
    start = session.open - PRE_OPEN_LEAD
    return Session(start, start + PRE_OPEN_LENGTH)


def _days_from(start: date, count: int) -> Iterator[date]:
    for offset in range(count):
        yield start + timedelta(days=offset)


def _parse_hhmm(text: str, where: str) -> time:
    try:
        return datetime.strptime(text.strip(), "%H:%M").time()
    except ValueError:
        raise CalendarError(f"{where}: time {text!r} is not HH:MM") from None


def parse_calendar(text: str, source: str = "<calendar>") -> NseCalendar:
    """Build a calendar from the CSV text of a calendar file; `#` lines are comments."""
    holidays: dict[date, str] = {}
    special: dict[date, list[SpecialSession]] = {}
    header_seen = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{source}:{lineno}"
        fields = [f.strip() for f in next(csv.reader([line]))]
        if not header_seen:
            if fields != CSV_HEADER:
                raise CalendarError(f"{where}: expected the header {','.join(CSV_HEADER)}")
            header_seen = True
            continue
        if len(fields) != len(CSV_HEADER):
            raise CalendarError(f"{where}: expected {len(CSV_HEADER)} columns, got {len(fields)}")
        raw_day, kind, raw_open, raw_close, description = fields
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            raise CalendarError(f"{where}: date {raw_day!r} is not YYYY-MM-DD") from None
        if kind == "holiday":
            if raw_open or raw_close:
                raise CalendarError(f"{where}: a holiday has no open/close times")
            previous = holidays.get(day)
            holidays[day] = f"{previous} / {description}" if previous else description
        elif kind == "session":
            opens, closes = _parse_hhmm(raw_open, where), _parse_hhmm(raw_close, where)
            if opens >= closes:
                raise CalendarError(f"{where}: session opens at {raw_open}, after its close")
            rows = special.setdefault(day, [])
            new = SpecialSession(opens, closes, description)
            if any(new.open < old.close and old.open < new.close for old in rows):
                raise CalendarError(f"{where}: session overlaps another session on {day}")
            rows.append(new)
        else:
            raise CalendarError(f"{where}: kind {kind!r} is neither 'holiday' nor 'session'")
    if not header_seen:
        raise CalendarError(f"{source}: no header line {','.join(CSV_HEADER)}")
    return NseCalendar(holidays, special)


def load_calendar(path: str | Path | None = None) -> NseCalendar:
    """Read a calendar file; None or "" means the file shipped in shared/marketdata."""
    chosen = Path(path) if path else DEFAULT_CALENDAR_PATH
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarError(f"cannot read the market calendar {chosen}: {exc.strerror}") from None
    return parse_calendar(text, source=str(chosen))
