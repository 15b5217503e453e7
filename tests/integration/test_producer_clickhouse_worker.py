"""The ClickHouse worker process: frames in, `ticks` rows out; a dead worker is counted and
replaced; a full hand-over queue drops (for ClickHouse only) and counts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from clickhouse_driver import Client
from prometheus_client import CollectorRegistry

from services.producer.adapters.clickhouse_process import ClickHouseTickProcess
from services.producer.adapters.metrics import ProducerMetrics
from services.producer.frame_buffer import Frame
from services.producer.settings import ProducerSettings
from services.simulator.ticker_packets import DepthEntry, FrameEncoder, TickSnapshot
from shared.localservers import ClickHouseServer
from tests.support import eventually

pytestmark = pytest.mark.integration

TOKENS = [(10_000 + i) * 256 + 2 for i in range(50)]
DEPTH = tuple(DepthEntry(25, 100.0, 1) for _ in range(5))


def frame(n: int) -> Frame:
    """One frame of 50 full packets, with distinct exchange times per call."""
    snaps = [
        (TickSnapshot(instrument_token=t, last_price=100.0 + n, exchange_timestamp=1_724_125_500 + n,
                      last_trade_time=1_724_125_500, bids=DEPTH, asks=DEPTH), "full")
        for t in TOKENS
    ]  # fmt: skip
    return Frame("c0", FrameEncoder(len(snaps)).encode(snaps), n)  # type: ignore[arg-type]


def settings(
    server: ClickHouseServer, database: str, tmp_path: Path, **extra: object
) -> ProducerSettings:
    values: dict[str, object] = {
        "clickhouse_host": server.host, "clickhouse_port": server.port,
        "clickhouse_database": database, "spool_dir": str(tmp_path), "clickhouse_flush_s": 0.2,
        "clickhouse_handoff_ms": 0,  # every frame handed over at once (one test batches them)
    }  # fmt: skip
    values.update(extra)
    return ProducerSettings(**values)  # type: ignore[arg-type]


def count(server: ClickHouseServer, database: str) -> int:
    client = Client(host=server.host, port=server.port, database=database)
    try:
        rows: int = client.execute("SELECT count() FROM ticks")[0][0]
        return rows
    finally:
        client.disconnect()


@contextlib.asynccontextmanager
async def running_sink(
    server: ClickHouseServer, database: str, tmp_path: Path, symbol: str = "NFO:X", **extra: object
) -> AsyncIterator[tuple[ClickHouseTickProcess, ProducerMetrics]]:
    """A started worker sink knowing TOKENS' symbols (`symbol`, or NFO:S<i> for "numbered");
    closed (final flush, worker stopped) on the way out."""
    metrics = ProducerMetrics(CollectorRegistry())
    sink = ClickHouseTickProcess(settings(server, database, tmp_path, **extra), metrics)
    await sink.start()
    try:
        if symbol == "numbered":
            sink.set_symbols({t: f"NFO:S{i}" for i, t in enumerate(TOKENS)})
        else:
            sink.set_symbols(dict.fromkeys(TOKENS, symbol))
        yield sink, metrics
    finally:
        await sink.close()


def dropped(metrics: ProducerMetrics, reason: str) -> float:
    return (
        metrics.registry.get_sample_value("tradealgo_ticks_dropped_total", {"reason": reason}) or 0
    )


async def test_frames_handed_to_the_worker_become_rows_with_their_symbols(
    clickhouse_server: ClickHouseServer, clickhouse_db: str, tmp_path: Path
) -> None:
    async with running_sink(clickhouse_server, clickhouse_db, tmp_path, "numbered") as (
        sink,
        metrics,
    ):
        for n in range(10):
            sink.add_frames([frame(n)])
        await eventually(lambda: sink.stats.rows_written == 500, timeout=20)
    assert count(clickhouse_server, clickhouse_db) == 500
    assert (
        metrics.registry.get_sample_value(
            "tradealgo_clickhouse_rows_written_total", {"service": "producer", "table": "ticks"}
        )
        == 500
    )


async def test_frames_are_handed_over_together_once_the_oldest_has_waited(
    clickhouse_server: ClickHouseServer, clickhouse_db: str, tmp_path: Path
) -> None:
    async with running_sink(
        clickhouse_server, clickhouse_db, tmp_path, clickhouse_handoff_ms=200
    ) as (sink, _):
        for n in range(10):
            sink.add_frames([frame(n)])
        assert not sink._in_flight  # queued, the worker not woken yet
        # No more frames come: the age ticker hands the ten over in one call.
        await eventually(lambda: sink.stats.rows_written == 500, timeout=20)
    assert count(clickhouse_server, clickhouse_db) == 500


async def test_a_dead_worker_is_counted_and_replaced(
    clickhouse_server: ClickHouseServer, clickhouse_db: str, tmp_path: Path
) -> None:
    async with running_sink(
        clickhouse_server, clickhouse_db, tmp_path, clickhouse_flush_s=30.0
    ) as (sink, metrics):
        sink.add_frames([frame(0)])
        await eventually(lambda: sink.stats.rows_added == 50, timeout=20)  # held, not yet flushed
        pool = sink._pool
        assert pool is not None
        (pid,) = list(pool._processes)
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.5)
        sink.add_frames([frame(1)])  # meets the dead worker: a new worker takes it
        assert sink._pool is not pool
        await eventually(lambda: sink.stats.rows_added == 50, timeout=30)
    # The 50 rows the dead worker held (never flushed) are counted, nothing else is lost.
    assert dropped(metrics, "clickhouse_worker_died") == 50 == sink.dropped
    assert count(clickhouse_server, clickhouse_db) == 50  # the frame after the restart


async def test_beyond_the_in_flight_bound_frames_are_dropped_for_clickhouse_and_counted(
    clickhouse_server: ClickHouseServer, clickhouse_db: str, tmp_path: Path
) -> None:
    async with running_sink(
        clickhouse_server, clickhouse_db, tmp_path, clickhouse_max_inflight=1
    ) as (sink, metrics):
        for n in range(5):  # no await in between: the first is still in flight
            sink.add_frames([frame(n)])
    assert dropped(metrics, "clickhouse_backlog") == 4 * 50 == sink.dropped
    assert count(clickhouse_server, clickhouse_db) == 50
