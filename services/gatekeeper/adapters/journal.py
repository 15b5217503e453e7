"""The audit trail in ClickHouse: the seam the service writes through (clickhouse_journal.py is
the real one). Every write call only buffers a row; `run` flushes in the background (the shared
BatchWriter: batched inserts, an on-disk spool while ClickHouse is unreachable), so the order path
never waits for ClickHouse. The crash-safe record an order needs BEFORE it is sent is the Redis
one (redis_state.py); these rows are the history: orders and positions (versioned), order_events,
risk_events (every denial, queueing, exit, kill switch, breaker, reconciliation), options_data
and the service's own dead_letters. Approved intents show up as orders, the others as
risk_events (`order_intents` itself belongs to the Consumer).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol

from services.gatekeeper.options import OptionQuote
from services.gatekeeper.order_journal import JournalEntry
from services.gatekeeper.positions import Position
from shared.bus import DeadLetter
from shared.messages import OrderEvent, RiskEvent


class Journal(Protocol):
    def order(self, entry: JournalEntry) -> None:
        """An order's state (a new version of its row)."""

    def order_event(self, event: OrderEvent) -> None: ...

    def risk_event(self, event: RiskEvent) -> None: ...

    def position(self, position: Position, mode: str, now: datetime) -> None:
        """A position after a fill (a new version of its row)."""

    def options_chain(
        self,
        underlying: str,
        underlying_price: float,
        quotes: tuple[OptionQuote, ...],
        ts: datetime,
    ) -> None:
        """An option chain snapshot the engine chose a strike from."""

    def dead_letter(self, letter: DeadLetter) -> None:
        """A bus entry this service gave up on (the bus's on_dead_letter sink)."""

    async def decided_intents(self, since: datetime) -> set[str]:
        """Intent ids decided since `since` (idempotency if Redis lost its records)."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Flush in the background until `stop`, then flush what is left (durable on return)."""
