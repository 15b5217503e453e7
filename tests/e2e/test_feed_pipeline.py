"""Simulator -> Producer -> Redis -> ClickHouse: the tick count is equal at every stage, and the
Sentinel's audit and instruments land in ClickHouse; ClickHouse down never stops the ticks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client
from prometheus_client import CollectorRegistry

from services.producer.adapters.clickhouse_process import ClickHouseTickProcess
from services.producer.adapters.clickhouse_ticks import ClickHouseTicks
from services.producer.adapters.metrics import ProducerMetrics
from services.producer.settings import ProducerSettings
from services.producer.ticker import ensure_reactor_running
from services.sentinel.adapters.clickhouse_store import SentinelClickHouse
from services.sentinel.adapters.metrics import SentinelMetrics
from shared import constants as c
from shared.localservers import ClickHouseServer, free_port
from shared.session import token_fingerprint
from tests.integration.feed_harness import (
    producer_settings,
    running_producer,
    seed_session,
    sentinel_settings,
)
from tests.sim_fixtures import KiteSim, TickerHarness
from tests.support import eventually

pytestmark = pytest.mark.e2e


def clickhouse(server: ClickHouseServer, database: str) -> Client:
    return Client(host=server.host, port=server.port, database=database)


async def tick_keys(redis: Any, partitions: int) -> list[tuple[int, int, int, float]]:
    from shared.bus import decode_entry
    from shared.messages import Tick

    keys = []
    for p in range(partitions):
        stream = c.partitioned(c.TICKS, p)
        for _, fields in await redis.xrange(stream):
            tick = decode_entry(stream, fields)
            assert isinstance(tick, Tick)
            stamp = int(tick.exchange_ts.timestamp()) * 1_000_000 + tick.exchange_ts.microsecond
            keys.append((tick.instrument_token, stamp, tick.received_ns, tick.last_price))
    return sorted(keys)


async def settled(count: Callable[[], int], quiet_s: float = 0.5) -> int:
    """The count once it has not changed for `quiet_s`."""
    last = count()
    while True:
        await asyncio.sleep(quiet_s)
        now = count()
        if now == last:
            return now
        last = now


def spool_rows(metrics: ProducerMetrics) -> float | None:
    return metrics.registry.get_sample_value("tradealgo_spool_rows", {"service": "producer"})


async def stream_count(redis: Any, partitions: int) -> int:
    return sum([await redis.xlen(c.partitioned(c.TICKS, p)) for p in range(partitions)])


def tick_sink(settings: ProducerSettings, metrics: ProducerMetrics) -> Any:
    """The ClickHouse writer the settings choose, as __main__ builds it."""
    if settings.clickhouse_writer == "process":
        return ClickHouseTickProcess(settings, metrics)
    return ClickHouseTicks(settings, metrics)


@pytest.mark.parametrize("writer", ["process", "thread"])
async def test_the_tick_count_is_equal_from_the_simulator_through_redis_to_clickhouse(
    kite_sim: KiteSim,
    redis_url: str,
    clickhouse_server: ClickHouseServer,
    clickhouse_db: str,
    tmp_path: Path,
    writer: str,
) -> None:
    settings = producer_settings(
        kite_sim, redis_url, write_clickhouse=True, clickhouse_host=clickhouse_server.host,
        clickhouse_port=clickhouse_server.port, clickhouse_database=clickhouse_db,
        spool_dir=str(tmp_path / "spool"), clickhouse_flush_s=0.2, clickhouse_writer=writer,
    )  # fmt: skip
    sink = tick_sink(settings, ProducerMetrics(CollectorRegistry()))
    await sink.start()
    try:
        async with running_producer(settings, sink) as rp:
            token = await seed_session(rp.redis, kite_sim)
            await eventually(lambda: rp.producer.readiness()[0], timeout=15)
            tokens = sorted(rp.producer.subscription.symbols)
            ensure_reactor_running()
            witness = TickerHarness.open(kite_sim, token, tokens)  # what the exchange sent
            try:
                await eventually(lambda: witness.tick_count() >= 2 * len(tokens))
                await eventually(lambda: rp.producer.published >= 2 * len(tokens))
                # The Producer's own subscription snapshots came before the witness's.
                baseline = await settled(lambda: rp.producer.published) - await settled(
                    witness.tick_count
                )
                await asyncio.to_thread(kite_sim.control.step, 120)
                # Two minutes of at least the two indices, then wait until nothing more arrives.
                await eventually(lambda: witness.tick_count() >= 2 * len(tokens) + 120 * 2)
                sent = await settled(witness.tick_count)
                await eventually(lambda: rp.producer.published - baseline >= sent, timeout=10)
                assert await settled(lambda: rp.producer.published) - baseline == sent
            finally:
                witness.close()
            published = rp.producer.published
            in_redis = await stream_count(rp.redis, settings.tick_partitions)
            redis_keys = await tick_keys(rp.redis, settings.tick_partitions)
    finally:
        await sink.close()
    client = clickhouse(clickhouse_server, clickhouse_db)
    try:
        in_clickhouse = client.execute("SELECT count() FROM ticks")[0][0]
        symbols = {row[0] for row in client.execute("SELECT DISTINCT symbol FROM ticks")}
        depth = client.execute(
            "SELECT length(bid_prices) FROM ticks WHERE symbol LIKE 'NFO:%' LIMIT 1"
        )
        clickhouse_keys = sorted(
            client.execute(
                "SELECT instrument_token, toUnixTimestamp64Micro(exchange_ts), received_ns, "
                "last_price FROM ticks"
            )
        )
    finally:
        client.disconnect()
    assert sent - 2 * len(tokens) >= 120 * 2  # two minutes of at least the two indices
    assert published == in_redis == in_clickhouse
    assert symbols == set(rp.producer.subscription.symbols.values())
    assert depth == [(5,)]
    # The same ticks, field for field (times to the microsecond), in Redis and ClickHouse.
    assert clickhouse_keys == redis_keys
    assert not any((tmp_path / "spool").rglob("*.batch"))  # nothing left waiting


@pytest.mark.parametrize("writer", ["process", "thread"])
async def test_clickhouse_down_at_start_never_stops_the_ticks_to_redis(
    kite_sim: KiteSim, redis_url: str, tmp_path: Path, writer: str
) -> None:
    settings = producer_settings(
        kite_sim, redis_url, write_clickhouse=True, clickhouse_port=free_port(),
        spool_dir=str(tmp_path / "spool"), clickhouse_flush_s=0.2, clickhouse_writer=writer,
    )  # fmt: skip
    metrics = ProducerMetrics(CollectorRegistry())
    sink = tick_sink(settings, metrics)
    await sink.start()  # logs the outage, does not raise
    try:
        async with running_producer(settings, sink) as rp:
            await seed_session(rp.redis, kite_sim)
            await eventually(lambda: rp.producer.readiness()[0], timeout=15)
            await asyncio.to_thread(kite_sim.control.step, 10)
            await eventually(lambda: rp.producer.published >= 20)
            published = await settled(lambda: rp.producer.published)
            # Everything published was handed to ClickHouse and, ClickHouse being down, spooled.
            await eventually(lambda: spool_rows(metrics) == published, timeout=20)
            assert await stream_count(rp.redis, settings.tick_partitions) == published
    finally:
        await sink.close()
    spooled = sum(1 for _ in (tmp_path / "spool").rglob("*") if _.is_file())
    assert spooled >= 1
    assert spool_rows(metrics) == published


async def test_the_sentinel_audits_logins_and_stores_the_instruments_in_clickhouse(
    kite_sim: KiteSim,
    redis_url: str,
    clickhouse_server: ClickHouseServer,
    clickhouse_db: str,
    tmp_path: Path,
) -> None:
    from services.sentinel import __main__ as sentinel_main
    from shared.bus import redis_client
    from shared.calendar import load_calendar
    from shared.clock import SystemClock
    from tests.integration.feed_harness import RecordingAlerter

    settings = sentinel_settings(
        kite_sim, redis_url, clickhouse_host=clickhouse_server.host,
        clickhouse_port=clickhouse_server.port, clickhouse_database=clickhouse_db,
        spool_dir=str(tmp_path / "spool"),
    )  # fmt: skip
    metrics = SentinelMetrics(CollectorRegistry())
    store = SentinelClickHouse(settings, metrics)
    redis = redis_client(redis_url)
    parts = sentinel_main.build_sentinel(
        settings, redis, metrics, store, store, store.ping, RecordingAlerter(), SystemClock(),
        load_calendar(),
    )  # fmt: skip
    stop = asyncio.Event()
    await store.start()
    task = asyncio.create_task(parts.sentinel.run(stop))
    try:
        await eventually(lambda: parts.sentinel.readiness() == (True, "ready"), timeout=20)
        raw: Any = await redis.get(c.ACCESS_TOKEN_KEY)
        token = raw.decode()
        assert (
            metrics.registry.get_sample_value("tradealgo_premarket_check", {"check": "clickhouse"})
            == 1
        )
    finally:
        stop.set()
        await task
        await store.close()
        await redis.aclose()
    client = clickhouse(clickhouse_server, clickhouse_db)
    try:
        sessions = client.execute(
            "SELECT outcome, method, token_fingerprint, user_id FROM sessions"
        )
        everything = client.execute("SELECT * FROM sessions")
        instruments = client.execute(
            "SELECT count(), countIf(freeze_quantity = 1800), countIf(lot_size = 25) "
            "FROM instruments FINAL WHERE name = 'NIFTY'"
        )[0]
    finally:
        client.disconnect()
    assert sessions == [("success", "auto", token_fingerprint(token), kite_sim.user_id)]
    assert token not in repr(everything)  # only the fingerprint, never the token
    assert instruments[0] > 0 and instruments[0] == instruments[1] == instruments[2]
