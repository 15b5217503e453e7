"""Black-76 against textbook values, parity, bounds and the implied-vol round trip."""

from __future__ import annotations

import math

import pytest

from shared import black76


@pytest.mark.parametrize(
    ("forward", "strike", "t_years", "vol", "rate", "option_type", "expected"),
    [
        # Hull, Options Futures and Other Derivatives, example 18.6 (futures option put):
        # F=20, K=20, T=4/12, sigma=25 %, r=9 % -> 1.12.
        (20.0, 20.0, 4 / 12, 0.25, 0.09, "PE", 1.1166),
        # ATM with r=0: the call is F * (2N(sigma sqrt(T)/2) - 1).
        (100.0, 100.0, 1.0, 0.2, 0.0, "CE", 100 * (2 * 0.5398278372770290 - 1)),
        # NIFTY-like ATM, 7 days, 15 %, r=0: the same closed form F * erf(sigma sqrt(T) / sqrt(8)).
        (
            22000.0,
            22000.0,
            7 / 365,
            0.15,
            0.0,
            "CE",
            22000 * math.erf(0.15 * math.sqrt(7 / 365) / math.sqrt(8)),
        ),
    ],
)
def test_price_matches_reference_values(
    forward: float,
    strike: float,
    t_years: float,
    vol: float,
    rate: float,
    option_type: black76.OptionKind,
    expected: float,
) -> None:
    got = black76.price(forward, strike, t_years, vol, rate, option_type)
    assert got == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize(
    ("forward", "strike", "t_years", "vol", "rate"),
    [
        (22000.0, 21500.0, 0.02, 0.15, 0.07),
        (48000.0, 49000.0, 0.1, 0.2, 0.065),
        (100.0, 150.0, 2.0, 0.6, 0.0),
    ],
)
def test_put_call_parity_holds(
    forward: float, strike: float, t_years: float, vol: float, rate: float
) -> None:
    call = black76.price(forward, strike, t_years, vol, rate, "CE")
    put = black76.price(forward, strike, t_years, vol, rate, "PE")
    assert call - put == pytest.approx(math.exp(-rate * t_years) * (forward - strike), abs=1e-9)


@pytest.mark.parametrize(
    ("forward", "strike", "t_years", "vol", "option_type", "expected"),
    [
        (22100.0, 22000.0, 0.0, 0.15, "CE", 100.0),
        (22100.0, 22000.0, 0.0, 0.15, "PE", 0.0),
        (21900.0, 22000.0, -0.01, 0.15, "PE", 100.0),
        (21900.0, 22000.0, 0.1, 0.0, "CE", 0.0),
    ],
)
def test_price_at_expiry_or_zero_vol_is_intrinsic(
    forward: float,
    strike: float,
    t_years: float,
    vol: float,
    option_type: black76.OptionKind,
    expected: float,
) -> None:
    assert black76.price(forward, strike, t_years, vol, 0.0, option_type) == pytest.approx(expected)


@pytest.mark.parametrize("option_type", ["CE", "PE"])
@pytest.mark.parametrize("strike", [21000.0, 22000.0, 23000.0])
def test_delta_equals_the_numerical_derivative(
    option_type: black76.OptionKind, strike: float
) -> None:
    forward, t_years, vol, rate, bump = 22000.0, 0.05, 0.18, 0.07, 0.01
    up = black76.price(forward + bump, strike, t_years, vol, rate, option_type)
    down = black76.price(forward - bump, strike, t_years, vol, rate, option_type)
    numerical = (up - down) / (2 * bump)
    assert black76.delta(forward, strike, t_years, vol, rate, option_type) == pytest.approx(
        numerical, abs=1e-6
    )


@pytest.mark.parametrize(
    ("option_type", "forward", "strike", "expected"),
    [("CE", 22100.0, 22000.0, 1.0), ("CE", 21900.0, 22000.0, 0.0), ("PE", 21900.0, 22000.0, -1.0)],
)
def test_delta_at_expiry_is_a_step(
    option_type: black76.OptionKind, forward: float, strike: float, expected: float
) -> None:
    assert black76.delta(forward, strike, 0.0, 0.2, 0.0, option_type) == expected


@pytest.mark.parametrize(
    ("option_type", "vol", "strike"),
    [
        ("CE", 0.15, 22000.0),
        ("PE", 0.15, 22000.0),
        ("CE", 0.05, 22500.0),
        ("PE", 0.4, 20000.0),
        ("CE", 1.5, 24000.0),
        ("PE", 0.12, 21500.0),
        ("CE", 0.25, 20000.0),
    ],
)
def test_implied_vol_recovers_the_pricing_vol(
    option_type: black76.OptionKind, vol: float, strike: float
) -> None:
    forward, t_years, rate = 22000.0, 30 / 365, 0.07
    premium = black76.price(forward, strike, t_years, vol, rate, option_type)
    got = black76.implied_vol(premium, forward, strike, t_years, rate, option_type)
    assert got is not None
    assert got == pytest.approx(vol, rel=1e-6)


def test_implied_vol_of_a_deep_in_the_money_option_reprices_it() -> None:
    # Vega is tiny here, so the volatility is loosely determined but the premium must match.
    premium = black76.price(22000.0, 20000.0, 30 / 365, 0.05, 0.07, "CE")
    got = black76.implied_vol(premium, 22000.0, 20000.0, 30 / 365, 0.07, "CE")
    assert got is not None
    assert black76.price(22000.0, 20000.0, 30 / 365, got, 0.07, "CE") == pytest.approx(
        premium, abs=1e-6
    )


@pytest.mark.parametrize(
    ("premium", "t_years", "option_type", "why"),
    [
        (50.0, 0.1, "CE", "below intrinsic 100"),
        (22100.0, 0.1, "CE", "above the forward"),
        (10.0, 0.0, "PE", "expired"),
        (-1.0, 0.1, "PE", "negative premium"),
    ],
)
def test_implied_vol_is_none_when_no_vol_fits(
    premium: float, t_years: float, option_type: black76.OptionKind, why: str
) -> None:
    assert black76.implied_vol(premium, 22100.0, 22000.0, t_years, 0.0, option_type) is None, why


@pytest.mark.parametrize(
    ("forward", "strike", "option_type"),
    [(0.0, 100.0, "CE"), (100.0, -1.0, "PE"), (100.0, 100.0, "XX")],
)
def test_bad_inputs_raise(forward: float, strike: float, option_type: str) -> None:
    with pytest.raises(ValueError):
        black76.price(forward, strike, 0.1, 0.2, 0.0, option_type)  # type: ignore[arg-type]
