"""The market time of one tick partition, as the feed tells it (pure).

Buckets of illiquid instruments close on a timer once `now >= end + grace`. `now` is the newest
exchange timestamp read from the partition plus the (monotonic) time elapsed since it was read:
- live, it equals the wall clock up to the feed's latency, and a feed that stops still lets time
  run on, so buckets close on time;
- replaying a past day (the simulator at max speed) the wall clock is years away from the ticks,
  and only this clock keeps the timer from closing every bucket as soon as it opens;
- a backlog being caught up (after a restart or a take-over) runs on the backlog's own time.
The shell passes monotonic seconds in; nothing here reads a clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class FeedClock:
    """Newest exchange time seen, advanced by elapsed monotonic time."""

    __slots__ = ("_at_mono", "_newest")

    def __init__(self) -> None:
        self._newest: datetime | None = None
        self._at_mono = 0.0

    def observe(self, exchange_ts: datetime, mono_s: float) -> None:
        """A tick with this exchange time was read at monotonic time `mono_s`."""
        if self._newest is None or exchange_ts > self._newest:
            self._newest = exchange_ts
            self._at_mono = mono_s

    def now(self, mono_s: float) -> datetime | None:
        """The partition's market time at monotonic `mono_s` (None before its first tick)."""
        if self._newest is None:
            return None
        return self._newest + timedelta(seconds=max(0.0, mono_s - self._at_mono))

    @property
    def newest(self) -> datetime | None:
        """The newest exchange timestamp read."""
        return self._newest
