"""Orders in flight to the broker (the Kite simulator, loopback only): the next intent is decided
and handed over without waiting for a previous order's place_order round trip, and an entry
order acknowledged after the kill switch tripped is cancelled at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from services.gatekeeper.orders import order_tag
from services.gatekeeper.settings import GatekeeperSettings
from tests.gatekeeper_support import (
    RunningGatekeeper,
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


@dataclass(frozen=True)
class Desk:
    """A logged-in simulator session, its nearest NIFTY future, and live settings against it."""

    token: str
    symbol: str
    instrument: int
    ltp: float
    settings: GatekeeperSettings
    clock: TradingClock


@pytest.fixture
async def desk(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, kite_sim: KiteSim
) -> Desk:
    token = await seed_simulator_session(redis_url, kite_sim)
    symbol, instrument, ltp = await simulator_future(kite_sim)
    settings = simulator_settings(kite_sim, redis_url, Store.of(clickhouse_server, clickhouse_db))
    return Desk(token, symbol, instrument, ltp, settings, TradingClock())


@contextlib.asynccontextmanager
async def _held_gatekeeper(desk: Desk) -> AsyncIterator[tuple[_HeldBroker, RunningGatekeeper]]:
    """The service with a held broker, priced once."""
    async with (
        kite_broker(desk.settings, desk.settings.redis_url.get_secret_value()) as kite,
        running_gatekeeper(
            desk.settings, clock=desk.clock, broker=(held := _HeldBroker(kite))
        ) as gk,
    ):
        await gk.publish_ticks([tick(desk.symbol, desk.instrument, desk.ltp, desk.clock.now())])
        await eventually(lambda: desk.symbol in gk.service.state.quotes)
        yield held, gk


async def test_the_next_intent_is_handed_over_while_the_first_order_is_still_in_flight(
    desk: Desk, kite_sim: KiteSim
) -> None:
    first, second = (
        intent(desk.symbol, desk.instrument, desk.ltp, desk.clock.now(), quantity=25,
               product="NRML")
        for _ in range(2)
    )  # fmt: skip
    tags = [order_tag(first.intent_id, 1), order_tag(second.intent_id, 1)]
    async with _held_gatekeeper(desk) as (held, gk):
        await gk.publish_intent(first)
        await gk.publish_intent(second)
        # Both handed over while neither place_order has returned.
        await eventually(lambda: held.handed == tags)
        assert not held.placed
        held.release.set()
        orders = gk.service.desk
        assert orders is not None
        await eventually(
            lambda: sorted(e.order.status for e in orders.entries.values()) == ["COMPLETE"] * 2
        )
    for tag in tags:
        assert len(await broker_orders_with_tag(kite_sim, desk.token, tag)) == 1


async def test_an_entry_acknowledged_after_the_kill_switch_tripped_is_cancelled_at_once(
    desk: Desk, kite_sim: KiteSim
) -> None:
    # A limit well below the market: it rests at the broker instead of filling.
    resting = intent(desk.symbol, desk.instrument, desk.ltp, desk.clock.now(), quantity=25,
                     product="NRML", order_type="LIMIT", limit_price=round(desk.ltp * 0.97, 1))  # fmt: skip
    tag = order_tag(resting.intent_id, 1)
    async with _held_gatekeeper(desk) as (held, gk):
        await gk.publish_intent(resting)
        await eventually(lambda: held.handed == [tag])
        gk.service.state.kill_switch.trip("test: a loss while the order was in flight", -1.0,
                                          desk.clock.now())  # fmt: skip
        held.release.set()
        orders = gk.service.desk
        assert orders is not None
        await eventually(
            lambda: [e.order.status for e in orders.entries.values()] == ["CANCELLED"], timeout=10
        )
    (row,) = await broker_orders_with_tag(kite_sim, desk.token, tag)
    assert row["status"] == "CANCELLED"
