"""Every tick into ClickHouse `ticks` through the shared BatchWriter (an IO adapter, a TickSink).

`add` only buffers rows (tick_rows.TickRows, equal to shared.store.tick_row); a background flusher inserts batches of
`clickhouse_batch_rows` (or whatever waited `clickhouse_flush_s`) in a worker thread, retries
network errors and spools batches to `<spool_dir>/producer/ticks` while ClickHouse is down, to
replay them in order when it is back. The Producer starts and streams to Redis even when
ClickHouse is unreachable at start: the schema is brought up to date before the first insert
that reaches it (until then inserts fail as temporary and their batches are spooled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.producer.adapters.metrics import ProducerMetrics
from services.producer.settings import ProducerSettings
from services.producer.tick_rows import TickRows
from shared.clock import Clock, SystemClock
from shared.messages import Tick
from shared.store import (
    MESSAGE_TABLES,
    BatchPolicy,
    BatchWriter,
    clickhouse_from_settings,
    run_flusher,
    spool_for,
)
from shared.store.migrated_inserter import MigratedInserter

logger = logging.getLogger(__name__)

SPOOL_SUBDIR = "producer"
FLUSH_INTERVAL_S = 0.1


class ClickHouseTicks:
    """The Producer's TickSink on ClickHouse."""

    def __init__(
        self,
        settings: ProducerSettings,
        metrics: ProducerMetrics,
        clock: Clock | None = None,
        client: Any = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.clock = clock or SystemClock()
        self.client = (
            client
            if client is not None
            else clickhouse_from_settings(settings, create_database=False)
        )  # no IO yet: the driver connects on its first query
        self.inserter = MigratedInserter(self.client)
        spec = MESSAGE_TABLES[Tick]
        self.writer = BatchWriter(
            spec.table,
            spec.columns,
            inserter=self.inserter,
            spool=spool_for(Path(settings.spool_dir) / SPOOL_SUBDIR, spec.table),
            clock=self.clock,
            policy=BatchPolicy(
                max_rows=settings.clickhouse_batch_rows, max_age_s=settings.clickhouse_flush_s
            ),
            metrics=metrics,
        )
        self.rows = TickRows()
        self._stop = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Create the database and schema if ClickHouse answers; start the background flusher."""
        try:
            await asyncio.to_thread(self._bootstrap)
        except Exception as exc:  # down at start: ticks are spooled until it is back
            logger.error("ClickHouse not reachable at start (%s: %s): tick rows will be spooled",
                         type(exc).__name__, exc)  # fmt: skip
        self._flusher = asyncio.create_task(
            run_flusher([self.writer], self._stop, FLUSH_INTERVAL_S), name="producer-clickhouse"
        )

    def _bootstrap(self) -> None:
        clickhouse_from_settings(self.settings).disconnect()  # CREATE DATABASE IF NOT EXISTS
        self.inserter.ensure_schema()

    def add(self, ticks: Sequence[Tick]) -> None:
        """Buffer rows for `ticks` (no IO)."""
        row = self.rows.row
        self.writer.add_values([row(tick) for tick in ticks])

    async def close(self) -> None:
        """Flush what is buffered (to ClickHouse or the spool) and disconnect."""
        self._stop.set()
        if self._flusher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        else:
            await asyncio.to_thread(self.writer.flush)
        await asyncio.to_thread(self.client.disconnect)
