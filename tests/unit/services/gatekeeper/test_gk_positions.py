"""The position book: fills (partial too), average price, realised/unrealised P&L, MTM."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.gatekeeper.positions import Fill, PositionBook, PositionTerms
from shared.clock import IST
from shared.messages import Side

T0 = datetime(2024, 8, 1, 10, 0, tzinfo=IST)
SYMBOL = "NSE:RELIANCE"


def _fill(n: int, side: Side, quantity: int, price: float, symbol: str = SYMBOL) -> Fill:
    return Fill(f"f{n}", f"o{n}", symbol, 738561, side, quantity, price, T0)


@pytest.mark.parametrize(
    ("fills", "quantity", "average", "realised"),
    [
        ([("BUY", 10, 100.0)], 10, 100.0, 0.0),
        ([("BUY", 10, 100.0), ("BUY", 30, 104.0)], 40, 103.0, 0.0),  # weighted average
        ([("BUY", 10, 100.0), ("SELL", 10, 110.0)], 0, 0.0, 100.0),
        ([("BUY", 10, 100.0), ("SELL", 4, 90.0)], 6, 100.0, -40.0),  # partial close keeps avg
        ([("SELL", 10, 100.0), ("BUY", 10, 90.0)], 0, 0.0, 100.0),  # a short profits on a fall
        ([("SELL", 10, 100.0), ("BUY", 3, 105.0)], -7, 100.0, -15.0),
        ([("BUY", 10, 100.0), ("SELL", 15, 110.0)], -5, 110.0, 100.0),  # flip: rest at the fill
        ([("SELL", 5, 50.0), ("SELL", 5, 60.0), ("BUY", 10, 40.0)], 0, 0.0, 150.0),
        # partial fills of one order arrive as increments
        ([("BUY", 3, 100.0), ("BUY", 4, 100.5), ("BUY", 3, 101.0)], 10, 100.5, 0.0),
    ],
)
def test_fills_move_quantity_average_and_realised_pnl(
    fills: list[tuple[Side, int, float]], quantity: int, average: float, realised: float
) -> None:
    book = PositionBook()
    for n, (side, q, p) in enumerate(fills):
        assert book.apply_fill(_fill(n, side, q, p)) is None
    position = book.get(SYMBOL)
    assert position is not None
    assert position.quantity == quantity
    assert position.average_price == pytest.approx(average)
    assert position.realised_pnl == pytest.approx(realised)
    assert book.open_count() == (1 if quantity else 0)


def test_mark_to_market_is_realised_plus_unrealised_over_all_positions() -> None:
    book = PositionBook()
    book.apply_fill(_fill(1, "BUY", 10, 100.0))
    book.apply_fill(_fill(2, "SELL", 4, 105.0))  # +20 realised
    book.apply_fill(_fill(3, "SELL", 50, 20.0, "NFO:NIFTY24AUG24500PE"))
    book.mark(SYMBOL, 98.0)  # 6 x -2 = -12
    book.mark("NFO:NIFTY24AUG24500PE", 26.0)  # short 50: -300
    assert book.realised() == pytest.approx(20.0)
    assert book.unrealised() == pytest.approx(-312.0)
    assert book.mtm() == pytest.approx(-292.0)


def test_a_redelivered_fill_is_booked_once() -> None:
    book = PositionBook()
    fill = _fill(1, "BUY", 10, 100.0)
    assert book.apply_fill(fill) is None
    assert book.apply_fill(fill) == "fill f1 already booked"
    assert book.quantity(SYMBOL) == 10


@pytest.mark.parametrize(("quantity", "price"), [(0, 100.0), (-5, 100.0), (5, 0.0)])
def test_invalid_fills_are_refused(quantity: int, price: float) -> None:
    book = PositionBook()
    reason = book.apply_fill(_fill(1, "BUY", quantity, price))
    assert reason is not None and "quantity" in reason
    assert book.get(SYMBOL) is None


def test_marking_an_unheld_symbol_does_nothing() -> None:
    book = PositionBook()
    assert book.mark("NSE:INFY", 1500.0) is None
    assert book.mtm() == 0.0


def test_best_price_tracks_the_high_for_a_long_and_the_low_for_a_short() -> None:
    book = PositionBook()
    book.apply_fill(_fill(1, "BUY", 1, 100.0))
    book.apply_fill(_fill(2, "SELL", 1, 50.0, "NSE:INFY"))
    for price in (103.0, 101.0, 108.0, 99.0):
        book.mark(SYMBOL, price)
    for price in (48.0, 51.0, 45.0, 47.0):
        book.mark("NSE:INFY", price)
    assert book.get(SYMBOL).best_price == 108.0  # type: ignore[union-attr]
    assert book.get("NSE:INFY").best_price == 45.0  # type: ignore[union-attr]


def test_terms_apply_on_open_and_clear_on_flat() -> None:
    book = PositionBook()
    terms = PositionTerms(stop_loss=95.0, target=110.0, entry_intent_id="sig-1")
    book.apply_fill(_fill(1, "BUY", 10, 100.0), terms)
    position = book.get(SYMBOL)
    assert position is not None and position.terms == terms and position.opened_at == T0
    book.exit_sent(SYMBOL, "exit-1")
    assert position.exit_pending == "exit-1" and position.exit_attempts == 1
    book.apply_fill(_fill(2, "SELL", 10, 101.0))
    assert position.exit_pending is None
    assert position.terms.stop_loss is None and position.terms.target is None


def test_an_exit_that_finished_without_closing_lets_the_monitor_retry() -> None:
    book = PositionBook()
    book.apply_fill(_fill(1, "BUY", 10, 100.0))
    book.exit_sent(SYMBOL, "exit-1")
    book.exit_finished(SYMBOL)
    position = book.get(SYMBOL)
    assert position is not None and position.exit_pending is None
    book.exit_denied(SYMBOL)
    assert position.exit_attempts == 2
