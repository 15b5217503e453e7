"""Rows of the history sources as Candles, and candles as rows (pure).

- Kite's historical API stamps a candle with its start (IST); a `day` candle at midnight. The
  Consumer's grid anchors at the session open (a `day` candle is 09:15-15:30 on a regular day),
  so a Kite candle becomes the grid bucket that starts at its time (a `day` candle: the sessions
  of its date). A Kite candle that is not the start of a grid bucket (a special session Kite
  anchors elsewhere, a date the calendar calls closed) is left out and counted, never shifted.
- `historical_data` (the cache of Kite candles) has no symbol and no end: both are derived.
- Gaps go to `performance_metrics` as `candle_gap` rows (value = buckets, the span in labels).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.consumer.buckets import SessionsOf, bucket_of
from services.consumer.candles import CandleGap
from shared.clock import IST
from shared.messages import Candle, Timeframe

HISTORICAL_DATA_COLUMNS = (
    "instrument_token",
    "timeframe",
    "start",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "oi",
    "fetched_at",
)
PERFORMANCE_COLUMNS = ("ts", "service", "name", "value", "labels")
GAP_METRIC = "candle_gap"


@dataclass(frozen=True, slots=True)
class ConvertedCandles:
    candles: list[Candle]
    left_out: list[datetime]  # starts that are not a bucket of the grid


def grid_candle(
    token: int,
    symbol: str,
    timeframe: Timeframe,
    start: datetime,
    values: tuple[float, float, float, float, int],
    sessions_of: SessionsOf,
    source: str,
) -> Candle | None:
    """A candle of the grid from a start and OHLCV, or None when `start` is not a bucket start."""
    start = start.astimezone(IST)
    if timeframe == "day":
        sessions = sessions_of(start.date())
        if not sessions:
            return None
        begin, end = sessions[0].open, sessions[-1].close
    else:
        bucket = bucket_of(start, timeframe, sessions_of)
        if bucket is None or bucket.start != start:
            return None
        begin, end = bucket.start, bucket.end
    o, h, low, c, v = values
    return Candle(
        instrument_token=token,
        symbol=symbol,
        timeframe=timeframe,
        start=begin,
        end=end,
        open=float(o),
        high=float(h),
        low=float(low),
        close=float(c),
        volume=int(v),
        source=source,  # type: ignore[arg-type]
    )


def kite_candles(
    rows: Iterable[Mapping[str, Any]],
    token: int,
    symbol: str,
    timeframe: Timeframe,
    sessions_of: SessionsOf,
) -> ConvertedCandles:
    """Rows of kiteconnect's `historical_data` (date, open, high, low, close, volume)."""
    candles: list[Candle] = []
    left_out: list[datetime] = []
    for row in rows:
        start: datetime = row["date"]
        if start.tzinfo is None:
            start = start.replace(tzinfo=IST)  # Kite's times are IST wall times
        values = (row["open"], row["high"], row["low"], row["close"], int(row.get("volume") or 0))
        candle = grid_candle(token, symbol, timeframe, start, values, sessions_of, "history")
        if candle is None:
            left_out.append(start)
        else:
            candles.append(candle)
    return ConvertedCandles(candles, left_out)


def historical_data_row(candle: Candle, fetched_at: datetime) -> dict[str, Any]:
    """A row of the `historical_data` cache."""
    return {
        "instrument_token": candle.instrument_token,
        "timeframe": candle.timeframe,
        "start": candle.start,
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
        "oi": 0,
        "fetched_at": fetched_at,
    }


def gap_row(gap: CandleGap, service: str) -> dict[str, Any]:
    """A `performance_metrics` row recording buckets that received no tick."""
    return {
        "ts": gap.start,
        "service": service,
        "name": GAP_METRIC,
        "value": float(gap.buckets),
        "labels": {
            "symbol": gap.symbol,
            "instrument_token": str(gap.instrument_token),
            "timeframe": gap.timeframe,
            "start": gap.start.astimezone(IST).isoformat(),
            "end": gap.end.astimezone(IST).isoformat(),
        },
    }


def sorted_by_start(candles: Sequence[Candle]) -> list[Candle]:
    """Candles ordered by start (stable)."""
    return sorted(candles, key=lambda c: c.start)
