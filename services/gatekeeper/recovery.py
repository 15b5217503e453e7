"""After a crash: what to do with each order we recorded, given what the broker has under its tag.

The order is recorded BEFORE place_order is called, so a crash leaves one of: RECORDED (maybe
sent, maybe not), FAILED (the call failed: maybe placed), SENT/OPEN/PARTIAL (placed). The shell
looks the tag up in the broker's order book and asks `recovery_action`:
- "none": nothing to do (final locally and the broker agrees, or nothing to compare);
- "adopt": exactly one broker order carries the tag and matches: take its id and state;
- "place": the broker has nothing under the tag and the order is fresh enough to still send;
- "abandon": the broker has nothing and the order is older than `max_age_s` (its signal is
  stale): close it locally as CANCELLED with the reason, never send it;
- "conflict": anything else (two broker orders for one tag, a mismatch of symbol/side/quantity, an
  order we know as sent that the broker does not have): report it, send nothing.
An order is thus never placed twice: "place" requires the broker to show no order with its tag.
The shell should query the order book only after in-flight requests can no longer land (it was
restarted, so the old process's connections are gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.gatekeeper.broker_view import BrokerOrder
from services.gatekeeper.orders import OrderRecord, OrderUpdate, status_from_kite

RecoveryKind = Literal["none", "adopt", "place", "abandon", "conflict"]


@dataclass(frozen=True)
class RecoveryAction:
    kind: RecoveryKind
    reason: str
    update: OrderUpdate | None = None  # adopt / abandon: apply with orders.apply_update


def _mismatch(order: OrderRecord, broker: BrokerOrder) -> str | None:
    plan = order.plan
    differences = [
        f"{name} ours {ours} broker {theirs}"
        for name, ours, theirs in (
            ("symbol", plan.symbol, broker.symbol),
            ("side", plan.side, broker.side),
            ("quantity", plan.quantity, broker.quantity),
        )
        if ours != theirs
    ]
    if order.broker_order_id and order.broker_order_id != broker.broker_order_id:
        differences.append(f"order id ours {order.broker_order_id} broker {broker.broker_order_id}")
    return "; ".join(differences) or None


def recovery_action(
    order: OrderRecord,
    broker_orders_with_tag: Sequence[BrokerOrder],
    now: datetime,
    max_age_s: float,
) -> RecoveryAction:
    """The decision for one recorded order (see the module docstring)."""
    tag = order.plan.tag
    found = [b for b in broker_orders_with_tag if b.tag == tag]
    if len(found) > 1:
        ids = ", ".join(b.broker_order_id for b in found)
        return RecoveryAction("conflict", f"{len(found)} broker orders carry tag {tag}: {ids}")
    if found:
        broker = found[0]
        mismatch = _mismatch(order, broker)
        if mismatch:
            return RecoveryAction("conflict", f"broker order under tag {tag} differs: {mismatch}")
        status = status_from_kite(broker.status, broker.filled_quantity)
        if status is None:
            return RecoveryAction("conflict", f"unknown broker status {broker.status!r}")
        if order.is_final:
            if status == order.status and broker.filled_quantity == order.filled_quantity:
                return RecoveryAction("none", f"already {order.status}, the broker agrees")
            return RecoveryAction(
                "conflict",
                f"ours {order.status} filled {order.filled_quantity}, broker {broker.status} "
                f"filled {broker.filled_quantity}",
            )
        update = OrderUpdate(
            status,
            now,
            broker_order_id=broker.broker_order_id,
            filled_quantity=broker.filled_quantity,
            average_price=broker.average_price or None,
            reason=f"adopted after restart: broker order {broker.broker_order_id} "
            f"{broker.status} {broker.status_message}".strip(),
        )
        return RecoveryAction(
            "adopt", f"broker order {broker.broker_order_id} carries tag {tag}", update
        )
    if order.is_final:
        if order.status == "LOGGED" or order.broker_order_id is None:
            return RecoveryAction("none", f"{order.status} and never at the broker")
        return RecoveryAction(
            "conflict", f"{order.status} order {order.broker_order_id} missing at the broker"
        )
    if order.status in ("RECORDED", "FAILED"):
        age = (now - order.updated_at).total_seconds()
        if age > max_age_s:
            return RecoveryAction(
                "abandon",
                f"no broker order under tag {tag} and the order is {age:.0f} s old "
                f"(limit {max_age_s:.0f} s): not sent after restart",
                OrderUpdate("CANCELLED", now, reason="abandoned after restart: too old to send"),
            )
        return RecoveryAction("place", f"no broker order under tag {tag}: never placed")
    return RecoveryAction(
        "conflict",
        f"we hold it as {order.status} (broker id {order.broker_order_id}) but no broker order "
        f"carries tag {tag}",
    )
