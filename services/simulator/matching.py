"""How an order meets the simulated market: pure functions of prices, depth and quantities.

- A marketable order sweeps the opposite side of the 5-level depth, level by level, never past its
  limit (a MARKET order's limit is its market-protection price): slippage and partial fills.
- A resting LIMIT order fills at its price once the last price trades through it.
- SL / SL-M orders wait for the last price to reach the trigger.
- The exchange's limit-price protection for options: a band around the reference price, +-40 %
  above a premium of 50 and +-20 rupees at or below it (both settings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from services.simulator.ticker_packets import DepthEntry


class Fill(NamedTuple):
    quantity: int
    price: float


def sweep(
    side: str, quantity: int, opposite: Sequence[DepthEntry], limit: float | None
) -> list[Fill]:
    """Fills taking liquidity from `opposite` (asks for a BUY, bids for a SELL), best first.

    Stops at the first level beyond `limit` (None: no limit) or when the quantity is done.
    """
    fills: list[Fill] = []
    remaining = quantity
    for level in opposite:
        if remaining <= 0:
            break
        if level.quantity <= 0 or level.price <= 0:
            continue
        if limit is not None and (level.price > limit if side == "BUY" else level.price < limit):
            break
        take = min(remaining, level.quantity)
        fills.append(Fill(take, level.price))
        remaining -= take
    return fills


def average_price(fills: Sequence[Fill]) -> float:
    quantity = sum(f.quantity for f in fills)
    return sum(f.quantity * f.price for f in fills) / quantity if quantity else 0.0


def protection_price(side: str, last_price: float, percent: float, tick: float) -> float:
    """The worst price a MARKET order may fill at: last price +/- percent, rounded outwards to the
    tick grid so that even a one-tick premium leaves room for one tick of slippage."""
    if side == "BUY":
        return round(math.ceil(last_price * (1 + percent / 100) / tick - 1e-9) * tick, 2)
    return round(max(math.floor(last_price * (1 - percent / 100) / tick + 1e-9), 1) * tick, 2)


def stop_triggered(side: str, trigger: float, last_price: float) -> bool:
    """A buy stop fires when the price rises to the trigger, a sell stop when it falls to it."""
    return last_price >= trigger if side == "BUY" else last_price <= trigger


def resting_limit_crossed(side: str, limit: float, last_price: float) -> bool:
    """A resting limit fills once the market trades at or through its price."""
    return last_price <= limit if side == "BUY" else last_price >= limit


def price_band(
    reference: float, threshold: float, percent: float, absolute: float
) -> tuple[float, float]:
    """The accepted limit prices around the reference: percent above threshold, else absolute."""
    width = reference * percent / 100 if reference > threshold else absolute
    return max(reference - width, 0.0), reference + width


def outside_band(price: float, band: tuple[float, float]) -> bool:
    low, high = band
    return price < low - 1e-9 or price > high + 1e-9
