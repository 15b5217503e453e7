"""Kite's API rate limits: a token bucket per endpoint family plus order-count windows.

Wall-clock seconds are passed in. Exceeding any limit answers HTTP 429 (the official client
raises NetworkException), never a silent delay.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """`rate` requests per second with a burst of max(1, rate)."""

    rate: float
    tokens: float = -1.0
    last: float = 0.0

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate)

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.last = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(slots=True)
class RateLimits:
    """Limits for "quote", "historical", "orders" and "other" requests."""

    rates: dict[str, float]
    orders_per_minute: int
    orders_per_day: int
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _order_times: deque[float] = field(default_factory=deque)
    _orders_today: int = 0

    def check(self, family: str, now: float) -> str | None:
        """None when the request may go ahead, else why it is refused."""
        bucket = self._buckets.get(family)
        if bucket is None:
            bucket = self._buckets[family] = TokenBucket(self.rates[family])
        if not bucket.take(now):
            return f"Too many requests: {family} is limited to {self.rates[family]:g} per second."
        return None

    def check_new_order(self, now: float) -> str | None:
        """Order placements are also limited per minute and per day."""
        while self._order_times and self._order_times[0] <= now - 60.0:
            self._order_times.popleft()
        if len(self._order_times) >= self.orders_per_minute:
            return f"Too many orders: at most {self.orders_per_minute} per minute."
        if self._orders_today >= self.orders_per_day:
            return f"Too many orders: at most {self.orders_per_day} per day."
        self._order_times.append(now)
        self._orders_today += 1
        return None


def family_of(method: str, path: str) -> str:
    """Which limit a request counts against."""
    if path.startswith("/quote"):
        return "quote"
    if path.startswith("/instruments/historical"):
        return "historical"
    if path.startswith("/orders") and method in ("POST", "PUT", "DELETE"):
        return "orders"
    return "other"
