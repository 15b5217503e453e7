"""Pure decisions of the batch writer: when to flush, when to try the spool again.

Times are passed in (the writer reads its injected Clock); nothing here reads the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class FlushReason(StrEnum):
    FULL = "full"  # max_rows reached
    AGED = "aged"  # the oldest buffered row waited max_age_s


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """Tunables of a BatchWriter; services fill them from their settings."""

    max_rows: int = 5_000  # flush when this many rows are buffered
    max_age_s: float = 1.0  # ... or when the oldest buffered row is this old
    insert_attempts: int = 3  # tries of one insert on a network error before spooling the batch
    retry_initial_s: float = 0.2  # first back-off between those tries; doubles each time
    retry_max_s: float = 2.0
    replay_interval_s: float = 5.0  # how often a non-empty spool is offered to ClickHouse again

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.insert_attempts < 1:
            raise ValueError(f"BatchPolicy needs max_rows and insert_attempts >= 1: {self!r}")
        if self.max_age_s <= 0 or self.replay_interval_s <= 0:
            raise ValueError(f"BatchPolicy needs positive max_age_s/replay_interval_s: {self!r}")
        if self.retry_initial_s < 0 or self.retry_max_s < self.retry_initial_s:
            raise ValueError(f"BatchPolicy retry back-off is inconsistent: {self!r}")


def flush_reason(
    rows: int, oldest_at: datetime | None, now: datetime, max_rows: int, max_age_s: float
) -> FlushReason | None:
    """Why the buffer should be flushed now, or None to keep buffering."""
    if rows <= 0:
        return None
    if rows >= max_rows:
        return FlushReason.FULL
    if oldest_at is not None and (now - oldest_at).total_seconds() >= max_age_s:
        return FlushReason.AGED
    return None


def replay_due(last_attempt_at: datetime | None, now: datetime, interval_s: float) -> bool:
    """Offer the spool to ClickHouse on the first chance and then every `interval_s`."""
    return last_attempt_at is None or (now - last_attempt_at).total_seconds() >= interval_s
