"""The bus's metrics seam: a Protocol the service's metrics object implements (no dependency on
prometheus here). `NO_BUS_METRICS` does nothing and is the default."""

from __future__ import annotations

from typing import Protocol

from shared.bus.dead_letter import DeadLetterKind


class BusMetrics(Protocol):
    def published(self, stream: str, count: int) -> None:
        """`count` entries were appended to `stream`."""

    def handled(self, stream: str) -> None:
        """An entry was handled and acked."""

    def handled_many(self, stream: str, count: int) -> None:
        """`count` entries of one read were handled (a batch read counts once, not per entry)."""

    def handler_failed(self, stream: str) -> None:
        """A handler raised an unexpected error; the entry stays pending for a retry."""

    def dead_lettered(self, stream: str, kind: DeadLetterKind) -> None:
        """An entry of `stream` went to the dead-letter stream."""

    def reclaimed(self, stream: str, count: int) -> None:
        """`count` entries idle too long were claimed from another (or this) consumer."""

    def trimmed(self, stream: str, count: int) -> None:
        """`count` pending entries were trimmed away (MAXLEN) before anyone processed them."""

    def io_retried(self, operation: str) -> None:
        """A Redis call failed with a temporary error and is retried."""


class NoBusMetrics:
    """Counts nothing."""

    def published(self, stream: str, count: int) -> None:
        pass

    def handled(self, stream: str) -> None:
        pass

    def handled_many(self, stream: str, count: int) -> None:
        pass

    def handler_failed(self, stream: str) -> None:
        pass

    def dead_lettered(self, stream: str, kind: DeadLetterKind) -> None:
        pass

    def reclaimed(self, stream: str, count: int) -> None:
        pass

    def trimmed(self, stream: str, count: int) -> None:
        pass

    def io_retried(self, operation: str) -> None:
        pass


NO_BUS_METRICS: BusMetrics = NoBusMetrics()
