"""Start-of-day reconciliation: our orders and positions against the broker's, as a list of diffs.

Pure diff; the shell fetches both sides, publishes each difference as a RECONCILIATION RiskEvent and
keeps new orders paused until a human has seen a non-empty report. Local orders are the day's orders
of a broker-backed mode (paper against the simulator, live); logging-only orders never reach it.
Orders match by broker order id first, then by tag. Positions compare net quantity per symbol
(summed over products, as the local book keeps one net position per symbol).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from services.gatekeeper.broker_view import BrokerOrder, BrokerPosition
from services.gatekeeper.orders import OrderRecord, is_our_tag, status_from_kite

DifferenceKind = Literal[
    "ORDER_UNSENT",  # recorded locally, never reached the broker (recovery decides)
    "ORDER_MISSING_AT_BROKER",  # we hold it as sent/open, the broker does not know it
    "ORDER_UNKNOWN_LOCALLY",  # the broker has an order with OUR tag that we have no record of
    "EXTERNAL_ORDER",  # an order not placed by us (manual, another app)
    "ORDER_STATUS_MISMATCH",
    "ORDER_FILL_MISMATCH",
    "POSITION_MISMATCH",
]


@dataclass(frozen=True)
class Difference:
    kind: DifferenceKind
    key: str  # our order id, the broker order id, or the symbol
    reason: str


def reconcile(
    local_orders: Sequence[OrderRecord],
    broker_orders: Sequence[BrokerOrder],
    local_positions: Mapping[str, int],
    broker_positions: Sequence[BrokerPosition],
) -> list[Difference]:
    """Every difference, each with its reason; an empty list means both sides agree."""
    diffs: list[Difference] = []
    by_id = {b.broker_order_id: b for b in broker_orders}
    by_tag = {b.tag: b for b in broker_orders if b.tag}
    matched: set[str] = set()
    for order in local_orders:
        if order.mode == "logging":
            continue
        broker = by_id.get(order.broker_order_id or "") or by_tag.get(order.plan.tag)
        key = order.plan.order_id
        if broker is None:
            if order.status in ("RECORDED", "FAILED"):
                diffs.append(Difference("ORDER_UNSENT", key, f"{order.status}, not at the broker"))
            elif order.broker_order_id is not None:
                diffs.append(
                    Difference(
                        "ORDER_MISSING_AT_BROKER",
                        key,
                        f"ours {order.status} as {order.broker_order_id}, unknown to the broker",
                    )
                )
            continue
        matched.add(broker.broker_order_id)
        theirs = status_from_kite(broker.status, broker.filled_quantity)
        if theirs != order.status:
            diffs.append(
                Difference(
                    "ORDER_STATUS_MISMATCH",
                    key,
                    f"ours {order.status}, broker {broker.status} ({broker.broker_order_id})",
                )
            )
        if broker.filled_quantity != order.filled_quantity:
            diffs.append(
                Difference(
                    "ORDER_FILL_MISMATCH",
                    key,
                    f"ours filled {order.filled_quantity}, broker {broker.filled_quantity}",
                )
            )
    for broker in broker_orders:
        if broker.broker_order_id in matched:
            continue
        kind: DifferenceKind = (
            "ORDER_UNKNOWN_LOCALLY" if is_our_tag(broker.tag) else "EXTERNAL_ORDER"
        )
        diffs.append(
            Difference(
                kind,
                broker.broker_order_id,
                f"{broker.status} {broker.side} {broker.quantity} {broker.symbol} "
                f"tag {broker.tag!r} has no local record",
            )
        )
    theirs_qty: dict[str, int] = {}
    for position in broker_positions:
        theirs_qty[position.symbol] = theirs_qty.get(position.symbol, 0) + position.quantity
    for symbol in sorted(set(theirs_qty) | set(local_positions)):
        ours_q, theirs_q = local_positions.get(symbol, 0), theirs_qty.get(symbol, 0)
        if ours_q != theirs_q:
            diffs.append(
                Difference(
                    "POSITION_MISMATCH", symbol, f"ours {ours_q}, broker {theirs_q} (net quantity)"
                )
            )
    return diffs
