"""Every tick into ClickHouse `ticks` from a worker PROCESS (an IO adapter, a FrameSink).

Why a process: the Producer's main process spends its core on parsing and publishing to Redis,
and Python threads share one core. So the raw frames (already in memory, cheap to pickle) go to
one worker process that parses each handed-over batch into numpy columns (frame_columns.py: the
same values TickParser + TickRows give, ~0.3 ms per 1,000 ticks instead of ~13) and inserts them
as columns (tick_columns_inserter.py), through the shared BatchWriter's `write_batch`: retried,
deduplicated by batch token and spooled exactly as in-process (`<spool_dir>/producer/ticks`; a
spooled block is stored and replayed as rows, the spool's format unchanged).

Nothing blocks the event loop: each hand-over is a future on a one-process pool. When the
worker falls `clickhouse_max_inflight` batches behind, further frames are NOT written to
ClickHouse and are counted (tradealgo_ticks_dropped_total{reason="clickhouse_backlog"}), as are
frames lost with a worker that died ({reason="clickhouse_worker_died"}); a new worker is started.
Redis publishing never waits for ClickHouse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.producer.adapters.metrics import ProducerMetrics
from services.producer.adapters.tick_columns_inserter import TickColumnsInserter
from services.producer.frame_buffer import Frame
from services.producer.frame_columns import FrameColumnParser
from services.producer.packets import packet_count
from services.producer.settings import ProducerSettings
from services.producer.tick_columns import PendingBlocks
from shared.clock import SystemClock
from shared.messages import Tick
from shared.store import MESSAGE_TABLES, BatchPolicy, BatchWriter, connect_clickhouse, spool_for

logger = logging.getLogger(__name__)

SPOOL_SUBDIR = "producer"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What the worker needs (plain values: it is pickled to a fresh interpreter)."""

    host: str
    port: int
    database: str
    user: str
    password: str
    spool_dir: str
    batch_rows: int
    flush_s: float
    log_level: str
    nice: int = 0


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """Totals since the worker started."""

    rows_added: int
    rows_written: int
    rows_spooled: int
    insert_errors: int
    spool_rows: int


class _Counts:
    """StoreMetrics inside the worker: totals sent back with every answer."""

    def __init__(self) -> None:
        self.written = self.spooled = self.errors = self.backlog = 0

    def rows_written(self, table: str, count: int) -> None:
        self.written += count

    def insert_failed(self, table: str, kind: str) -> None:
        self.errors += 1

    def rows_spooled(self, table: str, count: int) -> None:
        self.spooled += count

    def rows_quarantined(self, table: str, count: int) -> None:
        pass

    def spool_backlog(self, table: str, files: int, rows: int) -> None:
        self.backlog = rows


class _Worker:
    def __init__(self, config: WorkerConfig) -> None:
        from pydantic import SecretStr

        self.client = connect_clickhouse(
            config.host, config.port, config.database, config.user,
            SecretStr(config.password), create_database=False,
        )  # fmt: skip
        self.inserter = TickColumnsInserter(self.client)
        self.counts = _Counts()
        self.clock = SystemClock()
        spec = MESSAGE_TABLES[Tick]
        self.writer = BatchWriter(
            spec.table, spec.columns, inserter=self.inserter,
            spool=spool_for(Path(config.spool_dir) / SPOOL_SUBDIR, spec.table),
            clock=self.clock,
            policy=BatchPolicy(max_rows=config.batch_rows, max_age_s=config.flush_s),
            metrics=self.counts,
        )  # fmt: skip
        self.pending = PendingBlocks(config.batch_rows, config.flush_s)
        self.parser = FrameColumnParser({})
        self.added = 0
        try:  # create the database and schema now if ClickHouse answers
            connect_clickhouse(
                config.host, config.port, config.database, config.user,
                SecretStr(config.password),
            ).disconnect()  # fmt: skip
            self.inserter.ensure_schema()
        except Exception as exc:  # spooled until it answers
            logger.error("ClickHouse not reachable at start: %s: %s", type(exc).__name__, exc)

    def stats(self) -> WorkerStats:
        c = self.counts
        return WorkerStats(self.added, c.written, c.spooled, c.errors, c.backlog)

    def flush_if_due(self) -> None:
        """Write the pending blocks when due; otherwise let the writer offer its spool."""
        if self.pending.due(self.clock.now()) is not None:
            self.writer.write_batch(self.pending.take())
        else:
            self.writer.flush_if_due()

    def flush(self) -> None:
        """Write whatever is pending now (ClickHouse or spool) and offer the spool."""
        self.writer.write_batch(self.pending.take())
        self.writer.flush()


_worker: _Worker | None = None


def _init(config: WorkerConfig) -> None:
    global _worker
    # The Producer stops the worker itself (after a final flush): a Ctrl-C or a SIGTERM sent to
    # the whole process group must not kill it with rows still buffered. If the Producer dies,
    # the pool's pipe closes and the worker exits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")  # fmt: skip
    if config.nice:
        # Storing ticks may wait a few milliseconds; publishing them to Redis may not: on a
        # busy core the scheduler lets the Producer (and the services after it) go first.
        os.nice(config.nice)
        logging.getLogger(__name__).info(
            "ClickHouse tick writer runs at a lower CPU priority (nice +%d)", config.nice
        )
    _worker = _Worker(config)


def _write(frames: Sequence[tuple[bytes, int]], symbols: Mapping[int, str] | None) -> WorkerStats:
    worker = _worker
    assert worker is not None, "worker not initialised"
    if symbols is not None:
        worker.parser = FrameColumnParser(symbols)
    block = worker.parser.parse(frames)
    worker.pending.add(block, worker.clock.now())
    worker.added += len(block)
    worker.flush_if_due()
    return worker.stats()


def _flush(final: bool) -> WorkerStats:
    worker = _worker
    assert worker is not None, "worker not initialised"
    if final:
        worker.flush()
        worker.client.disconnect()
    else:
        worker.flush_if_due()
    return worker.stats()


class ClickHouseTickProcess:
    """The Producer's FrameSink: frames -> worker process -> ClickHouse `ticks`."""

    def __init__(self, settings: ProducerSettings, metrics: ProducerMetrics) -> None:
        s = settings
        self.settings = settings
        self.metrics = metrics
        self.config = WorkerConfig(
            s.clickhouse_host, s.clickhouse_port, s.clickhouse_database, s.clickhouse_user,
            s.clickhouse_password.get_secret_value(), s.spool_dir, s.clickhouse_batch_rows,
            s.clickhouse_flush_s, s.log_level, s.clickhouse_writer_nice,
        )  # fmt: skip
        self.symbols: dict[int, str] = {}
        self._symbols_sent: dict[int, str] | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._in_flight: set[asyncio.Future[WorkerStats]] = set()
        self._last = WorkerStats(0, 0, 0, 0, 0)
        self._stop = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._pending: list[Frame] = []
        self._pending_since = 0.0
        self.dropped = 0

    def _new_pool(self) -> ProcessPoolExecutor:
        self._symbols_sent = None  # a new worker knows no symbols yet
        return ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init, initargs=(self.config,),
        )  # fmt: skip

    async def start(self) -> None:
        self._pool = self._new_pool()
        await self._run(_flush, False)  # start the worker (connect, schema) before ticks come
        self._ticker = asyncio.create_task(self._flush_by_age(), name="producer-clickhouse")

    def set_symbols(self, symbols: Mapping[int, str]) -> None:
        self.symbols = dict(symbols)

    def add_frames(self, frames: Sequence[Frame]) -> None:
        """Queue frames for the worker without waiting; they are handed over together once the
        oldest has waited `clickhouse_handoff_ms` (each hand-over wakes three threads of this
        process and the worker: once per frame, they took the GIL from the hot path ~60 times
        a second)."""
        if not frames:
            return
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.extend(frames)
        if time.monotonic() - self._pending_since >= self.settings.clickhouse_handoff_ms / 1000:
            self._hand_over()

    def _hand_over(self) -> None:
        """Hand the queued frames to the worker; beyond the in-flight bound they are dropped
        (for ClickHouse only) and counted."""
        frames, self._pending = self._pending, []
        if not frames:
            return
        if len(self._in_flight) >= self.settings.clickhouse_max_inflight or self._pool is None:
            self._drop(frames, "clickhouse_backlog")
            return
        payload = [(frame.payload, frame.received_ns) for frame in frames]
        try:
            future = self._submit(payload)
        except BrokenProcessPool:  # the worker died since the last call: a new one takes these
            self._worker_died()
            future = self._submit(payload)
        self._in_flight.add(future)

        pool = self._pool

        def done(f: asyncio.Future[WorkerStats], handed: Sequence[Frame] = frames) -> None:
            self._done(f, handed, pool)

        future.add_done_callback(done)

    def _submit(self, payload: list[tuple[bytes, int]]) -> asyncio.Future[WorkerStats]:
        symbols = None if self._symbols_sent == self.symbols else dict(self.symbols)
        future = asyncio.get_running_loop().run_in_executor(self._pool, _write, payload, symbols)
        self._symbols_sent = dict(self.symbols)
        return future

    def _done(
        self,
        future: asyncio.Future[WorkerStats],
        frames: Sequence[Frame],
        pool: ProcessPoolExecutor | None,
    ) -> None:
        self._in_flight.discard(future)
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            self._account(future.result())
            return
        logger.error("ClickHouse worker failed (%s: %s): %d frames not written",
                     type(error).__name__, error, len(frames))  # fmt: skip
        self._drop(frames, "clickhouse_worker_died")
        # Every pending call of a dead worker fails: start one replacement, not one each.
        if isinstance(error, BrokenProcessPool) and pool is self._pool and not self._stop.is_set():
            self._worker_died()

    def _worker_died(self) -> None:
        """Count the rows the dead worker still held (as of its last answer), start another."""
        last = self._last
        held = max(0, last.rows_added - last.rows_written - last.rows_spooled)
        if held:
            logger.error("the ClickHouse worker died holding %d unwritten rows", held)
            self.dropped += held
            self.metrics.ticks_dropped.labels("clickhouse_worker_died").inc(held)
        self._last = WorkerStats(0, 0, 0, 0, 0)
        old, self._pool = self._pool, self._new_pool()
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)

    def _drop(self, frames: Sequence[Frame], reason: str) -> None:
        lost = sum(packet_count(frame.payload) for frame in frames)
        self.dropped += lost
        self.metrics.ticks_dropped.labels(reason).inc(lost)

    def _account(self, stats: WorkerStats) -> None:
        last, self._last = self._last, stats
        self.metrics.rows_written("ticks", stats.rows_written - last.rows_written)
        if stats.rows_spooled > last.rows_spooled:
            self.metrics.rows_spooled("ticks", stats.rows_spooled - last.rows_spooled)
        for _ in range(stats.insert_errors - last.insert_errors):
            self.metrics.insert_failed("ticks")
        self.metrics.spool_backlog("ticks", 0, stats.spool_rows)

    @property
    def stats(self) -> WorkerStats:
        """The worker's totals as of its last answer."""
        return self._last

    async def _run(self, function: Any, *args: Any) -> WorkerStats:
        loop = asyncio.get_running_loop()
        try:
            stats: WorkerStats = await loop.run_in_executor(self._pool, function, *args)
        except BrokenProcessPool:
            self._worker_died()
            stats = await loop.run_in_executor(self._pool, function, *args)
        self._account(stats)
        return stats

    async def _flush_by_age(self) -> None:
        """Queued frames are handed over and rows that waited `clickhouse_flush_s` are written
        even when no frame comes."""
        s = self.settings
        every_s = min(s.clickhouse_flush_s, s.clickhouse_handoff_ms / 1000 or s.clickhouse_flush_s)
        last_flush = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), every_s)
            if self._stop.is_set():
                return
            if self._pending and time.monotonic() - self._pending_since >= every_s:
                self._hand_over()
            if time.monotonic() - last_flush >= s.clickhouse_flush_s:
                last_flush = time.monotonic()
                if not self._in_flight:
                    with contextlib.suppress(Exception):  # a dead worker is replaced on next add
                        await self._run(_flush, False)

    async def close(self) -> None:
        """Wait for what was handed over, flush the worker (ClickHouse or spool), stop it."""
        self._stop.set()
        if self._ticker is not None:
            await self._ticker
        self._hand_over()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._pool is not None:
            try:
                await self._run(_flush, True)
            except Exception as exc:
                logger.error("final ClickHouse flush failed: %s: %s", type(exc).__name__, exc)
            self._pool.shutdown(wait=True)
            self._pool = None
