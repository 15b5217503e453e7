"""listen_batches on the real Redis (raw RESP replies): every tick of every shard delivered equal
and in order, a malformed entry dead-lettered while its neighbours are delivered, the held read
connection given back when the loop ends."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from shared import constants as c
from shared.bus import DeadLetterKind, NoBusMetrics, StreamBus, parse_dead_letter, redis_client
from shared.messages import Message, Tick
from tests.support import eventually, stream_tick

pytestmark = pytest.mark.integration

PARTITIONS = 4
SHARDS = [c.partitioned(c.TICKS, p) for p in range(PARTITIONS)]


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class CountingMetrics(NoBusMetrics):
    def __init__(self) -> None:
        self.handled_total: dict[str, int] = defaultdict(int)

    def handled_many(self, stream: str, count: int) -> None:
        self.handled_total[stream] += count


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = redis_client(redis_url)
    yield client
    await client.aclose()


async def test_every_tick_of_every_shard_comes_in_order_and_a_malformed_one_is_dead_lettered(
    redis: Redis,
) -> None:
    metrics = CountingMetrics()
    bus = StreamBus(redis, service="test", maxlen=100_000, metrics=metrics)
    received: dict[str, list[Tick]] = defaultdict(list)
    reads: list[int] = []

    async def handle(
        stream: str, items: Sequence[tuple[str, Message]]
    ) -> list[BaseException | None]:
        reads.append(len(items))
        received[stream].extend(m for _, m in items if isinstance(m, Tick))
        return [None] * len(items)

    stop = asyncio.Event()
    task = asyncio.create_task(bus.listen_batches(SHARDS, handle, stop, count=500, block_ms=50))
    await asyncio.sleep(0.1)  # listening from the newest entries
    sent = [stream_tick(100 + token, n) for n in range(30) for token in range(40)]
    await bus.publish_partitioned(c.TICKS, sent[:600], PARTITIONS)
    bad_shard = SHARDS[1]
    malformed = text(await redis.xadd(bad_shard, {b"m": b"Tick", b"d": b"not msgpack"}))
    await bus.publish_partitioned(c.TICKS, sent[600:], PARTITIONS)
    await eventually(lambda: sum(len(v) for v in received.values()) == len(sent))
    stop.set()
    positions = await task

    for shard in SHARDS:
        expected = [
            t
            for t in sent
            if c.partitioned(c.TICKS, c.partition_of(t.instrument_token, 4)) == shard
        ]
        assert received[shard] == expected
        assert metrics.handled_total[shard] == len(expected)
        newest: Any = await redis.xrevrange(shard, count=1)
        assert positions[shard] == text(newest[0][0])
    assert len(reads) < len(sent) / 10  # batches, not one call per entry
    rows: Any = await redis.xrange(c.DEAD_LETTERS)
    (letter,) = [parse_dead_letter(f) for _, f in rows]
    assert (letter.kind, letter.stream, letter.entry_id) == (
        DeadLetterKind.MALFORMED,
        bad_shard,
        malformed,
    )
    assert letter.fields == {b"m": b"Tick", b"d": b"not msgpack"}


async def test_the_held_read_connection_goes_back_to_the_pool(redis: Redis) -> None:
    bus = StreamBus(redis, service="test", maxlen=1000)

    async def handle(
        stream: str, items: Sequence[tuple[str, Message]]
    ) -> list[BaseException | None]:
        return [None] * len(items)

    await redis.ping()
    pool = redis.connection_pool
    stop = asyncio.Event()
    task = asyncio.create_task(bus.listen_batches(SHARDS, handle, stop, block_ms=20))
    await eventually(lambda: len(pool._in_use_connections) >= 1)
    stop.set()
    await task
    assert len(pool._in_use_connections) == 0
