"""Small decisions of the order flow the shell asks about (pure).

- `update_from_broker`: a broker order row (WebSocket update or a poll of the order book) -> the
  `OrderUpdate` for our record, or None with why (nothing new: polls repeat the same state every
  few seconds and must not count as refused updates; a status we do not know is never guessed);
- `breaker_signal`: what a state change tells the circuit breaker. A failure is a rejection or a
  failed call; a success is the broker ACCEPTING the order (it reached OPEN, PARTIAL or COMPLETE),
  not place_order returning an id: Kite returns an id for orders it rejects a moment later;
- `intent_finished`: every order of an intent is final (an exit's position may be exited again).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from services.gatekeeper.broker_view import BrokerOrder
from services.gatekeeper.orders import OrderRecord, OrderUpdate, status_from_kite
from shared.messages import OrderStatus

_ACCEPTED: frozenset[OrderStatus] = frozenset({"OPEN", "PARTIAL", "COMPLETE"})
_NOT_YET_ACCEPTED: frozenset[OrderStatus] = frozenset({"RECORDED", "SENT", "FAILED"})


def update_from_broker(
    order: OrderRecord, broker: BrokerOrder, ts: datetime
) -> tuple[OrderUpdate | None, str]:
    """The update a broker row brings, or None and the reason it brings nothing."""
    status = status_from_kite(broker.status, broker.filled_quantity)
    if status is None:
        return None, f"unknown broker status {broker.status!r} of {broker.broker_order_id}"
    same_id = order.broker_order_id in (None, broker.broker_order_id)
    if (
        status == order.status
        and broker.filled_quantity == order.filled_quantity
        and order.broker_order_id == broker.broker_order_id
    ):
        return None, "unchanged"
    if status == "SENT" and order.status != "RECORDED" and order.status != "FAILED" and same_id:
        return None, "still pending at the broker"
    update = OrderUpdate(
        status,
        ts,
        broker_order_id=broker.broker_order_id,
        filled_quantity=broker.filled_quantity,
        average_price=broker.average_price or None,
        reason=broker.status_message,
    )
    return update, f"broker {broker.status}"


BreakerSignal = Literal["success", "failure"]


def breaker_signal(before: OrderStatus, after: OrderStatus) -> BreakerSignal | None:
    """What a state change of one order tells the circuit breaker, if anything."""
    if before == after:
        return None
    if after in ("REJECTED", "FAILED"):
        return "failure"
    if after in _ACCEPTED and before in _NOT_YET_ACCEPTED:
        return "success"
    return None


def intent_finished(orders: Iterable[OrderRecord]) -> bool:
    """Every order of the intent reached a final state (and there is at least one)."""
    seen = False
    for order in orders:
        seen = True
        if not order.is_final:
            return False
    return seen
