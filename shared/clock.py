"""Time for everything: the pure core never reads the wall clock, it is handed `now`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

# India has had no DST since 1945: a fixed offset needs no tz database in the image.
IST = timezone(timedelta(hours=5, minutes=30), "IST")


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware."""
        ...

    def time_ns(self) -> int:
        """Epoch nanoseconds (for latency measurements)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time_ns(self) -> int:
        return time.time_ns()


class ManualClock:
    """A clock that only moves when told to (tests, replays)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def time_ns(self) -> int:
        return int(self._now.timestamp() * 1_000_000_000)

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock needs timezone-aware times")
        self._now = when

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


def to_ist(when: datetime) -> datetime:
    """An aware datetime in IST; a naive one is rejected rather than guessed."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: the zone is unknown")
    return when.astimezone(IST)


def from_epoch_s(seconds: float) -> datetime:
    """Epoch seconds (Kite packet timestamps) -> IST-aware datetime."""
    return datetime.fromtimestamp(seconds, IST)
