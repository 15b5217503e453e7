"""The circuit breaker: N failed or rejected orders within a window pause new orders.

CLOSED --N failures within window_s--> OPEN --cooldown_s elapsed--> HALF_OPEN
HALF_OPEN --the probe order is accepted--> CLOSED;  HALF_OPEN --the probe fails--> OPEN again.

In HALF_OPEN one intent (all its slices) may go out as the probe; others are paused until the
probe's outcome is recorded. A "failure" is a broker rejection or a failed broker call; an
acceptance (the broker returned an order id) is a success. Time is float seconds, passed in.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Literal

from shared.messages import RiskEventKind

logger = logging.getLogger(__name__)

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class BreakerTransition:
    """A change worth a RiskEvent (BREAKER_OPEN / BREAKER_CLOSED) and an alert."""

    kind: RiskEventKind
    reason: str


class CircuitBreaker:
    def __init__(self, failures: int, window_s: float, cooldown_s: float) -> None:
        if failures < 1 or window_s <= 0 or cooldown_s <= 0:
            raise ValueError("failures >= 1, window_s > 0 and cooldown_s > 0 are required")
        self.failures = failures
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self.state: BreakerState = "closed"
        self.open_until = 0.0
        self.probe_in_flight = False
        self.last_reason = ""
        self._failed_at: deque[float] = deque()

    def _advance(self, now: float) -> None:
        if self.state == "open" and now >= self.open_until:
            self.state = "half_open"
            self.probe_in_flight = False
            logger.info("circuit breaker half-open: cool-down over, one probe order allowed")

    def denial(self, now: float) -> str | None:
        """Why new orders must wait now, or None. Does not claim the half-open probe."""
        self._advance(now)
        if self.state == "open":
            return (
                f"circuit breaker open for {self.open_until - now:.1f} s more "
                f"after {self.failures} failed orders within {self.window_s:.0f} s "
                f"(last: {self.last_reason})"
            )
        if self.state == "half_open" and self.probe_in_flight:
            return "circuit breaker half-open: waiting for the probe order's outcome"
        return None

    def order_sent(self, now: float) -> None:
        """An approved intent went out; in HALF_OPEN it is the probe."""
        self._advance(now)
        if self.state == "half_open":
            self.probe_in_flight = True

    def record_failure(self, now: float, reason: str) -> BreakerTransition | None:
        """A rejection or failed broker call; returns BREAKER_OPEN when this opens the breaker."""
        self._advance(now)
        self.last_reason = reason
        self._failed_at.append(now)
        while self._failed_at and self._failed_at[0] + self.window_s <= now:
            self._failed_at.popleft()
        if self.state == "half_open":
            return self._open(now, f"the half-open probe order failed: {reason}")
        if self.state == "closed" and len(self._failed_at) >= self.failures:
            return self._open(
                now,
                f"{len(self._failed_at)} failed or rejected orders within "
                f"{self.window_s:.0f} s (last: {reason})",
            )
        return None

    def record_success(self, now: float) -> BreakerTransition | None:
        """An accepted order; returns BREAKER_CLOSED when it closes a half-open breaker."""
        self._advance(now)
        if self.state != "half_open":
            return None
        self.state = "closed"
        self.probe_in_flight = False
        self._failed_at.clear()
        reason = "the probe order was accepted after the cool-down"
        logger.warning("circuit breaker closed: %s", reason)
        return BreakerTransition("BREAKER_CLOSED", reason)

    def _open(self, now: float, reason: str) -> BreakerTransition:
        self.state = "open"
        self.open_until = now + self.cooldown_s
        self.probe_in_flight = False
        full = f"{reason}; new orders paused for {self.cooldown_s:.0f} s"
        logger.warning("circuit breaker open: %s", full)
        return BreakerTransition("BREAKER_OPEN", full)
