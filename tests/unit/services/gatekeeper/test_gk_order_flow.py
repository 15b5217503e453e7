"""Broker rows -> updates (polls repeat themselves quietly), breaker signals, finished intents."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.gatekeeper.broker_view import BrokerOrder
from services.gatekeeper.order_flow import breaker_signal, intent_finished, update_from_broker
from services.gatekeeper.orders import OrderRecord, PlannedOrder, order_tag, record
from shared.messages import OrderStatus
from tests.unit.services.gatekeeper.gk_fixtures import NOW, RELIANCE

PLAN = PlannedOrder(
    "sig-1-1", "sig-1", 1, 1, order_tag("sig-1", 1), RELIANCE, 738561, "BUY", 10, "LIMIT",
    2462.25, "MIS",
)  # fmt: skip
RECORDED = record(PLAN, "live", NOW)


def _order(status: OrderStatus, filled: int = 0, broker_id: str | None = "B1") -> OrderRecord:
    return replace(
        RECORDED,
        status=status,
        filled_quantity=filled,
        broker_order_id=broker_id,
        average_price=100.0 if filled else 0.0,
    )


def _broker(status: str, filled: int = 0, broker_id: str = "B1") -> BrokerOrder:
    return BrokerOrder(
        broker_id, PLAN.tag, status, RELIANCE, "BUY", 10, filled, 100.0 if filled else 0.0
    )


@pytest.mark.parametrize(
    ("order", "broker", "status", "why"),
    [
        (_order("RECORDED", broker_id=None), _broker("OPEN PENDING"), "SENT", "broker"),
        (_order("RECORDED", broker_id=None), _broker("OPEN"), "OPEN", "broker"),
        (_order("SENT"), _broker("OPEN PENDING"), None, "unchanged"),
        (_order("OPEN"), _broker("OPEN PENDING"), None, "still pending"),
        (_order("OPEN"), _broker("OPEN"), None, "unchanged"),
        (_order("OPEN"), _broker("OPEN", 4), "PARTIAL", "broker"),
        (_order("PARTIAL", 4), _broker("OPEN", 4), None, "unchanged"),
        (_order("PARTIAL", 4), _broker("COMPLETE", 10), "COMPLETE", "broker"),
        (_order("COMPLETE", 10), _broker("COMPLETE", 10), None, "unchanged"),
        (_order("SENT"), _broker("REJECTED"), "REJECTED", "broker"),
        (_order("OPEN"), _broker("CANCELLED"), "CANCELLED", "broker"),
        (_order("OPEN"), _broker("WEIRD STATE"), None, "unknown broker status"),
    ],
)
def test_update_from_broker(
    order: OrderRecord, broker: BrokerOrder, status: str | None, why: str
) -> None:
    update, reason = update_from_broker(order, broker, NOW)
    assert (update.status if update else None) == status
    assert why in reason
    if update is not None:
        assert update.broker_order_id == "B1"


@pytest.mark.parametrize(
    ("before", "after", "signal"),
    [
        ("RECORDED", "SENT", None),
        ("SENT", "OPEN", "success"),
        ("RECORDED", "COMPLETE", "success"),
        ("FAILED", "PARTIAL", "success"),
        ("OPEN", "PARTIAL", None),
        ("PARTIAL", "COMPLETE", None),
        ("SENT", "REJECTED", "failure"),
        ("RECORDED", "FAILED", "failure"),
        ("OPEN", "CANCELLED", None),
        ("REJECTED", "REJECTED", None),
    ],
)
def test_breaker_signal(before: OrderStatus, after: OrderStatus, signal: str | None) -> None:
    assert breaker_signal(before, after) == signal


@pytest.mark.parametrize(
    ("statuses", "finished"),
    [([], False), (["COMPLETE"], True), (["COMPLETE", "OPEN"], False), (["REJECTED"], True)],
)
def test_intent_finished(statuses: list[OrderStatus], finished: bool) -> None:
    assert intent_finished(_order(s) for s in statuses) is finished
