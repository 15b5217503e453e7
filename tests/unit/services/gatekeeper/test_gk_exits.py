"""Exit decisions on each price: stop, trailing stop, target, expiry, square-off."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from services.gatekeeper.exits import (
    exit_decision,
    exit_intent,
    exit_intent_id,
    flatten_decisions,
    trailing_stop_level,
)
from services.gatekeeper.positions import Fill, PositionBook, PositionTerms
from shared.clock import IST
from shared.messages import Product, Side

NOW = datetime(2024, 8, 1, 11, 0, tzinfo=IST)
SQUARE_OFF = time(15, 15)


def _book(
    quantity: int,
    *,
    stop: float | None = None,
    target: float | None = None,
    trailing: float | None = None,
    expires: datetime | None = None,
    product: Product = "MIS",
    marks: tuple[float, ...] = (),
) -> PositionBook:
    book = PositionBook()
    terms = PositionTerms(stop, target, trailing, expires, product, "sig-1")
    side: Side = "BUY" if quantity > 0 else "SELL"
    book.apply_fill(Fill("f1", "o1", "NSE:X", 1, side, abs(quantity), 100.0, NOW), terms)
    for price in marks:
        book.mark("NSE:X", price)
    return book


@pytest.mark.parametrize(
    ("quantity", "kwargs", "now", "kind"),
    [
        (10, {"stop": 95.0, "marks": (96.0,)}, NOW, None),
        (10, {"stop": 95.0, "marks": (95.0,)}, NOW, "STOP_LOSS"),  # at the stop
        (10, {"stop": 95.0, "marks": (90.0,)}, NOW, "STOP_LOSS"),
        (-10, {"stop": 105.0, "marks": (105.0,)}, NOW, "STOP_LOSS"),  # short: stop above
        (-10, {"stop": 105.0, "marks": (104.95,)}, NOW, None),
        (10, {"target": 110.0, "marks": (110.0,)}, NOW, "TARGET"),
        (-10, {"target": 90.0, "marks": (90.0,)}, NOW, "TARGET"),
        (-10, {"target": 90.0, "marks": (90.05,)}, NOW, None),
        # both true at once (a target below the stop): the stop is checked first
        (10, {"stop": 95.0, "target": 70.0, "marks": (80.0,)}, NOW, "STOP_LOSS"),
        (10, {"trailing": 5.0, "marks": (120.0, 114.1)}, NOW, None),
        (10, {"trailing": 5.0, "marks": (120.0, 114.0)}, NOW, "TRAILING_STOP"),  # 120 x 0.95
        (-10, {"trailing": 5.0, "marks": (80.0, 84.0)}, NOW, "TRAILING_STOP"),  # 80 x 1.05
        (10, {"expires": NOW + timedelta(minutes=61), "marks": (100.0,)}, NOW, None),
        (10, {"expires": NOW + timedelta(minutes=60), "marks": (100.0,)}, NOW, None),  # == 1 h
        (10, {"expires": NOW + timedelta(minutes=59), "marks": (100.0,)}, NOW, "EXPIRY"),
        (10, {"marks": (100.0,)}, NOW.replace(hour=15, minute=14, second=59), None),
        (10, {"marks": (100.0,)}, NOW.replace(hour=15, minute=15), "SQUARE_OFF"),
        (10, {"product": "NRML", "marks": (100.0,)}, NOW.replace(hour=15, minute=20), None),
        (10, {"product": "CNC", "marks": (100.0,)}, NOW.replace(hour=15, minute=20), None),
    ],
)
def test_exit_decisions(
    quantity: int, kwargs: dict[str, object], now: datetime, kind: str | None
) -> None:
    book = _book(quantity, **kwargs)  # type: ignore[arg-type]
    position = book.get("NSE:X")
    assert position is not None
    decision = exit_decision(position, now, SQUARE_OFF, 3600.0)
    assert (decision.kind if decision else None) == kind
    if decision is not None:
        assert decision.quantity == abs(quantity)
        assert decision.side == ("SELL" if quantity > 0 else "BUY")
        assert decision.reason


def test_square_off_uses_ist_even_for_a_utc_now() -> None:
    book = _book(10, marks=(100.0,))
    position = book.get("NSE:X")
    assert position is not None
    utc_now = datetime(2024, 8, 1, 9, 46, tzinfo=UTC)  # 15:16 IST
    decision = exit_decision(position, utc_now, SQUARE_OFF, 3600.0)
    assert decision is not None and decision.kind == "SQUARE_OFF"


def test_a_position_with_an_exit_in_flight_gets_no_second_decision() -> None:
    book = _book(10, stop=95.0, marks=(90.0,))
    book.exit_sent("NSE:X", "exit-1")
    position = book.get("NSE:X")
    assert position is not None
    assert exit_decision(position, NOW, SQUARE_OFF, 3600.0) is None


def test_the_default_trailing_stop_applies_when_the_position_has_none() -> None:
    book = _book(10, marks=(110.0, 104.0))
    position = book.get("NSE:X")
    assert position is not None
    assert trailing_stop_level(position, None) is None
    decision = exit_decision(position, NOW, SQUARE_OFF, 3600.0, default_trailing_pct=5.0)
    assert decision is not None and decision.kind == "TRAILING_STOP"


def test_exit_intent_ids_are_deterministic_per_attempt() -> None:
    book = _book(10, stop=95.0, marks=(90.0,))
    position = book.get("NSE:X")
    assert position is not None
    decision = exit_decision(position, NOW, SQUARE_OFF, 3600.0)
    assert decision is not None
    first = exit_intent(position, decision, NOW)
    assert first.intent_id == exit_intent_id(position)
    assert exit_intent(position, decision, NOW).intent_id == first.intent_id
    assert first.is_exit and first.side == "SELL" and first.quantity == 10
    assert first.reason.startswith("STOP_LOSS")
    book.exit_denied("NSE:X")
    assert exit_intent_id(position) != first.intent_id


def test_flatten_closes_every_open_position_without_an_exit_in_flight() -> None:
    book = _book(10, marks=(99.0,))
    book.apply_fill(Fill("f2", "o2", "NSE:Y", 2, "SELL", 5, 50.0, NOW))
    book.apply_fill(Fill("f3", "o3", "NSE:Z", 3, "BUY", 5, 50.0, NOW))
    book.exit_sent("NSE:Z", "exit-z")
    decisions = flatten_decisions(book, "loss 2 %")
    assert {(d.symbol, d.side, d.quantity, d.kind) for d in decisions} == {
        ("NSE:X", "SELL", 10, "KILL_SWITCH"),
        ("NSE:Y", "BUY", 5, "KILL_SWITCH"),
    }
