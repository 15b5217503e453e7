"""Fills against depth, market protection, stop triggers and the exchange price band."""

from __future__ import annotations

import pytest

from services.simulator.matching import (
    Fill,
    average_price,
    outside_band,
    price_band,
    protection_price,
    resting_limit_crossed,
    stop_triggered,
    sweep,
)
from services.simulator.ticker_packets import DepthEntry

ASKS = (
    DepthEntry(50, 100.10, 2),
    DepthEntry(25, 100.15, 1),
    DepthEntry(100, 100.20, 3),
    DepthEntry(0, 0.0, 0),
)
BIDS = (DepthEntry(75, 100.00, 2), DepthEntry(25, 99.95, 1), DepthEntry(50, 99.90, 1))


@pytest.mark.parametrize(
    ("side", "quantity", "limit", "expected"),
    [
        ("BUY", 25, None, [Fill(25, 100.10)]),
        ("BUY", 75, None, [Fill(50, 100.10), Fill(25, 100.15)]),  # slippage into level 2
        ("BUY", 500, None, [Fill(50, 100.10), Fill(25, 100.15), Fill(100, 100.20)]),  # partial
        ("BUY", 500, 100.15, [Fill(50, 100.10), Fill(25, 100.15)]),  # stops at the limit
        ("BUY", 10, 100.05, []),  # not marketable
        ("SELL", 100, None, [Fill(75, 100.00), Fill(25, 99.95)]),
        ("SELL", 200, 99.95, [Fill(75, 100.00), Fill(25, 99.95)]),
        ("SELL", 10, 100.05, []),
    ],
)
def test_sweep_takes_levels_best_first_up_to_the_limit(
    side: str, quantity: int, limit: float | None, expected: list[Fill]
) -> None:
    book = ASKS if side == "BUY" else BIDS
    assert sweep(side, quantity, book, limit) == expected


def test_average_price_weights_by_quantity() -> None:
    assert average_price([Fill(50, 100.10), Fill(25, 100.16)]) == pytest.approx(100.12)
    assert average_price([]) == 0.0


@pytest.mark.parametrize(
    ("side", "last", "percent", "expected"),
    [
        ("BUY", 100.0, 2.0, 102.0),
        ("SELL", 100.0, 2.0, 98.0),
        ("BUY", 0.05, 2.0, 0.10),  # rounded outwards: room for one tick
        ("SELL", 0.05, 2.0, 0.05),  # never below one tick
        ("BUY", 123.45, 1.0, 124.70),
        ("SELL", 123.45, 1.0, 122.20),
    ],
)
def test_protection_price_is_on_the_grid_and_outside_the_last_price(
    side: str, last: float, percent: float, expected: float
) -> None:
    assert protection_price(side, last, percent, 0.05) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("side", "trigger", "last", "fires"),
    [
        ("BUY", 100.0, 99.95, False),
        ("BUY", 100.0, 100.0, True),
        ("SELL", 100.0, 100.05, False),
        ("SELL", 100.0, 99.0, True),
    ],
)
def test_stops_fire_when_the_price_reaches_the_trigger(
    side: str, trigger: float, last: float, fires: bool
) -> None:
    assert stop_triggered(side, trigger, last) is fires


@pytest.mark.parametrize(
    ("side", "limit", "last", "crossed"),
    [
        ("BUY", 100.0, 100.05, False),
        ("BUY", 100.0, 100.0, True),
        ("SELL", 100.0, 99.95, False),
        ("SELL", 100.0, 100.1, True),
    ],
)
def test_a_resting_limit_fills_once_traded_through(
    side: str, limit: float, last: float, crossed: bool
) -> None:
    assert resting_limit_crossed(side, limit, last) is crossed


@pytest.mark.parametrize(
    ("reference", "price", "outside"),
    [
        (100.0, 140.0, False),  # premium above 50: +-40 %
        (100.0, 140.05, True),
        (100.0, 60.0, False),
        (100.0, 59.95, True),
        (50.0, 70.0, False),  # at or below 50: +-20 rupees
        (50.0, 70.05, True),
        (10.0, 0.05, False),  # the band floors at zero
        (10.0, 30.05, True),
    ],
)
def test_price_band_is_percent_above_the_threshold_and_absolute_below(
    reference: float, price: float, outside: bool
) -> None:
    band = price_band(reference, threshold=50.0, percent=40.0, absolute=20.0)
    assert outside_band(price, band) is outside
