"""A 1,000-intent burst through the running service: every intent decided once with a recorded
outcome, and the orders never exceed the rate (the token bucket, then the broker's per-second
cap) in any window."""

from __future__ import annotations

from typing import Any

import pytest

from shared import constants as c
from tests.gatekeeper_support import (
    Store,
    TradingClock,
    gk_settings,
    instrument_row,
    intent,
    running_gatekeeper,
    seed_instruments,
    tick,
)
from tests.support import eventually

pytestmark = pytest.mark.integration

INFY, INFY_TOKEN = "NSE:INFY", 408065
RATE, BURST, BROKER_PER_S = 20.0, 5, 10


def _max_in_window(times: list[float], seconds: float) -> int:
    most, first = 0, 0
    for i, t in enumerate(times):
        while times[first] + seconds <= t:
            first += 1
        most = max(most, i + 1 - first)
    return most


async def test_a_1000_intent_burst_never_exceeds_the_rate_and_loses_nothing(
    redis_url: str,
    clickhouse_server: Any,
    clickhouse_db: str,
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    settings = gk_settings(
        redis_url,
        store,
        mode="logging",
        capital=1e9,
        orders_per_second=RATE,
        orders_burst=BURST,
        broker_orders_per_second=BROKER_PER_S,
        queue_size=100,
        queue_max_wait_s=1.5,
    )
    async with running_gatekeeper(settings, clock=clock) as gk:
        await seed_instruments(gk.redis, {INFY: instrument_row(INFY, INFY_TOKEN)})
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1500.0, clock.now())])
        await eventually(lambda: INFY in gk.service.state.quotes)
        burst = [intent(INFY, INFY_TOKEN, 1500.0, clock.now(), quantity=1) for _ in range(1000)]
        await gk.bus.publish_many(c.INTENTS, burst)

        async def outcomes() -> dict[str, list[str]]:
            """Every decision the service published: a DENIED risk event or a LOGGED order."""
            found: dict[str, list[str]] = {}
            for event in await gk.risk_events():
                if event.kind == "DENIED" and event.intent_id:
                    found.setdefault(event.intent_id, []).append(event.reason)
            for order in await gk.order_events():
                if order.status == "LOGGED":
                    found.setdefault(order.intent_id, []).append("APPROVED")
            return found

        async def all_decided() -> bool:
            return len(await outcomes()) == 1000

        await eventually(all_decided, timeout=20)
        decided = await outcomes()
        assert set(decided) == {i.intent_id for i in burst}
        assert all(len(d) == 1 for d in decided.values()), "an intent decided twice"
        refusals = {d[0] for d in decided.values() if d[0] != "APPROVED"}
        assert refusals and all("queue full" in r or "waited" in r for r in refusals), refusals

        sent = sorted(e.ts.timestamp() for e in await gk.order_events() if e.status == "LOGGED")
        approved = sum(1 for d in decided.values() if d[0] == "APPROVED")
        assert len(sent) == approved >= BROKER_PER_S
        assert _max_in_window(sent, 1.0) <= BROKER_PER_S
        # Over any span the token bucket allows at most burst + rate x span.
        for span in (0.5, 1.0, 1.5):
            assert _max_in_window(sent, span) <= BURST + RATE * span + 1
        assert gk.metric("tradealgo_intents_total", {"decision": "queued"}) > 0


async def test_intents_waiting_for_the_rate_survive_a_restart_and_are_decided_once(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    settings = gk_settings(
        redis_url, store, orders_per_second=0.5, orders_burst=1, queue_max_wait_s=30.0
    )
    waiting = [intent(INFY, INFY_TOKEN, 1500.0, clock.now(), quantity=1) for _ in range(3)]
    async with running_gatekeeper(settings, clock=clock) as gk:
        await seed_instruments(gk.redis, {INFY: instrument_row(INFY, INFY_TOKEN)})
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1500.0, clock.now())])
        await eventually(lambda: INFY in gk.service.state.quotes)
        await gk.bus.publish_many(c.INTENTS, waiting)
        await eventually(lambda: gk.metric("tradealgo_intents_total", {"decision": "queued"}) == 2)
        assert await gk.redis.hlen(c.GATEKEEPER_QUEUED_KEY) == 2
    # Stopped with two intents waiting; the next process decides them.
    async with running_gatekeeper(settings, clock=clock) as gk:
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1500.0, clock.now())])

        async def logged() -> list[str]:
            return [e.intent_id for e in await gk.order_events() if e.status == "LOGGED"]

        await eventually(lambda: _count(logged, 3), timeout=10)
        assert sorted(await logged()) == sorted(i.intent_id for i in waiting)
        assert await gk.redis.hlen(c.GATEKEEPER_QUEUED_KEY) == 0


async def _count(found: Any, n: int) -> bool:
    return len(await found()) == n
