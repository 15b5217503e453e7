"""Candles and real data for the consumer's unit tests."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

from services.consumer.buckets import buckets_in, regular_sessions
from shared.clock import IST
from shared.messages import Candle, Timeframe

ROOT = Path(__file__).parents[4]
NIFTY_1M = ROOT / "shared/marketdata/nifty50_index_1m_2024-01-01_2024-08-23.csv.gz"
BANKNIFTY_1M = ROOT / "shared/marketdata/niftybank_index_1m_2024-01-01_2024-08-23.csv.gz"
NIFTY = "NSE:NIFTY 50"
NIFTY_TOKEN = 256265


def candles_from_closes(
    closes: Sequence[float],
    *,
    symbol: str = NIFTY,
    token: int = NIFTY_TOKEN,
    timeframe: Timeframe = "15minute",
    first_day: date = date(2024, 3, 1),
) -> list[Candle]:
    """Consecutive candles of a regular-session grid (weekdays) with the given closes."""
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=IST)
    buckets = buckets_in(start, start + timedelta(days=3650), timeframe, regular_sessions())
    out: list[Candle] = []
    for close, bucket in zip(closes, (b for b in buckets if b.start.weekday() < 5), strict=False):
        out.append(
            Candle(
                instrument_token=token,
                symbol=symbol,
                timeframe=timeframe,
                start=bucket.start,
                end=bucket.end,
                open=close,
                high=close,
                low=close,
                close=close,
                volume=0,
                tick_count=1,
            )
        )
    return out


def read_closes(path: Path = NIFTY_1M) -> list[tuple[datetime, float]]:
    """(bar start, close) of a shipped 1-minute file, regular session only."""
    out: list[tuple[datetime, float]] = []
    with gzip.open(path, "rt") as f:
        next(f)
        for line in f:
            fields = line.split(",")
            ts = datetime.fromisoformat(fields[0])
            if (9, 15) <= (ts.hour, ts.minute) <= (15, 29):
                out.append((ts, float(fields[4])))
    return out
