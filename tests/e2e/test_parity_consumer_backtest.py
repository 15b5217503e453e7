"""Parity: five real trading days through simulator -> Producer -> Consumer equal the backtester.

Each day of NIFTY 50 (2024-08-12, 13, 14, 16, 19; the 15th is a holiday) is replayed by its own
simulator at maximum speed, streamed by a real Producer over the KiteTicker protocol into the
partitioned ticks stream, and read by ONE Consumer that runs through all five days back to back
(warmed at the first tick from the simulator's historical API, like a live start). The live path's
candles (all seven timeframes) and its EMA 9/21 crossover signals on 5-minute candles must equal,
value for value, those of the backtester (services/consumer/backtest) over the same 1-minute bars,
started from the same first history candle; and every signal must be exactly one intent.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest

from services.consumer.backtest.bars import CsvBarSource, build_candles
from services.consumer.backtest.engine import BacktestConfig, run_backtest
from services.consumer.buckets import TIMEFRAMES, data_sessions
from services.consumer.strategies import EmaCrossover
from services.consumer.strategies.ema_crossover import EmaCrossoverParams
from services.consumer.warmup import history_start
from shared import constants as c
from shared.calendar import load_calendar
from shared.clock import IST
from shared.messages import Candle
from tests.integration.consumer_harness import (
    NIFTY,
    NIFTY_FILE,
    NIFTY_TOKEN,
    RunningConsumer,
    consumer_settings,
    ohlc,
    running_consumer,
    signal_key,
    stream_candles,
    stream_intents,
    stream_signals,
)
from tests.integration.feed_harness import producer_settings, running_producer, seed_session
from tests.sim_fixtures import start_kite_sim, stop_kite_sim
from tests.support import eventually

pytestmark = pytest.mark.e2e

DAYS = (date(2024, 8, 12), date(2024, 8, 13), date(2024, 8, 14), date(2024, 8, 16),
        date(2024, 8, 19))  # fmt: skip
TICKS_PER_MINUTE = 15  # ticks_per_second 0.25: a tick every 4 simulated seconds
CALENDAR = load_calendar()
SESSIONS = data_sessions(CALENDAR)
STRATEGY = EmaCrossover(EmaCrossoverParams(timeframe="5minute"))  # 9/21, lookback 250


def backtester_candles(timeframe: str, first_day: date) -> list[Candle]:
    source = CsvBarSource(NIFTY_FILE, NIFTY, NIFTY_TOKEN, start_date=first_day, end_date=DAYS[-1])
    return build_candles(source, timeframe, SESSIONS).candles  # type: ignore[arg-type]


async def replay_day(rc: RunningConsumer, redis_url: str, day: date) -> int:
    """One simulator day through a fresh Producer; returns the ticks it published."""
    sim = await asyncio.to_thread(
        start_kite_sim, day=day, start_time=time(9, 14), ticks_per_second=TICKS_PER_MINUTE / 60
    )
    try:
        settings = producer_settings(sim, redis_url, instruments=("NSE:NIFTY 50",),
                                     option_underlyings={}, tick_partitions=4)  # fmt: skip
        # As in production, the day's token is distributed before the Producer starts (a stale
        # token from the previous day's simulator would be refused with a 403 first).
        await seed_session(rc.redis, sim, exchanges=("NSE",))
        async with running_producer(settings) as rp:
            if day == DAYS[0]:  # the warm-up (at the first tick) reads this day's simulator
                rc.consumer.d.history.kite.root = sim.rest_root  # type: ignore[union-attr]
            await eventually(lambda: rp.producer.readiness()[0], 20, message="producer streaming")
            await asyncio.to_thread(sim.control.resume)
            await eventually(lambda: _finished(sim), 60, message=f"{day} replayed")
            await eventually(lambda: rp.producer.published >= 375 * TICKS_PER_MINUTE, 30)
            await eventually(lambda: _consumed(rc), 30, message=f"{day} consumed")
            return int(rp.producer.published)
    finally:
        await asyncio.to_thread(stop_kite_sim, sim)


def _finished(sim: Any) -> bool:
    return bool(sim.control.state()["finished"])


async def _consumed(rc: RunningConsumer) -> bool:
    stream = c.partitioned(c.TICKS, c.partition_of(NIFTY_TOKEN, 4))
    last = await rc.redis.xrevrange(stream, count=1)
    groups = {g["name"].decode(): g for g in await rc.redis.xinfo_groups(stream)}
    group = groups.get(c.GROUP_CONSUMER)
    return (
        bool(last)
        and group is not None
        and not group["pending"]
        and (group["last-delivered-id"] == last[0][0])
    )


async def test_five_days_through_simulator_producer_and_consumer_equal_the_backtester(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, tmp_path: Path
) -> None:
    open_day1 = datetime.combine(DAYS[0], time(9, 15), IST)
    first_history = history_start(STRATEGY.lookback, "5minute", open_day1, CALENDAR.sessions)
    settings = consumer_settings(
        redis_url, clickhouse_server, clickhouse_db, tmp_path / "spool",
        api_key="sim_api_key", kite_api_root="http://127.0.0.1:1",  # set to day 1's simulator
        strategies=[{"kind": "ema_crossover", "symbols": [NIFTY],
                     "params": {"timeframe": "5minute"}}],
    )  # fmt: skip
    published = 0
    async with running_consumer(settings) as rc:
        await eventually(lambda: rc.consumer.readiness()[0], 10)
        for day in DAYS:
            published += await replay_day(rc, redis_url, day)
        rc.mono.advance(86_400)  # day 5's last buckets close on the timer
        live = await _all_candles(rc, expected=sum(len(backtester_candles(tf, DAYS[0]))
                                                   for tf in TIMEFRAMES))  # fmt: skip
        signals = await stream_signals(rc.redis)
        intents = await stream_intents(rc.redis)
        warm = rc.metric("tradealgo_consumer_warmups_total", {"outcome": "ok"})

    # Candles: every timeframe, every bucket of the five days, equal to the backtester's.
    for timeframe in TIMEFRAMES:
        want = backtester_candles(timeframe, DAYS[0])
        got = sorted((x for x in live if x.timeframe == timeframe), key=lambda x: x.start)
        assert [ohlc(x) for x in got] == [ohlc(x) for x in want], timeframe
        assert {x.start.astimezone(IST).date() for x in got} == set(DAYS)
    assert len(live) == len({(x.timeframe, x.start) for x in live})  # each candle once

    # Signals: the backtester over the same bars from the warm-up's first candle on, warmed up
    # until day 1's open as the Consumer was (its signals dropped, the strategy flat after it).
    history_and_days = [x for x in backtester_candles("5minute", first_history.date())
                        if x.start >= first_history]  # fmt: skip
    result = run_backtest(STRATEGY, history_and_days, BacktestConfig(live_from=open_day1))
    want_signals = result.signals
    assert all(s.candle_start >= open_day1 for s in want_signals)
    assert len(want_signals) >= 2 * len(DAYS)  # several signals per day
    assert [signal_key(s) for s in signals] == [signal_key(s) for s in want_signals]
    assert [i.intent_id for i in intents] == [s.signal_id for s in want_signals]
    assert warm == 1
    assert published >= len(DAYS) * 375 * TICKS_PER_MINUTE


async def _all_candles(rc: RunningConsumer, expected: int) -> list[Candle]:
    with contextlib.suppress(AssertionError):
        await eventually(lambda: _enough(rc, expected), 15, message="every candle published")
    return await stream_candles(rc.redis)


async def _enough(rc: RunningConsumer, n: int) -> bool:
    return int(await rc.redis.xlen(c.CANDLES)) >= n
