"""Simulator -> Producer -> Redis: every tick the official client sees is published, decoded equal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shared import constants as c
from shared.bus import decode_entry
from shared.messages import Tick
from shared.twisted_reactor import ensure_reactor_running
from tests.integration.feed_harness import producer_settings, running_producer, seed_session
from tests.sim_fixtures import KiteSim, TickerHarness
from tests.support import eventually

pytestmark = pytest.mark.integration


async def settled(count: Callable[[], int], quiet_s: float = 0.5) -> int:
    """The count once it has not changed for `quiet_s`."""
    last = count()
    while True:
        await asyncio.sleep(quiet_s)
        now = count()
        if now == last:
            return now
        last = now


async def stream_ticks(redis: Any, partitions: int) -> list[Tick]:
    ticks: list[Tick] = []
    for p in range(partitions):
        stream = c.partitioned(c.TICKS, p)
        for _, fields in await redis.xrange(stream):
            message = decode_entry(stream, fields)
            assert isinstance(message, Tick)
            ticks.append(message)
    return ticks


async def test_every_tick_of_a_simulated_minute_reaches_the_partitioned_stream_exactly_once(
    kite_sim: KiteSim, redis_url: str
) -> None:
    settings = producer_settings(kite_sim, redis_url, tick_partitions=3)
    async with running_producer(settings) as rp:
        token = await seed_session(rp.redis, kite_sim)
        await eventually(lambda: rp.producer.readiness()[0], timeout=15, message="streaming")
        tokens = sorted(rp.producer.subscription.symbols)
        assert len(tokens) == 2 + 2 * 5  # two indices, NIFTY ATM +-2 strikes x CE/PE
        # An independent witness: the official client on the same simulator and tokens.
        ensure_reactor_running()
        witness = TickerHarness.open(kite_sim, token, tokens)
        try:
            # Both sides first get Kite's snapshots: one on subscribe, one on the mode change.
            await eventually(lambda: witness.tick_count() >= 2 * len(tokens))
            await eventually(lambda: rp.producer.published >= 2 * len(tokens))
            before_theirs = await settled(witness.tick_count)
            before_ours = await settled(lambda: rp.producer.published)
            await asyncio.to_thread(kite_sim.control.step, 60)
            await eventually(lambda: witness.tick_count() - before_theirs >= 60 * 2)
            theirs = await settled(witness.tick_count) - before_theirs
            await eventually(lambda: rp.producer.published - before_ours >= theirs, timeout=10)
            assert await settled(lambda: rp.producer.published) - before_ours == theirs
        finally:
            witness.close()
        ours = rp.producer.published
        assert rp.metric("tradealgo_ticks_published_total") == ours
        assert rp.metric("tradealgo_ticks_received_total", {"connection": "c0"}) == ours
        published = await stream_ticks(rp.redis, settings.tick_partitions)
        assert len(published) == ours
        # Partitioned by instrument: each token lives in exactly one shard.
        for p in range(settings.tick_partitions):
            stream = c.partitioned(c.TICKS, p)
            for _, fields in await rp.redis.xrange(stream):
                tick = decode_entry(stream, fields)
                assert isinstance(tick, Tick)
                assert c.partition_of(tick.instrument_token, settings.tick_partitions) == p


async def test_published_ticks_carry_symbols_ist_times_receipt_times_and_depth(
    kite_sim: KiteSim, redis_url: str
) -> None:
    settings = producer_settings(kite_sim, redis_url)
    async with running_producer(settings) as rp:
        await seed_session(rp.redis, kite_sim)
        await eventually(lambda: rp.producer.readiness()[0], timeout=15)
        await asyncio.to_thread(kite_sim.control.step, 5)
        await eventually(lambda: rp.producer.published >= 20)
        ticks = await stream_ticks(rp.redis, settings.tick_partitions)
    by_symbol = {t.symbol: t for t in ticks}
    assert {"NSE:NIFTY 50", "NSE:NIFTY BANK"} <= set(by_symbol)
    # The last tick of each symbol (the first may be the quote-mode snapshot sent on subscribe,
    # before the mode switch to full).
    option = next(t for s, t in by_symbol.items() if s.startswith("NFO:NIFTY"))
    assert len(option.bids) == len(option.asks) == 5 and option.last_price > 0
    for tick in ticks:
        assert tick.exchange_ts.utcoffset() is not None
        assert tick.received_ns > 0
        on_simulated_day = tick.exchange_ts.date().isoformat() == "2024-08-20"
        if tick.bids:  # full mode carries Kite's exchange timestamp (the simulated day)
            assert on_simulated_day
        elif not on_simulated_day:  # a quote-mode snapshot has none: the receipt time
            assert tick.exchange_ts.timestamp() == pytest.approx(tick.received_ns / 1e9, abs=1e-3)


async def test_the_producer_waits_for_a_token_and_the_instruments_then_streams(
    kite_sim: KiteSim, redis_url: str
) -> None:
    settings = producer_settings(kite_sim, redis_url)
    async with running_producer(settings) as rp:
        await eventually(lambda: "access token" in rp.producer.readiness()[1])
        assert rp.producer.readiness()[0] is False
        await seed_session(rp.redis, kite_sim)
        await eventually(lambda: rp.producer.readiness() == (True, "ready"), timeout=15)


async def test_a_halt_is_reported_in_readiness_while_ticks_keep_streaming(
    kite_sim: KiteSim, redis_url: str
) -> None:
    from datetime import UTC, datetime

    from shared.bus import StreamBus
    from shared.messages import Control

    settings = producer_settings(kite_sim, redis_url)
    async with running_producer(settings) as rp:
        await seed_session(rp.redis, kite_sim)
        await eventually(lambda: rp.producer.readiness()[0], timeout=15)
        bus = StreamBus(rp.redis, service="test", maxlen=1000)
        halt = Control(
            command="HALT", reason="token: expired", source="sentinel", ts=datetime.now(UTC)
        )
        await bus.publish(c.CONTROL, halt)
        await eventually(lambda: "halted (token: expired)" in rp.producer.readiness()[1])
        assert rp.metric("tradealgo_halted", {"service": "producer"}) == 1
        before = rp.producer.published
        await asyncio.to_thread(kite_sim.control.step, 5)
        await eventually(lambda: rp.producer.published > before)  # still streaming
        resume = Control(command="RESUME", reason="ok", source="sentinel", ts=datetime.now(UTC))
        await bus.publish(c.CONTROL, resume)
        await eventually(lambda: rp.producer.readiness() == (True, "ready"))


async def test_before_the_open_the_chain_is_centred_on_the_first_index_ticks_and_resubscribed(
    kite_sim_factory: Callable[..., KiteSim], redis_url: str
) -> None:
    from datetime import time as clock_time

    sim = kite_sim_factory(start_time=clock_time(9, 14))  # no quote yet: nothing to centre on
    settings = producer_settings(sim, redis_url)
    async with running_producer(settings) as rp:
        await seed_session(rp.redis, sim)
        await eventually(lambda: rp.producer.readiness()[0], timeout=15)
        assert set(rp.producer.subscription.symbols.values()) == {"NSE:NIFTY 50", "NSE:NIFTY BANK"}
        assert any("no last price" in p for p in rp.producer.subscription.problems)
        await asyncio.to_thread(sim.control.step, 70)  # the open: index ticks arrive
        await eventually(lambda: len(rp.producer.subscription.symbols) == 12, timeout=10)
        assert rp.producer.subscription.problems == ()
        await eventually(lambda: rp.producer.readiness()[0], timeout=10)
        await asyncio.sleep(0.5)
        before = rp.producer.published
        await asyncio.to_thread(sim.control.step, 5)
        await eventually(lambda: rp.producer.published > before + 12)
        ticks = await stream_ticks(rp.redis, settings.tick_partitions)
        assert any(t.symbol.startswith("NFO:NIFTY") for t in ticks)
        assert rp.metric("tradealgo_ticker_reconnects_total",
                         {"connection": "c0", "reason": "resubscribe"}) == 1  # fmt: skip
