"""The Producer under simulator faults: a stalled feed, a dropped connection.

The simulator runs in real time here (speed 1: one tick per underlying per second), so silence
and outages are measured in wall seconds. The watchdog runs outside market hours for the test.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from shared import constants as c
from shared.bus import decode_entry
from shared.messages import Tick
from tests.integration.feed_harness import producer_settings, running_producer, seed_session
from tests.sim_fixtures import KiteSim
from tests.support import eventually, serving

pytestmark = pytest.mark.integration

INDEX = "NSE:NIFTY 50"


async def all_ticks(redis: Any, partitions: int) -> list[Tick]:
    out: list[Tick] = []
    for p in range(partitions):
        stream = c.partitioned(c.TICKS, p)
        for _, fields in await redis.xrange(stream):
            tick = decode_entry(stream, fields)
            assert isinstance(tick, Tick)
            out.append(tick)
    return sorted(out, key=lambda t: t.received_ns)


async def index_ticks(redis: Any, partitions: int) -> list[Tick]:
    """The index's full-mode ticks (with the simulated exchange time), in arrival order."""
    ticks = await all_ticks(redis, partitions)
    return [t for t in ticks if t.symbol == INDEX and t.exchange_ts.year == 2024]


async def test_a_stalled_feed_raises_an_alert_and_reconnects_within_5_s(
    kite_sim: KiteSim, redis_url: str
) -> None:
    settings = producer_settings(kite_sim, redis_url, stall_seconds=2.5)
    async with running_producer(settings) as rp:
        await seed_session(rp.redis, kite_sim)
        await eventually(lambda: rp.producer.readiness()[0], timeout=15)
        await asyncio.to_thread(kite_sim.control.speed, 1.0)
        await asyncio.to_thread(kite_sim.control.resume)
        await eventually(lambda: rp.producer.feed.connections["c0"].last_frame_ns is not None)
        first = rp.producer.feed.connections["c0"]
        assert rp.alerter.alerts == []

        await asyncio.to_thread(kite_sim.control.faults, stall_ticks_s=6.0)
        stalled_at = time.monotonic()
        await eventually(lambda: "producer-stall-c0" in rp.alerter.keys(), timeout=5.5)  # noqa: SIM118
        alert = rp.alerter.alerts[0]
        assert alert.title == "Tick feed stalled" and "no tick on connection c0" in alert.text
        # A NEW connection, open again within 5 s of the detection.
        await eventually(
            lambda: (
                rp.producer.feed.connections["c0"] is not first
                and rp.producer.feed.connections["c0"].connected
            ),
            timeout=5,
        )
        assert rp.metric("tradealgo_feed_stalls_total", {"connection": "c0"}) >= 1
        assert rp.metric("tradealgo_ticker_reconnects_total",
                         {"connection": "c0", "reason": "stall"}) >= 1  # fmt: skip
        # When the exchange sends again, ticks flow on the replacement (subscription intact).
        await eventually(lambda: time.monotonic() - stalled_at > 6.0, timeout=10)
        resumed_from = rp.producer.published
        await eventually(lambda: rp.producer.published > resumed_from + 12, timeout=10)
        symbols = {t.symbol for t in await index_ticks(rp.redis, settings.tick_partitions)}
        assert INDEX in symbols


async def test_a_dropped_connection_resumes_with_no_gap_beyond_the_outage(
    kite_sim: KiteSim, redis_url: str
) -> None:
    settings = producer_settings(kite_sim, redis_url, stall_seconds=2.5)
    async with running_producer(settings) as rp:
        await seed_session(rp.redis, kite_sim)
        await eventually(lambda: rp.producer.readiness()[0], timeout=15)
        await asyncio.to_thread(kite_sim.control.speed, 1.0)
        await asyncio.to_thread(kite_sim.control.resume)
        await asyncio.sleep(3)
        conn = rp.producer.feed.connections["c0"]
        dropped_at = time.monotonic()
        await asyncio.to_thread(kite_sim.control.faults, drop_websocket=True)
        await eventually(lambda: not conn.connected, timeout=5)
        await eventually(lambda: rp.producer.feed.connections["c0"].connected, timeout=10)
        outage = time.monotonic() - dropped_at
        reconnected_ns = time.time_ns()
        await asyncio.sleep(3)
        ticks = await index_ticks(rp.redis, settings.tick_partitions)
        everything = await all_ticks(rp.redis, settings.tick_partitions)
        subscribed = set(rp.producer.subscription.symbols.values())
        assert rp.metric("tradealgo_ticker_reconnects_total",
                         {"connection": "c0", "reason": "dropped"}) >= 1  # fmt: skip
    stamps = [t.exchange_ts.timestamp() for t in ticks]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) >= 5
    # One tick per second normally; the largest hole is the outage (plus a tick's spacing).
    assert max(gaps) <= outage + 1.5, (max(gaps), outage)
    # Everything subscribed before the drop still ticks after it (KiteTicker resubscribed).
    assert {t.symbol for t in everything if t.received_ns > reconnected_ns} == subscribed


async def test_the_stall_alert_reaches_a_slack_webhook(kite_sim: KiteSim, redis_url: str) -> None:
    from aiohttp import web

    from shared.alert_policy import AlertPolicy
    from shared.alerts import WebhookAlerter
    from shared.clock import SystemClock

    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/services/T000/B000/XXXX", hook)
    async with serving(app) as port:
        slack = WebhookAlerter(
            service="producer", policy=AlertPolicy(20, 300.0), clock=SystemClock(),
            slack_webhook_url=f"http://127.0.0.1:{port}/services/T000/B000/XXXX",
        )  # fmt: skip
        settings = producer_settings(kite_sim, redis_url, stall_seconds=1.5)
        async with running_producer(settings, forward_alerts=slack) as rp:
            await seed_session(rp.redis, kite_sim)
            await eventually(lambda: rp.producer.readiness()[0], timeout=15)
            # Paused simulator: the feed is silent, as a stalled exchange feed would be.
            await eventually(lambda: received, timeout=10)
    text = received[0]["text"]
    assert text.startswith("[CRITICAL] producer: Tick feed stalled")
    assert "no tick on connection c0" in text
