"""The real bars the simulator replays: gzipped CSV files -> bars grouped by trading day.

Reading a file is the only IO here (a synchronous, cached read at start-up). Bars outside the
calendar's sessions are dropped (the 167 flat bars after the 2024-01-20 close are not trading);
days absent from a file stay absent: a gap is reported, never filled.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import logging
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

from shared.calendar import NseCalendar
from shared.clock import to_ist

logger = logging.getLogger(__name__)

CSV_COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]


class DataError(ValueError):
    """A data file that cannot be replayed, or a day that is not in it."""


class MinuteBar(NamedTuple):
    """One bar labelled by its START time (IST-aware); 09:15 covers 09:15:00-09:15:59."""

    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int


class DailyBar(NamedTuple):
    day: date
    open: float
    high: float
    low: float
    close: float
    volume: int


def parse_bars(lines: Iterable[str], source: str) -> list[MinuteBar]:
    """CSV text (header timestamp,open,high,low,close,volume) -> bars, validated."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header != CSV_COLUMNS:
        raise DataError(f"{source}: expected the header {','.join(CSV_COLUMNS)}, got {header}")
    bars: list[MinuteBar] = []
    for lineno, row in enumerate(reader, start=2):
        try:
            start = to_ist(datetime.fromisoformat(row[0]))
            o, h, low, c = (float(v) for v in row[1:5])
            volume = int(float(row[5]))
        except (ValueError, IndexError) as exc:
            raise DataError(f"{source}:{lineno}: malformed bar {row}: {exc}") from None
        if not low <= min(o, c) <= max(o, c) <= h:
            raise DataError(f"{source}:{lineno}: inconsistent OHLC {row}")
        bars.append(MinuteBar(start, o, h, low, c, volume))
    return bars


@functools.lru_cache(maxsize=8)
def _read_bars(path: str, mtime_ns: int) -> tuple[MinuteBar, ...]:
    del mtime_ns  # part of the cache key only: an edited file is read again
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8")
        return tuple(parse_bars(text, path))


def read_bars(path: Path) -> tuple[MinuteBar, ...]:
    """All bars of a CSV(.gz) file, cached per process (tests start many simulators)."""
    try:
        return _read_bars(str(path), path.stat().st_mtime_ns)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None


def group_by_day(bars: Iterable[MinuteBar]) -> dict[date, tuple[MinuteBar, ...]]:
    """Bars by their (IST) date, each day in time order."""
    grouped: dict[date, list[MinuteBar]] = {}
    for bar in bars:
        grouped.setdefault(bar.start.date(), []).append(bar)
    return {day: tuple(sorted(rows)) for day, rows in grouped.items()}


@functools.lru_cache(maxsize=8)
def _read_days(path: str, mtime_ns: int) -> dict[date, tuple[MinuteBar, ...]]:
    return group_by_day(_read_bars(path, mtime_ns))


def read_bars_by_day(path: Path) -> dict[date, tuple[MinuteBar, ...]]:
    """All bars of a file grouped by day, cached per process (do not mutate the result)."""
    try:
        return _read_days(str(path), path.stat().st_mtime_ns)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None


def bars_by_session_day(
    days: Mapping[date, tuple[MinuteBar, ...]], calendar: NseCalendar
) -> dict[date, tuple[MinuteBar, ...]]:
    """Bars grouped by day, keeping only those that start inside one of the day's sessions."""
    result: dict[date, tuple[MinuteBar, ...]] = {}
    for day, rows in days.items():
        sessions = [(s.open, s.close) for s in calendar.sessions(day)]
        if (
            len(sessions) == 1
            and sessions[0][0] <= rows[0].start
            and rows[-1].start < sessions[0][1]
        ):
            result[day] = rows  # the usual day: every bar inside its one session
            continue
        kept = tuple(b for b in rows if any(o <= b.start < c for o, c in sessions))
        if len(kept) < len(rows):
            logger.info(
                "dropped %s bars of %s outside its sessions (%s)",
                len(rows) - len(kept),
                day,
                calendar.describe(day),
            )
        if kept:
            result[day] = kept
    return result


def daily_bars_from_minutes(days: Mapping[date, tuple[MinuteBar, ...]]) -> list[DailyBar]:
    """One daily bar per day of minute bars."""
    result = []
    for day in sorted(days):
        rows = days[day]
        result.append(
            DailyBar(
                day,
                rows[0].open,
                max(r.high for r in rows),
                min(r.low for r in rows),
                rows[-1].close,
                sum(r.volume for r in rows),
            )
        )
    return result


def read_daily_bars(path: Path) -> list[DailyBar]:
    """A daily file: its time of day is meaningless in the source, only the date is kept."""
    return [
        DailyBar(b.start.date(), b.open, b.high, b.low, b.close, b.volume) for b in read_bars(path)
    ]


def missing_days(
    days: Iterable[date], calendar: NseCalendar, first: date, last: date
) -> list[date]:
    """Trading days of the calendar between first and last that the data lacks (gaps)."""
    present = set(days)
    gaps = []
    day = first
    while day <= last:
        if calendar.is_trading_day(day) and day not in present:
            gaps.append(day)
        day = date.fromordinal(day.toordinal() + 1)
    return gaps
