"""The broker's and the exchange's checks that turn an accepted order into a REJECTED one.

Pure functions of the order and the numbers the order book looks up; each returns the reason
shown in the order's status_message, or None. Checked in this order: market hours, freeze
quantity, the options limit-price band, stops on the wrong side of the market, margin.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.simulator.instruments import Instrument
from services.simulator.matching import outside_band, price_band
from services.simulator.orders import Order


@dataclass(frozen=True, slots=True)
class BookRules:
    auto_market_protection_pct: float
    price_band_threshold: float
    price_band_pct: float
    price_band_abs: float
    max_modifications: int


def band_problem(
    instrument: Instrument, order_type: str, price: float, reference: float | None, rules: BookRules
) -> str | None:
    """Options LIMIT / SL prices must lie in the exchange's band around the reference price."""
    if not instrument.is_option or order_type not in ("LIMIT", "SL") or reference is None:
        return None
    band = price_band(
        reference, rules.price_band_threshold, rules.price_band_pct, rules.price_band_abs
    )
    if outside_band(price, band):
        return (
            f"Limit price {price:.2f} is outside the exchange's price band "
            f"{band[0]:.2f}-{band[1]:.2f} (reference {reference:.2f})."
        )
    return None


def stop_problem(order: Order, last: float) -> str | None:
    """A stop on the wrong side of the market would fire at once: the exchange refuses it."""
    if order.order_type not in ("SL", "SL-M"):
        return None
    if order.transaction_type == "BUY" and order.trigger_price <= last:
        return f"Trigger price for stoploss buy orders should be higher than the LTP {last:.2f}."
    if order.transaction_type == "SELL" and order.trigger_price >= last:
        return f"Trigger price for stoploss sell orders should be lower than the LTP {last:.2f}."
    return None


def session_problem(order: Order, market_open: bool) -> str | None:
    if order.variety == "regular" and not market_open:
        return "Markets are closed right now. Use AMO or GTT to place orders when closed."
    if order.variety == "amo" and market_open:
        return "AMO orders can only be placed while the markets are closed."
    return None


def freeze_problem(order: Order) -> str | None:
    instrument = order.instrument
    if order.quantity > instrument.freeze_quantity:
        return (
            f"Quantity {order.quantity} exceeds the freeze quantity "
            f"{instrument.freeze_quantity} of {instrument.tradingsymbol}: slice the order."
        )
    return None


def margin_problem(needed: float, available: float) -> str | None:
    if needed > available + 1e-9:
        return (
            f"Insufficient funds. Required margin is {needed:.2f} "
            f"but available margin is {available:.2f}."
        )
    return None
