"""BatchWriter: rows buffered per table, inserted in batches, never lost while ClickHouse is down.

`add`/`add_many` only buffer (cheap, safe to call from the event loop). `flush` is blocking IO
(call it via asyncio.to_thread; see flusher.run_flusher): it inserts the buffered rows as one
batch with a fresh batch id as insert_deduplication_token, retrying network errors, and when
ClickHouse stays unreachable it writes the batch to the on-disk spool instead. When `flush`
returns, the rows are durable: in ClickHouse or fsynced in the spool. Spooled batches are
replayed oldest first, before any newer batch, with their original token, so a replay of a batch
that did reach ClickHouse is deduplicated: no row lost, none doubled.

Rows still in the buffer when the process crashes are lost (at most max_rows / max_age_s worth):
a row that must survive a crash is flushed before the caller acts on it (e.g. acks its entry).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from shared.clock import Clock
from shared.store.client import quote_identifier
from shared.store.flush_policy import BatchPolicy, FlushReason, flush_reason, replay_due
from shared.store.insert_errors import InsertFailure, classify_insert_error
from shared.store.metrics import NO_STORE_METRICS, StoreMetrics
from shared.store.spool import Spool, SpooledBatch, SpoolError, new_batch_id

logger = logging.getLogger(__name__)

Row = tuple[Any, ...]


class Inserter(Protocol):
    """Where batches go; ClickHouseInserter in production, wrappers in fault tests."""

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row], token: str) -> None:
        """Insert rows as one deduplicated block; raise on any failure."""


class ClickHouseInserter:
    """Inserts through one clickhouse_driver.Client (not thread-safe, hence the lock)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row], token: str) -> None:
        names = ", ".join(quote_identifier(c) for c in columns)
        sql = f"INSERT INTO {quote_identifier(table)} ({names}) VALUES"
        settings = {"insert_deduplicate": 1, "insert_deduplication_token": token}
        with self._lock:
            self._client.execute(sql, list(rows), settings=settings)


class BatchWriter:
    """Batched, retried, spooled inserts into one table. Thread-safe."""

    def __init__(
        self,
        table: str,
        columns: Sequence[str],
        *,
        inserter: Inserter,
        spool: Spool,
        clock: Clock,
        policy: BatchPolicy | None = None,
        metrics: StoreMetrics = NO_STORE_METRICS,
    ) -> None:
        quote_identifier(table)
        for column in columns:
            quote_identifier(column)
        if len(set(columns)) != len(columns) or not columns:
            raise ValueError(f"columns of {table} must be distinct and not empty: {columns}")
        self.table = table
        self.columns = tuple(columns)
        self._column_set = frozenset(columns)
        self._inserter = inserter
        self._spool = spool
        self._clock = clock
        self.policy = policy or BatchPolicy()
        self._metrics = metrics
        self._buffer: list[Row] = []
        self._oldest_at: datetime | None = None
        self._buffer_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one flush/replay at a time keeps batches in order
        self._last_replay_at: datetime | None = None
        self._report_backlog()

    # -- buffering (no IO) ----------------------------------------------------------------------

    def add(self, row: Mapping[str, Any]) -> None:
        """Buffer one row: a mapping with exactly this writer's columns (ValueError otherwise)."""
        values = self._values(row)
        with self._buffer_lock:
            if not self._buffer:
                self._oldest_at = self._clock.now()
            self._buffer.append(values)

    def add_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        values = [self._values(row) for row in rows]  # all or nothing
        if not values:
            return
        with self._buffer_lock:
            if not self._buffer:
                self._oldest_at = self._clock.now()
            self._buffer.extend(values)

    def add_values(self, rows: Sequence[Row]) -> None:
        """Buffer rows given as tuples already in `columns` order (hot paths that build them
        directly; the mapping check of `add` is skipped, the arity is still checked)."""
        if not rows:
            return
        width = len(self.columns)
        for values in rows:
            if len(values) != width:
                raise ValueError(f"row for {self.table} has {len(values)} values, not {width}")
        with self._buffer_lock:
            if not self._buffer:
                self._oldest_at = self._clock.now()
            self._buffer.extend(rows)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def due(self) -> FlushReason | None:
        """Why a flush is due now (max_rows or max_age_s reached), or None."""
        with self._buffer_lock:
            rows, oldest = len(self._buffer), self._oldest_at
        return flush_reason(
            rows, oldest, self._clock.now(), self.policy.max_rows, self.policy.max_age_s
        )

    # -- IO (blocking) --------------------------------------------------------------------------

    def flush_if_due(self) -> int:
        """Flush when due; otherwise offer the spool to ClickHouse when its interval came.
        Returns the rows flushed."""
        if self.due() is not None:
            return self.flush()
        if self._spool.files() and replay_due(
            self._last_replay_at, self._clock.now(), self.policy.replay_interval_s
        ):
            self.replay()
        return 0

    def flush(self) -> int:
        """Write the buffered rows now; durable (ClickHouse or spool) on return. Returns their
        number."""
        with self._flush_lock:
            with self._buffer_lock:
                rows, self._buffer, self._oldest_at = self._buffer, [], None
            return self._write_now(rows)

    def write_batch(self, rows: Sequence[Row]) -> int:
        """Write `rows` now as one batch of their own, past the buffer, exactly as `flush` writes
        the buffered ones: durable on return, behind every spooled batch, retried, spooled.

        For callers that batch themselves in another form (e.g. a block of columns that is a
        Sequence of row tuples): the inserter receives `rows` as given, and the spool stores
        them row by row (a replayed batch reaches the inserter as a list of tuples). Returns
        their number."""
        with self._flush_lock:
            return self._write_now(rows)

    def _write_now(self, rows: Sequence[Row]) -> int:
        if rows:
            batch = SpooledBatch(new_batch_id(), self.table, self.columns, rows)
            if self._spool.files():
                # older rows wait in the spool: these go behind them to keep the order
                self._to_spool(batch, "older batches are still spooled")
            else:
                self._insert_or_spool(batch)
        if self._spool.files() and replay_due(
            self._last_replay_at, self._clock.now(), self.policy.replay_interval_s
        ):
            self._replay()
        return len(rows)

    def replay(self) -> int:
        """Offer spooled batches to ClickHouse, oldest first, until one fails; returns the rows
        written."""
        with self._flush_lock:
            return self._replay()

    def _insert_or_spool(self, batch: SpooledBatch) -> None:
        try:
            self._insert_with_retry(batch)
        except Exception as exc:
            kind = classify_insert_error(exc)
            self._metrics.insert_failed(self.table, kind.value)
            if kind is InsertFailure.TEMPORARY:
                self._to_spool(batch, f"ClickHouse unavailable: {exc!r}")
                # it just failed insert_attempts times: the next try waits replay_interval_s
                self._last_replay_at = self._clock.now()
            else:
                path = self._spool.write(batch)
                self._reject(path, batch, exc)
            return
        self._metrics.rows_written(self.table, len(batch.rows))

    def _insert_with_retry(self, batch: SpooledBatch) -> None:
        policy = self.policy
        retrying = Retrying(
            stop=stop_after_attempt(policy.insert_attempts),
            wait=wait_exponential(multiplier=policy.retry_initial_s, max=policy.retry_max_s),
            retry=retry_if_exception(lambda e: classify_insert_error(e) is InsertFailure.TEMPORARY),
            before_sleep=lambda state: logger.warning(
                "insert of %s rows into %s failed (attempt %s of %s), retrying: %r",
                len(batch.rows),
                self.table,
                state.attempt_number,
                policy.insert_attempts,
                state.outcome.exception() if state.outcome else None,
            ),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self._inserter.insert(self.table, batch.columns, batch.rows, batch.batch_id)

    def _to_spool(self, batch: SpooledBatch, why: str) -> None:
        path = self._spool.write(batch)
        self._metrics.rows_spooled(self.table, len(batch.rows))
        self._report_backlog()
        logger.warning("spooled %s rows of %s to %s: %s", len(batch.rows), self.table, path, why)

    def _replay(self) -> int:
        self._last_replay_at = self._clock.now()
        written = 0
        for path in self._spool.files():
            try:
                batch = self._spool.read(path)
            except (SpoolError, OSError) as exc:
                self._spool.reject(path, f"unreadable: {exc}")
                logger.error("spool file %s is unreadable, set aside: %s", path, exc)
                continue
            try:
                self._inserter.insert(self.table, batch.columns, batch.rows, batch.batch_id)
            except Exception as exc:
                kind = classify_insert_error(exc)
                self._metrics.insert_failed(self.table, kind.value)
                if kind is InsertFailure.TEMPORARY:
                    logger.info("ClickHouse still unavailable for %s: %r", self.table, exc)
                    break
                self._reject(path, batch, exc)
                continue
            self._spool.remove(path)
            written += len(batch.rows)
            self._metrics.rows_written(self.table, len(batch.rows))
            logger.info("replayed %s spooled rows into %s", len(batch.rows), self.table)
        self._report_backlog()
        return written

    def _reject(self, path: Path, batch: SpooledBatch, error: BaseException) -> None:
        target = self._spool.reject(path, f"ClickHouse refused the batch: {error!r}")
        self._metrics.rows_quarantined(self.table, len(batch.rows))
        self._report_backlog()
        logger.error(
            "ClickHouse refused %s rows of %s; kept in %s for a human: %r",
            len(batch.rows),
            self.table,
            target,
            error,
        )

    def _report_backlog(self) -> None:
        files, rows = self._spool.backlog()
        self._metrics.spool_backlog(self.table, files, rows)

    def _values(self, row: Mapping[str, Any]) -> Row:
        if row.keys() != self._column_set:
            missing = sorted(self._column_set - row.keys())
            unknown = sorted(set(row.keys()) - self._column_set)
            raise ValueError(f"row for {self.table}: missing {missing}, unknown {unknown}")
        return tuple(row[c] for c in self.columns)
