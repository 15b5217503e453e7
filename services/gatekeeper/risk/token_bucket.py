"""Order-rate limits: our token bucket (policy) and the broker's hard caps (sliding windows).

Time is passed in as float seconds on one monotonic scale (the shell uses `clock.now().timestamp()`
or a monotonic clock, never both). A `now` earlier than one already seen is treated as the latest
seen time: a clock stepping back can only make the limiter stricter, never looser.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

# Float time arithmetic: `next_available` followed by `try_take` at that instant must succeed.
_EPS = 1e-9


class TokenBucket:
    """`rate` tokens per second, at most `burst` stored; starts full.

    Taking `n` tokens needs `n` in the bucket. A request larger than the burst (a sliced intent
    of 10 orders against a burst of 5) waits for a full bucket and then borrows the rest: the
    bucket goes negative and the debt delays whatever comes next, so the long-run rate holds.
    """

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1 (got {rate}, {burst})")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def _refill(self, now: float) -> float:
        if self._last is None:
            self._last = now
        elif now > self._last:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
        return self._last

    def tokens(self, now: float) -> float:
        """Tokens available at `now` (negative while in debt)."""
        self._refill(now)
        return self._tokens

    def _needed(self, n: int) -> float:
        return float(min(n, self.burst))

    def can_take(self, now: float, n: int = 1) -> bool:
        self._refill(now)
        return self._tokens + _EPS >= self._needed(n)

    def try_take(self, now: float, n: int = 1) -> bool:
        """Take `n` tokens if the bucket allows it now; True when taken."""
        if n < 1:
            raise ValueError(f"n must be >= 1 (got {n})")
        if not self.can_take(now, n):
            return False
        self._tokens -= n
        return True

    def next_available(self, now: float, n: int = 1) -> float:
        """The earliest time at which `try_take(n)` succeeds (now if it already does)."""
        current = self._refill(now)
        missing = self._needed(n) - self._tokens
        if missing <= _EPS:
            return current
        return current + missing / self.rate


@dataclass(frozen=True)
class WindowCap:
    """At most `limit` orders in any window of `seconds` (half-open: (t - seconds, t])."""

    seconds: float
    limit: int


class SlidingWindowCaps:
    """The broker's caps (per second, minute, day) as exact sliding windows.

    Every send time is kept until it leaves the longest window, so no interval of a window's length
    ever holds more than its limit, whatever the burst; that is stricter than the broker's
    calendar buckets (and the day window is a rolling 24 h, stricter than a trading day).
    """

    def __init__(self, caps: tuple[WindowCap, ...]) -> None:
        if not caps:
            raise ValueError("at least one window cap is needed")
        self.caps = caps
        self._sent: tuple[deque[float], ...] = tuple(deque() for _ in caps)
        self._latest = -math.inf

    def _clock(self, now: float) -> float:
        self._latest = max(self._latest, now)
        for cap, sent in zip(self.caps, self._sent, strict=True):
            # A send at t leaves the window at t + seconds: the same expression as next_available,
            # so float rounding can never make the two disagree.
            while sent and sent[0] + cap.seconds <= self._latest:
                sent.popleft()
        return self._latest

    def counts(self, now: float) -> tuple[int, ...]:
        """Orders inside each window at `now` (for metrics)."""
        self._clock(now)
        return tuple(len(sent) for sent in self._sent)

    def can_take(self, now: float, n: int = 1) -> bool:
        self._clock(now)
        return all(
            len(sent) + n <= cap.limit for cap, sent in zip(self.caps, self._sent, strict=True)
        )

    def try_take(self, now: float, n: int = 1) -> bool:
        """Record `n` orders sent at `now` if no window would exceed its limit."""
        if n < 1:
            raise ValueError(f"n must be >= 1 (got {n})")
        if not self.can_take(now, n):
            return False
        for sent in self._sent:
            sent.extend([self._latest] * n)
        return True

    def next_available(self, now: float, n: int = 1) -> float:
        """The earliest time `n` more orders fit in every window; inf when `n` exceeds a limit."""
        current = self._clock(now)
        earliest = current
        for cap, sent in zip(self.caps, self._sent, strict=True):
            if n > cap.limit:
                return math.inf
            excess = len(sent) + n - cap.limit
            if excess > 0:
                # The excess-th oldest send must leave the window: (t - seconds, t].
                earliest = max(earliest, sent[excess - 1] + cap.seconds)
        return earliest


class OrderRateLimiter:
    """Both limits at once: an order goes out only when the bucket AND every broker window allow."""

    def __init__(self, bucket: TokenBucket, caps: SlidingWindowCaps) -> None:
        self.bucket = bucket
        self.caps = caps

    @classmethod
    def build(
        cls,
        rate: float,
        burst: int,
        per_second: int,
        per_minute: int,
        per_day: int,
    ) -> OrderRateLimiter:
        return cls(
            TokenBucket(rate, burst),
            SlidingWindowCaps(
                (
                    WindowCap(1.0, per_second),
                    WindowCap(60.0, per_minute),
                    WindowCap(86400.0, per_day),
                )
            ),
        )

    def try_acquire(self, now: float, n: int = 1) -> bool:
        """Take room for `n` orders at `now` from both limits, or from neither."""
        if not (self.bucket.can_take(now, n) and self.caps.can_take(now, n)):
            return False
        taken = self.bucket.try_take(now, n) and self.caps.try_take(now, n)
        assert taken, "checked just above"
        return True

    def next_available(self, now: float, n: int = 1) -> float:
        """When to try `n` orders again; inf when they can never fit (more than a window's cap)."""
        return max(self.bucket.next_available(now, n), self.caps.next_available(now, n))
