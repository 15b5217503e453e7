"""The Journal on ClickHouse (an IO adapter): one shared BatchWriter per table, flushed in the
background, spooled under `<spool_dir>/gatekeeper/<table>` while ClickHouse is unreachable.

Versions of `orders` and `positions` rows are increasing nanosecond stamps (never equal twice in
a process), so ReplacingMergeTree keeps the latest state. `decided_intents` reads back the day's
decisions (orders rows and non-duplicate DENIED risk events) for idempotency when Redis lost them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from services.gatekeeper.adapters.metrics import GatekeeperMetrics
from services.gatekeeper.journal_rows import (
    OPTIONS_COLUMNS,
    ORDER_COLUMNS,
    POSITION_COLUMNS,
    option_rows,
    order_row,
    position_row,
)
from services.gatekeeper.options import OptionQuote
from services.gatekeeper.order_journal import JournalEntry
from services.gatekeeper.positions import Position
from services.gatekeeper.settings import GatekeeperSettings
from shared.bus import DeadLetter, dead_letter_row
from shared.clock import Clock
from shared.messages import OrderEvent, RiskEvent
from shared.store import (
    DEAD_LETTER_COLUMNS,
    MESSAGE_TABLES,
    BatchPolicy,
    BatchWriter,
    ClickHouseInserter,
    apply_migrations,
    clickhouse_from_settings,
    run_flusher,
    spool_for,
)

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.2
SERVICE_SPOOL = "gatekeeper"


class ClickHouseJournal:
    def __init__(
        self,
        client: Any,
        spool_root: Path,
        clock: Clock,
        policy: BatchPolicy,
        settings: GatekeeperSettings,
        metrics: GatekeeperMetrics | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.settings = settings
        inserter = ClickHouseInserter(client)

        def writer(table: str, columns: tuple[str, ...]) -> BatchWriter:
            return BatchWriter(
                table,
                columns,
                inserter=inserter,
                spool=spool_for(spool_root, table),
                clock=clock,
                policy=policy,
                **({"metrics": metrics} if metrics is not None else {}),
            )

        events, risks = MESSAGE_TABLES[OrderEvent], MESSAGE_TABLES[RiskEvent]
        self.orders = writer("orders", ORDER_COLUMNS)
        self.order_events = writer(events.table, events.columns)
        self.risk_events = writer(risks.table, risks.columns)
        self.positions = writer("positions", POSITION_COLUMNS)
        self.options = writer("options_data", OPTIONS_COLUMNS)
        self.dead_letters = writer("dead_letters", DEAD_LETTER_COLUMNS)
        self.writers = [
            self.orders, self.order_events, self.risk_events, self.positions, self.options,
            self.dead_letters,
        ]  # fmt: skip
        self._last_version = 0

    def _version(self) -> int:
        self._last_version = max(time.time_ns(), self._last_version + 1)
        return self._last_version

    # -- the Journal protocol -------------------------------------------------------------------

    def order(self, entry: JournalEntry) -> None:
        self.orders.add(order_row(entry, self._version()))

    def order_event(self, event: OrderEvent) -> None:
        self.order_events.add(MESSAGE_TABLES[OrderEvent].row(event))

    def risk_event(self, event: RiskEvent) -> None:
        self.risk_events.add(MESSAGE_TABLES[RiskEvent].row(event))

    def position(self, position: Position, mode: str, now: datetime) -> None:
        self.positions.add(position_row(position, mode, now, self._version()))

    def options_chain(
        self,
        underlying: str,
        underlying_price: float,
        quotes: tuple[OptionQuote, ...],
        ts: datetime,
    ) -> None:
        s = self.settings
        self.options.add_many(
            option_rows(
                underlying, underlying_price, quotes, ts, s.option_rate, s.option_expiry_time
            )
        )

    def dead_letter(self, letter: DeadLetter) -> None:
        self.dead_letters.add(dead_letter_row(letter, self.clock.now()))

    async def decided_intents(self, since: datetime) -> set[str]:
        sql = (
            "SELECT intent_id FROM orders WHERE created_at >= %(since)s "
            "UNION DISTINCT SELECT assumeNotNull(intent_id) FROM risk_events "
            "WHERE ts >= %(since)s AND kind = 'DENIED' AND intent_id IS NOT NULL "
            "AND details['duplicate'] != 'yes'"
        )
        rows = await asyncio.to_thread(self.client.execute, sql, {"since": since})
        return {str(row[0]) for row in rows}

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await run_flusher(self.writers, stop, FLUSH_INTERVAL_S)
        finally:
            await asyncio.to_thread(self.client.disconnect)


def clickhouse_journal(
    settings: GatekeeperSettings, clock: Clock, metrics: GatekeeperMetrics | None
) -> ClickHouseJournal:
    """Connect, apply the migrations, and build the writers (blocking: call before the loop
    is busy, or through asyncio.to_thread)."""
    client = clickhouse_from_settings(settings)
    applied = apply_migrations(client)
    if applied:
        logger.info("applied ClickHouse migrations: %s", [m.name for m in applied])
    policy = BatchPolicy(
        max_rows=settings.clickhouse_batch_rows, max_age_s=settings.clickhouse_flush_s
    )
    spool_root = Path(settings.spool_dir) / SERVICE_SPOOL
    return ClickHouseJournal(client, spool_root, clock, policy, settings, metrics)
