"""The replica's intent outbox: every partition's queued intents in one call, sent at once (an
eager task), in order per instrument, bounded wait, and a lost lease or a failed send failing
exactly the partitions concerned."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from services.consumer.adapters.commit import LeaseLost, Published
from services.consumer.adapters.intent_outbox import IntentOutbox
from shared.messages import OrderIntent


def intent(intent_id: str, token: int = 1) -> OrderIntent:
    now = datetime(2024, 8, 20, 4, 0, tzinfo=UTC)
    return OrderIntent(
        intent_id=intent_id, signal_id=intent_id, strategy="s", symbol=f"NSE:T{token}",
        instrument_token=token, side="BUY", order_type="MARKET", reference_price=1.0,
        confidence=0.5, timeframe="minute", candle_start=now, created_at=now, reason="test",
    )  # fmt: skip


class Worker:
    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.failures: list[BaseException] = []
        self.published: list[tuple[list[str], Published]] = []
        self.tasks: list[asyncio.Task[None]] = []

    def fail(self, exc: BaseException) -> None:
        self.failures.append(exc)

    def after_publish(self, intents: list[OrderIntent], published: Published) -> None:
        self.published.append(([i.intent_id for i in intents], published))

    def track_publication(self, task: asyncio.Task[None]) -> None:
        self.tasks.append(task)


class Committer:
    """Records each call as it is SENT (before its first wait), answers when released."""

    def __init__(self, lost: frozenset[int] = frozenset(), error: Exception | None = None):
        self.sent: list[list[tuple[int, list[str]]]] = []
        self.release = asyncio.Event()
        self.lost = lost
        self.error = error

    async def publish_intents(self, groups: Any) -> list[Published]:
        self.sent.append([(p, [i.intent_id for i in intents]) for p, intents in groups])
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return [
            Published(tuple(p not in self.lost for _ in g), "" if p in self.lost else "1-0",
                      p not in self.lost)
            for p, g in groups
        ]  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def test_the_intents_of_every_partition_are_sent_in_one_call_before_flush_returns() -> None:
    committer, p0, p2 = Committer(), Worker(0), Worker(2)
    outbox = IntentOutbox(committer, Clock(), 0.5)  # type: ignore[arg-type]
    outbox.add(p0, [intent("a", 1), intent("b", 5)])
    outbox.add(p2, [intent("c", 2)])
    outbox.add(p0, [intent("d", 9)])
    assert committer.sent == []
    outbox.flush()
    assert committer.sent == [[(0, ["a", "b", "d"]), (2, ["c"])]]  # written, reply pending
    assert p0.tasks == p2.tasks and len(p0.tasks) == 1 and not p0.tasks[0].done()
    committer.release.set()
    await p0.tasks[0]
    assert [ids for ids, _ in p0.published] == [["a", "b", "d"]]
    assert [ids for ids, _ in p2.published] == [["c"]]
    outbox.flush()  # nothing queued: no call
    assert len(committer.sent) == 1


async def test_an_instrument_s_next_intent_waits_for_its_previous_send() -> None:
    committer, p0 = Committer(), Worker(0)
    outbox = IntentOutbox(committer, Clock(), 0.5)  # type: ignore[arg-type]
    outbox.add(p0, [intent("first", 7)])
    outbox.flush()
    outbox.add(p0, [intent("other instrument", 8)])
    outbox.flush()
    outbox.add(p0, [intent("second", 7)])
    outbox.flush()
    await asyncio.sleep(0)
    assert [g[0][1] for g in committer.sent] == [["first"], ["other instrument"]]
    committer.release.set()
    await asyncio.gather(*p0.tasks)
    assert [g[0][1] for g in committer.sent] == [["first"], ["other instrument"], ["second"]]


@pytest.mark.parametrize(("waited_s", "due"), [(0.0, False), (0.0004, False), (0.0005, True)])
def test_queued_intents_are_due_once_the_oldest_has_waited_the_batch_time(
    waited_s: float, due: bool
) -> None:
    clock = Clock()
    outbox = IntentOutbox(Committer(), clock, 0.5)  # type: ignore[arg-type]
    assert not outbox.due()
    outbox.add(Worker(0), [intent("a")])
    clock.t += waited_s
    outbox.add(Worker(1), [intent("b")])  # a later one does not restart the wait
    assert outbox.due() is due


async def test_a_partition_whose_lease_is_lost_fails_alone_and_a_failed_send_fails_all() -> None:
    committer, p0, p1 = Committer(lost=frozenset({1})), Worker(0), Worker(1)
    committer.release.set()
    outbox = IntentOutbox(committer, Clock(), 0.5)  # type: ignore[arg-type]
    outbox.add(p0, [intent("a", 1)])
    outbox.add(p1, [intent("b", 2)])
    outbox.flush()
    await p0.tasks[0]
    assert p0.failures == [] and [ids for ids, _ in p0.published] == [["a"]]
    assert [type(x) for x in p1.failures] == [LeaseLost] and p1.published == []

    broken, p2, p3 = Committer(error=ConnectionError("down")), Worker(2), Worker(3)
    broken.release.set()
    outbox = IntentOutbox(broken, Clock(), 0.5)  # type: ignore[arg-type]
    outbox.add(p2, [intent("c", 3)])
    outbox.add(p3, [intent("d", 4)])
    outbox.flush()
    with pytest.raises(ConnectionError):
        await p2.tasks[0]
    assert [str(x) for x in p2.failures] == [str(x) for x in p3.failures] == ["down"]
