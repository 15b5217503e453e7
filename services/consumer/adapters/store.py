"""The Consumer's ClickHouse tables: one BatchWriter each (batched, retried, spooled).

Rows are added only AFTER their round was committed to Redis, so nothing a fenced-off replica
produced is stored. Rows still buffered when a replica dies are restored by the next owner from
the streams (ReplacingMergeTree keys make a second copy harmless): see PartitionWorker.restore.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from services.consumer.candles import CandleGap
from services.consumer.history_rows import (
    HISTORICAL_DATA_COLUMNS,
    PERFORMANCE_COLUMNS,
    gap_row,
    historical_data_row,
)
from shared.bus.dead_letter import DeadLetter, dead_letter_row
from shared.clock import Clock
from shared.messages import Candle, OrderIntent, Signal
from shared.store import (
    DEAD_LETTER_COLUMNS,
    MESSAGE_TABLES,
    BatchPolicy,
    BatchWriter,
    Inserter,
    StoreMetrics,
    spool_for,
)

logger = logging.getLogger(__name__)


class ConsumerStore:
    """Writers of candles, trading_signals, order_intents, historical_data, performance_metrics
    (gaps) and dead_letters."""

    def __init__(
        self,
        inserter: Inserter,
        spool_dir: str,
        clock: Clock,
        policy: BatchPolicy,
        metrics: StoreMetrics,
        service: str = "consumer",
    ) -> None:
        self.service = service
        self.clock = clock

        def writer(table: str, columns: Sequence[str]) -> BatchWriter:
            return BatchWriter(
                table, columns, inserter=inserter, spool=spool_for(spool_dir, table),
                clock=clock, policy=policy, metrics=metrics,
            )  # fmt: skip

        self.candles = writer("candles", MESSAGE_TABLES[Candle].columns)
        self.signals = writer("trading_signals", MESSAGE_TABLES[Signal].columns)
        self.intents = writer("order_intents", MESSAGE_TABLES[OrderIntent].columns)
        self.history = writer("historical_data", HISTORICAL_DATA_COLUMNS)
        self.gaps = writer("performance_metrics", PERFORMANCE_COLUMNS)
        self.dead_letters = writer("dead_letters", DEAD_LETTER_COLUMNS)
        self.writers = (
            self.candles, self.signals, self.intents, self.history, self.gaps, self.dead_letters,
        )  # fmt: skip

    def add_candles(self, candles: Iterable[Candle]) -> None:
        self.candles.add_many(MESSAGE_TABLES[Candle].row(c) for c in candles)

    def add_signals(self, signals: Iterable[Signal]) -> None:
        self.signals.add_many(MESSAGE_TABLES[Signal].row(s) for s in signals)

    def add_intents(self, intents: Iterable[OrderIntent]) -> None:
        self.intents.add_many(MESSAGE_TABLES[OrderIntent].row(i) for i in intents)

    def add_history(self, candles: Iterable[Candle], fetched_at: datetime) -> None:
        self.history.add_many(historical_data_row(c, fetched_at) for c in candles)

    def add_gaps(self, gaps: Iterable[CandleGap]) -> None:
        self.gaps.add_many(gap_row(g, self.service) for g in gaps)

    def add_dead_letters(self, letters: Iterable[DeadLetter]) -> None:
        now = self.clock.now()
        self.dead_letters.add_many(dead_letter_row(letter, now) for letter in letters)

    async def flush(self) -> int:
        """Write every buffered row now (to ClickHouse or the spool); returns the rows."""
        written = 0
        for writer in self.writers:
            written += await asyncio.to_thread(writer.flush)
        return written
