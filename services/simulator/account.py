"""The simulated trading account: cash, positions from fills, charges and a simple margin model.

Margin model (stated, simpler than SPAN): futures block `futures_margin_rate` of their notional,
short options `short_option_margin_rate` of the underlying's notional, long options their premium.
Only the part of an order that increases a position needs margin; closing trades need none.
Every day starts flat: there are no overnight positions and no holdings (the simulated universe
has no equities to deliver).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from services.simulator.instruments import Instrument
from shared.charges import ChargeSchedule, ChargeSegment, ChargeSide, order_charges


@dataclass(frozen=True, slots=True)
class MarginRates:
    futures: float
    short_option: float


@dataclass(slots=True)
class Position:
    """One instrument and product's trades of the day."""

    instrument: Instrument
    product: str
    buy_quantity: int = 0
    buy_value: float = 0.0
    sell_quantity: int = 0
    sell_value: float = 0.0

    @property
    def quantity(self) -> int:
        return self.buy_quantity - self.sell_quantity

    @property
    def buy_price(self) -> float:
        return self.buy_value / self.buy_quantity if self.buy_quantity else 0.0

    @property
    def sell_price(self) -> float:
        return self.sell_value / self.sell_quantity if self.sell_quantity else 0.0

    @property
    def average_price(self) -> float:
        """The average of the side that is open (Kite's convention); 0 when flat."""
        if self.quantity > 0:
            return self.buy_price
        if self.quantity < 0:
            return self.sell_price
        return 0.0

    @property
    def realised(self) -> float:
        closed = min(self.buy_quantity, self.sell_quantity)
        return closed * (self.sell_price - self.buy_price)

    def pnl(self, last_price: float) -> float:
        """Kite's formula: (sell value - buy value) + quantity x last price."""
        return self.sell_value - self.buy_value + self.quantity * last_price


@dataclass(frozen=True, slots=True)
class MarginUse:
    span: float
    option_premium: float
    blocked_by_orders: float

    @property
    def total(self) -> float:
        return self.span + self.option_premium + self.blocked_by_orders


def charge_segment(instrument: Instrument, product: str) -> ChargeSegment:
    if instrument.is_option:
        return "options"
    if instrument.instrument_type == "FUT":
        return "futures"
    return "equity_intraday" if product == "MIS" else "equity_delivery"


@dataclass(slots=True)
class Account:
    opening_cash: float
    rates: MarginRates
    schedule: ChargeSchedule
    charges: float = 0.0
    positions: dict[tuple[int, str], Position] = field(default_factory=dict)

    def position(self, instrument: Instrument, product: str) -> Position:
        key = (instrument.instrument_token, product)
        found = self.positions.get(key)
        if found is None:
            found = self.positions[key] = Position(instrument, product)
        return found

    def record_fill(
        self, instrument: Instrument, product: str, side: str, quantity: int, price: float
    ) -> None:
        position = self.position(instrument, product)
        if side == "BUY":
            position.buy_quantity += quantity
            position.buy_value += quantity * price
        else:
            position.sell_quantity += quantity
            position.sell_value += quantity * price

    def order_charges(
        self, instrument: Instrument, product: str, side: str, quantity: int, price: float
    ) -> float:
        """Zerodha's charges of an order filled `quantity` at average `price` so far."""
        segment = charge_segment(instrument, product)
        side_literal: ChargeSide = "BUY" if side == "BUY" else "SELL"
        return order_charges(self.schedule, segment, side_literal, quantity, price).total

    def margin_needed(
        self,
        instrument: Instrument,
        product: str,
        side: str,
        quantity: int,
        price: float,
        spot: float,
    ) -> float:
        """Margin for the part of an order that opens or increases a position."""
        position = self.positions.get((instrument.instrument_token, product))
        held = 0 if position is None else position.quantity
        reducing = min(quantity, -held) if side == "BUY" and held < 0 else 0
        if side == "SELL" and held > 0:
            reducing = min(quantity, held)
        opening = quantity - max(reducing, 0)
        if opening <= 0:
            return 0.0
        if instrument.instrument_type == "FUT":
            return opening * price * self.rates.futures
        if side == "BUY":
            return opening * price
        return opening * spot * self.rates.short_option

    def margin_use(
        self, prices: Callable[[Instrument], tuple[float, float]], blocked: float
    ) -> MarginUse:
        """Margin held by open positions (last price and spot from `prices`) and open orders."""
        span = premium = 0.0
        for position in self.positions.values():
            quantity = position.quantity
            if quantity == 0:
                continue
            last, spot = prices(position.instrument)
            if position.instrument.instrument_type == "FUT":
                span += abs(quantity) * last * self.rates.futures
            elif quantity > 0:
                premium += quantity * position.buy_price
            else:
                span += -quantity * spot * self.rates.short_option
        return MarginUse(span, premium, blocked)

    def realised(self) -> float:
        return sum(p.realised for p in self.positions.values())

    def unrealised(self, prices: Callable[[Instrument], tuple[float, float]]) -> float:
        return sum(p.pnl(prices(p.instrument)[0]) - p.realised for p in self.positions.values())

    def available(self, use: MarginUse) -> float:
        """What a new order may still block: cash + realised P&L - charges - margin in use."""
        return self.opening_cash + self.realised() - self.charges - use.total

    def open_positions(self) -> Iterable[Position]:
        return self.positions.values()
