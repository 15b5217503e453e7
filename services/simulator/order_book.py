"""The simulated exchange + broker RMS for orders: statuses, rejections, fills, charges.

Each call returns the copies of the order that clients should be told about (order updates on the
ticker); the full status history, interim states included, is kept per order. Checks that make an
order REJECTED, in order: an injected rejection, market closed, freeze quantity, exchange price
band (options, LIMIT and SL prices, reference = last price), insufficient margin.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import date

from services.simulator.account import Account, MarginUse
from services.simulator.errors import InputError
from services.simulator.instruments import Instrument
from services.simulator.market import Market
from services.simulator.matching import (
    Fill,
    average_price,
    protection_price,
    resting_limit_crossed,
    stop_triggered,
    sweep,
)
from services.simulator.order_rules import (
    Modification,
    OrderRequest,
    check_market_protection,
    check_modified_order,
)
from services.simulator.orders import Order, Trade
from services.simulator.rms import (
    BookRules,
    band_problem,
    freeze_problem,
    margin_problem,
    session_problem,
    stop_problem,
)

logger = logging.getLogger(__name__)


class OrderBook:
    """Orders, trades and the account of the simulated user."""

    def __init__(
        self, market: Market, account: Account, rules: BookRules, day: date, user_id: str
    ) -> None:
        self.market = market
        self.account = account
        self.rules = rules
        self.user_id = user_id
        self.orders: dict[str, Order] = {}
        self.history: dict[str, list[Order]] = {}
        self.trades: list[Trade] = []
        self.reject_next = 0  # fault injection: reject the next N orders
        self._prefix = f"{day:%y%m%d}"
        self._sequence = 0

    def _next_id(self) -> int:
        self._sequence += 1
        return self._sequence

    def _set(self, order: Order, status: str, now: float, message: str | None = None) -> None:
        order.status = status
        if message is not None:
            order.status_message = message
        if order.exchange_order_id is not None:
            order.exchange_update_timestamp = now
        self.history[order.order_id].append(order.copy())

    # -- placing --------------------------------------------------------------------------------

    def place(self, request: OrderRequest, now: float) -> tuple[Order, list[Order]]:
        sequence = self._next_id()
        order = Order(
            f"{self._prefix}{sequence:09d}",
            request.variety,
            request.instrument,
            request.transaction_type,
            request.quantity,
            request.product,
            request.order_type,
            request.price,
            request.trigger_price,
            request.validity,
            request.disclosed_quantity,
            request.tag,
            request.market_protection,
            now,
            self.user_id,
            f"{self.user_id}-{sequence:06d}",
        )
        self.orders[order.order_id] = order
        self.history[order.order_id] = [order.copy()]
        self._set(order, "VALIDATION PENDING", now)
        reason = self._rejection(order, now)
        if reason is not None:
            logger.info("order %s %s rejected: %s", order.order_id, order.instrument.key, reason)
            self._set(order, "REJECTED", now, reason)
            return order, [order.copy()]
        if order.variety == "amo":
            self._set(order, "AMO REQ RECEIVED", now)
            return order, [order.copy()]
        return order, self._send_to_exchange(order, now)

    def _rejection(self, order: Order, now: float) -> str | None:
        instrument = order.instrument
        if self.reject_next > 0:
            self.reject_next -= 1
            return "Simulated rejection (fault injection)."
        last = self.market.last_price(instrument)
        reason = (
            session_problem(order, self.market.is_open(now))
            or freeze_problem(order)
            or band_problem(instrument, order.order_type, order.price, last, self.rules)
        )
        if reason is not None:
            return reason
        if last is None:
            return "No market price yet for this instrument."
        if (reason := stop_problem(order, last)) is not None:
            return reason
        price = order.price if order.order_type in ("LIMIT", "SL") else last
        needed = self.account.margin_needed(
            instrument,
            order.product,
            order.transaction_type,
            order.quantity,
            price,
            self._spot(instrument),
        )
        return margin_problem(
            needed, self.account.available(self.margin_use_without(order.order_id))
        )

    def _spot(self, instrument: Instrument) -> float:
        state = self.market.underlying_state(instrument)
        return 0.0 if state is None else state.last_price

    def _send_to_exchange(self, order: Order, now: float) -> list[Order]:
        self._set(order, "OPEN PENDING", now)
        order.exchange_order_id = f"{1100000000000000 + self._sequence}"
        order.exchange_timestamp = now
        if order.order_type in ("SL", "SL-M"):
            self._set(order, "TRIGGER PENDING", now)
        else:
            self._set(order, "OPEN", now)
        updates = [order.copy()]
        return updates + self._work(order, now, fresh=True)

    # -- working orders against the market -------------------------------------------------------

    def _work(self, order: Order, now: float, fresh: bool) -> list[Order]:
        """Trigger and match one working order against the current market.

        A `fresh` order (just placed or modified) only takes the depth; an order that rested
        since an earlier tick also fills at its limit once the last price trades through it.
        """
        snapshot = self.market.snapshot(order.instrument)
        if snapshot is None or not self.market.is_open(now):
            return []
        updates: list[Order] = []
        last = snapshot.last_price
        side = order.transaction_type
        if order.status == "TRIGGER PENDING":
            if not stop_triggered(side, order.trigger_price, last):
                return []
            order.triggered = True
            self._set(order, "OPEN", now)
            updates.append(order.copy())
        if order.order_type in ("MARKET", "SL-M") and order.working_limit is None:
            percent = order.market_protection
            if percent == -1:
                percent = self.rules.auto_market_protection_pct
            tick = order.instrument.tick_size
            order.working_limit = protection_price(side, last, percent, tick)
        limit = order.limit_price()
        opposite = snapshot.asks if side == "BUY" else snapshot.bids
        fills = sweep(side, order.pending_quantity, opposite, limit)
        resting = not fresh and order.order_type in ("LIMIT", "SL")
        if not fills and resting and limit is not None and resting_limit_crossed(side, limit, last):
            fills = [Fill(order.pending_quantity, limit)]
        if fills:
            self._record_fills(order, fills, now)
            if order.pending_quantity == 0:
                self._set(order, "COMPLETE", now)
            else:
                self.history[order.order_id].append(order.copy())
            updates.append(order.copy())
        if order.validity == "IOC" and order.status == "OPEN" and order.pending_quantity > 0:
            order.cancelled_quantity = order.pending_quantity
            self._set(order, "CANCELLED", now, "IOC order: the unfilled quantity is cancelled.")
            updates.append(order.copy())
        return updates

    def _record_fills(self, order: Order, fills: list[Fill], now: float) -> None:
        instrument, side = order.instrument, order.transaction_type
        for fill in fills:
            self.trades.append(
                Trade(
                    f"{self._prefix[2:]}{self._next_id():08d}",
                    order.order_id,
                    order.exchange_order_id,
                    instrument,
                    order.product,
                    side,
                    fill.quantity,
                    fill.price,
                    now,
                    order.order_timestamp,
                )
            )
            self.account.record_fill(instrument, order.product, side, fill.quantity, fill.price)
        done = order.filled_quantity + sum(f.quantity for f in fills)
        value = order.average_price * order.filled_quantity + sum(
            f.quantity * f.price for f in fills
        )
        order.filled_quantity = done
        order.average_price = round(value / done, 4)
        # Brokerage is per executed order: charge the whole order again and book the difference.
        total = self.account.order_charges(
            instrument, order.product, side, done, order.average_price
        )
        self.account.charges += total - order.charges
        order.charges = total
        logger.info(
            "order %s filled %s/%s %s at avg %.2f (fills %s)",
            order.order_id,
            done,
            order.quantity,
            instrument.key,
            average_price(fills),
            [(f.quantity, f.price) for f in fills],
        )

    def on_tick(self, underlying_tokens: Collection[int], now: float) -> list[Order]:
        """Work every order whose underlying just ticked; AMO orders go in at the open."""
        updates: list[Order] = []
        for order in list(self.orders.values()):
            if not order.is_working or order.instrument.underlying_token not in underlying_tokens:
                continue
            if order.status == "AMO REQ RECEIVED":
                if self.market.is_open(now):
                    updates += self._send_to_exchange(order, now)
                continue
            updates += self._work(order, now, fresh=False)
        return updates

    def close_session(self, now: float) -> list[Order]:
        """At the day's close the exchange cancels every DAY order still working."""
        updates = []
        for order in self.orders.values():
            if order.status in ("OPEN", "TRIGGER PENDING"):
                order.cancelled_quantity = order.pending_quantity
                self._set(order, "CANCELLED", now, "Cancelled by the exchange at the close.")
                updates.append(order.copy())
        return updates

    # -- modify and cancel ------------------------------------------------------------------------

    def _working_order(self, variety: str, order_id: str, action: str) -> Order:
        order = self.orders.get(order_id)
        if order is None or order.variety != variety:
            raise InputError(f"Invalid `order_id` {order_id} for variety {variety}.")
        if not order.is_working:
            raise InputError(f"Order cannot be {action} as it is {order.status}.")
        return order

    def modify(self, variety: str, order_id: str, change: Modification, now: float) -> list[Order]:
        order = self._working_order(variety, order_id, "modified")
        if order.modifications >= self.rules.max_modifications:
            raise InputError(
                f"Maximum allowed order modifications ({self.rules.max_modifications}) exceeded."
            )
        order_type = change.order_type or order.order_type
        quantity = order.quantity if change.quantity is None else change.quantity
        price = order.price if change.price is None else change.price
        trigger = order.trigger_price if change.trigger_price is None else change.trigger_price
        check_modified_order(
            order_type, order.transaction_type, quantity, price, trigger, order.instrument
        )
        if quantity <= order.filled_quantity:
            raise InputError(f"Quantity must exceed the filled quantity {order.filled_quantity}.")
        if order.triggered and order_type in ("SL", "SL-M"):
            raise InputError("A triggered stop order can only be modified to LIMIT or MARKET.")
        protection = check_market_protection(
            order_type,
            order.market_protection
            if change.market_protection is None
            else change.market_protection,
        )
        reference = self.market.last_price(order.instrument)
        problem = band_problem(order.instrument, order_type, price, reference, self.rules)
        if problem is not None:
            raise InputError(problem)
        self._set(order, "MODIFY VALIDATION PENDING", now)
        self._set(order, "MODIFY PENDING", now)
        if order_type != order.order_type:
            order.working_limit = None
        order.order_type, order.quantity, order.market_protection = order_type, quantity, protection
        order.price = price if order_type in ("LIMIT", "SL") else 0.0
        order.trigger_price = trigger if order_type in ("SL", "SL-M") else 0.0
        order.validity = change.validity or order.validity
        if change.disclosed_quantity is not None:
            order.disclosed_quantity = change.disclosed_quantity
        order.modified = True
        order.modifications += 1
        if order.status == "AMO REQ RECEIVED":
            self._set(order, "AMO REQ RECEIVED", now)
            return [order.copy()]
        waiting = order_type in ("SL", "SL-M") and not order.triggered
        self._set(order, "TRIGGER PENDING" if waiting else "OPEN", now)
        logger.info("order %s modified (%s)", order.order_id, change)
        return [order.copy(), *self._work(order, now, fresh=True)]

    def cancel(self, variety: str, order_id: str, now: float) -> list[Order]:
        order = self._working_order(variety, order_id, "cancelled")
        self._set(order, "CANCEL PENDING", now)
        order.cancelled_quantity = order.pending_quantity
        self._set(order, "CANCELLED", now, "Cancelled by the user.")
        logger.info("order %s cancelled", order.order_id)
        return [order.copy()]

    # -- margin ---------------------------------------------------------------------------------

    def prices(self, instrument: Instrument) -> tuple[float, float]:
        """(last price, underlying price) for margin and P&L; 0 before the first tick."""
        return self.market.last_price(instrument) or 0.0, self._spot(instrument)

    def margin_use_without(self, excluded_order_id: str | None = None) -> MarginUse:
        """Margin in use by positions and by working orders (except one being checked)."""
        blocked = 0.0
        for order in self.orders.values():
            if not order.is_working or order.order_id == excluded_order_id:
                continue
            last, spot = self.prices(order.instrument)
            price = order.price if order.order_type in ("LIMIT", "SL") else last
            blocked += self.account.margin_needed(
                order.instrument,
                order.product,
                order.transaction_type,
                order.pending_quantity,
                price,
                spot,
            )
        return self.account.margin_use(self.prices, blocked)
