"""The bus on the real Redis: round trips, per-instrument order across shards, broadcast reads."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from redis.asyncio import Redis

from shared import constants as c
from shared.bus import ConsumeOptions, StreamBus, redis_client
from shared.clock import IST
from shared.messages import Control, Message, Tick
from tests.support import eventually, stream_tick

pytestmark = pytest.mark.integration

T0 = datetime(2024, 8, 1, 9, 15, tzinfo=IST)
OPTIONS = ConsumeOptions(count=50, block_ms=50, reclaim_idle_ms=10_000, reclaim_interval_s=1.0)
TOKENS = [256265, 260105, 738561, 408065, 341249, 2953217, 1270529, 779521, 2714625, 3861249]


def control(reason: str) -> Control:
    return Control(command="HALT", reason=reason, source="test", ts=T0)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = redis_client(redis_url)
    yield client
    await client.aclose()


async def test_published_messages_come_back_equal_and_in_order(redis: Redis) -> None:
    bus = StreamBus(redis, service="test", maxlen=10_000, publish_batch=7)
    sent = [stream_tick(TOKENS[0], n) for n in range(40)]
    ids = await bus.publish_many(c.TICKS, sent)
    assert len(ids) == len(set(ids)) == 40
    assert await redis.xlen(c.TICKS) == 40
    received: list[tuple[str, Message]] = []

    async def handle(stream: str, entry_id: str, message: Message) -> None:
        received.append((entry_id, message))

    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume([c.TICKS], "g", "c1", handle, stop, OPTIONS))
    await eventually(lambda: len(received) == 40)
    stop.set()
    await task
    assert [m for _, m in received] == sent
    assert [i for i, _ in received] == ids
    assert (await redis.xpending(c.TICKS, "g"))["pending"] == 0


async def test_publish_trims_streams_to_about_maxlen(redis: Redis) -> None:
    bus = StreamBus(redis, service="test", maxlen=100, publish_batch=500)
    await bus.publish_many(c.TICKS, [stream_tick(TOKENS[0], n) for n in range(2000)])
    # approximate trimming removes whole macro-nodes (100 entries by default), never below maxlen
    assert 100 <= await redis.xlen(c.TICKS) <= 300


async def test_partitioned_ticks_keep_per_instrument_order_across_two_replicas(
    redis: Redis,
) -> None:
    partitions = 4
    bus = StreamBus(redis, service="test", maxlen=100_000, publish_batch=64)
    sent = [stream_tick(token, n) for n in range(30) for token in TOKENS]
    await bus.publish_partitioned(c.TICKS, sent, partitions)
    shards = [c.partitioned(c.TICKS, p) for p in range(partitions)]
    assert sum([await redis.xlen(s) for s in shards]) == len(sent)

    seen: dict[int, list[float]] = defaultdict(list)
    shard_of: dict[int, set[str]] = defaultdict(set)

    async def handle(stream: str, entry_id: str, message: Message) -> None:
        assert isinstance(message, Tick)
        seen[message.instrument_token].append(message.last_price)
        shard_of[message.instrument_token].add(stream)
        await asyncio.sleep(0)  # let the other replica interleave

    stop = asyncio.Event()
    replicas = [
        asyncio.create_task(bus.consume(shards[:2], "g", "replica-a", handle, stop, OPTIONS)),
        asyncio.create_task(bus.consume(shards[2:], "g", "replica-b", handle, stop, OPTIONS)),
    ]
    await eventually(lambda: sum(len(v) for v in seen.values()) == len(sent))
    stop.set()
    await asyncio.gather(*replicas)
    for token in TOKENS:
        assert seen[token] == [100.0 + n for n in range(30)], token
        assert shard_of[token] == {c.partitioned(c.TICKS, c.partition_of(token, partitions))}


async def test_every_listener_sees_every_broadcast_published_after_it_started(
    redis: Redis,
) -> None:
    bus = StreamBus(redis, service="test", maxlen=1000)
    await bus.publish(c.CONTROL, control("before anyone listened"))
    got: dict[str, list[str]] = {"a": [], "b": []}

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(stream: str, entry_id: str, message: Message) -> None:
            assert isinstance(message, Control)
            got[name].append(message.reason)

        return handle

    start = await bus.positions([c.CONTROL])
    stop = asyncio.Event()
    listeners = [
        asyncio.create_task(bus.listen([c.CONTROL], handler(n), stop, after=start, block_ms=50))
        for n in got
    ]
    for reason in ("halt 1", "halt 2", "halt 3"):
        await bus.publish(c.CONTROL, control(reason))
    await eventually(lambda: got["a"] == got["b"] == ["halt 1", "halt 2", "halt 3"])
    stop.set()
    positions = await asyncio.gather(*listeners)
    assert positions[0] == positions[1]

    # a restarted listener resumes after its stored position: it misses nothing in between
    await bus.publish(c.CONTROL, control("while down"))
    resumed: list[str] = []

    async def on_resume(stream: str, entry_id: str, message: Message) -> None:
        assert isinstance(message, Control)
        resumed.append(message.reason)

    stop = asyncio.Event()
    task = asyncio.create_task(
        bus.listen([c.CONTROL], on_resume, stop, after=positions[0], block_ms=50)
    )
    await eventually(lambda: resumed == ["while down"])
    stop.set()
    await task
