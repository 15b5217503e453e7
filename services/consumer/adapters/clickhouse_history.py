"""Candle history already in ClickHouse: the Consumer's own `candles` and the `historical_data`
cache of Kite candles (both read with FINAL: one row per key, the highest revision / latest fetch).

clickhouse-driver is synchronous and a Client is not thread-safe: every call takes the lock and
async callers run these methods through asyncio.to_thread. Times go in as epoch microseconds
(no zone ambiguity in query parameters) and come back IST-aware.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from services.consumer.buckets import SessionsOf
from services.consumer.history_rows import grid_candle
from shared.clock import IST
from shared.messages import Candle, Timeframe

_CANDLES = """
SELECT symbol, start, `end`, open, high, low, close, volume, tick_count, revision, source,
       last_tick_received_ns
FROM candles FINAL
WHERE instrument_token = %(token)s AND timeframe = %(timeframe)s
  AND start >= fromUnixTimestamp64Micro(%(start)s) AND start < fromUnixTimestamp64Micro(%(end)s)
ORDER BY start
"""
_HISTORICAL = """
SELECT start, open, high, low, close, volume
FROM historical_data FINAL
WHERE instrument_token = %(token)s AND timeframe = %(timeframe)s
  AND start >= fromUnixTimestamp64Micro(%(start)s) AND start < fromUnixTimestamp64Micro(%(end)s)
ORDER BY start
"""
_MINUTE_BARS_OF_SYMBOL = """
SELECT instrument_token FROM candles WHERE symbol = %(symbol)s LIMIT 1
"""


def epoch_us(when: datetime) -> int:
    """Aware datetime -> epoch microseconds."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}")
    return round(when.timestamp() * 1_000_000)


def _ist(value: datetime) -> datetime:
    return value.astimezone(IST) if value.tzinfo else value.replace(tzinfo=IST)


class ClickHouseHistory:
    """Reads stored candles of one (instrument, timeframe) over a time range."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._lock = threading.Lock()

    def _query(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            rows: list[tuple[Any, ...]] = self.client.execute(sql, params)
        return rows

    def candles(
        self, token: int, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Candle]:
        """The Consumer's own candles with start in [start, end)."""
        params = {"token": token, "timeframe": timeframe, "start": epoch_us(start),
                  "end": epoch_us(end)}  # fmt: skip
        out: list[Candle] = []
        for symbol, s, e, o, h, low, c, v, n, r, source, received in self._query(_CANDLES, params):
            candle = Candle(
                instrument_token=token, symbol=symbol, timeframe=timeframe, start=_ist(s),
                end=_ist(e), open=o, high=h, low=low, close=c, volume=v, tick_count=n,
                revision=r, source=source, last_tick_received_ns=received,
            )  # fmt: skip
            out.append(candle)
        return out

    def cached(
        self,
        token: int,
        symbol: str,
        timeframe: Timeframe,
        start: datetime,
        end: datetime,
        sessions_of: SessionsOf,
    ) -> list[Candle]:
        """Kite candles cached in `historical_data` with start in [start, end)."""
        params = {"token": token, "timeframe": timeframe, "start": epoch_us(start),
                  "end": epoch_us(end)}  # fmt: skip
        out: list[Candle] = []
        for s, o, h, low, c, v in self._query(_HISTORICAL, params):
            candle = grid_candle(
                token, symbol, timeframe, _ist(s), (o, h, low, c, v), sessions_of, "history"
            )
            if candle is not None:
                out.append(candle)
        return out

    def stored(
        self,
        token: int,
        symbol: str,
        timeframe: Timeframe,
        start: datetime,
        end: datetime,
        sessions_of: SessionsOf,
    ) -> list[Candle]:
        """Both sources, own candles first (a merge lets the later one win a tie)."""
        return [
            *self.candles(token, timeframe, start, end),
            *self.cached(token, symbol, timeframe, start, end, sessions_of),
        ]

    def token_of(self, symbol: str) -> int | None:
        """The instrument token the Consumer stored candles of `symbol` under, if any."""
        rows = self._query(_MINUTE_BARS_OF_SYMBOL, {"symbol": symbol})
        return int(rows[0][0]) if rows else None
