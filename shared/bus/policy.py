"""Pure decisions of the consume loop: what a failure means, when an entry is poison, when to reclaim.

No IO and no clock here: the loop passes in delivery counts and monotonic times.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.errors import RejectedInput
from shared.messages import MessageError

REASON_LIMIT = 500  # characters of an exception kept in a dead letter / log line


class Disposition(StrEnum):
    """What the loop does with an entry whose handler raised."""

    DEAD_LETTER = "dead_letter"  # rejected input: dead-letter it, ack it, count it, go on
    KEEP_PENDING = "keep_pending"  # unexpected failure: leave it pending; reclaim retries it


def disposition_of(error: BaseException) -> Disposition:
    """Rejected input (RejectedInput, MessageError: both ValueError subclasses meant for it) is
    dead-lettered at once; anything else may be a passing fault and is retried later."""
    if isinstance(error, RejectedInput | MessageError):
        return Disposition.DEAD_LETTER
    return Disposition.KEEP_PENDING


def failure_reason(error: BaseException) -> str:
    """A one-line reason for logs and dead letters: the exception type and message, bounded."""
    text = f"{type(error).__name__}: {error}".replace("\n", " ")
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


def is_poison(deliveries: int, max_deliveries: int) -> bool:
    """An entry delivered more than `max_deliveries` times is not handed to the handler again."""
    return deliveries > max_deliveries


def poison_reason(deliveries: int, max_deliveries: int, last_error: str | None) -> str:
    """The dead-letter reason of a poison entry, with the last failure when this process saw it."""
    tried = deliveries - 1
    cause = last_error or "failure not seen by this process (an earlier consumer died or failed)"
    return f"poison entry: handler failed {tried} of max {max_deliveries} deliveries; last: {cause}"


def reclaim_due(last_reclaim_at: float | None, now: float, interval_s: float) -> bool:
    """Reclaim on the first round and then every `interval_s` seconds (monotonic times)."""
    return last_reclaim_at is None or now - last_reclaim_at >= interval_s


@dataclass(frozen=True, slots=True)
class ConsumeOptions:
    """Tunables of `StreamBus.consume`; services fill them from their settings."""

    count: int = 100  # entries per XREADGROUP round trip
    block_ms: int = 1000  # XREADGROUP block time; also the longest a stop request waits
    reclaim_idle_ms: int = 30_000  # entries pending longer than this are reclaimed and retried
    reclaim_interval_s: float = 5.0  # how often XAUTOCLAIM runs
    max_deliveries: int = 5  # deliveries before an entry that keeps failing is dead-lettered
    group_start: str = "0"  # where a newly created group starts ("0": whole stream, "$": new only)

    def __post_init__(self) -> None:
        for name in ("count", "block_ms", "reclaim_idle_ms", "max_deliveries"):
            if getattr(self, name) < 1:
                raise ValueError(f"ConsumeOptions.{name} must be >= 1, got {getattr(self, name)}")
        if self.reclaim_interval_s <= 0:
            raise ValueError(
                f"ConsumeOptions.reclaim_interval_s must be > 0, got {self.reclaim_interval_s}"
            )
