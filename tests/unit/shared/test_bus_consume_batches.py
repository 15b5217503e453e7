"""consume_batches on fakeredis: one handler call per read, per-entry outcomes (ack, dead letter,
left pending and retried one by one), one XACK for the handled entries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import fakeredis
import pytest

from shared import constants as c
from shared.bus import ConsumeOptions, DeadLetterKind, RejectedInput, StreamBus, parse_dead_letter
from shared.clock import IST
from shared.messages import Control, Message
from tests.support import eventually

TS = datetime(2024, 8, 1, 9, 15, tzinfo=IST)
GROUP = "g"
FAST = ConsumeOptions(
    count=10, block_ms=20, reclaim_idle_ms=1, reclaim_interval_s=0.01, max_deliveries=3
)


def control(reason: str) -> Control:
    return Control(command="HALT", reason=reason, source="test", ts=TS)


@pytest.fixture
async def redis() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = fakeredis.FakeAsyncRedis()
    yield client
    await client.aclose()


async def pending(redis: fakeredis.FakeAsyncRedis) -> int:
    return int((await redis.xpending(c.CONTROL, GROUP))["pending"])


async def test_one_read_is_one_handler_call_with_an_outcome_per_entry(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    bus = StreamBus(redis, service="unit", maxlen=1000)
    reasons = ["ok 1", "reject me", "ok 2", "fail once", "ok 3"]
    ids = await bus.publish_many(c.CONTROL, [control(r) for r in reasons])
    malformed = (await redis.xadd(c.CONTROL, {b"m": b"Control", b"d": b"\xc1"})).decode()
    calls: list[list[str]] = []
    failed_once: set[str] = set()

    async def handle(
        stream: str, items: Sequence[tuple[str, Message]]
    ) -> list[BaseException | None]:
        calls.append([entry_id for entry_id, _ in items])
        outcomes: list[BaseException | None] = []
        for entry_id, message in items:
            assert isinstance(message, Control)
            if message.reason == "reject me":
                outcomes.append(RejectedInput("not for this service"))
            elif message.reason == "fail once" and entry_id not in failed_once:
                failed_once.add(entry_id)
                outcomes.append(RuntimeError("a temporary failure"))
            else:
                outcomes.append(None)
        return outcomes

    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume_batches([c.CONTROL], GROUP, "c1", handle, stop, FAST))
    await eventually(lambda: len(calls) >= 2)

    async def nothing_pending() -> bool:
        return await pending(redis) == 0

    await eventually(nothing_pending)
    stop.set()
    await task

    # The decodable entries of the read in ONE call, in order; the failed one again, alone.
    assert calls[0] == [ids[0], ids[1], ids[2], ids[3], ids[4]]
    assert calls[1] == [ids[3]]
    letters = {
        parse_dead_letter(fields).entry_id: parse_dead_letter(fields)
        for _, fields in await redis.xrange(c.DEAD_LETTERS)
    }
    assert letters[ids[1]].kind is DeadLetterKind.REJECTED
    assert letters[malformed].kind is DeadLetterKind.MALFORMED
    assert set(letters) == {ids[1], malformed}


async def _raise(items: Sequence[tuple[str, Message]]) -> list[BaseException | None]:
    raise RuntimeError("the store is down")


async def _one_outcome_short(
    items: Sequence[tuple[str, Message]],
) -> list[BaseException | None]:
    return [None] * (len(items) - 1)


@pytest.mark.parametrize("misbehaving", [_raise, _one_outcome_short])
async def test_a_batch_handler_that_fails_as_a_whole_leaves_every_entry_pending(
    redis: fakeredis.FakeAsyncRedis, misbehaving: Any
) -> None:
    bus = StreamBus(redis, service="unit", maxlen=1000)
    await bus.publish_many(c.CONTROL, [control(f"m{n}") for n in range(3)])
    options = ConsumeOptions(count=10, block_ms=20, reclaim_idle_ms=60_000)
    calls = 0

    async def handle(
        stream: str, items: Sequence[tuple[str, Message]]
    ) -> list[BaseException | None]:
        nonlocal calls
        calls += 1
        result: list[BaseException | None] = await misbehaving(items)
        return result

    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume_batches([c.CONTROL], GROUP, "c1", handle, stop, options))
    await eventually(lambda: calls >= 1)
    stop.set()
    await task
    assert await pending(redis) == 3


def test_consume_needs_exactly_one_kind_of_handler() -> None:
    from shared.bus.group_consumer import GroupConsumer

    bus = StreamBus(fakeredis.FakeAsyncRedis(), service="unit", maxlen=10)
    with pytest.raises(ValueError, match="exactly one"):
        GroupConsumer(bus, [c.CONTROL], GROUP, "c1", None, FAST)
