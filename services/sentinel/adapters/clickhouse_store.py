"""The Sentinel's ClickHouse side (an IO adapter): the `sessions` audit, the `instruments` dump,
and the reachability probe of the pre-market checks.

Audit rows are buffered and flushed in the background through the shared BatchWriter (spooled
under `<spool_dir>/sentinel/` while ClickHouse is down). An instruments dump is flushed at once
(durable in ClickHouse or the spool when `write_instruments` returns). The Sentinel starts even
when ClickHouse is down (that is a pre-market check failing, not a reason to die): the schema is
applied before the first insert that reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.sentinel.adapters.login_flow import SESSION_COLUMNS
from services.sentinel.adapters.metrics import SentinelMetrics
from services.sentinel.instruments import INSTRUMENT_COLUMNS
from services.sentinel.settings import SentinelSettings
from shared.clock import Clock, SystemClock
from shared.store import BatchPolicy, BatchWriter, clickhouse_from_settings, run_flusher, spool_for
from shared.store.migrated_inserter import MigratedInserter

logger = logging.getLogger(__name__)

SPOOL_SUBDIR = "sentinel"
FLUSH_INTERVAL_S = 0.5
INSTRUMENT_BATCH_ROWS = 50_000


class SentinelClickHouse:
    """SessionAudit + InstrumentSink + the clickhouse ping."""

    def __init__(
        self,
        settings: SentinelSettings,
        metrics: SentinelMetrics,
        clock: Clock | None = None,
        client: Any = None,
        probe: Any = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.client = (
            client
            if client is not None
            else clickhouse_from_settings(settings, create_database=False)
        )  # no IO yet: the driver connects on its first query
        self.inserter = MigratedInserter(self.client)
        # The probe has its own connection: a driver client is not thread-safe.
        self.probe = (
            probe
            if probe is not None
            else clickhouse_from_settings(settings, create_database=False)
        )
        spool_root = Path(settings.spool_dir) / SPOOL_SUBDIR

        def writer(table: str, columns: Sequence[str], max_rows: int) -> BatchWriter:
            return BatchWriter(
                table, columns, inserter=self.inserter, spool=spool_for(spool_root, table),
                clock=self.clock, policy=BatchPolicy(max_rows=max_rows, max_age_s=1.0),
                metrics=metrics,
            )  # fmt: skip

        self.sessions = writer("sessions", SESSION_COLUMNS, 100)
        self.instruments = writer("instruments", INSTRUMENT_COLUMNS, INSTRUMENT_BATCH_ROWS)
        self._stop = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._query_lock = asyncio.Lock()

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._bootstrap)
        except Exception as exc:  # the clickhouse check fails and halts; rows are spooled
            logger.error("ClickHouse not reachable at start: %s: %s", type(exc).__name__, exc)
        self._flusher = asyncio.create_task(
            run_flusher([self.sessions], self._stop, FLUSH_INTERVAL_S), name="sentinel-clickhouse"
        )

    def _bootstrap(self) -> None:
        clickhouse_from_settings(self.settings).disconnect()  # CREATE DATABASE IF NOT EXISTS
        self.inserter.ensure_schema()

    # -- SessionAudit ---------------------------------------------------------------------------

    def record(self, row: dict[str, Any]) -> None:
        self.sessions.add(row)

    # -- InstrumentSink -------------------------------------------------------------------------

    async def write_instruments(self, rows: Sequence[dict[str, Any]]) -> None:
        self.instruments.add_many(rows)
        await asyncio.to_thread(self.instruments.flush)

    # -- the check ------------------------------------------------------------------------------

    async def ping(self) -> None:
        """SELECT 1 (raises when ClickHouse does not answer)."""
        async with self._query_lock:
            await asyncio.to_thread(self.probe.execute, "SELECT 1")

    async def close(self) -> None:
        self._stop.set()
        if self._flusher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await asyncio.to_thread(self.instruments.flush)
        await asyncio.to_thread(self.client.disconnect)
        await asyncio.to_thread(self.probe.disconnect)
