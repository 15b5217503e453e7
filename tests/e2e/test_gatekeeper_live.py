"""Live mode end to end against the Kite simulator (NEVER a real broker: the roots are asserted to
be loopback): a LIMIT that sweeps thin depth fills partly and completes on later ticks, order
updates arrive on the KiteTicker, a rejected order is recorded with the broker's reason, and the
broker's order book carries our tags."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shared.messages import OrderEvent
from tests.gatekeeper_support import (
    TRADING_MORNING,
    RunningGatekeeper,
    Store,
    TradingClock,
    broker_orders_with_tag,
    intent,
    running_gatekeeper,
    seed_simulator_session,
    simulator_future,
    simulator_settings,
    tick,
)
from tests.sim_fixtures import KiteSim
from tests.support import eventually

pytestmark = pytest.mark.e2e


def _events_of(gk: RunningGatekeeper, intent_id: str) -> Callable[[], Any]:
    async def events() -> list[OrderEvent]:
        return [e for e in await gk.order_events() if e.intent_id == intent_id]

    return events


async def test_live_mode_partial_fill_completion_and_a_rejection_against_the_simulator(
    redis_url: str,
    clickhouse_server: Any,
    clickhouse_db: str,
    kite_sim_factory: Callable[..., KiteSim],
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    # One lot per depth level: 5 lots rest on the ask side, so a 10-lot order fills partly.
    sim = kite_sim_factory(depth_max_lots_per_level=1)
    clock = TradingClock()
    settings = simulator_settings(sim, redis_url, store, mode="live")
    token = await seed_simulator_session(redis_url, sim)
    async with running_gatekeeper(settings, clock=clock) as gk:
        symbol, instrument, ltp = await simulator_future(sim)
        await gk.publish_ticks([tick(symbol, instrument, ltp, clock.now())])
        await eventually(lambda: symbol in gk.service.state.quotes)
        await eventually(
            lambda: gk.service.updates.feed is not None and gk.service.updates.feed.connected
        )

        big = intent(symbol, instrument, ltp, clock.now(), quantity=250, product="NRML")
        await gk.publish_intent(big)
        events = _events_of(gk, big.intent_id)

        async def partly_filled() -> bool:
            return any(e.status == "PARTIAL" and e.filled_quantity == 125 for e in await events())

        await eventually(partly_filled, timeout=10)
        (placed,) = {e.tag for e in await events()}
        broker_rows = await broker_orders_with_tag(sim, token, placed)
        assert len(broker_rows) == 1 and broker_rows[0]["filled_quantity"] == 125
        assert gk.service.state.book.quantity(symbol) == 125
        assert gk.service.state.available_margin is not None  # live checks the margin

        # The market moves on: the resting remainder trades at its limit.
        await asyncio.to_thread(sim.control.step, 120)

        async def complete() -> bool:
            return any(e.status == "COMPLETE" for e in await events())

        await eventually(complete, timeout=10)
        assert gk.service.state.book.quantity(symbol) == 250
        final = next(e for e in await events() if e.status == "COMPLETE")
        assert final.filled_quantity == 250 and final.broker_order_id == broker_rows[0]["order_id"]

        # A rejected order: the broker's reason is kept, the position does not change.
        await asyncio.to_thread(sim.control.faults, reject_orders=1)
        refused = intent(symbol, instrument, ltp, clock.now(), quantity=25, product="NRML")
        await gk.publish_intent(refused)

        async def rejected() -> list[OrderEvent]:
            return [e for e in await _events_of(gk, refused.intent_id)() if e.status == "REJECTED"]

        rejections = await eventually(rejected, timeout=10)
        assert isinstance(rejections, list) and len(rejections) == 1
        assert "Simulated rejection" in rejections[0].reason
        assert gk.service.state.book.quantity(symbol) == 250
        assert gk.metric("tradealgo_orders_total", {"mode": "live", "status": "REJECTED"}) == 1
        assert gk.metric("tradealgo_order_latency_seconds_count", {"stage": "sent_to_ack"}) >= 2
        assert gk.metric("tradealgo_order_latency_seconds_count", {"stage": "ack_to_fill"}) >= 1


async def test_paper_mode_against_the_simulator_fills_there_and_tracks_the_position(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, kite_sim: KiteSim
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    settings = simulator_settings(kite_sim, redis_url, store, mode="paper")
    assert settings.paper_source() == "simulator"
    token = await seed_simulator_session(redis_url, kite_sim)
    async with running_gatekeeper(settings, clock=clock) as gk:
        symbol, instrument, ltp = await simulator_future(kite_sim)
        await gk.publish_ticks([tick(symbol, instrument, ltp, clock.now())])
        await eventually(lambda: symbol in gk.service.state.quotes)
        order = intent(symbol, instrument, ltp, clock.now(), quantity=50, product="NRML")
        await gk.publish_intent(order)
        await eventually(lambda: gk.service.state.book.quantity(symbol) == 50, timeout=10)
        events = await _events_of(gk, order.intent_id)()
        assert {e.mode for e in events} == {"paper"} and events[-1].status == "COMPLETE"
        (row,) = await broker_orders_with_tag(kite_sim, token, events[-1].tag)
        assert row["filled_quantity"] == 50
        assert gk.metric("tradealgo_gatekeeper_mode", {"mode": "paper"}) == 1


async def test_an_options_intent_picks_a_strike_from_the_chain_and_trades_it(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, kite_sim: KiteSim
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    # Half an hour into the session the simulated contracts have volume to pass the filters.
    await asyncio.to_thread(kite_sim.control.step, 1800)
    clock = TradingClock(TRADING_MORNING.replace(minute=45))
    settings = simulator_settings(kite_sim, redis_url, store, mode="live")
    token = await seed_simulator_session(redis_url, kite_sim)
    kite = kite_sim.kite(token)
    spot_symbol = "NSE:NIFTY 50"
    spot = float((await asyncio.to_thread(kite.ltp, [spot_symbol]))[spot_symbol]["last_price"])
    async with running_gatekeeper(settings, clock=clock) as gk:
        await gk.publish_ticks([tick(spot_symbol, 256265, spot, clock.now())])
        await eventually(lambda: spot_symbol in gk.service.state.quotes)
        wanted = intent(
            spot_symbol, 256265, spot, clock.now(), quantity=25, product="NRML",
            underlying="NIFTY", option_type="CE",
        )  # fmt: skip
        await gk.publish_intent(wanted)
        events = _events_of(gk, wanted.intent_id)

        async def filled() -> list[OrderEvent]:
            return [e for e in await events() if e.status == "COMPLETE"]

        done = await eventually(filled, timeout=10)
        assert isinstance(done, list)
        contract = done[0].symbol
        assert contract.startswith("NFO:NIFTY") and contract.endswith("CE")
        assert gk.service.state.book.quantity(contract) == 25
        position = gk.service.state.book.get(contract)
        assert position is not None and position.terms.stop_loss is not None  # -30 % of premium
    chain_rows = store.rows("SELECT count(), countIf(iv IS NOT NULL) FROM options_data")
    assert chain_rows[0][0] > 0 and chain_rows[0][1] > 0
