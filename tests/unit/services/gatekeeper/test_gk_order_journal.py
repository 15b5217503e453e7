"""The durable order record round-trips, and the day's book is rebuilt from it after a restart."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from services.gatekeeper.order_journal import (
    JournalEntry,
    decode_entry,
    encode_entry,
    rebuild_book,
)
from services.gatekeeper.orders import (
    OrderRecord,
    OrderUpdate,
    PlannedOrder,
    apply_update,
    order_tag,
    record,
)
from services.gatekeeper.positions import PositionTerms
from tests.unit.services.gatekeeper.gk_fixtures import NOW, RELIANCE

TERMS = PositionTerms(stop_loss=2400.0, target=2550.0, entry_intent_id="sig-1")


def _plan(
    intent_id: str, side: str = "BUY", quantity: int = 10, is_exit: bool = False
) -> PlannedOrder:
    return PlannedOrder(
        order_id=f"{intent_id}-1",
        intent_id=intent_id,
        slice_no=1,
        slices=1,
        tag=order_tag(intent_id, 1),
        symbol=RELIANCE,
        instrument_token=738561,
        side=side,  # type: ignore[arg-type]
        quantity=quantity,
        order_type="LIMIT",
        price=2462.25,
        product="MIS",
        is_exit=is_exit,
    )


def _filled(
    order: OrderRecord, filled: int, average: float, status: str = "PARTIAL"
) -> OrderRecord:
    update = OrderUpdate(status, NOW, "B1", filled, average)  # type: ignore[arg-type]
    transition = apply_update(order, update)
    assert transition.refused is None, transition.refused
    return transition.order


def test_an_entry_round_trips_through_json() -> None:
    order = _filled(record(_plan("sig-1"), "live", NOW), 4, 2450.0)
    entry = JournalEntry(order, TERMS, NOW, intent_received_ns=5, tick_received_ns=3)
    assert decode_entry(encode_entry(entry)) == entry


def test_an_unreadable_record_raises_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode_entry(b'{"order": 1}')


@pytest.mark.parametrize(
    ("fills", "quantity", "realised"),
    [
        ([], 0, 0.0),
        ([("sig-1", "BUY", 10, 100.0)], 10, 0.0),
        ([("sig-1", "BUY", 10, 100.0), ("exit-1", "SELL", 4, 110.0)], 6, 40.0),
        ([("sig-1", "BUY", 10, 100.0), ("exit-1", "SELL", 10, 90.0)], 0, -100.0),
    ],
)
def test_the_book_is_rebuilt_from_the_days_orders(
    fills: list[tuple[str, str, int, float]], quantity: int, realised: float
) -> None:
    entries = []
    for n, (intent_id, side, filled, price) in enumerate(fills):
        order = record(_plan(intent_id, side, 10, side == "SELL"), "paper", NOW)
        order = _filled(order, filled, price, "COMPLETE" if filled == 10 else "PARTIAL")
        terms = TERMS if side == "BUY" else None
        entries.append(JournalEntry(order, terms, NOW + timedelta(seconds=n)))
    book, problems = rebuild_book(reversed(entries))  # order of the hash does not matter
    assert problems == []
    assert book.quantity(RELIANCE) == quantity
    assert book.realised() == pytest.approx(realised)


def test_a_working_exit_keeps_its_position_exit_in_flight_after_the_restart() -> None:
    entry = _filled(record(_plan("sig-1"), "paper", NOW), 10, 100.0, "COMPLETE")
    working_exit = replace(record(_plan("exit-1", "SELL", 10, True), "paper", NOW), status="OPEN")
    book, _ = rebuild_book(
        [
            JournalEntry(entry, TERMS, NOW),
            JournalEntry(working_exit, None, NOW + timedelta(seconds=1)),
        ]
    )
    position = book.get(RELIANCE)
    assert position is not None and position.exit_pending == "exit-1"
    assert position.terms.stop_loss == 2400.0
