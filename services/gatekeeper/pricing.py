"""Slippage protection: a market intent becomes a LIMIT order that can never pay more than asked.

All arithmetic is Decimal (from each float's repr), so tick edges are exact: 100.00 x 1.005 is
100.50, not 100.49999999999999. BUY rounds DOWN to the tick (never above LTP x (1 + pct)), SELL
rounds UP (never below LTP x (1 - pct)); the result is then kept inside the exchange price band.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from services.gatekeeper.money import to_decimal
from shared.messages import OrderType, Side


@dataclass(frozen=True)
class PriceBand:
    """Inclusive exchange limits for a LIMIT price; prices outside are rejected by the exchange."""

    lower: Decimal
    upper: Decimal

    @classmethod
    def of(cls, lower: float, upper: float) -> PriceBand:
        return cls(to_decimal(lower), to_decimal(upper))

    def contains(self, price: Decimal) -> bool:
        return self.lower <= price <= self.upper


@dataclass(frozen=True)
class LimitPrice:
    """A protected limit price, or None with the reason it cannot be priced."""

    price: Decimal | None
    reason: str

    @property
    def value(self) -> float:
        """The price for the wire (Kite takes a float); only valid when `price` is set."""
        if self.price is None:
            raise ValueError(f"no price: {self.reason}")
        return float(self.price)


def round_to_tick(price: Decimal, tick: Decimal, direction: Literal["down", "up"]) -> Decimal:
    """`price` on the tick grid, rounded toward `direction`."""
    if tick <= 0:
        raise ValueError(f"tick size must be > 0 (got {tick})")
    steps = (price / tick).to_integral_value(ROUND_FLOOR if direction == "down" else ROUND_CEILING)
    return (steps * tick).quantize(tick)


def fno_price_band(
    reference: float,
    premium_threshold: float = 50.0,
    band_pct: float = 40.0,
    band_abs: float = 20.0,
) -> PriceBand:
    """NSE F&O limit-price protection around the reference price (last 30 s average).

    Reference above `premium_threshold`: +-`band_pct` %; at or below it: +-`band_abs` rupees
    (the lower edge floored at zero).
    """
    ref = to_decimal(reference)
    if ref > to_decimal(premium_threshold):
        spread = ref * to_decimal(band_pct) / 100
    else:
        spread = to_decimal(band_abs)
    return PriceBand(max(ref - spread, Decimal(0)), ref + spread)


def slippage_limit_price(
    side: Side, ltp: float, pct: float, tick_size: float, band: PriceBand | None
) -> LimitPrice:
    """LTP x (1 + pct %) rounded down for a BUY, LTP x (1 - pct %) rounded up for a SELL.

    Clamped inside `band` (rounded inward to the tick). Refused when LTP is not positive or lies
    outside the band (stale data), or when no tick inside the band remains.
    """
    if ltp <= 0 or tick_size <= 0 or pct < 0:
        return LimitPrice(None, f"cannot price: ltp {ltp}, tick {tick_size}, slippage {pct} %")
    last = to_decimal(ltp)
    tick = to_decimal(tick_size)
    if band is not None and not band.contains(last):
        return LimitPrice(
            None, f"LTP {last} is outside the price band [{band.lower}, {band.upper}]"
        )
    factor = to_decimal(pct) / 100
    if side == "BUY":
        price = round_to_tick(last * (1 + factor), tick, "down")
        how = f"BUY limit = LTP {last} x (1 + {pct} %) rounded down to tick {tick}"
        if band is not None:
            cap = round_to_tick(band.upper, tick, "down")
            if price > cap:
                price, how = cap, f"{how}, clamped to the band's upper edge {cap}"
    else:
        price = round_to_tick(last * (1 - factor), tick, "up")
        how = f"SELL limit = LTP {last} x (1 - {pct} %) rounded up to tick {tick}"
        if band is not None:
            floor = round_to_tick(band.lower, tick, "up")
            if price < floor:
                price, how = floor, f"{how}, clamped to the band's lower edge {floor}"
    if price < tick:
        return LimitPrice(None, f"{how} gives {price}, below one tick")
    if band is not None and not band.contains(price):
        return LimitPrice(None, f"{how}: {price} has no tick inside [{band.lower}, {band.upper}]")
    return LimitPrice(price, f"{how} = {price}")


def checked_limit_price(
    side: Side, limit: float, tick_size: float, band: PriceBand | None
) -> LimitPrice:
    """A strategy's own LIMIT price put on the tick grid in the safe direction and band-checked."""
    if limit <= 0 or tick_size <= 0:
        return LimitPrice(None, f"invalid limit price {limit} or tick {tick_size}")
    tick = to_decimal(tick_size)
    price = round_to_tick(to_decimal(limit), tick, "down" if side == "BUY" else "up")
    if price < tick:
        return LimitPrice(None, f"limit {limit} rounds to {price}, below one tick")
    if band is not None and not band.contains(price):
        return LimitPrice(
            None, f"limit {price} is outside the price band [{band.lower}, {band.upper}]"
        )
    return LimitPrice(price, f"{side} limit {limit} on tick {tick} = {price}")


def market_protection_for(order_type: OrderType, setting: float) -> float | None:
    """Kite's `market_protection` for an order that is still sent as MARKET or SL-M, else None.

    Zerodha rejects MARKET and SL-M with market_protection 0; the setting is a percentage or -1.
    """
    if order_type in ("MARKET", "SL-M"):
        if setting == 0:
            raise ValueError("market_protection 0 is rejected by Zerodha")
        return setting
    return None
