"""The circuit breaker against the Kite simulator (loopback only): five rejected orders open it
(new entries denied, /ready 503, alert), and after the cool-down one probe order that the broker
accepts closes it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.messages import RiskEvent
from tests.gatekeeper_support import (
    RunningGatekeeper,
    Store,
    TradingClock,
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

COOL_DOWN_S = 1.5


async def _kinds(gk: RunningGatekeeper) -> list[str]:
    return [e.kind for e in await gk.risk_events()]


async def _event(gk: RunningGatekeeper, intent_id: str, kind: str) -> RiskEvent | None:
    return next(
        (e for e in await gk.risk_events() if e.intent_id == intent_id and e.kind == kind), None
    )


async def test_five_rejections_open_the_breaker_and_an_accepted_probe_closes_it(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, kite_sim: KiteSim
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    await seed_simulator_session(redis_url, kite_sim)
    symbol, instrument, ltp = await simulator_future(kite_sim)
    settings = simulator_settings(kite_sim, redis_url, store, breaker_cooldown_s=COOL_DOWN_S)
    async with running_gatekeeper(settings, clock=clock) as gk:
        await gk.publish_ticks([tick(symbol, instrument, ltp, clock.now())])
        await eventually(lambda: symbol in gk.service.state.quotes)
        await asyncio.to_thread(kite_sim.control.faults, reject_orders=5)
        for _ in range(5):
            await gk.publish_intent(
                intent(symbol, instrument, ltp, clock.now(), quantity=25, product="NRML")
            )

        async def opened() -> bool:
            return "BREAKER_OPEN" in await _kinds(gk)

        await eventually(opened, timeout=10)
        assert gk.metric("tradealgo_orders_total", {"mode": "live", "status": "REJECTED"}) == 5
        assert gk.metric("tradealgo_breaker_open") == 1
        ready, why = gk.service.readiness()
        assert not ready and "circuit breaker open" in why
        assert "breaker" in [a.key for a in gk.alerter.alerts]

        paused = intent(symbol, instrument, ltp, clock.now(), quantity=25, product="NRML")
        await gk.publish_intent(paused)
        denial = await eventually(lambda: _event(gk, paused.intent_id, "DENIED"))
        assert isinstance(denial, RiskEvent) and "circuit breaker open" in denial.reason

        await asyncio.sleep(COOL_DOWN_S)  # the cool-down is wall time by design
        await gk.publish_ticks([tick(symbol, instrument, ltp, clock.now())])
        probe = intent(symbol, instrument, ltp, clock.now(), quantity=25, product="NRML")
        await gk.publish_intent(probe)

        async def closed() -> bool:
            return "BREAKER_CLOSED" in await _kinds(gk)

        await eventually(closed, timeout=10)
        assert gk.metric("tradealgo_breaker_open") == 0
        assert gk.service.readiness()[0]
        assert gk.service.state.book.quantity(symbol) == 25  # the probe filled
