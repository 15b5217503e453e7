"""The Kite token dies mid-session: the Producer reports it, the Sentinel logs in again, the
Producer reconnects with the new token and keeps its subscription, all without a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared import constants as c
from shared.bus import decode_entry
from shared.messages import SessionEvent, Tick
from tests.integration.feed_harness import (
    producer_settings,
    running_producer,
    running_sentinel,
    sentinel_settings,
)
from tests.sim_fixtures import KiteSim
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def symbols_since(redis: Any, partitions: int, since_ns: int) -> set[str]:
    out = set()
    for p in range(partitions):
        stream = c.partitioned(c.TICKS, p)
        for _, fields in await redis.xrange(stream):
            tick = decode_entry(stream, fields)
            assert isinstance(tick, Tick)
            if tick.received_ns > since_ns:
                out.add(tick.symbol)
    return out


async def session_events(redis: Any) -> list[SessionEvent]:
    out = []
    for _, fields in await redis.xrange(c.SESSION_EVENTS):
        event = decode_entry(c.SESSION_EVENTS, fields)
        assert isinstance(event, SessionEvent)
        out.append(event)
    return out


async def test_a_token_expiring_mid_session_is_recovered_through_the_sentinel(
    kite_sim: KiteSim, redis_url: str
) -> None:
    import time

    p_settings = producer_settings(kite_sim, redis_url)
    s_settings = sentinel_settings(kite_sim, redis_url, token_validate_interval_s=3600)
    async with running_sentinel(s_settings) as rs, running_producer(p_settings) as rp:
        await eventually(lambda: rp.producer.readiness()[0], timeout=20, message="streaming")
        subscribed = set(rp.producer.subscription.symbols.values())
        first_token = rp.producer.token
        await asyncio.to_thread(kite_sim.control.step, 10)
        await eventually(lambda: rp.producer.published >= 10 * 2)

        await asyncio.to_thread(kite_sim.control.faults, expire_token=True)
        # The ticker's reconnect meets a 403: reported to the Sentinel, which logs in again.
        await eventually(
            lambda: rs.metric("tradealgo_logins_total", {"outcome": "success"}) == 2, timeout=15
        )
        await eventually(
            lambda: rp.producer.token != first_token and rp.producer.readiness()[0], timeout=15
        )
        recovered_ns = time.time_ns()
        await asyncio.to_thread(kite_sim.control.step, 10)
        await eventually(
            lambda: symbols_since(rp.redis, p_settings.tick_partitions, recovered_ns),
            timeout=10,
        )
        await asyncio.sleep(0.5)
        after = await symbols_since(rp.redis, p_settings.tick_partitions, recovered_ns)
        events = await session_events(rp.redis)
        assert rp.metric("tradealgo_ticker_reconnects_total",
                         {"connection": "c0", "reason": "token"}) == 1  # fmt: skip
        assert set(rp.producer.subscription.symbols.values()) == subscribed
    assert after == subscribed  # the same subscription after the new token
    kinds = [(e.kind, e.user_id) for e in events]
    assert ("EXPIRED", "producer") in kinds
    assert [k for k, _ in kinds].count("LOGIN") == 2
