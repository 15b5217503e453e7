"""Slippage-protected limit prices at tick-size edges, inside the exchange price band."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.gatekeeper.pricing import (
    PriceBand,
    checked_limit_price,
    fno_price_band,
    market_protection_for,
    round_to_tick,
    slippage_limit_price,
)
from shared.messages import OrderType, Side

D = Decimal


@pytest.mark.parametrize(
    ("side", "ltp", "tick", "expected"),
    [
        ("BUY", 100.00, 0.05, "100.50"),  # exactly on a tick
        ("BUY", 200.00, 0.05, "201.00"),  # float says 200.99999999999997: must stay 201.00
        ("BUY", 100.05, 0.05, "100.55"),  # 100.55025 down
        ("BUY", 99.95, 0.05, "100.40"),  # 100.44975 down, never 100.45
        ("BUY", 0.05, 0.05, "0.05"),  # 0.05025 down to the LTP itself
        ("BUY", 2450.00, 0.10, "2462.20"),  # 2462.25 down to a 0.10 tick
        ("BUY", 1234.56, 0.01, "1240.73"),  # 1240.7328 down
        ("BUY", 18000.0, 1.0, "18090"),
        ("SELL", 100.00, 0.05, "99.50"),
        ("SELL", 100.05, 0.05, "99.55"),  # 99.54975 up
        ("SELL", 99.95, 0.05, "99.50"),  # 99.45025 up, never 99.45
        ("SELL", 200.00, 0.05, "199.00"),  # float 199.0 exactly either way
        ("SELL", 0.10, 0.05, "0.10"),  # 0.0995 up to 0.10
        ("SELL", 1234.56, 0.01, "1228.39"),  # 1228.3872 up
    ],
)
def test_limit_price_rounds_in_the_safe_direction(
    side: Side, ltp: float, tick: float, expected: str
) -> None:
    result = slippage_limit_price(side, ltp, 0.5, tick, None)
    assert result.price == D(expected)
    raw = D(repr(ltp)) * (D(1) + D("0.005") if side == "BUY" else D(1) - D("0.005"))
    # never pays more (BUY) or receives less (SELL) than the protection allows
    assert result.price <= raw if side == "BUY" else result.price >= raw
    assert result.price % D(repr(tick)) == 0
    assert str(result.price) in result.reason


@pytest.mark.parametrize(
    ("side", "ltp", "band", "expected"),
    [
        ("BUY", 139.90, (60.0, 140.0), "140.00"),  # 140.5995 clamped to the upper edge
        ("BUY", 139.90, (60.0, 140.03), "140.00"),  # an off-grid edge rounds inward
        ("SELL", 60.10, (60.0, 140.0), "60.00"),  # 59.7995 clamped to the lower edge
        ("SELL", 60.10, (59.98, 140.0), "60.00"),
        ("BUY", 100.0, (60.0, 140.0), "100.50"),  # inside: untouched
    ],
)
def test_limit_price_is_kept_inside_the_band(
    side: Side, ltp: float, band: tuple[float, float], expected: str
) -> None:
    result = slippage_limit_price(side, ltp, 0.5, 0.05, PriceBand.of(*band))
    assert result.price == D(expected)
    if expected != "100.50":
        assert "clamped" in result.reason


@pytest.mark.parametrize(
    ("ltp", "tick", "band", "why"),
    [
        (0.0, 0.05, None, "cannot price"),
        (100.0, 0.0, None, "cannot price"),
        (150.0, 0.05, (60.0, 140.0), "outside the price band"),  # stale band or stale LTP
        (0.01, 0.05, None, "below one tick"),
    ],
)
def test_limit_price_refuses_with_a_reason(
    ltp: float, tick: float, band: tuple[float, float] | None, why: str
) -> None:
    result = slippage_limit_price("BUY", ltp, 0.5, tick, PriceBand.of(*band) if band else None)
    assert result.price is None
    assert why in result.reason
    with pytest.raises(ValueError):
        _ = result.value


@pytest.mark.parametrize(
    ("reference", "lower", "upper"),
    [
        (100.0, "60.0", "140.0"),  # premium > 50: +-40 %
        (50.05, "30.03", "70.07"),
        (50.0, "30.0", "70.0"),  # premium <= 50: +-20 rupees
        (10.0, "0", "30.0"),  # lower edge floored at zero
    ],
)
def test_fno_band_follows_the_premium_rule(reference: float, lower: str, upper: str) -> None:
    band = fno_price_band(reference)
    assert band.lower == D(lower)
    assert band.upper == D(upper)


@pytest.mark.parametrize(
    ("price", "tick", "direction", "expected"),
    [
        ("10.07", "0.05", "down", "10.05"),
        ("10.07", "0.05", "up", "10.10"),
        ("10.05", "0.05", "down", "10.05"),
        ("10.05", "0.05", "up", "10.05"),
        ("0.01", "0.05", "down", "0.00"),
    ],
)
def test_round_to_tick(price: str, tick: str, direction: str, expected: str) -> None:
    assert round_to_tick(D(price), D(tick), direction) == D(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("side", "limit", "band", "expected", "why"),
    [
        ("BUY", 100.07, None, "100.05", ""),
        ("SELL", 100.07, None, "100.10", ""),
        ("BUY", 145.0, (60.0, 140.0), None, "outside the price band"),
        ("BUY", 0.01, None, None, "below one tick"),
        ("SELL", 0.01, None, "0.05", ""),  # a SELL rounds up: asks for more, never less
    ],
)
def test_a_strategy_limit_price_is_put_on_the_grid_and_band_checked(
    side: Side, limit: float, band: tuple[float, float] | None, expected: str | None, why: str
) -> None:
    result = checked_limit_price(side, limit, 0.05, PriceBand.of(*band) if band else None)
    assert result.price == (D(expected) if expected else None)
    assert why in result.reason


@pytest.mark.parametrize(
    ("order_type", "setting", "expected"),
    [("MARKET", 2.0, 2.0), ("SL-M", -1.0, -1.0), ("LIMIT", 2.0, None), ("SL", 2.0, None)],
)
def test_market_protection_only_on_market_orders(
    order_type: OrderType, setting: float, expected: float | None
) -> None:
    assert market_protection_for(order_type, setting) == expected


def test_market_protection_zero_is_refused() -> None:
    with pytest.raises(ValueError):
        market_protection_for("MARKET", 0)
