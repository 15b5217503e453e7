"""The consume loop on fakeredis: fast checks of ack, dead letters, retry and the poison limit.
The same behaviours run against the real Redis in tests/integration/test_bus_*.py."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime

import fakeredis
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from shared import constants as c
from shared.bus import (
    ConsumeOptions,
    DeadLetter,
    DeadLetterKind,
    RejectedInput,
    RetryPolicy,
    StreamBus,
    parse_dead_letter,
)
from shared.bus.io_retry import call_with_retry
from shared.bus.metrics import NoBusMetrics
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


class CountingMetrics(NoBusMetrics):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def handled(self, stream: str) -> None:
        self.counts["handled"] += 1

    def handler_failed(self, stream: str) -> None:
        self.counts["handler_failed"] += 1

    def dead_lettered(self, stream: str, kind: DeadLetterKind) -> None:
        self.counts[f"dead_lettered:{kind.value}"] += 1

    def reclaimed(self, stream: str, count: int) -> None:
        self.counts["reclaimed"] += count

    def io_retried(self, operation: str) -> None:
        self.counts[f"retried:{operation}"] += 1


@pytest.fixture
async def redis() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = fakeredis.FakeAsyncRedis()
    yield client
    await client.aclose()


async def dead_letters(redis: fakeredis.FakeAsyncRedis) -> list[DeadLetter]:
    return [parse_dead_letter(fields) for _, fields in await redis.xrange(c.DEAD_LETTERS)]


async def nothing_pending(redis: fakeredis.FakeAsyncRedis) -> bool:
    return int((await redis.xpending(c.CONTROL, GROUP))["pending"]) == 0


async def test_consume_acks_handled_entries_and_dead_letters_bad_ones(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    metrics = CountingMetrics()
    sunk: list[DeadLetter] = []
    bus = StreamBus(redis, service="unit", maxlen=1000, metrics=metrics, on_dead_letter=sunk.append)
    await bus.publish(c.CONTROL, control("first"))
    malformed_id = (await redis.xadd(c.CONTROL, {b"m": b"Control", b"d": b"\xc1"})).decode()
    rejected_id = await bus.publish(c.CONTROL, control("reject me"))
    await bus.publish(c.CONTROL, control("last"))
    seen: list[str] = []

    async def handle(stream: str, entry_id: str, message: Message) -> None:
        assert isinstance(message, Control)
        if message.reason == "reject me":
            raise RejectedInput("not a command this service accepts")
        seen.append(message.reason)

    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume([c.CONTROL], GROUP, "c1", handle, stop, FAST))
    await eventually(lambda: seen == ["first", "last"])
    await eventually(lambda: nothing_pending(redis))
    stop.set()
    await task

    by_entry = {letter.entry_id: letter for letter in await dead_letters(redis)}
    assert by_entry[malformed_id].kind is DeadLetterKind.MALFORMED
    assert "malformed Control" in by_entry[malformed_id].reason
    assert by_entry[malformed_id].fields == {b"m": b"Control", b"d": b"\xc1"}
    assert by_entry[rejected_id].kind is DeadLetterKind.REJECTED
    assert by_entry[rejected_id].reason == "RejectedInput: not a command this service accepts"
    assert by_entry[rejected_id].service == "unit"
    assert {s.entry_id for s in sunk} == {malformed_id, rejected_id}
    assert metrics.counts["handled"] == 2
    assert metrics.counts["dead_lettered:malformed"] == 1
    assert metrics.counts["dead_lettered:rejected"] == 1


async def test_a_failing_handler_is_retried_then_dead_lettered_as_poison(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    metrics = CountingMetrics()
    bus = StreamBus(redis, service="unit", maxlen=1000, metrics=metrics)
    poison_id = await bus.publish(c.CONTROL, control("poison"))
    await bus.publish(c.CONTROL, control("fine"))
    attempts: Counter[str] = Counter()
    done: list[str] = []

    async def handle(stream: str, entry_id: str, message: Message) -> None:
        assert isinstance(message, Control)
        attempts[message.reason] += 1
        if message.reason == "poison":
            raise KeyError("missing instrument")
        done.append(message.reason)

    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume([c.CONTROL], GROUP, "c1", handle, stop, FAST))
    await eventually(lambda: redis.xlen(c.DEAD_LETTERS))
    await eventually(lambda: nothing_pending(redis))
    stop.set()
    await task

    assert done == ["fine"]  # the loop went on past the failing entry
    assert attempts["poison"] == FAST.max_deliveries
    [letter] = await dead_letters(redis)
    assert letter.entry_id == poison_id
    assert letter.kind is DeadLetterKind.POISON
    assert "failed 3 of max 3 deliveries; last: KeyError: 'missing instrument'" in letter.reason
    assert metrics.counts["handler_failed"] == FAST.max_deliveries
    assert metrics.counts["reclaimed"] >= FAST.max_deliveries - 1


async def test_ensure_group_is_idempotent(redis: fakeredis.FakeAsyncRedis) -> None:
    bus = StreamBus(redis, service="unit", maxlen=10)
    assert await bus.ensure_group(c.SIGNALS, GROUP) is True
    assert await bus.ensure_group(c.SIGNALS, GROUP) is False
    assert [g["name"] for g in await redis.xinfo_groups(c.SIGNALS)] == [GROUP.encode()]


async def test_stream_bus_refuses_a_client_that_decodes_responses() -> None:
    client = fakeredis.FakeAsyncRedis(decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses=False"):
        StreamBus(client, service="unit", maxlen=10)
    await client.aclose()


@pytest.mark.parametrize(
    ("failures", "attempts", "outcome"),
    [(0, 3, "ok"), (2, 3, "ok"), (3, 3, "raises"), (1, 1, "raises")],
)
async def test_call_with_retry_retries_connection_errors_only_up_to_attempts(
    failures: int, attempts: int, outcome: str
) -> None:
    metrics = CountingMetrics()
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls <= failures:
            raise RedisConnectionError("server restarting")
        return "ok"

    policy = RetryPolicy(attempts=attempts, initial_s=0, max_s=0)
    if outcome == "ok":
        assert await call_with_retry(policy, "xadd", metrics, flaky) == "ok"
        assert metrics.counts["retried:xadd"] == failures
    else:
        with pytest.raises(RedisConnectionError):
            await call_with_retry(policy, "xadd", metrics, flaky)
        assert calls == attempts


async def test_call_with_retry_does_not_retry_other_errors() -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await call_with_retry(
            RetryPolicy(attempts=5, initial_s=0, max_s=0), "x", NoBusMetrics(), broken
        )
    assert calls == 1


async def test_listen_dead_letters_bad_broadcasts_and_goes_on(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    bus = StreamBus(redis, service="unit", maxlen=1000)
    start = await bus.positions([c.CONTROL])
    garbage_id = (await redis.xadd(c.CONTROL, {b"m": b"Control", b"d": b"\xc1"})).decode()
    rejected_id = await bus.publish(c.CONTROL, control("refuse"))
    await bus.publish(c.CONTROL, control("halt"))
    seen: list[str] = []

    async def handle(stream: str, entry_id: str, message: Message) -> None:
        assert isinstance(message, Control)
        if message.reason == "refuse":
            raise RejectedInput("unknown source")
        seen.append(message.reason)

    stop = asyncio.Event()
    task = asyncio.create_task(bus.listen([c.CONTROL], handle, stop, after=start, block_ms=20))
    await eventually(lambda: seen == ["halt"])
    stop.set()
    await task
    kinds = {letter.entry_id: letter.kind for letter in await dead_letters(redis)}
    assert kinds == {garbage_id: DeadLetterKind.MALFORMED, rejected_id: DeadLetterKind.REJECTED}


async def test_listen_lets_an_unexpected_handler_error_stop_it(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    bus = StreamBus(redis, service="unit", maxlen=1000)
    start = await bus.positions([c.CONTROL])
    await bus.publish(c.CONTROL, control("halt"))

    async def handle(stream: str, entry_id: str, message: Message) -> None:
        raise RuntimeError("halt state could not be written")

    with pytest.raises(RuntimeError, match="halt state could not be written"):
        await bus.listen([c.CONTROL], handle, asyncio.Event(), after=start, block_ms=20)
    assert await redis.xlen(c.DEAD_LETTERS) == 0


async def test_a_restarted_consumer_handles_its_own_pending_entries_first(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    bus = StreamBus(redis, service="unit", maxlen=1000)
    ids = await bus.publish_many(c.CONTROL, [control("a"), control("b")])
    slow_reclaim = ConsumeOptions(block_ms=20, reclaim_idle_ms=3_600_000)
    await bus.ensure_group(c.CONTROL, GROUP)

    async def crash(stream: str, entry_id: str, message: Message) -> None:
        raise RuntimeError("database down")

    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume([c.CONTROL], GROUP, "c1", crash, stop, slow_reclaim))
    await eventually(
        lambda: _pending_ids(redis, "c1"), message="both entries delivered and left pending"
    )
    stop.set()
    await task
    assert await _pending_ids(redis, "c1") == ids

    handled: list[str] = []

    async def ok(stream: str, entry_id: str, message: Message) -> None:
        handled.append(entry_id)

    stop = asyncio.Event()
    task = asyncio.create_task(bus.consume([c.CONTROL], GROUP, "c1", ok, stop, slow_reclaim))
    await eventually(lambda: handled == ids)
    stop.set()
    await task
    assert await nothing_pending(redis)


async def _pending_ids(redis: fakeredis.FakeAsyncRedis, consumer: str) -> list[str]:
    rows = await redis.xpending_range(c.CONTROL, GROUP, "-", "+", 100, consumername=consumer)
    ids = [row["message_id"].decode() for row in rows]
    return ids if len(ids) == 2 else []
