"""Paper mode's local fill model: limits fill when crossed, partially from depth."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.gatekeeper.orders import PlannedOrder, apply_update, order_tag, record
from services.gatekeeper.paper import PaperFillModel
from services.gatekeeper.positions import PositionBook
from shared.clock import IST
from shared.messages import DepthLevel, OrderType, Side, Tick

T0 = datetime(2024, 8, 1, 10, 0, tzinfo=IST)
SYMBOL = "NSE:RELIANCE"


def _plan(
    n: int, side: Side, quantity: int, price: float | None, kind: OrderType = "LIMIT"
) -> PlannedOrder:
    return PlannedOrder(
        f"i{n}-1",
        f"i{n}",
        1,
        1,
        order_tag(f"i{n}", 1),
        SYMBOL,
        1,
        side,
        quantity,
        kind,
        price,
        "MIS",
    )


def _tick(
    last: float, bids: tuple[tuple[float, int], ...] = (), asks: tuple[tuple[float, int], ...] = ()
) -> Tick:
    return Tick(
        instrument_token=1,
        symbol=SYMBOL,
        last_price=last,
        exchange_ts=T0,
        received_ns=0,
        bids=tuple(DepthLevel(p, q, 1) for p, q in bids),
        asks=tuple(DepthLevel(p, q, 1) for p, q in asks),
    )


@pytest.mark.parametrize(
    ("side", "limit", "tick", "filled", "average", "status"),
    [
        ("BUY", 100.0, _tick(100.5), 0, None, None),  # not crossed
        ("BUY", 100.0, _tick(100.0), 50, 100.0, "COMPLETE"),  # no depth: at the last price
        ("BUY", 100.0, _tick(99.0), 50, 99.0, "COMPLETE"),
        ("SELL", 100.0, _tick(99.95), 0, None, None),
        ("SELL", 100.0, _tick(100.2), 50, 100.2, "COMPLETE"),
        # depth: only levels at or better than the limit, best first, up to their quantity
        (
            "BUY",
            100.0,
            _tick(99.9, asks=((99.9, 20), (100.0, 10), (100.05, 99))),
            30,
            (20 * 99.9 + 10 * 100.0) / 30,
            "PARTIAL",
        ),
        (
            "BUY",
            100.0,
            _tick(99.9, asks=((100.0, 80), (99.9, 20))),
            50,
            (20 * 99.9 + 30 * 100.0) / 50,
            "COMPLETE",
        ),
        (
            "SELL",
            100.0,
            _tick(100.1, bids=((100.1, 10), (100.0, 15), (99.95, 100))),
            25,
            (10 * 100.1 + 15 * 100.0) / 25,
            "PARTIAL",
        ),
        ("BUY", 100.0, _tick(99.0, asks=((100.5, 100),)), 0, None, None),  # depth says no
    ],
)
def test_a_resting_limit_fills_when_the_tick_crosses_it(
    side: Side, limit: float, tick: Tick, filled: int, average: float | None, status: str | None
) -> None:
    model = PaperFillModel()
    accepted = model.submit(_plan(1, side, 50, limit), _tick(0.0))
    assert accepted.update.status == "OPEN"
    updates = model.on_tick(tick)
    if status is None:
        assert updates == []
        return
    (only,) = updates
    assert only.update.status == status
    assert only.update.filled_quantity == filled
    assert only.update.average_price == pytest.approx(average, abs=1e-4)


def test_two_orders_never_take_the_same_depth() -> None:
    model = PaperFillModel()
    model.submit(_plan(1, "BUY", 30, 100.0), _tick(0.0))
    model.submit(_plan(2, "BUY", 30, 100.0), _tick(0.0))
    updates = model.on_tick(_tick(100.0, asks=((100.0, 40),)))
    assert [(u.order_id, u.update.filled_quantity, u.update.status) for u in updates] == [
        ("i1-1", 30, "COMPLETE"),
        ("i2-1", 10, "PARTIAL"),
    ]
    assert [o.remaining for o in model.open_orders(SYMBOL)] == [20]


def test_paper_fills_drive_the_same_state_machine_and_book_as_live() -> None:
    model = PaperFillModel()
    plan = _plan(1, "BUY", 50, 100.0)
    order = record(plan, "paper", T0)
    order = apply_update(order, model.submit(plan, _tick(0.0)).update).order
    book = PositionBook()
    for tick in (_tick(100.0, asks=((100.0, 20),)), _tick(99.9, asks=((99.9, 100),))):
        for update in model.on_tick(tick):
            result = apply_update(order, update.update)
            assert result.refused is None and result.fill is not None
            book.apply_fill(result.fill)
            order = result.order
    assert order.status == "COMPLETE"
    assert book.quantity(SYMBOL) == 50
    assert book.get(SYMBOL).average_price == pytest.approx((20 * 100 + 30 * 99.9) / 50)  # type: ignore[union-attr]


def test_cancel_keeps_the_filled_part() -> None:
    model = PaperFillModel()
    model.submit(_plan(1, "BUY", 50, 100.0), _tick(0.0))
    model.on_tick(_tick(100.0, asks=((100.0, 20),)))
    cancelled = model.cancel("i1-1", _tick(0.0))
    assert cancelled is not None and cancelled.update.status == "CANCELLED"
    assert model.on_tick(_tick(90.0)) == []
    assert model.cancel("i1-1", _tick(0.0)) is None


def test_market_orders_fill_at_any_depth_and_stop_orders_are_refused() -> None:
    model = PaperFillModel()
    model.submit(_plan(1, "BUY", 10, None, "MARKET"), _tick(0.0))
    (update,) = model.on_tick(_tick(101.0, asks=((105.0, 100),)))
    assert update.update.average_price == 105.0
    refused = model.submit(_plan(2, "BUY", 10, 100.0, "SL"), _tick(0.0))
    assert refused.update.status == "REJECTED"
