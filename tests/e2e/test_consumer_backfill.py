"""After a feed outage (a reconnect) the buckets a strategy instrument got no tick for are
backfilled from the historical API inside the round, so the strategies still see every candle,
in order, and decide exactly as on an uninterrupted feed. Decisions on backfilled candles are
recorded but not traded (stale). A feed that dies before the close leaves a tail gap, backfilled
once the session is over."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest

from services.consumer.backtest.bars import build_candles
from services.consumer.buckets import data_sessions
from services.consumer.strategies import EmaCrossover
from services.consumer.strategies.ema_crossover import EmaCrossoverParams
from shared import constants as c
from shared.calendar import load_calendar
from shared.clock import IST
from tests.integration.consumer_harness import (
    NIFTY,
    NIFTY_FILE,
    NIFTY_TOKEN,
    consumer_settings,
    ohlc,
    producer_ticks,
    publish_ticks,
    read_bars,
    running_consumer,
    signal_key,
    stream_candles,
    stream_intents,
    stream_signals,
)
from tests.sim_fixtures import KiteSim
from tests.support import eventually

pytestmark = pytest.mark.e2e

DAY = date(2024, 8, 20)
SESSIONS = data_sessions(load_calendar())


class Bars:
    def __init__(self, bars: list[Any]) -> None:
        self.symbol, self.instrument_token, self._bars = NIFTY, NIFTY_TOKEN, bars

    def bars(self) -> Any:
        return iter(self._bars)


async def test_buckets_missed_during_an_outage_are_backfilled_and_fed_to_strategies_in_order(
    kite_sim_factory: Callable[..., KiteSim],
    redis_url: str,
    clickhouse_server: Any,
    clickhouse_db: str,
    tmp_path: Path,
) -> None:
    sim = kite_sim_factory(day=DAY, start_time=time(15, 31))  # the whole day is history
    bars = read_bars(NIFTY_FILE, [DAY])  # the whole day; the feed dies for good at 10:15
    outage = [b for b in bars if time(9, 49) <= b.start.time() < time(9, 56)]
    tail = [b for b in bars if b.start.time() >= time(10, 15)]
    fed = [b for b in bars if b not in outage and b not in tail]
    minute = build_candles(Bars(bars), "minute", SESSIONS).candles
    strategy = EmaCrossover(EmaCrossoverParams(timeframe="minute", fast=3, slow=5, lookback=10))
    state = strategy.new_state()
    want_signals = [s for x in minute if (s := strategy.on_candle(x, state)) is not None]
    decided_in_outage = [s for s in want_signals if s.candle_start.astimezone(IST).time()
                         in {b.start.time() for b in outage}]  # fmt: skip
    assert len(decided_in_outage) == 3  # crossings on candles the feed never delivered
    settings = consumer_settings(
        redis_url, clickhouse_server, clickhouse_db, tmp_path / "spool",
        api_key=sim.api_key, kite_api_root=sim.rest_root, timeframes=["minute"], warmup=False,
    )  # fmt: skip
    async with running_consumer(settings) as rc:
        await rc.redis.set(c.ACCESS_TOKEN_KEY, sim.login())
        await eventually(lambda: rc.consumer.readiness()[0], 10)
        await publish_ticks(rc.redis, producer_ticks(fed))
        await eventually(lambda: _handled(rc) >= 4 * len(fed), 20)
        rc.mono.advance(86_400)
        await eventually(lambda: _count(rc, len(minute)), 10, message="every minute candle")
        candles = await stream_candles(rc.redis)
        assert sorted(map(ohlc, candles)) == sorted(map(ohlc, minute))
        backfilled = sorted(x.start for x in candles if x.source == "backfill")
        assert backfilled == [b.start for b in [*outage, *tail]]
        assert [signal_key(s) for s in await stream_signals(rc.redis)] == [
            signal_key(s) for s in want_signals
        ]
        live_starts = {b.start for b in fed}
        intents = await stream_intents(rc.redis)
        assert [i.intent_id for i in intents] == [
            s.signal_id for s in want_signals if s.candle_start in live_starts
        ]
        assert rc.metric("tradealgo_consumer_intents_not_published_total",
                         {"reason": "backfill"}) == len(want_signals) - len(intents)  # fmt: skip
        assert rc.metric("tradealgo_candle_gaps_total", {"timeframe": "minute"}) == len(
            outage
        ) + len(tail)
        await eventually(lambda: _backfilled_rows(rc) == len(outage) + len(tail), 10)
        want_gaps = [(float(len(outage)), "2024-08-20T09:49:00+05:30"),
                     (float(len(tail)), "2024-08-20T10:15:00+05:30")]  # fmt: skip
        await eventually(lambda: _gap_rows(rc) == want_gaps, 10)


def _handled(rc: Any) -> int:
    return sum(o.worker.stats.ticks for o in rc.consumer.owned.values())


async def _count(rc: Any, n: int) -> bool:
    return len(await stream_candles(rc.redis)) >= n


def _backfilled_rows(rc: Any) -> int:
    rows = rc.clickhouse.execute("SELECT count() FROM candles FINAL WHERE source = 'backfill'")
    return int(rows[0][0])


def _gap_rows(rc: Any) -> list[tuple[float, str]]:
    rows = rc.clickhouse.execute(
        "SELECT value, labels['start'] FROM performance_metrics WHERE name = 'candle_gap' "
        "ORDER BY ts"
    )
    return [(float(v), str(start)) for v, start in rows]
