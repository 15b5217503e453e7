"""The order lifecycle state machine, tags and ids, Kite statuses and fill increments."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

import pytest

from services.gatekeeper.orders import (
    ALLOWED,
    OrderRecord,
    OrderUpdate,
    PlannedOrder,
    acknowledge,
    apply_update,
    is_our_tag,
    kite_order_params,
    order_id_for,
    order_tag,
    record,
    status_from_kite,
    transition_refusal,
)
from shared.clock import IST
from shared.messages import OrderStatus

NOW = datetime(2024, 8, 1, 10, 0, tzinfo=IST)


def _plan(quantity: int = 100, **changes: object) -> PlannedOrder:
    plan = PlannedOrder(
        order_id=order_id_for("sig-1", 1),
        intent_id="sig-1",
        slice_no=1,
        slices=1,
        tag=order_tag("sig-1", 1),
        symbol="NSE:RELIANCE",
        instrument_token=738561,
        side="BUY",
        quantity=quantity,
        order_type="LIMIT",
        price=2462.2,
        product="MIS",
    )
    return replace(plan, **changes)  # type: ignore[arg-type]


def _order(status: OrderStatus, filled: int = 0, average: float = 0.0) -> OrderRecord:
    return replace(
        record(_plan(), "live", NOW), status=status, filled_quantity=filled, average_price=average
    )


STATUSES: list[OrderStatus] = [
    "RECORDED",
    "LOGGED",
    "SENT",
    "OPEN",
    "PARTIAL",
    "COMPLETE",
    "REJECTED",
    "CANCELLED",
    "FAILED",
]
LEGAL = {
    ("RECORDED", "SENT"), ("RECORDED", "LOGGED"), ("RECORDED", "FAILED"),
    ("RECORDED", "OPEN"), ("RECORDED", "PARTIAL"), ("RECORDED", "COMPLETE"),
    ("RECORDED", "REJECTED"), ("RECORDED", "CANCELLED"),
    ("FAILED", "SENT"), ("FAILED", "OPEN"), ("FAILED", "PARTIAL"), ("FAILED", "COMPLETE"),
    ("FAILED", "REJECTED"), ("FAILED", "CANCELLED"),
    ("SENT", "SENT"), ("SENT", "OPEN"), ("SENT", "PARTIAL"), ("SENT", "COMPLETE"),
    ("SENT", "REJECTED"), ("SENT", "CANCELLED"),
    ("OPEN", "OPEN"), ("OPEN", "PARTIAL"), ("OPEN", "COMPLETE"), ("OPEN", "REJECTED"),
    ("OPEN", "CANCELLED"),
    ("PARTIAL", "PARTIAL"), ("PARTIAL", "COMPLETE"), ("PARTIAL", "CANCELLED"),
}  # fmt: skip


@pytest.mark.parametrize("old", STATUSES)
@pytest.mark.parametrize("new", STATUSES)
def test_transition_table(old: OrderStatus, new: OrderStatus) -> None:
    refusal = transition_refusal(old, new)
    assert (refusal is None) is ((old, new) in LEGAL)
    assert (new in ALLOWED[old]) is ((old, new) in LEGAL)
    if old in ("COMPLETE", "REJECTED", "CANCELLED", "LOGGED"):
        assert refusal is not None and "final" in refusal


@pytest.mark.parametrize(
    ("start", "update", "status", "fill", "refused"),
    [
        (("SENT", 0, 0.0), ("OPEN", None, None), "OPEN", None, None),
        (("OPEN", 0, 0.0), ("OPEN", 40, 100.0), "PARTIAL", (40, 100.0), None),  # OPEN w/ fills
        (("PARTIAL", 40, 100.0), ("PARTIAL", 70, 101.0), "PARTIAL", (30, 102.3333), None),
        (("PARTIAL", 40, 100.0), ("COMPLETE", 100, 100.6), "COMPLETE", (60, 101.0), None),
        (("OPEN", 0, 0.0), ("COMPLETE", None, 99.5), "COMPLETE", (100, 99.5), None),
        (("PARTIAL", 40, 100.0), ("CANCELLED", None, None), "CANCELLED", None, None),
        (("PARTIAL", 40, 100.0), ("PARTIAL", 40, 100.0), "PARTIAL", None, None),  # redelivered
        (("PARTIAL", 70, 101.0), ("PARTIAL", 40, 100.0), "PARTIAL", None, "went back"),
        (("OPEN", 0, 0.0), ("PARTIAL", 120, 100.0), "OPEN", None, "exceeds"),
        (("OPEN", 0, 0.0), ("COMPLETE", 90, 100.0), "OPEN", None, "COMPLETE with 90 of 100"),
        (("OPEN", 0, 0.0), ("PARTIAL", 0, None), "OPEN", None, "PARTIAL without"),
        (("OPEN", 0, 0.0), ("PARTIAL", 10, None), "OPEN", None, "without an average price"),
        (("COMPLETE", 100, 100.0), ("OPEN", None, None), "COMPLETE", None, "final"),
        (("REJECTED", 0, 0.0), ("COMPLETE", 100, 1.0), "REJECTED", None, "final"),
        (("LOGGED", 0, 0.0), ("SENT", None, None), "LOGGED", None, "final"),
    ],
)
def test_updates_advance_the_order_or_are_refused_without_change(
    start: tuple[OrderStatus, int, float],
    update: tuple[OrderStatus, int | None, float | None],
    status: OrderStatus,
    fill: tuple[int, float] | None,
    refused: str | None,
) -> None:
    order = _order(*start)
    new_status, filled, average = update
    result = apply_update(
        order, OrderUpdate(new_status, NOW, filled_quantity=filled, average_price=average)
    )
    assert result.order.status == status
    assert (result.refused is None) is (refused is None)
    if refused is not None:
        assert refused in (result.refused or "")
        assert result.order == order
    if fill is None:
        assert result.fill is None
    else:
        assert result.fill is not None
        assert result.fill.quantity == fill[0]
        assert result.fill.price == pytest.approx(fill[1])
        assert result.fill.fill_id == f"{order.plan.order_id}:{result.order.filled_quantity}"
        assert result.fill.side == "BUY" and result.fill.symbol == "NSE:RELIANCE"


def test_fills_of_an_order_add_up_to_its_average() -> None:
    order = _order("OPEN")
    fills = []
    for filled, average in ((10, 100.0), (55, 100.9), (100, 101.2)):
        result = apply_update(
            order,
            OrderUpdate(
                "PARTIAL" if filled < 100 else "COMPLETE",
                NOW,
                filled_quantity=filled,
                average_price=average,
            ),
        )
        assert result.refused is None and result.fill is not None
        fills.append(result.fill)
        order = result.order
    assert sum(f.quantity for f in fills) == 100
    assert sum(f.quantity * f.price for f in fills) == pytest.approx(100 * 101.2, abs=0.01)


def test_acknowledge_sets_the_broker_id_without_moving_back() -> None:
    recorded = _order("RECORDED")
    sent = acknowledge(recorded, "2408010001", NOW)
    assert sent.order.status == "SENT" and sent.order.broker_order_id == "2408010001"
    # the WebSocket said OPEN before place_order returned
    opened = apply_update(recorded, OrderUpdate("OPEN", NOW, broker_order_id="2408010001")).order
    late = acknowledge(opened, "2408010001", NOW)
    assert late.order.status == "OPEN" and late.refused is None
    other = acknowledge(opened, "999", NOW)
    assert other.refused is not None and other.order == opened


def test_tags_are_deterministic_alphanumeric_and_at_most_20_chars() -> None:
    tags = {order_tag(f"sig-{i}", s) for i in range(200) for s in range(1, 11)}
    assert len(tags) == 2000
    for tag in tags:
        assert len(tag) <= 20 and re.fullmatch(r"[A-Za-z0-9]+", tag)
        assert is_our_tag(tag)
    assert order_tag("ema:NSE:INFY:15minute:2024-08-01T10:00", 3) == order_tag(
        "ema:NSE:INFY:15minute:2024-08-01T10:00", 3
    )
    assert not is_our_tag("manual") and not is_our_tag(None)
    with pytest.raises(ValueError):
        order_tag("x", 0)


@pytest.mark.parametrize(
    ("kite", "filled", "ours"),
    [
        ("COMPLETE", 100, "COMPLETE"),
        ("REJECTED", 0, "REJECTED"),
        ("CANCELLED", 0, "CANCELLED"),
        ("CANCELLED AMO", 0, "CANCELLED"),
        ("OPEN", 0, "OPEN"),
        ("OPEN", 30, "PARTIAL"),
        ("TRIGGER PENDING", 0, "OPEN"),
        ("MODIFY PENDING", 10, "PARTIAL"),
        ("PUT ORDER REQ RECEIVED", 0, "SENT"),
        ("VALIDATION PENDING", 0, "SENT"),
        ("OPEN PENDING", 0, "SENT"),
        ("SOMETHING NEW", 0, None),
    ],
)
def test_kite_statuses_map_to_ours(kite: str, filled: int, ours: OrderStatus | None) -> None:
    assert status_from_kite(kite, filled) == ours


def test_kite_order_params_carry_the_tag_and_price() -> None:
    params = kite_order_params(_plan())
    assert params == {
        "variety": "regular",
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "transaction_type": "BUY",
        "quantity": 100,
        "product": "MIS",
        "order_type": "LIMIT",
        "validity": "DAY",
        "tag": order_tag("sig-1", 1),
        "price": 2462.2,
    }
    market = kite_order_params(_plan(order_type="MARKET", price=None, market_protection=2.0))
    assert market["market_protection"] == 2.0 and "price" not in market


def test_an_order_event_carries_the_record() -> None:
    order = _order("PARTIAL", 40, 100.0)
    event = order.to_event("e1")
    assert (event.status, event.filled_quantity, event.tag, event.mode) == (
        "PARTIAL",
        40,
        order.plan.tag,
        "live",
    )
