"""Warm-up and gap backfill: the pure plan of warmup.py run against ClickHouse and Kite.

Warm-up of one (instrument, timeframe) before its live candles feed the strategies:
1. `history_start` walks back over the calendar's sessions until the window holds N buckets;
2. the window's candles already in ClickHouse (`candles`, `historical_data`) are read;
3. `plan_warmup` lists the missing session time as requests cut to Kite's per-interval limits;
   they are sent at the historical API's pace (KiteHistory) and cached in `historical_data`;
4. `merge_candles` makes one ordered series, one candle per start (no duplicate, no disorder),
   and reports the buckets nobody has (a day missing from Kite's data, an outage) as gaps,
   logged with their span. The strategies then get the last N candles.
Without a Kite client (no API key) the warm-up uses ClickHouse alone and says so.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

import msgspec

from services.consumer.adapters.clickhouse_history import ClickHouseHistory
from services.consumer.adapters.kite_history import HistoryUnavailable, KiteHistory
from services.consumer.adapters.metrics import ConsumerMetrics
from services.consumer.adapters.store import ConsumerStore
from services.consumer.buckets import SessionsOf
from services.consumer.history_rows import kite_candles
from services.consumer.warmup import (
    CandleGapRange,
    HistoryFetch,
    TimeRange,
    history_start,
    merge_candles,
    plan_warmup,
)
from shared.clock import Clock
from shared.messages import Candle, Timeframe

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmupResult:
    candles: tuple[Candle, ...]  # oldest first, at most `lookback`
    stored: int  # candles found in ClickHouse
    fetched: int  # candles fetched from Kite
    requests: int
    duplicates: int
    gaps: tuple[CandleGapRange, ...]
    problem: str | None  # why the history may be incomplete (Kite unavailable, ...)


class HistoryLoader:
    """History of (instrument, timeframe) windows from ClickHouse, completed from Kite."""

    def __init__(
        self,
        stored: ClickHouseHistory,
        kite: KiteHistory | None,
        store: ConsumerStore,
        *,
        calendar_sessions: SessionsOf,
        grid_sessions: SessionsOf,
        range_days: dict[str, int],
        requests_per_s: float,
        max_days: int,
        clock: Clock,
        metrics: ConsumerMetrics,
    ) -> None:
        self.stored = stored
        self.kite = kite
        self.store = store
        self.calendar_sessions = calendar_sessions
        self.grid_sessions = grid_sessions
        self.range_days = range_days
        self.requests_per_s = requests_per_s
        self.max_days = max_days
        self.clock = clock
        self.metrics = metrics

    async def warm_up(
        self, token: int, symbol: str, timeframe: Timeframe, lookback: int, until: datetime
    ) -> WarmupResult:
        """The last `lookback` candles before `until` (a bucket boundary)."""
        start = history_start(
            lookback, timeframe, until, self.calendar_sessions, max_days=self.max_days
        )
        have = await asyncio.to_thread(
            self.stored.stored, token, symbol, timeframe, start, until, self.grid_sessions
        )
        now = self.clock.now()
        plan = plan_warmup(
            token, timeframe, TimeRange(start, until), [c.start for c in have],
            self.calendar_sessions, self.range_days, self.requests_per_s, now,
        )  # fmt: skip
        fetched: list[Candle] = []
        problem: str | None = None
        if plan.fetches and self.kite is None:
            problem = "no Kite API key: history from ClickHouse only"
        elif plan.fetches:
            try:
                for fetch in plan.fetches:
                    fetched.extend(await self._fetch(fetch, symbol))
            except HistoryUnavailable as exc:
                problem = str(exc)
        merged = merge_candles(have, fetched, history_as_of=now, sessions_of=self.calendar_sessions)
        window = [c for c in merged.candles if start <= c.start < until][-lookback:]
        result = WarmupResult(
            tuple(window), len(have), len(fetched), len(plan.fetches), merged.duplicates,
            merged.gaps, problem,
        )  # fmt: skip
        self._report(symbol, timeframe, lookback, start, until, result)
        return result

    def close(self) -> None:
        """Release the historical API's HTTP connections."""
        if self.kite is not None:
            self.kite.close()

    async def backfill(
        self, token: int, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Candle]:
        """Kite's candles of buckets [start, end) the feed gave no tick for (source backfill)."""
        if self.kite is None:
            return []
        plan = plan_warmup(
            token, timeframe, TimeRange(start, end), [], self.calendar_sessions,
            self.range_days, self.requests_per_s, self.clock.now(),
        )  # fmt: skip
        candles: list[Candle] = []
        try:
            for fetch in plan.fetches:
                candles.extend(await self._fetch(fetch, symbol))
        except HistoryUnavailable as exc:
            logger.error("backfill of %s %s %s..%s failed: %s", symbol, timeframe, start, end, exc)
            return []
        found = [
            msgspec.structs.replace(c, source="backfill") for c in candles if start <= c.start < end
        ]
        logger.info(
            "backfilled %s %s %s..%s: %s candles from the historical API",
            symbol, timeframe, start, end, len(found),
        )  # fmt: skip
        return found

    async def _fetch(self, fetch: HistoryFetch, symbol: str) -> list[Candle]:
        assert self.kite is not None
        rows = await self.kite.fetch(fetch)
        converted = kite_candles(rows, fetch.instrument_token, symbol, fetch.interval,
                                 self.grid_sessions)  # fmt: skip
        if converted.left_out:
            logger.warning(
                "%s %s: %s historical candles are not on the candle grid and were left out "
                "(first %s)",
                symbol, fetch.interval, len(converted.left_out), converted.left_out[0],
            )  # fmt: skip
        in_range = [c for c in converted.candles if fetch.start <= c.start < fetch.end]
        self.store.add_history(in_range, self.clock.now())
        return in_range

    def _report(
        self,
        symbol: str,
        timeframe: Timeframe,
        lookback: int,
        start: datetime,
        until: datetime,
        result: WarmupResult,
    ) -> None:
        outcome = "ok" if len(result.candles) >= lookback and not result.problem else "partial"
        self.metrics.warmups.labels(outcome).inc()
        logger.info(
            "warm-up %s %s: %s of %s candles for %s..%s (%s from ClickHouse, %s fetched in %s "
            "requests, %s duplicates dropped)%s",
            symbol, timeframe, len(result.candles), lookback, start, until, result.stored,
            result.fetched, result.requests, result.duplicates,
            f"; incomplete: {result.problem}" if result.problem else "",
        )  # fmt: skip
        for gap in result.gaps:
            logger.warning(
                "warm-up %s %s: gap of %s buckets %s..%s (no candle in ClickHouse or Kite)",
                symbol, timeframe, gap.buckets, gap.start, gap.end,
            )  # fmt: skip
