"""Kite's historical candles on the Consumer's candle grid; gap rows."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.consumer.buckets import data_sessions
from services.consumer.candles import CandleGap
from services.consumer.history_rows import gap_row, grid_candle, kite_candles
from shared.calendar import load_calendar
from shared.clock import IST
from shared.messages import Timeframe

SESSIONS = data_sessions(load_calendar())


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=IST)


@pytest.mark.parametrize(
    ("timeframe", "start", "bucket"),
    [
        ("minute", at(2024, 8, 20, 9, 15), (at(2024, 8, 20, 9, 15), at(2024, 8, 20, 9, 16))),
        ("60minute", at(2024, 8, 20, 15, 15), (at(2024, 8, 20, 15, 15), at(2024, 8, 20, 15, 30))),
        ("day", at(2024, 8, 20), (at(2024, 8, 20, 9, 15), at(2024, 8, 20, 15, 30))),
        ("day", at(2024, 3, 2), (at(2024, 3, 2, 9, 15), at(2024, 3, 2, 12, 30))),  # special
        ("15minute", at(2024, 3, 2, 11, 30), (at(2024, 3, 2, 11, 30), at(2024, 3, 2, 11, 45))),
        ("5minute", at(2024, 8, 20, 9, 17), None),  # not a bucket start: left out
        ("60minute", at(2024, 3, 2, 12, 15), None),  # Kite's 09:15 anchor vs the session's
        ("minute", at(2024, 8, 20, 15, 30), None),  # after the close
    ],
)
def test_a_kite_candle_becomes_the_grid_bucket_that_starts_at_its_time(
    timeframe: Timeframe, start: datetime, bucket: tuple[datetime, datetime] | None
) -> None:
    candle = grid_candle(1, "NSE:X", timeframe, start, (1.0, 2.0, 0.5, 1.5, 7), SESSIONS, "history")
    if bucket is None:
        assert candle is None
    else:
        assert candle is not None and (candle.start, candle.end) == bucket
        assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
            1.0, 2.0, 0.5, 1.5, 7,
        )  # fmt: skip
        assert candle.source == "history"


def test_kite_rows_keep_grid_candles_and_report_the_others() -> None:
    rows = [
        {"date": at(2024, 8, 20, 9, 15), "open": 1, "high": 2, "low": 1, "close": 2, "volume": 0},
        {"date": at(2024, 8, 20, 9, 16), "open": 2, "high": 3, "low": 2, "close": 3, "volume": 0},
        {"date": datetime(2024, 8, 20, 9, 20), "open": 3, "high": 3, "low": 3, "close": 3,
         "volume": 0},  # naive: Kite's IST wall time
    ]  # fmt: skip
    converted = kite_candles(rows, 1, "NSE:X", "5minute", SESSIONS)
    assert [c.start for c in converted.candles] == [at(2024, 8, 20, 9, 15), at(2024, 8, 20, 9, 20)]
    assert converted.left_out == [at(2024, 8, 20, 9, 16)]


def test_a_gap_is_a_performance_metrics_row_with_its_span() -> None:
    gap = CandleGap(5, "NSE:X", "minute", at(2024, 8, 20, 10, 0), at(2024, 8, 20, 10, 3), 3)
    row = gap_row(gap, "consumer")
    assert (row["name"], row["value"], row["service"]) == ("candle_gap", 3.0, "consumer")
    assert row["labels"]["start"] == "2024-08-20T10:00:00+05:30"
    assert row["labels"]["timeframe"] == "minute" and row["labels"]["instrument_token"] == "5"
