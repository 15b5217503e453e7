"""listen_batches on fakeredis: one handler call per read of a stream with the decoded entries,
malformed and rejected entries dead-lettered with their reason while the others are handled,
handled entries counted once per read, positions advancing, unexpected errors propagating."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import fakeredis
import pytest

from shared import constants as c
from shared.bus import DeadLetterKind, NoBusMetrics, RejectedInput, StreamBus, parse_dead_letter
from shared.bus.dead_letter import DeadLetter
from shared.clock import IST
from shared.messages import Control, Message, encode
from tests.support import eventually

TS = datetime(2024, 8, 1, 9, 15, tzinfo=IST)
Outcomes = list[BaseException | None]


def control(reason: str) -> Control:
    return Control(command="HALT", reason=reason, source="test", ts=TS)


class CountingMetrics(NoBusMetrics):
    def __init__(self) -> None:
        self.handled_reads: list[tuple[str, int]] = []
        self.one_by_one = 0

    def handled(self, stream: str) -> None:
        self.one_by_one += 1

    def handled_many(self, stream: str, count: int) -> None:
        self.handled_reads.append((stream, count))


@pytest.fixture
async def redis() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = fakeredis.FakeAsyncRedis()
    yield client
    await client.aclose()


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def letters(redis: fakeredis.FakeAsyncRedis) -> dict[str, DeadLetter]:
    rows: Any = await redis.xrange(c.DEAD_LETTERS)
    return {parse_dead_letter(f).entry_id: parse_dead_letter(f) for _, f in rows}


async def test_a_read_is_one_call_and_bad_entries_are_dead_lettered_while_the_rest_go_on(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    metrics = CountingMetrics()
    bus = StreamBus(redis, service="unit", maxlen=1000, metrics=metrics)
    start = await bus.positions([c.CONTROL])
    ids = await bus.publish_many(c.CONTROL, [control(r) for r in ["ok 1", "reject me", "ok 2"]])
    malformed = text(await redis.xadd(c.CONTROL, {b"m": b"Control", b"d": b"\xc1"}))
    wrong_model = text(await redis.xadd(c.CONTROL, {b"m": b"Tick", b"d": b"\x90"}))
    last = (await bus.publish_many(c.CONTROL, [control("ok 3")]))[0]
    calls: list[list[tuple[str, str]]] = []

    async def handle(stream: str, items: Sequence[tuple[str, Message]]) -> Outcomes:
        calls.append([(i, m.reason) for i, m in items if isinstance(m, Control)])
        return [
            RejectedInput("not for this service") if m.reason == "reject me" else None  # type: ignore[attr-defined]
            for _, m in items
        ]

    stop = asyncio.Event()
    task = asyncio.create_task(
        bus.listen_batches([c.CONTROL], handle, stop, after=start, block_ms=20)
    )
    await eventually(lambda: calls)
    await eventually(lambda: len(metrics.handled_reads) == 1)
    stop.set()
    positions = await task

    assert calls == [[(ids[0], "ok 1"), (ids[1], "reject me"), (ids[2], "ok 2"), (last, "ok 3")]]
    dead = await letters(redis)
    assert set(dead) == {ids[1], malformed, wrong_model}
    assert dead[ids[1]].kind is DeadLetterKind.REJECTED
    assert "not for this service" in dead[ids[1]].reason
    assert dead[malformed].kind is DeadLetterKind.MALFORMED
    assert dead[malformed].fields == {b"m": b"Control", b"d": b"\xc1"}
    assert dead[wrong_model].kind is DeadLetterKind.MALFORMED
    assert "carries model 'Tick'" in dead[wrong_model].reason
    # Counted once for the read (3 handled), never entry by entry.
    assert metrics.handled_reads == [(c.CONTROL, 3)] and metrics.one_by_one == 0
    assert positions == {c.CONTROL: last}


async def test_positions_advance_so_nothing_is_delivered_twice_or_skipped(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    bus = StreamBus(redis, service="unit", maxlen=1000)
    await bus.publish_many(c.CONTROL, [control("before the start")])
    seen: list[str] = []

    async def handle(stream: str, items: Sequence[tuple[str, Message]]) -> Outcomes:
        seen.extend(m.reason for _, m in items)  # type: ignore[attr-defined]
        return [None] * len(items)

    stop = asyncio.Event()
    task = asyncio.create_task(bus.listen_batches([c.CONTROL], handle, stop, block_ms=20))
    await asyncio.sleep(0.05)  # started at the newest entry
    for batch in (["a", "b"], ["c"], ["d", "e", "f"]):
        await bus.publish_many(c.CONTROL, [control(r) for r in batch])
        await eventually(lambda batch=batch: seen[-1:] == batch[-1:])
    stop.set()
    positions = await task
    assert seen == ["a", "b", "c", "d", "e", "f"]
    newest: Any = await redis.xrevrange(c.CONTROL, count=1)
    assert positions == {c.CONTROL: text(newest[0][0])}


async def test_other_tasks_run_between_the_read_and_each_streams_entries(
    redis: fakeredis.FakeAsyncRedis,
) -> None:
    bus = StreamBus(redis, service="unit", maxlen=1000)
    streams = [c.CONTROL, c.partitioned(c.CONTROL, 1)]  # a shard carries its base model
    start = await bus.positions(streams)
    for stream in streams:
        await redis.xadd(stream, {b"m": b"Control", b"d": encode(control(stream))})
    turns = 0
    seen_at: list[int] = []
    stop = asyncio.Event()

    async def other_task() -> None:  # e.g. an intent being decided
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    async def handle(stream: str, items: Sequence[tuple[str, Message]]) -> Outcomes:
        seen_at.append(turns)
        return [None] * len(items)

    other = asyncio.create_task(other_task())
    task = asyncio.create_task(bus.listen_batches(streams, handle, stop, after=start))
    await eventually(lambda: len(seen_at) == 2)
    stop.set()
    await asyncio.gather(task, other)
    assert seen_at[1] > seen_at[0]  # a loop turn between the two streams' handler calls


async def _raises(items: Sequence[tuple[str, Message]]) -> Outcomes:
    raise RuntimeError("the book is corrupt")


async def _unexpected_outcome(items: Sequence[tuple[str, Message]]) -> Outcomes:
    outcomes: Outcomes = [None, RuntimeError("the book is corrupt"), None]
    return outcomes[: len(items)]


async def _outcome_short(items: Sequence[tuple[str, Message]]) -> Outcomes:
    return [None] * (len(items) - 1)


@pytest.mark.parametrize(
    ("misbehaving", "error"),
    [
        (_raises, "the book is corrupt"),
        (_unexpected_outcome, "the book is corrupt"),
        (_outcome_short, "2 outcomes for 3 entries"),
    ],
)
async def test_an_unexpected_handler_error_propagates_and_nothing_is_dead_lettered(
    redis: fakeredis.FakeAsyncRedis, misbehaving: object, error: str
) -> None:
    bus = StreamBus(redis, service="unit", maxlen=1000)
    start = await bus.positions([c.CONTROL])
    await bus.publish_many(c.CONTROL, [control(f"m{n}") for n in range(3)])

    async def handle(stream: str, items: Sequence[tuple[str, Message]]) -> Outcomes:
        result: Outcomes = await misbehaving(items)  # type: ignore[operator]
        return result

    stop = asyncio.Event()
    with pytest.raises(RuntimeError, match=error):
        await asyncio.wait_for(
            bus.listen_batches([c.CONTROL], handle, stop, after=start, block_ms=20), 5
        )
    assert await letters(redis) == {}


async def test_listen_batches_needs_a_stream(redis: fakeredis.FakeAsyncRedis) -> None:
    bus = StreamBus(redis, service="unit", maxlen=10)

    async def handle(stream: str, items: Sequence[tuple[str, Message]]) -> Outcomes:
        return [None] * len(items)

    with pytest.raises(ValueError, match="at least one stream"):
        await bus.listen_batches([], handle, asyncio.Event())
