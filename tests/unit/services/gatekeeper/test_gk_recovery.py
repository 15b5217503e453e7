"""After a crash: adopt, place, abandon or report, per recorded order and the broker's book."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from services.gatekeeper.broker_view import BrokerOrder, BrokerPosition
from services.gatekeeper.orders import (
    OrderRecord,
    PlannedOrder,
    apply_update,
    order_id_for,
    order_tag,
    record,
)
from services.gatekeeper.reconcile import reconcile
from services.gatekeeper.recovery import recovery_action
from shared.clock import IST
from shared.messages import OrderStatus

T0 = datetime(2024, 8, 1, 10, 0, tzinfo=IST)
TAG = order_tag("sig-1", 1)


def _order(
    status: OrderStatus = "RECORDED",
    broker_id: str | None = None,
    filled: int = 0,
    at: datetime = T0,
    mode: str = "live",
    intent: str = "sig-1",
) -> OrderRecord:
    plan = PlannedOrder(
        order_id=order_id_for(intent, 1),
        intent_id=intent,
        slice_no=1,
        slices=1,
        tag=order_tag(intent, 1),
        symbol="NFO:NIFTY24AUG24500CE",
        instrument_token=1,
        side="SELL",
        quantity=75,
        order_type="LIMIT",
        price=120.0,
        product="NRML",
    )
    return replace(
        record(plan, mode, at),  # type: ignore[arg-type]
        status=status,
        broker_order_id=broker_id,
        filled_quantity=filled,
        average_price=120.0 if filled else 0.0,
    )


def _broker(
    order_id: str = "B1",
    tag: str | None = TAG,
    status: str = "OPEN",
    filled: int = 0,
    quantity: int = 75,
    symbol: str = "NIFTY24AUG24500CE",
) -> BrokerOrder:
    return BrokerOrder.from_kite(
        {
            "order_id": order_id,
            "tag": tag,
            "status": status,
            "exchange": "NFO",
            "tradingsymbol": symbol,
            "transaction_type": "SELL",
            "quantity": quantity,
            "filled_quantity": filled,
            "average_price": 120.0 if filled else 0,
            "price": 120.0,
        }
    )


NOW = T0 + timedelta(seconds=20)


@pytest.mark.parametrize(
    ("order", "broker", "kind", "status"),
    [
        # crashed after recording, before (or during) place_order
        (_order("RECORDED"), [], "place", None),
        (_order("FAILED"), [], "place", None),
        (_order("RECORDED", at=T0 - timedelta(minutes=5)), [], "abandon", "CANCELLED"),
        # it did reach the broker: adopt, never place again
        (_order("RECORDED"), [_broker(status="OPEN")], "adopt", "OPEN"),
        (_order("FAILED"), [_broker(status="COMPLETE", filled=75)], "adopt", "COMPLETE"),
        (_order("SENT", "B1"), [_broker(status="OPEN", filled=25)], "adopt", "PARTIAL"),
        (_order("RECORDED"), [_broker(status="VALIDATION PENDING")], "adopt", "SENT"),
        (_order("RECORDED"), [_broker(status="REJECTED")], "adopt", "REJECTED"),
        # two orders for one tag, or a different order under it: a human looks
        (_order("RECORDED"), [_broker("B1"), _broker("B2")], "conflict", None),
        (_order("RECORDED"), [_broker(quantity=150)], "conflict", None),
        (_order("RECORDED"), [_broker(symbol="NIFTY24AUG24600CE")], "conflict", None),
        (_order("SENT", "B9"), [_broker("B1")], "conflict", None),
        (_order("SENT", "B1"), [], "conflict", None),  # we sent it, the broker lost it
        (_order("RECORDED"), [_broker(status="WEIRD")], "conflict", None),
        # final locally
        (_order("COMPLETE", "B1", 75), [_broker(status="COMPLETE", filled=75)], "none", None),
        (_order("COMPLETE", "B1", 75), [_broker(status="CANCELLED")], "conflict", None),
        (_order("LOGGED", mode="logging"), [], "none", None),
        (_order("REJECTED"), [], "none", None),
        (_order("CANCELLED", "B1"), [], "conflict", None),
        # broker orders under other tags are not this order's
        (_order("RECORDED"), [_broker(tag="other")], "place", None),
    ],
)
def test_recovery_never_places_an_order_the_broker_already_has(
    order: OrderRecord, broker: list[BrokerOrder], kind: str, status: OrderStatus | None
) -> None:
    action = recovery_action(order, broker, NOW, max_age_s=60.0)
    assert action.kind == kind
    assert action.reason
    if kind == "place":
        assert not any(b.tag == order.plan.tag for b in broker)
    if status is None:
        assert action.update is None
    else:
        assert action.update is not None and action.update.status == status
        applied = apply_update(order, action.update)
        assert applied.refused is None
        assert applied.order.status == status


def test_an_adopted_fill_comes_out_for_the_position_book() -> None:
    action = recovery_action(_order("FAILED"), [_broker(status="COMPLETE", filled=75)], NOW, 60.0)
    assert action.update is not None
    applied = apply_update(_order("FAILED"), action.update)
    assert applied.order.broker_order_id == "B1"
    assert applied.fill is not None and applied.fill.quantity == 75


def test_broker_rows_parse_and_bad_sides_are_refused() -> None:
    with pytest.raises(ValueError):
        BrokerOrder.from_kite(
            {"order_id": "1", "transaction_type": "HOLD", "exchange": "NSE", "tradingsymbol": "X"}
        )
    position = BrokerPosition.from_kite(
        {
            "exchange": "NFO",
            "tradingsymbol": "X",
            "product": "NRML",
            "quantity": -75,
            "average_price": 120,
        }
    )
    assert (position.symbol, position.quantity) == ("NFO:X", -75)


def _kinds(diffs: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(d.kind, d.key) for d in diffs]


def test_reconciliation_of_agreeing_books_is_empty() -> None:
    local = [_order("COMPLETE", "B1", 75)]
    broker = [_broker(status="COMPLETE", filled=75)]
    positions = [BrokerPosition("NFO:NIFTY24AUG24500CE", "NRML", -75, 120.0)]
    assert reconcile(local, broker, {"NFO:NIFTY24AUG24500CE": -75}, positions) == []


@pytest.mark.parametrize(
    ("local", "broker", "ours", "theirs", "expected"),
    [
        ([_order("RECORDED")], [], {}, [], [("ORDER_UNSENT", "sig-1-1")]),
        ([_order("OPEN", "B1")], [], {}, [], [("ORDER_MISSING_AT_BROKER", "sig-1-1")]),
        (
            [_order("OPEN", "B1")],
            [_broker(status="COMPLETE", filled=75)],
            {},
            [],
            [("ORDER_STATUS_MISMATCH", "sig-1-1"), ("ORDER_FILL_MISMATCH", "sig-1-1")],
        ),
        ([], [_broker("B7")], {}, [], [("ORDER_UNKNOWN_LOCALLY", "B7")]),
        ([], [_broker("B8", tag=None)], {}, [], [("EXTERNAL_ORDER", "B8")]),
        (
            [],
            [],
            {"NFO:A": -75},
            [BrokerPosition("NFO:A", "NRML", -150), BrokerPosition("NSE:B", "CNC", 10)],
            [("POSITION_MISMATCH", "NFO:A"), ("POSITION_MISMATCH", "NSE:B")],
        ),
        (  # products are summed per symbol
            [],
            [],
            {"NSE:B": 10},
            [BrokerPosition("NSE:B", "CNC", 4), BrokerPosition("NSE:B", "MIS", 6)],
            [],
        ),
        ([_order("LOGGED", mode="logging")], [], {}, [], []),  # never at the broker
    ],
)
def test_reconciliation_reports_every_difference_with_a_reason(
    local: list[OrderRecord],
    broker: list[BrokerOrder],
    ours: dict[str, int],
    theirs: list[BrokerPosition],
    expected: list[tuple[str, str]],
) -> None:
    diffs = reconcile(local, broker, ours, theirs)
    assert _kinds(diffs) == expected
    assert all(d.reason for d in diffs)
