"""Warm-up against the simulator's historical API through the official kiteconnect client.

ClickHouse holds part of the window (the Consumer's own candles, and an overlapping cached day
in historical_data); the rest is fetched from the simulator at Kite's pace and range limits,
cached, and merged without a duplicate; the day missing from the data (2024-02-01) is reported
as a gap, never invented. Then a Producer-shaped tick warms the strategies inside the service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.consumer.backtest.bars import build_candles
from services.consumer.buckets import data_sessions
from services.consumer.history_rows import historical_data_row
from services.consumer.warmup import HistoryFetch
from shared import constants as c
from shared.calendar import load_calendar
from shared.clock import IST
from shared.messages import Candle, Tick
from shared.store import MESSAGE_TABLES, apply_migrations
from tests.integration.consumer_harness import (
    NIFTY,
    NIFTY_FILE,
    NIFTY_TOKEN,
    clickhouse_client,
    consumer_settings,
    publish_ticks,
    read_bars,
    running_consumer,
)
from tests.sim_fixtures import KiteSim
from tests.support import eventually

pytestmark = pytest.mark.e2e

SIM_DAY = date(2024, 2, 5)  # a Monday; Thursday 2024-02-01 is missing from the data
OPEN = datetime(2024, 2, 5, 9, 15, tzinfo=IST)
SESSIONS = data_sessions(load_calendar())


class Bars:
    def __init__(self, bars: list[Any]) -> None:
        self.symbol, self.instrument_token, self._bars = NIFTY, NIFTY_TOKEN, bars

    def bars(self) -> Any:
        return iter(self._bars)


def fifteen(days: list[date]) -> list[Candle]:
    return build_candles(Bars(read_bars(NIFTY_FILE, days)), "15minute", SESSIONS).candles


def values(candles: list[Candle]) -> list[tuple[Any, ...]]:
    return [(x.start, x.end, x.open, x.high, x.low, x.close) for x in candles]


@pytest.fixture
def sim(kite_sim_factory: Callable[..., KiteSim]) -> KiteSim:
    return kite_sim_factory(day=SIM_DAY, rate_historical_per_s=3.0)


async def test_warm_up_merges_clickhouse_and_the_historical_api_and_reports_the_missing_day(
    sim: KiteSim,
    redis_url: str,
    clickhouse_server: Any,
    clickhouse_db: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    own = fifteen([date(2024, 1, 30), date(2024, 1, 31)])  # the Consumer's own candles
    cached = fifteen([date(2024, 1, 31)])  # an overlapping day already in the Kite cache
    client = clickhouse_client(clickhouse_server, clickhouse_db)
    apply_migrations(client)
    spec = MESSAGE_TABLES[Candle]
    client.execute(f"INSERT INTO candles ({', '.join(spec.columns)}) VALUES",
                   [tuple(spec.row(x)[k] for k in spec.columns) for x in own])  # fmt: skip
    fetched_at = datetime(2024, 2, 1, tzinfo=IST)
    rows = [historical_data_row(x, fetched_at) for x in cached]
    client.execute(f"INSERT INTO historical_data ({', '.join(rows[0])}) VALUES",
                   [tuple(r.values()) for r in rows])  # fmt: skip
    client.disconnect()
    settings = consumer_settings(
        redis_url, clickhouse_server, clickhouse_db, tmp_path / "spool",
        api_key=sim.api_key, kite_api_root=sim.rest_root, timeframes=["15minute"],
        strategies=[{"kind": "ema_crossover", "symbols": [NIFTY],
                     "params": {"timeframe": "15minute", "lookback": 100}}],
    )  # fmt: skip
    caplog.set_level(logging.INFO, logger="services.consumer")
    async with running_consumer(settings) as rc:
        await rc.redis.set(c.ACCESS_TOKEN_KEY, sim.login())
        history = rc.consumer.d.history
        assert history is not None and history.kite is not None
        result = await history.warm_up(NIFTY_TOKEN, NIFTY, "15minute", 100, OPEN)

        want = fifteen([date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 2)])
        assert values(list(result.candles)) == values(want)  # ordered, one per start
        assert (result.stored, result.fetched, result.requests) == (75, 25, 1)
        assert result.duplicates == 25  # 2024-01-31 in both tables, kept once
        [gap] = result.gaps
        assert (gap.start, gap.end, gap.buckets) == (
            datetime(2024, 2, 1, 9, 15, tzinfo=IST), datetime(2024, 2, 1, 15, 30, tzinfo=IST), 25,
        )  # fmt: skip
        assert "gap of 25 buckets 2024-02-01 09:15:00+05:30" in caplog.text
        assert rc.metric("tradealgo_consumer_warmups_total", {"outcome": "partial"}) == 1

        # The service warms on a strategy instrument's first tick (the same plan, now cached).
        first = Tick(instrument_token=NIFTY_TOKEN, symbol=NIFTY, last_price=want[-1].close,
                     exchange_ts=OPEN, received_ns=1)  # fmt: skip
        await publish_ticks(rc.redis, [first])
        await eventually(lambda: rc.consumer.engine.last_start(NIFTY, "15minute") is not None, 10)
        assert rc.consumer.engine.last_start(NIFTY, "15minute") == want[-1].start
        await eventually(lambda: _cached_days(rc.clickhouse) == [date(2024, 1, 31),
                                                                 date(2024, 2, 2)], 10)  # fmt: skip
        assert rc.metric("tradealgo_consumer_historical_calls_total", {"outcome": "rate"}) == 0


def _cached_days(client: Any) -> list[date]:
    rows = client.execute(
        "SELECT DISTINCT toDate(start, 'Asia/Kolkata') FROM historical_data FINAL ORDER BY 1"
    )
    return [r[0] for r in rows]


async def test_the_historical_client_paces_splits_and_takes_a_new_token_after_a_403(
    sim: KiteSim, redis_url: str, clickhouse_server: Any, clickhouse_db: str, tmp_path: Path
) -> None:
    settings = consumer_settings(redis_url, clickhouse_server, clickhouse_db, tmp_path,
                                 api_key=sim.api_key, kite_api_root=sim.rest_root)  # fmt: skip
    async with running_consumer(settings) as rc:
        await rc.redis.set(c.ACCESS_TOKEN_KEY, sim.login())
        history = rc.consumer.d.history
        assert history is not None and history.kite is not None
        kite = history.kite
        # 70 days of minutes: two requests (60-day limit), seven sent at 3/s without a 429.
        start = datetime(2023, 11, 20, 9, 15, tzinfo=IST)
        candles = await history.backfill(NIFTY_TOKEN, NIFTY, "minute", start, OPEN)
        assert kite.calls == 2 and candles and candles[-1].start < OPEN
        assert {x.source for x in candles} == {"backfill"}
        for _ in range(5):
            await kite.fetch(HistoryFetch(NIFTY_TOKEN, "day", OPEN - timedelta(days=10), OPEN))
        assert rc.metric("tradealgo_consumer_historical_calls_total", {"outcome": "rate"}) == 0
        # The session dies (a new login elsewhere); the Sentinel stores the new token.
        sim.control.faults(expire_token=True)
        await rc.redis.set(c.ACCESS_TOKEN_KEY, sim.login())
        rows = await kite.fetch(HistoryFetch(NIFTY_TOKEN, "day", OPEN - timedelta(days=10), OPEN))
        assert rows
        assert rc.metric("tradealgo_consumer_historical_calls_total", {"outcome": "token"}) == 1
