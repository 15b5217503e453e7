"""ClickHouse down in the middle of batches: rows go to the spool and reach ClickHouse exactly once
when it is back; a batch that was written but not acknowledged is not doubled by its replay."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client
from clickhouse_driver.errors import NetworkError
from pydantic import SecretStr

from shared.clock import IST, SystemClock
from shared.localservers import ClickHouseServer
from shared.messages import Tick
from shared.store import (
    BatchPolicy,
    BatchWriter,
    ClickHouseInserter,
    NoStoreMetrics,
    Spool,
    apply_migrations,
    connect_clickhouse,
    run_flusher,
    tick_row,
)
from shared.store.batch_writer import Row
from shared.store.rows import TICK_COLUMNS
from tests.support import eventually

pytestmark = pytest.mark.integration

T0 = datetime(2024, 8, 1, 9, 15, tzinfo=IST)


def tick(n: int) -> dict[str, Any]:
    return tick_row(
        Tick(
            instrument_token=256265 + n % 7,
            symbol="NSE:NIFTY 50",
            last_price=24_500.0 + n,
            exchange_ts=T0 + timedelta(milliseconds=n),
            received_ns=n,  # the row's identity in these tests
        )
    )


class Backlog(NoStoreMetrics):
    def __init__(self) -> None:
        self.spooled = 0
        self.files = 0

    def rows_spooled(self, table: str, count: int) -> None:
        self.spooled += count

    def spool_backlog(self, table: str, files: int, rows: int) -> None:
        self.files = files


def connect(server: ClickHouseServer, database: str) -> Client:
    return connect_clickhouse(
        server.host,
        server.port,
        database,
        "default",
        SecretStr(""),
        connect_timeout_s=1.0,
        send_receive_timeout_s=5.0,
    )


def counts(client: Client, table: str = "ticks") -> tuple[int, int, int]:
    """(rows, distinct rows, max n + 1): equal values mean no loss and no doubles."""
    [(rows, distinct, top)] = client.execute(
        f"SELECT count(), uniqExact(received_ns), max(received_ns) + 1 FROM {table}"
    )
    return int(rows), int(distinct), int(top)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ClickHouseServer]:
    server = ClickHouseServer(tmp_path / "clickhouse").start()
    yield server
    server.stop()


def test_rows_buffered_when_clickhouse_stops_are_written_exactly_once_after_restart(
    own_server: ClickHouseServer, tmp_path: Path
) -> None:
    client = connect(own_server, "tradealgo")
    apply_migrations(client)
    metrics = Backlog()
    policy = BatchPolicy(
        max_rows=1000,
        insert_attempts=2,
        retry_initial_s=0.01,
        retry_max_s=0.02,
        replay_interval_s=0.01,
    )
    writer = BatchWriter(
        "ticks",
        TICK_COLUMNS,
        inserter=ClickHouseInserter(client),
        spool=Spool(tmp_path / "spool"),
        clock=SystemClock(),
        policy=policy,
        metrics=metrics,
    )
    writer.add_many(tick(n) for n in range(200))
    writer.flush()
    writer.add_many(tick(n) for n in range(200, 300))  # a batch in the making ...
    own_server.stop()  # ... when ClickHouse goes away
    writer.add_many(tick(n) for n in range(300, 400))
    assert writer.flush() == 200
    writer.add_many(tick(n) for n in range(400, 450))
    writer.flush()
    assert (metrics.spooled, metrics.files) == (250, 2)

    own_server.start()
    writer.add_many(tick(n) for n in range(450, 500))
    writer.flush()  # older spooled batches first, then this one
    assert metrics.files == 0
    assert counts(client) == (500, 500, 500)
    client.disconnect()


async def test_a_flusher_loses_and_doubles_nothing_across_a_kill_9_of_clickhouse(
    own_server: ClickHouseServer, tmp_path: Path
) -> None:
    client = connect(own_server, "tradealgo")
    apply_migrations(client)
    metrics = Backlog()
    policy = BatchPolicy(
        max_rows=40,
        max_age_s=0.02,
        insert_attempts=2,
        retry_initial_s=0.01,
        retry_max_s=0.02,
        replay_interval_s=0.1,
    )
    writer = BatchWriter(
        "ticks",
        TICK_COLUMNS,
        inserter=ClickHouseInserter(client),
        spool=Spool(tmp_path / "spool"),
        clock=SystemClock(),
        policy=policy,
        metrics=metrics,
    )
    stop = asyncio.Event()
    flusher = asyncio.create_task(run_flusher([writer], stop, interval_s=0.01))
    n = 0

    def feed(rows: int) -> None:
        nonlocal n
        writer.add_many(tick(i) for i in range(n, n + rows))
        n += rows

    feed(300)
    await eventually(lambda: writer.buffered == 0)
    await asyncio.to_thread(own_server.kill)
    feed(300)
    await eventually(lambda: metrics.spooled >= 300, timeout=15)
    await asyncio.to_thread(own_server.start)
    feed(300)
    await eventually(lambda: metrics.files == 0 and writer.buffered == 0, timeout=15)
    stop.set()
    await flusher
    assert counts(client) == (900, 900, 900)
    client.disconnect()


class AckLosingInserter:
    """Inserts for real, then reports a network error: the reply was lost on the way back."""

    def __init__(self, inner: ClickHouseInserter, losses: int) -> None:
        self.inner = inner
        self.losses = losses

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row], token: str) -> None:
        self.inner.insert(table, columns, rows, token)
        if self.losses > 0:
            self.losses -= 1
            raise NetworkError("Connection reset by peer (after the insert)")


@pytest.mark.parametrize(
    ("settings", "attempts", "expected_rows"),
    [
        ("SETTINGS non_replicated_deduplication_window = 100", 1, 50),  # replayed from the spool
        ("SETTINGS non_replicated_deduplication_window = 100", 2, 50),  # retried in the flush
        ("", 1, 100),  # without the window ClickHouse cannot recognise the token: doubled
    ],
    ids=["spool-replay", "retry", "no-window-doubles"],
)
def test_a_batch_written_but_not_acknowledged_is_deduplicated_by_its_token(
    clickhouse_server: ClickHouseServer,
    clickhouse_db: str,
    tmp_path: Path,
    settings: str,
    attempts: int,
    expected_rows: int,
) -> None:
    client = connect(clickhouse_server, clickhouse_db)
    client.execute(f"CREATE TABLE t (n UInt32) ENGINE = MergeTree ORDER BY n {settings}")
    policy = BatchPolicy(insert_attempts=attempts, retry_initial_s=0, retry_max_s=0)
    spool = Spool(tmp_path)
    writer = BatchWriter(
        "t",
        ("n",),
        inserter=AckLosingInserter(ClickHouseInserter(client), losses=1),
        spool=spool,
        clock=SystemClock(),
        policy=policy,
    )
    writer.add_many({"n": n} for n in range(50))
    writer.flush()
    assert len(spool.files()) == (1 if attempts == 1 else 0)
    writer.replay()
    assert spool.files() == []
    assert client.execute("SELECT count() FROM t") == [(expected_rows,)]
    client.disconnect()
