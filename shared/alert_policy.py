"""Whether an alert goes out: deduplication by key and a rolling per-minute rate limit.

Pure: the caller passes `now` (seconds on a monotonic scale) and acts on the decision. What was held
back is not lost: it is counted, and the next alert that goes out says how many were suppressed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    SEND = "sent"
    DUPLICATE = "duplicate"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one alert, and why."""

    verdict: Verdict
    reason: str
    # On SEND: duplicates of this key suppressed since it last went out, and alerts of any key
    # dropped by the rate limit since the last alert went out.
    duplicates_suppressed: int = 0
    rate_limited_dropped: int = 0

    @property
    def send(self) -> bool:
        return self.verdict is Verdict.SEND


class AlertPolicy:
    """Suppresses an alert whose key went out less than `dedup_seconds` ago, and any alert beyond
    `rate_per_minute` sent in the last `window_seconds`."""

    def __init__(
        self, rate_per_minute: int, dedup_seconds: float, window_seconds: float = 60.0
    ) -> None:
        if rate_per_minute < 1:
            raise ValueError(f"rate_per_minute must be >= 1, got {rate_per_minute}")
        if dedup_seconds < 0 or window_seconds <= 0:
            raise ValueError("dedup_seconds must be >= 0 and window_seconds > 0")
        self.rate_per_minute = rate_per_minute
        self.dedup_seconds = dedup_seconds
        self.window_seconds = window_seconds
        self._last_sent: dict[str, float] = {}
        self._sent_at: deque[float] = deque()
        self._duplicates: dict[str, int] = {}
        self._dropped = 0

    def decide(self, key: str, now: float) -> Decision:
        """Decide for an alert with this dedup key at time `now`, and record the decision."""
        self._forget_before(now)
        last = self._last_sent.get(key)
        if last is not None:
            age = max(0.0, now - last)
            self._duplicates[key] = self._duplicates.get(key, 0) + 1
            return Decision(
                Verdict.DUPLICATE,
                f"key {key!r} went out {age:.0f}s ago (dedup window {self.dedup_seconds:.0f}s)",
            )
        if len(self._sent_at) >= self.rate_per_minute:
            self._dropped += 1
            return Decision(
                Verdict.RATE_LIMITED,
                f"{len(self._sent_at)} alerts in the last {self.window_seconds:.0f}s "
                f"(limit {self.rate_per_minute})",
            )
        self._sent_at.append(now)
        if self.dedup_seconds > 0:
            self._last_sent[key] = now
        decision = Decision(
            Verdict.SEND,
            "within the rate limit and not a recent duplicate",
            duplicates_suppressed=self._duplicates.pop(key, 0),
            rate_limited_dropped=self._dropped,
        )
        self._dropped = 0
        return decision

    def _forget_before(self, now: float) -> None:
        while self._sent_at and now - self._sent_at[0] >= self.window_seconds:
            self._sent_at.popleft()
        expired = [k for k, t in self._last_sent.items() if now - t >= self.dedup_seconds]
        for key in expired:
            del self._last_sent[key]
