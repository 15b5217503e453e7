from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.consumer.candle_book import CandleBook
from shared.clock import IST
from shared.messages import Tick

T0 = datetime(2024, 3, 1, 9, 15, 5, tzinfo=IST)


def tick(token: int, seconds: float, price: float = 100.0) -> Tick:
    return Tick(
        instrument_token=token,
        symbol=f"NSE:S{token}",
        last_price=price,
        exchange_ts=T0 + timedelta(seconds=seconds),
        received_ns=0,
    )


def test_a_book_builds_every_timeframe_of_every_instrument_it_sees() -> None:
    book = CandleBook(["minute", "5minute", "minute"])
    assert book.timeframes == ("minute", "5minute")
    assert book.update(tick(1, 0)) == [] and book.update(tick(2, 1)) == []
    closed = book.update(tick(1, 60))
    assert [(c.symbol, c.timeframe) for c in closed] == [("NSE:S1", "minute")]
    timer = book.on_time(T0 + timedelta(minutes=5, seconds=2))
    assert sorted((c.symbol, c.timeframe) for c in timer) == [
        ("NSE:S1", "5minute"),
        ("NSE:S1", "minute"),
        ("NSE:S2", "5minute"),
        ("NSE:S2", "minute"),
    ]
    assert len(book) == 2 and len(book.builders(1)) == 2 and book.builders(3) == ()


def test_a_book_collects_gaps_and_rejects_and_forgets_dropped_instruments() -> None:
    book = CandleBook(["minute"])
    book.update(tick(1, 0))
    book.update(tick(1, 180))  # two empty minutes
    book.update(tick(1, -3600))  # before the open: outside the session
    [gap] = book.take_gaps()
    assert (gap.symbol, gap.buckets) == ("NSE:S1", 2)
    [reject] = book.take_rejects()
    assert "outside" in reject.reason
    book.drop(1)
    assert len(book) == 0 and book.take_gaps() == []


def test_a_book_needs_a_timeframe() -> None:
    with pytest.raises(ValueError, match="at least one"):
        CandleBook([])
