"""Orders and trades as the simulated exchange keeps them (the shapes Kite reports)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from services.simulator.instruments import Instrument

# Statuses in which an order still works at the exchange and can be modified or cancelled.
WORKING = ("OPEN", "TRIGGER PENDING", "AMO REQ RECEIVED")
FINAL = ("COMPLETE", "CANCELLED", "REJECTED")


@dataclass(slots=True)
class Order:
    """One order's current state; `history` of an order is a list of copies of this."""

    order_id: str
    variety: str
    instrument: Instrument
    transaction_type: str
    quantity: int
    product: str
    order_type: str
    price: float
    trigger_price: float
    validity: str
    disclosed_quantity: int
    tag: str
    market_protection: float
    order_timestamp: float
    placed_by: str
    guid: str
    status: str = "PUT ORDER REQ RECEIVED"
    status_message: str | None = None
    exchange_order_id: str | None = None
    exchange_timestamp: float | None = None
    exchange_update_timestamp: float | None = None
    filled_quantity: int = 0
    average_price: float = 0.0
    cancelled_quantity: int = 0
    modified: bool = False
    modifications: int = 0
    working_limit: float | None = None  # a MARKET / SL-M order's protection price once known
    charges: float = 0.0
    triggered: bool = False

    @property
    def pending_quantity(self) -> int:
        if self.status in FINAL:
            return 0
        return self.quantity - self.filled_quantity

    @property
    def is_working(self) -> bool:
        return self.status in WORKING

    def limit_price(self) -> float | None:
        """The worst price this order may trade at now; None for an untriggered stop."""
        if self.order_type in ("LIMIT", "SL"):
            return self.price
        return self.working_limit

    def copy(self) -> Order:
        return dataclasses.replace(self)


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill."""

    trade_id: str
    order_id: str
    exchange_order_id: str | None
    instrument: Instrument
    product: str
    transaction_type: str
    quantity: int
    price: float
    fill_timestamp: float
    order_timestamp: float
