"""Orders in flight to the broker (the Kite simulator, loopback only): the next intent is decided
and handed over without waiting for a previous order's place_order round trip, and an entry
order acknowledged after the kill switch tripped is cancelled at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.gatekeeper.orders import order_tag
from tests.gatekeeper_support import (
    Store,
    TradingClock,
    broker_orders_with_tag,
    intent,
    kite_broker,
    running_gatekeeper,
    seed_simulator_session,
    simulator_future,
    simulator_settings,
    tick,
)
from tests.sim_fixtures import KiteSim
from tests.support import eventually

pytestmark = pytest.mark.e2e


class _HeldBroker:
    """The service's own Kite adapter, with each place_order held until the test lets it go."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.release = asyncio.Event()
        self.handed: list[str] = []  # tags, in the order the service handed them over
        self.placed: list[str] = []  # broker ids the inner adapter returned

    async def place(self, params: dict[str, Any]) -> str:
        self.handed.append(str(params["tag"]))
        await self.release.wait()
        broker_id: str = await self.inner.place(params)
        self.placed.append(broker_id)
        return broker_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_the_next_intent_is_handed_over_while_the_first_order_is_still_in_flight(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, kite_sim: KiteSim
) -> None:
    clock = TradingClock()
    token = await seed_simulator_session(redis_url, kite_sim)
    symbol, instrument, ltp = await simulator_future(kite_sim)
    settings = simulator_settings(kite_sim, redis_url, Store.of(clickhouse_server, clickhouse_db))
    first = intent(symbol, instrument, ltp, clock.now(), quantity=25, product="NRML")
    second = intent(symbol, instrument, ltp, clock.now(), quantity=25, product="NRML")
    tags = [order_tag(first.intent_id, 1), order_tag(second.intent_id, 1)]
    async with (
        kite_broker(settings, redis_url) as kite,
        running_gatekeeper(settings, clock=clock, broker=(held := _HeldBroker(kite))) as gk,
    ):
        await gk.publish_ticks([tick(symbol, instrument, ltp, clock.now())])
        await eventually(lambda: symbol in gk.service.state.quotes)
        await gk.publish_intent(first)
        await gk.publish_intent(second)
        # Both handed over while neither place_order has returned.
        await eventually(lambda: held.handed == tags)
        assert not held.placed
        held.release.set()
        desk = gk.service.desk
        assert desk is not None
        await eventually(
            lambda: sorted(e.order.status for e in desk.entries.values()) == ["COMPLETE"] * 2
        )
    for tag in tags:
        assert len(await broker_orders_with_tag(kite_sim, token, tag)) == 1


async def test_an_entry_acknowledged_after_the_kill_switch_tripped_is_cancelled_at_once(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, kite_sim: KiteSim
) -> None:
    clock = TradingClock()
    token = await seed_simulator_session(redis_url, kite_sim)
    symbol, instrument, ltp = await simulator_future(kite_sim)
    settings = simulator_settings(kite_sim, redis_url, Store.of(clickhouse_server, clickhouse_db))
    # A limit well below the market: it rests at the broker instead of filling.
    resting = intent(symbol, instrument, ltp, clock.now(), quantity=25, product="NRML",
                     order_type="LIMIT", limit_price=round(ltp * 0.97, 1))  # fmt: skip
    tag = order_tag(resting.intent_id, 1)
    async with (
        kite_broker(settings, redis_url) as kite,
        running_gatekeeper(settings, clock=clock, broker=(held := _HeldBroker(kite))) as gk,
    ):
        await gk.publish_ticks([tick(symbol, instrument, ltp, clock.now())])
        await eventually(lambda: symbol in gk.service.state.quotes)
        await gk.publish_intent(resting)
        await eventually(lambda: held.handed == [tag])
        gk.service.state.kill_switch.trip("test: a loss while the order was in flight", -1.0,
                                          clock.now())  # fmt: skip
        held.release.set()
        desk = gk.service.desk
        assert desk is not None
        await eventually(
            lambda: [e.order.status for e in desk.entries.values()] == ["CANCELLED"], timeout=10
        )
    (row,) = await broker_orders_with_tag(kite_sim, token, tag)
    assert row["status"] == "CANCELLED"
