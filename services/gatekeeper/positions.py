"""The position book: fills in, average prices, realised and unrealised P&L, mark-to-market out.

Net positions per symbol (as the broker's "net" positions): quantity is signed (short < 0).
- Adding in the position's direction moves the average price (quantity-weighted).
- Reducing realises (fill - average) x quantity for a long, (average - fill) x quantity for a short;
  the average of what remains is unchanged.
- A fill larger than the position closes it and opens the rest the other way at the fill price.
Fills are deduplicated by `fill_id`, so a redelivered order update is never counted twice.
P&L excludes charges (the charges model prices them separately).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from shared.messages import Product, Side

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fill:
    """An executed quantity of one order (a trade, or the increment of an order update)."""

    fill_id: str
    order_id: str
    symbol: str
    instrument_token: int
    side: Side
    quantity: int
    price: float
    ts: datetime


@dataclass(frozen=True)
class PositionTerms:
    """How a position is managed: exits, expiry, product, and where it came from."""

    stop_loss: float | None = None
    target: float | None = None
    trailing_stop_pct: float | None = None
    expires_at: datetime | None = None
    product: Product = "MIS"
    entry_intent_id: str = ""


@dataclass
class Position:
    symbol: str
    instrument_token: int
    quantity: int = 0
    average_price: float = 0.0
    realised_pnl: float = 0.0
    last_price: float | None = None
    terms: PositionTerms = field(default_factory=PositionTerms)
    best_price: float | None = None  # high-water (long) / low-water (short) for the trailing stop
    opened_at: datetime | None = None
    exit_pending: str | None = None  # intent id of the exit in flight
    exit_attempts: int = 0

    @property
    def is_open(self) -> bool:
        return self.quantity != 0

    @property
    def unrealised_pnl(self) -> float:
        if self.quantity == 0 or self.last_price is None:
            return 0.0
        return (self.last_price - self.average_price) * self.quantity

    @property
    def mtm(self) -> float:
        return self.realised_pnl + self.unrealised_pnl

    @property
    def value(self) -> float:
        """Absolute value at the last price (average price when unmarked)."""
        price = self.last_price if self.last_price is not None else self.average_price
        return abs(self.quantity) * price


class PositionBook:
    """All positions of the trading day; the shell builds one per session."""

    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}
        self._fill_ids: set[str] = set()

    def get(self, symbol: str) -> Position | None:
        return self.positions.get(symbol)

    def quantity(self, symbol: str) -> int:
        position = self.positions.get(symbol)
        return position.quantity if position else 0

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.is_open]

    def open_count(self) -> int:
        return sum(1 for p in self.positions.values() if p.is_open)

    def realised(self) -> float:
        return sum(p.realised_pnl for p in self.positions.values())

    def unrealised(self) -> float:
        return sum(p.unrealised_pnl for p in self.positions.values())

    def mtm(self) -> float:
        """Mark-to-market P&L: realised + unrealised at the last prices."""
        return self.realised() + self.unrealised()

    def mark(self, symbol: str, price: float) -> Position | None:
        """A new last price; returns the position when the symbol is held."""
        position = self.positions.get(symbol)
        if position is None or price <= 0:
            return None
        position.last_price = price
        if position.is_open:
            if position.best_price is None:
                position.best_price = price
            elif position.quantity > 0:
                position.best_price = max(position.best_price, price)
            else:
                position.best_price = min(position.best_price, price)
        return position

    def apply_fill(self, fill: Fill, terms: PositionTerms | None = None) -> str | None:
        """Book a fill. Returns the reason when it is ignored (duplicate or invalid).

        `terms` (stops, target, expiry) apply when the fill opens or flips a position, or
        replace the current ones when given for an add.
        """
        if fill.fill_id in self._fill_ids:
            return f"fill {fill.fill_id} already booked"
        if fill.quantity <= 0 or fill.price <= 0:
            return f"fill {fill.fill_id} has quantity {fill.quantity} and price {fill.price}"
        self._fill_ids.add(fill.fill_id)
        position = self.positions.setdefault(
            fill.symbol, Position(fill.symbol, fill.instrument_token)
        )
        signed = fill.quantity if fill.side == "BUY" else -fill.quantity
        before = position.quantity
        if before == 0 or (before > 0) == (signed > 0):
            self._add(position, signed, fill, terms, opening=before == 0)
        else:
            closed = min(abs(before), abs(signed))
            direction = 1 if before > 0 else -1
            position.realised_pnl += (fill.price - position.average_price) * closed * direction
            position.quantity += signed
            if position.quantity == 0:
                self._flat(position)
            elif (position.quantity > 0) != (before > 0):
                position.average_price = fill.price
                position.best_price = fill.price
                position.opened_at = fill.ts
                position.terms = terms or PositionTerms(product=position.terms.product)
                position.exit_attempts = 0
        if position.last_price is None:
            position.last_price = fill.price
        logger.info(
            "fill %s: %s %s %s @ %s -> position %s avg %.4f realised %.2f",
            fill.fill_id,
            fill.side,
            fill.quantity,
            fill.symbol,
            fill.price,
            position.quantity,
            position.average_price,
            position.realised_pnl,
        )
        return None

    @staticmethod
    def _add(
        position: Position, signed: int, fill: Fill, terms: PositionTerms | None, opening: bool
    ) -> None:
        total = position.quantity + signed
        position.average_price = (
            position.average_price * abs(position.quantity) + fill.price * abs(signed)
        ) / abs(total)
        position.quantity = total
        if opening:
            position.opened_at = fill.ts
            position.best_price = fill.price
            position.exit_attempts = 0
            position.terms = terms or PositionTerms()
        elif terms is not None:
            position.terms = terms

    @staticmethod
    def _flat(position: Position) -> None:
        position.average_price = 0.0
        position.best_price = None
        position.exit_pending = None
        position.terms = replace(position.terms, stop_loss=None, target=None)

    def exit_sent(self, symbol: str, intent_id: str) -> None:
        """An exit for the position is in flight: the monitor waits for its outcome."""
        position = self.positions[symbol]
        position.exit_pending = intent_id
        position.exit_attempts += 1

    def exit_denied(self, symbol: str) -> None:
        """An exit attempt was denied: the next attempt gets a new id (ids are decided once)."""
        position = self.positions.get(symbol)
        if position is not None:
            position.exit_attempts += 1

    def exit_finished(self, symbol: str) -> None:
        """Every order of the exit reached a final state (filled, rejected, cancelled).

        If the position is still open (a rejection, a remainder beyond the slice cap), the monitor
        decides again on the next price, under a new attempt id.
        """
        position = self.positions.get(symbol)
        if position is not None:
            position.exit_pending = None
