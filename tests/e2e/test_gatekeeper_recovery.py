"""An intent never becomes two orders: a crash between place_order and its acknowledgement, or a
reply lost on the network, is resolved by looking the tag up in the broker's order book (the
Kite simulator; loopback only) before anything is sent again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from services.gatekeeper.adapters.kite_broker import BrokerUnavailable
from services.gatekeeper.orders import order_tag
from services.gatekeeper.settings import GatekeeperSettings
from shared import constants as c
from shared.bus import decode_entry
from shared.messages import OrderIntent, SessionEvent
from shared.session import token_fingerprint
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


@dataclass(frozen=True)
class Scene:
    """What every scenario starts from: a logged-in simulator session, its nearest NIFTY future
    and the test database."""

    sim: KiteSim
    redis_url: str
    store: Store
    clock: TradingClock
    token: str
    symbol: str
    instrument: int
    ltp: float

    def settings(self, **overrides: Any) -> GatekeeperSettings:
        return simulator_settings(self.sim, self.redis_url, self.store, **overrides)

    def order(self) -> OrderIntent:
        """A one-lot NRML entry in the future at its last price."""
        return intent(self.symbol, self.instrument, self.ltp, self.clock.now(), quantity=25,
                      product="NRML")  # fmt: skip

    async def publish_tick(self, gk: RunningGatekeeper) -> None:
        await gk.publish_ticks([tick(self.symbol, self.instrument, self.ltp, self.clock.now())])

    async def quote(self, gk: RunningGatekeeper) -> None:
        """Tick the future and wait until the Gatekeeper prices with it."""
        await self.publish_tick(gk)
        await eventually(lambda: self.symbol in gk.service.state.quotes)


@pytest.fixture
async def scene(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, kite_sim: KiteSim
) -> Scene:
    token = await seed_simulator_session(redis_url, kite_sim)
    symbol, instrument, ltp = await simulator_future(kite_sim)
    store = Store.of(clickhouse_server, clickhouse_db)
    return Scene(kite_sim, redis_url, store, TradingClock(), token, symbol, instrument, ltp)


class _Wrapped:
    """The real broker adapter with place_order's aftermath replaced."""

    def __init__(self, inner: Any, after_place: Callable[[str], Any]) -> None:
        self.inner = inner
        self.after_place = after_place
        self.placed: list[str] = []

    async def place(self, params: dict[str, Any]) -> str:
        broker_id: str = await self.inner.place(params)
        self.placed.append(broker_id)
        await self.after_place(broker_id)
        return broker_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _no_intent_pending(redis: Any) -> Any:
    async def check() -> bool:
        summary = await redis.xpending(c.INTENTS, c.GROUP_GATEKEEPER)
        return int(summary["pending"]) == 0

    return check


async def test_a_crash_after_place_order_and_a_restart_places_nothing_twice(
    scene: Scene,
) -> None:
    kite_sim, token, symbol, clock = scene.sim, scene.token, scene.symbol, scene.clock
    # The first process must not learn of the order by any other way before it dies.
    settings = scene.settings(order_poll_interval_s=60.0)
    hang = asyncio.Event()
    order = scene.order()
    tag = order_tag(order.intent_id, 1)

    async with (
        kite_broker(settings, scene.redis_url) as kite,
        running_gatekeeper(
            settings,
            clock=clock,
            broker=(crashing := _Wrapped(kite, lambda _: hang.wait())),
            websocket=False,
        ) as gk,
    ):
        await scene.quote(gk)
        await gk.publish_intent(order)
        await eventually(lambda: crashing.placed)
        gk.task.cancel()  # the process dies: the broker has the order, we never heard back
        with pytest.raises(asyncio.CancelledError):
            await gk.task
        records = await gk.redis.hgetall(c.GATEKEEPER_ORDERS_KEY.format(day="2024-08-20"))
        assert len(records) == 1 and b'"RECORDED"' in next(iter(records.values()))
    assert len(await broker_orders_with_tag(kite_sim, token, tag)) == 1

    async with running_gatekeeper(scene.settings(), clock=clock) as gk:
        # Recovery found the order under its tag and adopted it; the intent, acked once its
        # order was recorded (or redelivered as a duplicate), is not decided again; nothing
        # was placed again.
        desk = gk.service.desk
        assert desk is not None
        (entry,) = desk.entries.values()
        assert (
            entry.order.status == "COMPLETE" and entry.order.broker_order_id == crashing.placed[0]
        )
        assert gk.service.state.book.quantity(symbol) == 25
        await eventually(_no_intent_pending(gk.redis))
        assert gk.metric("tradealgo_intents_total", {"decision": "approved"}) == 0
        assert (
            gk.metric("tradealgo_reconciliation_differences_total", {"kind": "POSITION_MISMATCH"})
            == 0
        )
    assert len(await broker_orders_with_tag(kite_sim, token, tag)) == 1
    assert len(await asyncio.to_thread(kite_sim.kite(token).orders)) == 1


async def test_a_lost_reply_is_looked_up_by_tag_and_adopted_not_sent_again(
    scene: Scene,
) -> None:
    settings = scene.settings(order_poll_interval_s=60.0)

    async def reply_lost(_: str) -> None:
        raise BrokerUnavailable("place_order: ReadTimeout: the reply never came")

    order = scene.order()
    async with (
        kite_broker(settings, scene.redis_url) as kite,
        running_gatekeeper(
            settings,
            clock=scene.clock,
            broker=(lossy := _Wrapped(kite, reply_lost)),
            websocket=False,
        ) as gk,
    ):
        await scene.quote(gk)
        await gk.publish_intent(order)

        async def statuses() -> list[str]:
            return [e.status for e in await gk.order_events() if e.intent_id == order.intent_id]

        await eventually(lambda: _ends_complete(statuses), timeout=10)
        assert "FAILED" in await statuses()
        assert gk.service.state.book.quantity(scene.symbol) == 25
    assert len(lossy.placed) == 1
    tag = order_tag(order.intent_id, 1)
    assert len(await broker_orders_with_tag(scene.sim, scene.token, tag)) == 1


async def _ends_complete(statuses: Callable[[], Any]) -> bool:
    found = await statuses()
    return bool(found) and found[-1] == "COMPLETE"


async def test_differences_with_the_broker_at_start_are_reported_and_halt_new_entries(
    scene: Scene,
) -> None:
    kite = scene.sim.kite(scene.token)
    exchange, tradingsymbol = scene.symbol.split(":", 1)
    await asyncio.to_thread(  # someone traded by hand: an order and a position we never made
        kite.place_order,
        variety="regular",
        exchange=exchange,
        tradingsymbol=tradingsymbol,
        transaction_type="BUY",
        quantity=25,
        product="NRML",
        order_type="MARKET",
        market_protection=-1,
    )
    async with running_gatekeeper(scene.settings(), clock=scene.clock) as gk:
        kinds = {
            e.reason.split(":", 1)[0] for e in await gk.risk_events() if e.kind == "RECONCILIATION"
        }
        assert kinds == {"EXTERNAL_ORDER", "POSITION_MISMATCH"}
        for kind in kinds:
            labels = {"kind": kind}
            assert gk.metric("tradealgo_reconciliation_differences_total", labels) == 1
        ready, why = gk.service.readiness()
        assert not ready and "reconciliation differences" in why
        await scene.publish_tick(gk)
        entry = scene.order()
        await gk.publish_intent(entry)

        async def denied() -> bool:
            return any(
                e.kind == "DENIED" and e.intent_id == entry.intent_id and "halted" in e.reason
                for e in await gk.risk_events()
            )

        await eventually(denied)


async def test_a_refused_token_is_reported_and_the_new_one_read_from_redis_places_once(
    scene: Scene,
) -> None:
    kite_sim, old_token = scene.sim, scene.token
    async with running_gatekeeper(scene.settings(order_updates="poll"), clock=scene.clock) as gk:
        await scene.quote(gk)
        # The session dies; the Sentinel (here: the test) logs in again and stores a new token.
        await asyncio.to_thread(kite_sim.control.faults, expire_token=True)
        new_token = await seed_simulator_session(scene.redis_url, kite_sim)
        assert new_token != old_token
        order = scene.order()
        await gk.publish_intent(order)
        await eventually(lambda: gk.service.state.book.quantity(scene.symbol) == 25, timeout=10)

        async def expired_reports() -> list[SessionEvent]:
            entries: Any = await gk.redis.xrange(c.SESSION_EVENTS)
            events = [decode_entry(c.SESSION_EVENTS, f) for _, f in entries]
            return [e for e in events if isinstance(e, SessionEvent) and e.kind == "EXPIRED"]

        (report,) = await expired_reports()
        assert report.token_fingerprint == token_fingerprint(old_token)
        assert report.user_id == "gatekeeper"
    tag = order_tag(order.intent_id, 1)
    assert len(await broker_orders_with_tag(kite_sim, new_token, tag)) == 1
