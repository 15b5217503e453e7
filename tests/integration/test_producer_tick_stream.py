"""The scripted tick appender writes exactly what the bus would, in order, bounded, on a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from services.producer.adapters.tick_stream import ScriptedStreamAppender
from shared import constants as c
from shared.bus import NO_BUS_METRICS, StreamBus, decode_entry, redis_client
from shared.clock import IST
from shared.messages import DepthLevel, Tick

pytestmark = pytest.mark.integration

TS = datetime(2024, 8, 20, 9, 15, 1, tzinfo=IST)


def tick(token: int, n: int) -> Tick:
    level = DepthLevel(100.0 + n, 10 * n, n)
    return Tick(
        instrument_token=token, symbol=f"NFO:X{token}", last_price=100.0 + n, exchange_ts=TS,
        received_ns=n, volume=n, bids=(level,) * 5, asks=(level,) * 5,
    )  # fmt: skip


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = redis_client(redis_url)
    yield client
    await client.aclose()


def token(t: Tick) -> int:
    return t.instrument_token


async def read_all(redis: Any, partitions: int) -> dict[int, list[Tick]]:
    out: dict[int, list[Tick]] = {}
    for p in range(partitions):
        stream = c.partitioned(c.TICKS, p)
        for _, fields in await redis.xrange(stream):
            message = decode_entry(stream, fields)
            assert isinstance(message, Tick)
            out.setdefault(p, []).append(message)
    return out


async def test_scripted_entries_equal_the_bus_entries_shard_by_shard_in_order(redis: Any) -> None:
    ticks = [tick(1000 + (n % 7), n) for n in range(1, 301)]
    appender = ScriptedStreamAppender(redis, maxlen=10_000, batch=64, metrics=NO_BUS_METRICS)
    assert await appender.publish_partitioned(c.TICKS, ticks, 3, token) == 300
    scripted = await read_all(redis, 3)
    await redis.flushall()
    bus = StreamBus(redis, service="test", maxlen=10_000, publish_batch=64)
    await bus.publish_partitioned(c.TICKS, ticks, 3)
    via_bus = await read_all(redis, 3)
    assert scripted == via_bus
    assert sum(len(v) for v in scripted.values()) == 300
    # Raw fields are byte-identical too.
    for p in range(3):
        stream = c.partitioned(c.TICKS, p)
        for _, fields in await redis.xrange(stream, count=1):
            assert set(fields) == {b"m", b"d"}


async def test_each_shard_stays_bounded_by_the_approximate_maxlen(redis: Any) -> None:
    appender = ScriptedStreamAppender(redis, maxlen=100, batch=500, metrics=NO_BUS_METRICS)
    await appender.publish_partitioned(c.TICKS, [tick(5, n) for n in range(5000)], 1, token)
    length = await redis.xlen(c.partitioned(c.TICKS, 0))
    assert 100 <= length < 1000  # approximate trimming keeps whole macro nodes


async def test_a_flushed_script_cache_is_reloaded_transparently(redis: Any) -> None:
    appender = ScriptedStreamAppender(redis, maxlen=1000, batch=10, metrics=NO_BUS_METRICS)
    await appender.publish_partitioned(c.TICKS, [tick(5, 1)], 1, token)
    await redis.script_flush()
    await appender.publish_partitioned(c.TICKS, [tick(5, 2)], 1, token)
    assert await redis.xlen(c.partitioned(c.TICKS, 0)) == 2
