"""The Gatekeeper's tick handler (`_on_ticks`, one read of a ticks shard) on a real Redis: every tick
priced, a non-tick rejected, an intent never waiting behind more than `ticks_per_yield` ticks,
ticks waiting while an intent's orders are handed over, the clock read once per slice."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.gatekeeper.adapters.metrics import GatekeeperMetrics
from services.gatekeeper.service import Gatekeeper, GatekeeperDeps
from shared.bus import RejectedInput, StreamBus, redis_client
from shared.messages import Control, Message, Tick
from tests.gatekeeper_support import (
    MemoryJournal,
    RecordingAlerter,
    gk_settings,
    instrument_row,
    seed_instruments,
    tick,
)
from tests.support import eventually
from tests.unit.services.gatekeeper.gk_fixtures import NOW, market_hours

pytestmark = pytest.mark.integration

SHARD = "ta:ticks:0"


class CountingClock:
    """A fixed market time; counts reads of `now` and observed stamps."""

    def __init__(self) -> None:
        self.reads = 0
        self.observed: list[datetime] = []

    def now(self) -> datetime:
        self.reads += 1
        return NOW

    def time_ns(self) -> int:
        return 0

    def observe(self, exchange_ts: datetime) -> None:
        self.observed.append(exchange_ts)


@pytest.fixture
async def gatekeeper(redis_url: str) -> AsyncIterator[tuple[Gatekeeper, CountingClock]]:
    redis = redis_client(redis_url)
    clock = CountingClock()
    deps = GatekeeperDeps(
        redis=redis,
        bus=StreamBus(redis, service="gatekeeper", maxlen=1000),
        journal=MemoryJournal(),
        alerter=RecordingAlerter(),
        metrics=GatekeeperMetrics(CollectorRegistry()),
        clock=clock,
        market_open=market_hours,
    )
    settings = gk_settings("redis://unused", mode="paper", paper_fills="local", ticks_per_yield=3)
    service = Gatekeeper(settings, deps)
    assert await service.start()
    yield service, clock
    await redis.aclose()


def ticks(n: int, stamps: int = 1) -> list[tuple[str, Message]]:
    return [
        (f"1-{i}", tick(f"NSE:S{i}", 1000 + i, 100.0 + i, NOW + timedelta(seconds=i % stamps)))
        for i in range(n)
    ]


async def test_every_tick_is_priced_and_a_non_tick_is_rejected(gatekeeper: Any) -> None:
    service, _ = gatekeeper
    items = ticks(4)
    items.insert(2, ("1-99", Control(command="HALT", reason="x", source="t", ts=NOW)))
    outcomes = await service._on_ticks(SHARD, items)
    assert [type(o) for o in outcomes] == [type(None)] * 2 + [RejectedInput] + [type(None)] * 2
    assert "Control on a ticks stream" in str(outcomes[2])
    assert set(service.state.quotes) == {f"NSE:S{i}" for i in range(4)}
    assert set(service.desk.last_ticks) == {f"NSE:S{i}" for i in range(4)}
    assert service.state.quotes["NSE:S3"].last_price == 103.0


async def test_an_intent_waits_behind_at_most_ticks_per_yield_ticks(gatekeeper: Any) -> None:
    service, _ = gatekeeper
    priced_when_others_ran: list[int] = []
    done = asyncio.Event()

    async def another_task() -> None:  # stands in for the intent path
        while not done.is_set():
            priced_when_others_ran.append(len(service.state.quotes))
            await asyncio.sleep(0)

    other = asyncio.create_task(another_task())
    await asyncio.sleep(0)
    await service._on_ticks(SHARD, ticks(10))
    done.set()
    await other
    steps = [b - a for a, b in itertools.pairwise(priced_when_others_ran)]
    assert max(steps) <= 3 and len(service.state.quotes) == 10


async def test_ticks_wait_while_an_intents_orders_are_handed_over(gatekeeper: Any) -> None:
    service, _ = gatekeeper
    service._ticks_may_run.clear()
    handling = asyncio.create_task(service._on_ticks(SHARD, ticks(5)))
    for _ in range(10):
        await asyncio.sleep(0)
    assert service.state.quotes == {} and not handling.done()
    service._ticks_may_run.set()
    assert await handling == [None] * 5
    assert len(service.state.quotes) == 5


@pytest.mark.parametrize(
    ("n", "stamps", "reads", "observed"),
    [
        (9, 1, 3, 1),  # one stamp: the clock read once per slice of 3, the stamp observed once
        (9, 9, 9, 9),  # a new stamp every tick: observed and read each time
        (7, 1, 3, 1),  # a last, short slice
    ],
)
async def test_the_clock_is_read_once_per_slice_unless_a_new_stamp_moves_it(
    gatekeeper: Any, n: int, stamps: int, reads: int, observed: int
) -> None:
    service, clock = gatekeeper
    clock.reads, clock.observed = 0, []
    items = ticks(n, stamps)
    await service._on_ticks(SHARD, items)
    assert clock.reads == reads
    assert len(clock.observed) == observed
    assert set(clock.observed) == {m.exchange_ts for _, m in items if isinstance(m, Tick)}


async def test_an_instrument_is_learnt_from_its_first_tick_once_not_on_every_tick(
    gatekeeper: Any,
) -> None:
    service, _ = gatekeeper
    redis = service.d.redis
    await seed_instruments(redis, {"NSE:S0": instrument_row("NSE:S0", 1000)})
    lookups = 0
    load = service.instruments.by_symbols

    async def counted(symbols: Any) -> Any:
        nonlocal lookups
        lookups += 1
        return await load(symbols)

    service.instruments.by_symbols = counted
    await service._on_ticks(SHARD, ticks(2))  # NSE:S0 in the dump, NSE:S1 not
    await eventually(lambda: "NSE:S0" in service.state.instruments)
    await service._on_ticks(SHARD, ticks(2))
    await asyncio.sleep(0)
    assert lookups == 1  # NSE:S1, missing from the dump, is not asked for again on each tick
    assert "NSE:S1" not in service.state.instruments
