"""Paper mode's local fill model on live ticks (used when the simulator is not the broker).

A resting order fills against each new tick of its instrument:
- with depth on the opposite side (full-mode ticks): a BUY takes the asks priced at or below its
  limit, a SELL the bids at or above it, best first, at the level's price and up to the level's
  quantity, so thin books give partial fills; orders of one instrument fill first-in first-out and
  consume the depth of a tick, so two orders never take the same quantity;
- without depth (ltp/quote ticks): when the last price crosses the limit (BUY: last <= limit,
  SELL: last >= limit) the whole remainder fills at the last price (no size information).
A MARKET order fills like a LIMIT without a price bound. Results are `OrderUpdate`s with cumulative
filled quantity and average price, exactly what the broker's order updates carry, so positions are
tracked through the same state machine as live.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.gatekeeper.orders import OrderUpdate, PlannedOrder
from shared.messages import DepthLevel, Tick


@dataclass
class PaperOrder:
    plan: PlannedOrder
    filled: int = 0
    notional: float = 0.0  # sum of quantity x price of the fills

    @property
    def remaining(self) -> int:
        return self.plan.quantity - self.filled

    @property
    def limit(self) -> float:
        if self.plan.order_type == "MARKET" or self.plan.price is None:
            return math.inf if self.plan.side == "BUY" else 0.0
        return self.plan.price

    def crosses(self, price: float) -> bool:
        return price <= self.limit if self.plan.side == "BUY" else price >= self.limit


@dataclass(frozen=True)
class PaperUpdate:
    order_id: str
    update: OrderUpdate


def paper_broker_id(order_id: str) -> str:
    return f"paper-{order_id}"


class PaperFillModel:
    def __init__(self) -> None:
        self._open: dict[str, list[PaperOrder]] = {}

    def open_orders(self, symbol: str) -> list[PaperOrder]:
        return list(self._open.get(symbol, ()))

    def submit(self, plan: PlannedOrder, tick: Tick) -> PaperUpdate:
        """Accept an order (OPEN) at the time of `tick`; it fills from the next ticks."""
        if plan.order_type not in ("LIMIT", "MARKET"):
            return PaperUpdate(
                plan.order_id,
                OrderUpdate(
                    "REJECTED", tick.exchange_ts, reason=f"paper: {plan.order_type} unsupported"
                ),
            )
        self._open.setdefault(plan.symbol, []).append(PaperOrder(plan))
        return PaperUpdate(
            plan.order_id,
            OrderUpdate("OPEN", tick.exchange_ts, broker_order_id=paper_broker_id(plan.order_id)),
        )

    def cancel(self, order_id: str, tick: Tick) -> PaperUpdate | None:
        """Cancel a resting order; its filled part stays filled."""
        for orders in self._open.values():
            for order in orders:
                if order.plan.order_id == order_id:
                    orders.remove(order)
                    return PaperUpdate(order_id, OrderUpdate("CANCELLED", tick.exchange_ts))
        return None

    def on_tick(self, tick: Tick) -> list[PaperUpdate]:
        """Fill what this tick allows, oldest order first."""
        orders = self._open.get(tick.symbol)
        if not orders:
            return []
        remaining_depth = {
            "BUY": [[level.price, level.quantity] for level in _sorted(tick.asks, ascending=True)],
            "SELL": [
                [level.price, level.quantity] for level in _sorted(tick.bids, ascending=False)
            ],
        }
        updates = []
        for order in list(orders):
            levels = remaining_depth[order.plan.side]
            taken = self._take(order, levels, tick.last_price)
            if not taken:
                continue
            average = round(order.notional / order.filled, 4)
            done = order.remaining == 0
            if done:
                orders.remove(order)
            updates.append(
                PaperUpdate(
                    order.plan.order_id,
                    OrderUpdate(
                        "COMPLETE" if done else "PARTIAL",
                        tick.exchange_ts,
                        filled_quantity=order.filled,
                        average_price=average,
                        reason=f"paper fill on tick at {tick.exchange_ts.isoformat()}",
                    ),
                )
            )
        return updates

    @staticmethod
    def _take(order: PaperOrder, levels: list[list[float]], last_price: float) -> int:
        taken = 0
        if levels:
            for level in levels:
                price, available = level[0], int(level[1])
                if order.remaining == 0 or not order.crosses(price):
                    break
                quantity = min(order.remaining, available)
                if quantity <= 0:
                    continue
                level[1] = available - quantity
                order.filled += quantity
                order.notional += quantity * price
                taken += quantity
        elif last_price > 0 and order.crosses(last_price):
            quantity = order.remaining
            order.filled += quantity
            order.notional += quantity * last_price
            taken = quantity
        return taken


def _sorted(levels: tuple[DepthLevel, ...], ascending: bool) -> list[DepthLevel]:
    usable = [level for level in levels if level.price > 0 and level.quantity > 0]
    return sorted(usable, key=lambda level: level.price, reverse=not ascending)
