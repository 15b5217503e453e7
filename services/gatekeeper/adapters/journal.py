"""The audit trail in ClickHouse (the seam; clickhouse_journal.py writes it through the shared
BatchWriter). Every call only queues a row: the batch writer inserts in the background and spools
to disk while ClickHouse is unreachable, so the order path never waits for ClickHouse. The
crash-safe record an order needs before it is sent is the Redis one (redis_state.py); these rows
are the history: orders (versioned: one row per state), order_events, positions (versioned),
risk_events and order_intents (every intent with its decision).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from services.gatekeeper.order_journal import JournalEntry
from services.gatekeeper.positions import Position
from shared.messages import OrderEvent, OrderIntent, RiskEvent


class Journal(Protocol):
    def intent(self, intent: OrderIntent, decision: str, reason: str, now: datetime) -> None:
        """An intent and what became of it (APPROVED, DENIED, QUEUED, EXPIRED, DUPLICATE)."""

    def order(self, entry: JournalEntry) -> None:
        """An order's state (a new version of its row)."""

    def order_event(self, event: OrderEvent) -> None: ...

    def risk_event(self, event: RiskEvent) -> None: ...

    def position(self, position: Position, mode: str, now: datetime) -> None:
        """A position after a fill (a new version of its row)."""

    async def decided_intents(self, since: datetime) -> set[str]:
        """Intent ids decided since `since` (idempotency if Redis lost its records)."""
        ...

    async def close(self) -> None:
        """Flush what is queued (spooling what cannot be written) and stop."""
