"""The Gatekeeper's one-step record (orders, decided ids, events) on a real Redis: everything
lands together, with its expiry, and the events decode as the stream's model."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.gatekeeper.adapters.redis_state import RedisState
from services.gatekeeper.order_journal import JournalEntry, decode_entry
from services.gatekeeper.orders import PlannedOrder, order_tag, record
from shared import constants as c
from shared.bus import decode_entry as decode_message
from shared.bus import redis_client
from shared.clock import IST
from shared.messages import OrderEvent, RiskEvent

pytestmark = pytest.mark.integration

NOW = datetime(2024, 8, 20, 9, 30, tzinfo=IST)


def entry(intent_id: str) -> JournalEntry:
    plan = PlannedOrder(
        order_id=f"{intent_id}-1", intent_id=intent_id, slice_no=1, slices=1,
        tag=order_tag(intent_id, 1), symbol="NSE:RELIANCE", instrument_token=738561,
        side="BUY", quantity=10, order_type="LIMIT", price=2462.25, product="MIS",
    )  # fmt: skip
    return JournalEntry(record(plan, "paper", NOW), None, NOW)


async def test_a_burst_is_recorded_in_one_step_with_its_events_on_each_stream(
    redis_url: str,
) -> None:
    redis = redis_client(redis_url)
    state = RedisState(redis, ttl_s=3600)
    entries = [entry("i1"), entry("i2")]
    events = [(c.ORDER_EVENTS, e.order.to_event(f"{e.order.plan.order_id}:RECORDED:0"))
              for e in entries]  # fmt: skip
    risk = RiskEvent(event_id="i3:denied", kind="DENIED", reason="test", ts=NOW, intent_id="i3")
    try:
        await state.record(NOW, entries, ["i1", "i2", "i3"], [*events, (c.RISK_EVENTS, risk)])
        orders, problems = await state.orders(NOW)
        assert problems == [] and sorted(orders, key=lambda e: e.order.plan.order_id) == entries
        assert await state.decided(NOW) == {"i1", "i2", "i3"}
        day = NOW.date().isoformat()
        for key in (c.GATEKEEPER_ORDERS_KEY.format(day=day),
                    c.GATEKEEPER_DECIDED_KEY.format(day=day)):  # fmt: skip
            assert 0 < await redis.ttl(key) <= 3600
        published = [decode_message(c.ORDER_EVENTS, f)
                     for _, f in await redis.xrange(c.ORDER_EVENTS)]  # fmt: skip
        assert published == [event for _, event in events]
        assert all(isinstance(p, OrderEvent) for p in published)
        ((_, fields),) = await redis.xrange(c.RISK_EVENTS)
        assert decode_message(c.RISK_EVENTS, fields) == risk
        raw = await redis.hget(c.GATEKEEPER_ORDERS_KEY.format(day=day), "i1-1")
        assert decode_entry(raw) == entries[0]
    finally:
        await redis.aclose()


async def test_nothing_to_record_writes_nothing(redis_url: str) -> None:
    redis = redis_client(redis_url)
    try:
        await RedisState(redis, ttl_s=60).record(NOW, [], [], [])
        assert await redis.dbsize() == 0
    finally:
        await redis.aclose()


async def test_opening_readies_connections_and_the_record_script_before_any_intent(
    redis_url: str,
) -> None:
    redis = redis_client(redis_url)
    state = RedisState(redis, ttl_s=60)
    try:
        await state.open(3)
        assert await redis.script_exists(state._record.sha) == [True]
        assert len(redis.connection_pool._available_connections) >= 3
    finally:
        await redis.aclose()
