"""The market's clock for replays (an IO adapter): `now` follows the newest tick's exchange time.

Against the Kite simulator the market replays a past day, often faster than real time; the
engine's clock must be the market's, or every signal looks stale and the market closed. `now` is
the newest exchange timestamp seen plus the wall time since it arrived (monotonic, never going
back). The service anchors it at start-up from a quote's timestamp; before that (no quote) it is
the wall clock. Receipt-stamped ticks are ignored. `time_ns` stays the wall clock: latencies are
measured in real time. Never used in live mode (settings refuse it).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from shared.clock import Clock


class MarketClock:
    def __init__(self, wall: Clock) -> None:
        self.wall = wall
        self._anchor: datetime | None = None
        self._anchor_mono = 0.0
        self._last: datetime | None = None

    def observe(self, exchange_ts: datetime) -> None:
        """A tick's exchange time: the clock jumps forward to it (never back). Kite's exchange
        timestamps are whole seconds; a stamp with microseconds is the Producer's substitute (its
        receipt time, for ticks without one: index quotes, snapshots) and says nothing about the
        market's time."""
        if exchange_ts.microsecond != 0:
            return
        if self._anchor is None or exchange_ts > self.now():
            self._anchor = exchange_ts
            self._anchor_mono = time.monotonic()

    def anchor(self, market_time: datetime) -> None:
        """The market's time from elsewhere (a quote's timestamp at start-up)."""
        if self._anchor is None or market_time > self.now():
            self._anchor = market_time
            self._anchor_mono = time.monotonic()

    def now(self) -> datetime:
        if self._anchor is None:
            return self.wall.now()
        current = self._anchor + timedelta(seconds=time.monotonic() - self._anchor_mono)
        if self._last is not None and current < self._last:
            current = self._last
        self._last = current
        return current

    def time_ns(self) -> int:
        return self.wall.time_ns()
