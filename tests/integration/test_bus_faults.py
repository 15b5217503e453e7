"""The bus's fault handling on the real Redis: a dead consumer, poison and malformed entries, and a
Redis restart under a running consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import msgspec
import pytest
from redis.asyncio import Redis

from shared import constants as c
from shared.bus import (
    ConsumeOptions,
    DeadLetter,
    DeadLetterKind,
    RetryPolicy,
    StreamBus,
    parse_dead_letter,
    redis_client,
)
from shared.clock import IST
from shared.localservers import RedisServer
from shared.messages import Control, Message
from tests.support import eventually

pytestmark = pytest.mark.integration

T0 = datetime(2024, 8, 1, 9, 15, tzinfo=IST)
GROUP = "g"


def control(reason: str) -> Control:
    return Control(command="HALT", reason=reason, source="test", ts=T0)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = redis_client(redis_url)
    yield client
    await client.aclose()


async def dead_letters(redis: Redis) -> list[DeadLetter]:
    return [parse_dead_letter(fields) for _, fields in await redis.xrange(c.DEAD_LETTERS)]


async def pending(redis: Redis, stream: str = c.CONTROL) -> int:
    return int((await redis.xpending(stream, GROUP))["pending"])


async def nothing_pending(redis: Redis) -> bool:
    return await pending(redis) == 0


async def test_entries_of_a_killed_consumer_are_reclaimed_and_none_is_handled_twice(
    redis: Redis,
) -> None:
    bus = StreamBus(redis, service="test", maxlen=1000)
    ids = await bus.publish_many(c.CONTROL, [control(f"m{n}") for n in range(20)])
    options = ConsumeOptions(count=10, block_ms=50, reclaim_idle_ms=300, reclaim_interval_s=0.1)
    done_by: dict[str, list[str]] = {"c1": [], "c2": []}
    stuck = asyncio.Event()

    async def first(stream: str, entry_id: str, message: Message) -> None:
        if len(done_by["c1"]) == 5:
            stuck.set()
            await asyncio.Event().wait()  # hangs in the handler until the task is killed
        done_by["c1"].append(entry_id)

    async def second(stream: str, entry_id: str, message: Message) -> None:
        done_by["c2"].append(entry_id)

    stop = asyncio.Event()
    dying = asyncio.create_task(bus.consume([c.CONTROL], GROUP, "c1", first, stop, options))
    await asyncio.wait_for(stuck.wait(), timeout=5)
    dying.cancel()  # the consumer dies mid-handler with entries 6-10 read but not acked
    with contextlib.suppress(asyncio.CancelledError):
        await dying
    assert done_by["c1"] == ids[:5]
    assert await pending(redis) == 5

    survivor = asyncio.create_task(bus.consume([c.CONTROL], GROUP, "c2", second, stop, options))
    await eventually(lambda: len(done_by["c2"]) == 15, timeout=10)
    await eventually(lambda: nothing_pending(redis))
    stop.set()
    await survivor
    assert len(done_by["c2"]) == 15
    assert set(done_by["c2"]) == set(ids[5:])  # nothing lost
    assert not set(done_by["c1"]) & set(done_by["c2"])  # nothing handled twice after its ack
    assert await dead_letters(redis) == []


async def test_a_poison_entry_is_dead_lettered_with_its_reason_while_the_loop_goes_on(
    redis: Redis,
) -> None:
    bus = StreamBus(redis, service="gatekeeper", maxlen=1000)
    options = ConsumeOptions(
        count=10, block_ms=50, reclaim_idle_ms=50, reclaim_interval_s=0.05, max_deliveries=3
    )
    poison_id = await bus.publish(c.CONTROL, control("poison"))
    await bus.publish(c.CONTROL, control("ok 1"))
    tries = 0
    done: list[str] = []

    async def handle(stream: str, entry_id: str, message: Message) -> None:
        nonlocal tries
        assert isinstance(message, Control)
        if message.reason == "poison":
            tries += 1
            raise ZeroDivisionError("division by zero in sizing")
        done.append(message.reason)

    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume([c.CONTROL], GROUP, "c1", handle, stop, options))
    await eventually(lambda: redis.xlen(c.DEAD_LETTERS))
    await bus.publish(c.CONTROL, control("ok 2"))  # published after the poison was given up on
    await eventually(lambda: done == ["ok 1", "ok 2"])
    await eventually(lambda: nothing_pending(redis))
    stop.set()
    await task

    assert tries == 3
    [letter] = await dead_letters(redis)
    assert (letter.kind, letter.stream, letter.entry_id) == (
        DeadLetterKind.POISON,
        c.CONTROL,
        poison_id,
    )
    assert letter.service == "gatekeeper"
    assert letter.deliveries == 4
    assert "ZeroDivisionError: division by zero in sizing" in letter.reason
    original = (await redis.xrange(c.CONTROL, poison_id, poison_id))[0][1]
    assert letter.fields == original


async def test_malformed_entries_are_dead_lettered_with_their_original_fields(
    redis: Redis,
) -> None:
    bus = StreamBus(redis, service="consumer", maxlen=1000)
    bad = {
        "garbage payload": {b"m": b"Control", b"d": b"\xc1\xc1"},
        "unknown version": {b"m": b"Control", b"d": msgspec.msgpack.encode({"v": 99})},
        "no bus fields": {b"price": b"100"},
        "wrong model": {b"m": b"Tick", b"d": b"\x80"},
    }
    ids = {name: (await redis.xadd(c.CONTROL, fields)).decode() for name, fields in bad.items()}
    await bus.publish(c.CONTROL, control("good"))
    done: list[str] = []

    async def handle(stream: str, entry_id: str, message: Message) -> None:
        assert isinstance(message, Control)
        done.append(message.reason)

    stop = asyncio.Event()
    options = ConsumeOptions(block_ms=50)
    task = asyncio.create_task(bus.consume([c.CONTROL], GROUP, "c1", handle, stop, options))
    await eventually(lambda: done == ["good"])
    await eventually(lambda: nothing_pending(redis))
    stop.set()
    await task

    letters = {letter.entry_id: letter for letter in await dead_letters(redis)}
    reasons = {
        "garbage payload": "malformed Control",
        "unknown version": "unknown Control version 99",
        "no bus fields": "lacks the m/d fields",
        "wrong model": "carries model 'Tick'",
    }
    for name, entry_id in ids.items():
        assert letters[entry_id].kind is DeadLetterKind.MALFORMED
        assert reasons[name] in letters[entry_id].reason
        assert letters[entry_id].fields == bad[name]


async def test_a_consumer_rides_out_a_redis_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", persist=True).start()
    client = redis_client(server.url, socket_timeout=2)
    try:
        retry = RetryPolicy(attempts=60, initial_s=0.05, max_s=0.2)
        bus = StreamBus(client, service="test", maxlen=1000, retry=retry)
        await bus.publish(c.CONTROL, control("before"))
        done: list[str] = []

        async def handle(stream: str, entry_id: str, message: Message) -> None:
            assert isinstance(message, Control)
            done.append(message.reason)

        stop = asyncio.Event()
        options = ConsumeOptions(block_ms=100)
        task = asyncio.create_task(bus.consume([c.CONTROL], GROUP, "c1", handle, stop, options))
        await eventually(lambda: done == ["before"])
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)  # same port, same data (AOF)
        await bus.publish(c.CONTROL, control("after"))
        await eventually(lambda: done == ["before", "after"], timeout=10)
        stop.set()
        await task
    finally:
        await client.aclose()
        server.stop()
