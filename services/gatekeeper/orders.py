"""The order lifecycle: deterministic ids and Kite tags, and a state machine that refuses nonsense.

RECORDED (written before anything is sent)
  -> LOGGED (logging-only mode; final)
  -> SENT (the broker returned an order id) -> OPEN -> PARTIAL -> COMPLETE / CANCELLED
  -> REJECTED / CANCELLED from SENT, OPEN (and PARTIAL -> CANCELLED keeps the filled part)
  -> FAILED (the broker call failed: outcome UNKNOWN until the tag is looked up; see recovery.py)
An order update may arrive on the WebSocket before place_order returns, so RECORDED and FAILED also
accept OPEN / PARTIAL / COMPLETE / REJECTED / CANCELLED. Filled quantity never decreases and never
exceeds the order quantity; an update breaking either (out of order, duplicated) is refused with a
reason and changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.gatekeeper.positions import Fill
from shared.messages import Mode, OrderEvent, OrderStatus, OrderType, Product, Side

FINAL: frozenset[OrderStatus] = frozenset({"COMPLETE", "REJECTED", "CANCELLED", "LOGGED"})
_BROKER_OUTCOMES: frozenset[OrderStatus] = frozenset(
    {"OPEN", "PARTIAL", "COMPLETE", "REJECTED", "CANCELLED"}
)


def _statuses(*names: OrderStatus) -> frozenset[OrderStatus]:
    return frozenset(names)


ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    "RECORDED": _statuses("SENT", "LOGGED", "FAILED") | _BROKER_OUTCOMES,
    "FAILED": _statuses("SENT") | _BROKER_OUTCOMES,
    "SENT": _statuses("SENT") | _BROKER_OUTCOMES,
    "OPEN": _BROKER_OUTCOMES,
    "PARTIAL": _statuses("PARTIAL", "COMPLETE", "CANCELLED"),
    "COMPLETE": frozenset(),
    "REJECTED": frozenset(),
    "CANCELLED": frozenset(),
    "LOGGED": frozenset(),
}

_TAG_RE = re.compile(r"^ta[0-9a-f]{15}s[0-9]{2}$")


def order_tag(intent_id: str, slice_no: int) -> str:
    """Kite `tag` (alphanumeric, <= 20 chars) from the intent id and slice number (1..99).

    "ta" + 15 hex digits of sha256(intent id) + "s" + two-digit slice: the same intent and slice
    always give the same tag, so after a crash the broker's order book tells whether it was placed.
    """
    if not 1 <= slice_no <= 99:
        raise ValueError(f"slice number must be 1..99 (got {slice_no})")
    digest = hashlib.sha256(intent_id.encode()).hexdigest()[:15]
    return f"ta{digest}s{slice_no:02d}"


def is_our_tag(tag: str | None) -> bool:
    return tag is not None and _TAG_RE.match(tag) is not None


def order_id_for(intent_id: str, slice_no: int) -> str:
    """Our order id: the intent id and the slice number."""
    return f"{intent_id}-{slice_no}"


@dataclass(frozen=True)
class PlannedOrder:
    """One child order the engine approved, fully specified."""

    order_id: str
    intent_id: str
    slice_no: int
    slices: int
    tag: str
    symbol: str  # "NFO:NIFTY24AUG24500CE"
    instrument_token: int
    side: Side
    quantity: int
    order_type: OrderType
    price: float | None
    product: Product
    is_exit: bool = False
    market_protection: float | None = None
    validity: str = "DAY"

    @property
    def exchange(self) -> str:
        return self.symbol.split(":", 1)[0]

    @property
    def tradingsymbol(self) -> str:
        return self.symbol.split(":", 1)[1]


def kite_order_params(plan: PlannedOrder) -> dict[str, Any]:
    """The keyword arguments of `KiteConnect.place_order` for this order."""
    params: dict[str, Any] = {
        "variety": "regular",
        "exchange": plan.exchange,
        "tradingsymbol": plan.tradingsymbol,
        "transaction_type": plan.side,
        "quantity": plan.quantity,
        "product": plan.product,
        "order_type": plan.order_type,
        "validity": plan.validity,
        "tag": plan.tag,
    }
    if plan.price is not None and plan.order_type in ("LIMIT", "SL"):
        params["price"] = plan.price
    if plan.market_protection is not None:
        params["market_protection"] = plan.market_protection
    return params


@dataclass(frozen=True)
class OrderRecord:
    """An order's current state as we know it (a versioned row in ClickHouse)."""

    plan: PlannedOrder
    mode: Mode
    status: OrderStatus
    updated_at: datetime
    broker_order_id: str | None = None
    filled_quantity: int = 0
    average_price: float = 0.0
    reason: str = ""

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    def to_event(self, event_id: str) -> OrderEvent:
        return OrderEvent(
            event_id=event_id,
            order_id=self.plan.order_id,
            intent_id=self.plan.intent_id,
            mode=self.mode,
            status=self.status,
            symbol=self.plan.symbol,
            side=self.plan.side,
            quantity=self.plan.quantity,
            order_type=self.plan.order_type,
            price=self.plan.price,
            ts=self.updated_at,
            reason=self.reason,
            broker_order_id=self.broker_order_id,
            filled_quantity=self.filled_quantity,
            average_price=self.average_price,
            tag=self.plan.tag,
        )


def record(plan: PlannedOrder, mode: Mode, now: datetime, reason: str = "") -> OrderRecord:
    """The RECORDED state: written to storage BEFORE the broker is called."""
    return OrderRecord(plan=plan, mode=mode, status="RECORDED", updated_at=now, reason=reason)


@dataclass(frozen=True)
class OrderUpdate:
    """What we learnt about an order (our call's outcome, a WebSocket update, a poll)."""

    status: OrderStatus
    ts: datetime
    broker_order_id: str | None = None
    filled_quantity: int | None = None
    average_price: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class Transition:
    """The order after an update, the new fill it carried, or the refusal reason (no change)."""

    order: OrderRecord
    fill: Fill | None = None
    refused: str | None = None


def transition_refusal(current: OrderStatus, new: OrderStatus) -> str | None:
    """Why `current -> new` is not a legal step, or None."""
    if new in ALLOWED[current]:
        return None
    if current in FINAL:
        return f"order is already {current} (final); {new} ignored"
    return f"illegal transition {current} -> {new}"


def apply_update(order: OrderRecord, update: OrderUpdate) -> Transition:
    """Advance the state machine; a fill increment comes out as a `Fill` for the position book."""
    status = update.status
    refusal = transition_refusal(order.status, status)
    if refusal is not None:
        return Transition(order, refused=refusal)
    quantity = order.plan.quantity
    filled = order.filled_quantity if update.filled_quantity is None else update.filled_quantity
    if status == "COMPLETE" and update.filled_quantity is None:
        filled = quantity
    if filled < order.filled_quantity:
        return Transition(
            order, refused=f"filled quantity went back from {order.filled_quantity} to {filled}"
        )
    if filled > quantity:
        return Transition(order, refused=f"filled {filled} exceeds the order quantity {quantity}")
    if status == "COMPLETE" and filled != quantity:
        return Transition(order, refused=f"COMPLETE with {filled} of {quantity} filled")
    if status == "OPEN" and filled > 0:
        status = "PARTIAL"
    if status == "PARTIAL" and filled == 0:
        return Transition(order, refused="PARTIAL without a filled quantity")
    average = order.average_price if update.average_price is None else update.average_price
    fill = None
    if filled > order.filled_quantity:
        if average <= 0:
            return Transition(order, refused=f"fill of {filled} without an average price")
        fill = _increment(order, filled, average, update.ts)
    new = replace(
        order,
        status=status,
        updated_at=update.ts,
        broker_order_id=update.broker_order_id or order.broker_order_id,
        filled_quantity=filled,
        average_price=average,
        reason=update.reason or order.reason,
    )
    return Transition(new, fill=fill)


def acknowledge(order: OrderRecord, broker_order_id: str, ts: datetime) -> Transition:
    """place_order returned an order id: SENT, unless a WebSocket update already moved it on."""
    if order.status in ("RECORDED", "FAILED"):
        return apply_update(order, OrderUpdate("SENT", ts, broker_order_id=broker_order_id))
    if order.broker_order_id not in (None, broker_order_id):
        return Transition(
            order,
            refused=f"acknowledged as {broker_order_id} but known as {order.broker_order_id}",
        )
    return Transition(replace(order, broker_order_id=broker_order_id))


def _increment(order: OrderRecord, filled: int, average: float, ts: datetime) -> Fill:
    # Kite reports cumulative filled quantity and average price; the increment's price follows.
    before = order.filled_quantity
    delta = filled - before
    price = (average * filled - order.average_price * before) / delta
    return Fill(
        fill_id=f"{order.plan.order_id}:{filled}",
        order_id=order.plan.order_id,
        symbol=order.plan.symbol,
        instrument_token=order.plan.instrument_token,
        side=order.plan.side,
        quantity=delta,
        price=round(price, 4),
        ts=ts,
    )


_KITE_PENDING = {"PUT ORDER REQ RECEIVED", "VALIDATION PENDING", "OPEN PENDING"}
_KITE_WORKING = {
    "OPEN",
    "TRIGGER PENDING",
    "MODIFY VALIDATION PENDING",
    "MODIFY PENDING",
    "CANCEL PENDING",
    "AMO REQ RECEIVED",
}


def status_from_kite(kite_status: str, filled_quantity: int = 0) -> OrderStatus | None:
    """Kite's order status -> ours; None for a status we do not know (logged, never guessed)."""
    normalised = kite_status.strip().upper()
    if normalised == "COMPLETE":
        return "COMPLETE"
    if normalised == "REJECTED":
        return "REJECTED"
    if normalised.startswith("CANCELLED"):
        return "CANCELLED"
    if normalised in _KITE_PENDING:
        return "SENT"
    if normalised in _KITE_WORKING:
        return "PARTIAL" if filled_quantity > 0 else "OPEN"
    return None
