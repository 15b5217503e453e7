"""Black-76: European options on a forward (index options priced off the future/forward).

Pure functions of floats. `option_type` is Kite's "CE" (call) or "PE" (put). `t_years` is the time
to expiry in years, `vol` the annualised volatility (0.15 = 15 %), `rate` the continuously
compounded risk-free rate used to discount the payoff. At or past expiry (t <= 0) or with zero
volatility the price is the discounted intrinsic value.
"""

from __future__ import annotations

import math
from typing import Literal

OptionKind = Literal["CE", "PE"]

_IMPLIED_VOL_LOW = 1e-6
_IMPLIED_VOL_HIGH = 10.0
_IMPLIED_VOL_TOLERANCE = 1e-10
_IMPLIED_VOL_MAX_STEPS = 200


def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _check(forward: float, strike: float, option_type: str) -> None:
    if forward <= 0 or strike <= 0:
        raise ValueError(f"forward and strike must be > 0 (got {forward}, {strike})")
    if option_type not in ("CE", "PE"):
        raise ValueError(f"option_type must be CE or PE (got {option_type!r})")


def _d1_d2(forward: float, strike: float, t_years: float, vol: float) -> tuple[float, float]:
    spread = vol * math.sqrt(t_years)
    d1 = (math.log(forward / strike) + 0.5 * spread * spread) / spread
    return d1, d1 - spread


def price(
    forward: float,
    strike: float,
    t_years: float,
    vol: float,
    rate: float,
    option_type: OptionKind,
) -> float:
    """The Black-76 premium of a European call (CE) or put (PE)."""
    _check(forward, strike, option_type)
    if vol < 0:
        raise ValueError(f"vol must be >= 0 (got {vol})")
    discount = math.exp(-rate * max(t_years, 0.0))
    if t_years <= 0 or vol == 0:
        intrinsic = forward - strike if option_type == "CE" else strike - forward
        return discount * max(intrinsic, 0.0)
    d1, d2 = _d1_d2(forward, strike, t_years, vol)
    if option_type == "CE":
        return discount * (forward * _norm_cdf(d1) - strike * _norm_cdf(d2))
    return discount * (strike * _norm_cdf(-d2) - forward * _norm_cdf(-d1))


# `implied_vol` takes a parameter named `price` (the quoted premium), which hides the function.
_premium = price


def delta(
    forward: float,
    strike: float,
    t_years: float,
    vol: float,
    rate: float,
    option_type: OptionKind,
) -> float:
    """dPrice/dForward: in (0, e^-rT) for a call, in (-e^-rT, 0) for a put."""
    _check(forward, strike, option_type)
    if vol < 0:
        raise ValueError(f"vol must be >= 0 (got {vol})")
    discount = math.exp(-rate * max(t_years, 0.0))
    if t_years <= 0 or vol == 0:
        in_the_money = forward > strike if option_type == "CE" else forward < strike
        sign = 1.0 if option_type == "CE" else -1.0
        return sign * discount if in_the_money else 0.0
    d1, _ = _d1_d2(forward, strike, t_years, vol)
    if option_type == "CE":
        return discount * _norm_cdf(d1)
    return -discount * _norm_cdf(-d1)


def implied_vol(
    price: float,
    forward: float,
    strike: float,
    t_years: float,
    rate: float,
    option_type: OptionKind,
) -> float | None:
    """The volatility at which the Black-76 premium equals `price`, or None when none does.

    None for t <= 0 or a premium outside the no-arbitrage bounds (below the discounted intrinsic
    value or above the discounted forward/strike). Bisection: the price is monotonic in volatility,
    so it always converges and never diverges like Newton near zero vega.
    """
    _check(forward, strike, option_type)
    premium = price
    if t_years <= 0 or premium < 0:
        return None
    discount = math.exp(-rate * t_years)
    intrinsic = discount * max(forward - strike if option_type == "CE" else strike - forward, 0.0)
    upper = discount * (forward if option_type == "CE" else strike)
    if premium < intrinsic or premium >= upper:
        return None
    low, high = _IMPLIED_VOL_LOW, _IMPLIED_VOL_HIGH
    if premium <= _premium(forward, strike, t_years, low, rate, option_type):
        return low
    if premium > _premium(forward, strike, t_years, high, rate, option_type):
        return None
    for _ in range(_IMPLIED_VOL_MAX_STEPS):
        mid = 0.5 * (low + high)
        if _premium(forward, strike, t_years, mid, rate, option_type) < premium:
            low = mid
        else:
            high = mid
        if high - low < _IMPLIED_VOL_TOLERANCE:
            break
    return 0.5 * (low + high)
