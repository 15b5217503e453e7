"""The ClickHouse access layer: connections, migrations, batched/spooled inserts, row mappings.

Typical use (composition root + async shell of a service)::

    client = clickhouse_from_settings(settings)               # creates the database if missing
    apply_migrations(client)                                  # shared/schema/NNN_*.sql, idempotent
    spec = MESSAGE_TABLES[Candle]
    candles = BatchWriter(spec.table, spec.columns, inserter=ClickHouseInserter(client),
                          spool=spool_for(settings.spool_dir, spec.table), clock=SystemClock(),
                          policy=BatchPolicy(max_rows=..., max_age_s=...), metrics=metrics)
    flusher = asyncio.create_task(run_flusher([candles], stop, interval_s=0.2))
    candles.add(spec.row(candle))                             # buffers only, no IO
    await asyncio.to_thread(candles.flush)                    # when the row must be durable now

clickhouse-driver is synchronous: call blocking methods (flush, replay, apply_migrations,
client.execute) through asyncio.to_thread from async code.
"""

from __future__ import annotations

from shared.store.batch_writer import BatchWriter, ClickHouseInserter, Inserter
from shared.store.client import clickhouse_from_settings, connect_clickhouse, quote_identifier
from shared.store.flush_policy import BatchPolicy, FlushReason, flush_reason
from shared.store.flusher import run_flusher
from shared.store.insert_errors import InsertFailure, classify_insert_error
from shared.store.metrics import NO_STORE_METRICS, NoStoreMetrics, StoreMetrics
from shared.store.migrations import Migration, MigrationError, apply_migrations, load_migrations
from shared.store.rows import (
    DEAD_LETTER_COLUMNS,
    MESSAGE_TABLES,
    MessageTable,
    message_row,
    model_columns,
    risk_event_row,
    tick_row,
)
from shared.store.spool import Spool, SpooledBatch, SpoolError, spool_for

__all__ = [
    "DEAD_LETTER_COLUMNS",
    "MESSAGE_TABLES",
    "NO_STORE_METRICS",
    "BatchPolicy",
    "BatchWriter",
    "ClickHouseInserter",
    "FlushReason",
    "InsertFailure",
    "Inserter",
    "MessageTable",
    "Migration",
    "MigrationError",
    "NoStoreMetrics",
    "Spool",
    "SpoolError",
    "SpooledBatch",
    "StoreMetrics",
    "apply_migrations",
    "classify_insert_error",
    "clickhouse_from_settings",
    "connect_clickhouse",
    "flush_reason",
    "load_migrations",
    "message_row",
    "model_columns",
    "quote_identifier",
    "risk_event_row",
    "run_flusher",
    "spool_for",
    "tick_row",
]
