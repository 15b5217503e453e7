"""Positions, fills and round-trip trades of a backtest, per instrument.

Modes:
- long-only: BUY opens a long when flat; SELL (or EXIT) closes it; a SELL when flat is ignored.
- long-short (stop and reverse): BUY closes a short and opens a long; SELL closes a long and
  opens a short; from flat either side opens; EXIT closes whatever is open.
A signal in the direction already held is ignored (counted). A reversal is two orders (close,
then open), each charged as one executed order. Every order fills its whole quantity at the
price given (the engine passes the next candle's open, or the signal candle's close).

A trade's `points` are gross (exit - entry for a long, entry - exit for a short, per unit); its
`pnl` is net of both orders' charges; its `return` is that pnl over the entry notional.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

from shared.charges import ChargeSchedule, ChargeSegment, order_charges
from shared.messages import Action, Side

Mode = Literal["long-only", "long-short"]
CostModel = Callable[[Side, int, float], float]


def no_costs(side: Side, quantity: int, price: float) -> float:
    """The --no-costs model."""
    return 0.0


def zerodha_costs(schedule: ChargeSchedule, segment: ChargeSegment) -> CostModel:
    """Zerodha's charges of one executed order (shared.charges)."""

    def costs(side: Side, quantity: int, price: float) -> float:
        return order_charges(schedule, segment, side, quantity, price).total

    return costs


class Fill(NamedTuple):
    """One executed order (a NamedTuple: cheap to make, a backtest makes thousands)."""

    candle_index: int  # position of the candle it filled on, in the engine's candle sequence
    time: datetime
    symbol: str
    side: Side
    quantity: int
    price: float
    costs: float


class Trade(NamedTuple):
    """A round trip: entry and exit of one position."""

    symbol: str
    side: Literal["LONG", "SHORT"]
    entry_time: datetime
    entry_price: float
    exit_time: datetime
    exit_price: float
    quantity: int
    points: float
    pnl: float
    costs: float
    ret: float
    exit_reason: str


@dataclass(slots=True)
class _Position:
    direction: int  # +1 long, -1 short
    entry_time: datetime
    entry_price: float
    entry_costs: float
    quantity: int


class Book:
    """The positions of one backtest and everything they did."""

    def __init__(self, mode: Mode, quantity: int, costs: CostModel) -> None:
        if quantity < 1:
            raise ValueError("quantity must be >= 1")
        self.mode: Mode = mode
        self.quantity = quantity
        self._costs = costs
        self._open: dict[str, _Position] = {}
        self.fills: list[Fill] = []
        self.trades: list[Trade] = []
        self.ignored = 0

    def position(self, symbol: str) -> int:
        """Signed units held (+ long, - short, 0 flat)."""
        p = self._open.get(symbol)
        return 0 if p is None else p.direction * p.quantity

    def on_signal(
        self, action: Action, symbol: str, price: float, when: datetime, index: int
    ) -> None:
        """Act on a signal at `price` (the fill price)."""
        held = self._open.get(symbol)
        direction = 0 if held is None else held.direction
        if action == "EXIT":
            if held is not None:
                self._close(symbol, held, price, when, index, "exit signal")
            return
        wanted = 1 if action == "BUY" else -1
        if direction == wanted:
            self.ignored += 1
            return
        if held is not None:
            self._close(symbol, held, price, when, index, f"{action} signal")
        if wanted > 0 or self.mode == "long-short":
            self._enter(symbol, wanted, price, when, index)
        elif held is None:
            self.ignored += 1  # a SELL while flat in long-only mode

    def close_all(self, marks: dict[str, tuple[float, datetime, int]], reason: str) -> None:
        """Close every open position at its mark (end of data)."""
        for symbol in sorted(self._open):
            price, when, index = marks[symbol]
            self._close(symbol, self._open[symbol], price, when, index, reason)

    def _enter(self, symbol: str, direction: int, price: float, when: datetime, index: int) -> None:
        side: Side = "BUY" if direction > 0 else "SELL"
        costs = self._costs(side, self.quantity, price)
        self.fills.append(Fill(index, when, symbol, side, self.quantity, price, costs))
        self._open[symbol] = _Position(direction, when, price, costs, self.quantity)

    def _close(
        self, symbol: str, held: _Position, price: float, when: datetime, index: int, reason: str
    ) -> None:
        side: Side = "SELL" if held.direction > 0 else "BUY"
        exit_costs = self._costs(side, held.quantity, price)
        self.fills.append(Fill(index, when, symbol, side, held.quantity, price, exit_costs))
        del self._open[symbol]
        points = (price - held.entry_price) * held.direction
        costs = held.entry_costs + exit_costs
        pnl = points * held.quantity - costs
        self.trades.append(
            Trade(
                symbol,
                "LONG" if held.direction > 0 else "SHORT",
                held.entry_time,
                held.entry_price,
                when,
                price,
                held.quantity,
                points,
                pnl,
                costs,
                pnl / (held.entry_price * held.quantity),
                reason,
            )
        )
