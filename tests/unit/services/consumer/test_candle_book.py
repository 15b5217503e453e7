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


def test_gaps_and_rejects_are_taken_once_in_instrument_and_timeframe_order() -> None:
    book = CandleBook(["minute", "3minute"])
    for token in (9, 2, 5):
        book.update(tick(token, 0))
    book.update(tick(9, 600))  # 9 and 2 skip buckets; 5 does not
    book.update(tick(2, 600))
    book.update(tick(9, -3600))  # outside the session: rejected by both timeframes
    assert [(g.instrument_token, g.timeframe) for g in book.take_gaps()] == [
        (2, "minute"), (2, "3minute"), (9, "minute"), (9, "3minute"),
    ]  # fmt: skip
    assert book.take_gaps() == []
    assert [(r.tick.instrument_token, r.timeframe) for r in book.take_rejects()] == [
        (9, "minute"), (9, "3minute"),
    ]  # fmt: skip
    assert book.take_rejects() == [] and book.take_gaps() == []
