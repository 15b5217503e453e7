"""Zerodha's charges, worked by hand from the published rates (NSE, from 1 Oct 2024)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.charges import ChargeSchedule, ChargeSegment, ChargeSide, SegmentRates, order_charges

DEFAULT = ChargeSchedule()


@pytest.mark.parametrize(
    ("segment", "side", "quantity", "price", "expected"),
    [
        # turnover 100,000: brokerage min(30, 20); txn 2.97; SEBI 0.10; stamp 3.00 on the buy;
        # GST 18 % of 23.07 = 4.15; STT 0.025 % on the sell only.
        ("equity_intraday", "BUY", 100, 1000.0, (20.0, 0.0, 2.97, 0.10, 3.0, 4.15, 30.22)),
        ("equity_intraday", "SELL", 100, 1000.0, (20.0, 25.0, 2.97, 0.10, 0.0, 4.15, 52.22)),
        # turnover 1,000: brokerage 0.03 % = 0.30 is under the Rs 20 cap.
        ("equity_intraday", "BUY", 10, 100.0, (0.30, 0.0, 0.03, 0.0, 0.03, 0.06, 0.42)),
        # delivery, turnover 20,000: no brokerage, STT 0.1 % on both sides, stamp 0.015 % on buy.
        ("equity_delivery", "BUY", 10, 2000.0, (0.0, 20.0, 0.59, 0.02, 3.0, 0.11, 23.72)),
        ("equity_delivery", "SELL", 10, 2000.0, (0.0, 20.0, 0.59, 0.02, 0.0, 0.11, 20.72)),
        # futures, turnover 1,100,500: txn 0.00173 % = 19.04; STT 0.02 % sell = 220.10;
        # stamp 0.002 % buy = 22.01; GST 18 % of 40.14 = 7.23.
        ("futures", "BUY", 50, 22010.0, (20.0, 0.0, 19.04, 1.10, 22.01, 7.23, 69.38)),
        ("futures", "SELL", 50, 22010.0, (20.0, 220.10, 19.04, 1.10, 0.0, 7.23, 267.47)),
        # options, premium turnover 9,000: flat Rs 20; txn 0.03503 % = 3.15; STT 0.1 % sell = 9.
        ("options", "BUY", 75, 120.0, (20.0, 0.0, 3.15, 0.01, 0.27, 4.17, 27.60)),
        ("options", "SELL", 75, 120.0, (20.0, 9.0, 3.15, 0.01, 0.0, 4.17, 36.33)),
        # a tiny options order still pays the flat Rs 20 (+ GST 3.60)
        ("options", "BUY", 1, 0.05, (20.0, 0.0, 0.0, 0.0, 0.0, 3.60, 23.60)),
    ],
)
def test_order_charges_match_hand_computed_contract_notes(
    segment: ChargeSegment,
    side: ChargeSide,
    quantity: int,
    price: float,
    expected: tuple[float, float, float, float, float, float, float],
) -> None:
    got = order_charges(DEFAULT, segment, side, quantity, price)
    components = (got.brokerage, got.stt, got.exchange_txn, got.sebi, got.stamp_duty, got.gst)
    assert components == pytest.approx(expected[:6], abs=1e-9)
    assert got.total == pytest.approx(expected[6], abs=1e-9)
    assert got.turnover == pytest.approx(quantity * price)


@pytest.mark.parametrize("segment", ["equity_intraday", "equity_delivery", "futures", "options"])
def test_an_order_with_no_turnover_costs_nothing(segment: ChargeSegment) -> None:
    assert order_charges(DEFAULT, segment, "BUY", 0, 100.0).total == 0.0


def test_an_overridden_rate_is_used_instead_of_the_default() -> None:
    cheaper_options = DEFAULT.options.model_copy(update={"brokerage_cap": 10.0})
    schedule = DEFAULT.model_copy(update={"options": cheaper_options, "gst_rate": 0.0})
    got = order_charges(schedule, "options", "SELL", 75, 120.0)
    assert (got.brokerage, got.gst) == (10.0, 0.0)
    assert got.total == pytest.approx(10.0 + 9.0 + 3.15 + 0.01)


@pytest.mark.parametrize(
    ("quantity", "price", "side"),
    [(-1, 100.0, "BUY"), (1, -0.05, "SELL"), (1, 100.0, "HOLD")],
)
def test_bad_order_inputs_raise(quantity: int, price: float, side: str) -> None:
    with pytest.raises(ValueError):
        order_charges(DEFAULT, "futures", side, quantity, price)  # type: ignore[arg-type]


def test_a_negative_rate_is_refused() -> None:
    with pytest.raises(ValidationError):
        SegmentRates(
            brokerage_rate=-0.1,
            brokerage_cap=20.0,
            stt_buy_rate=0.0,
            stt_sell_rate=0.0,
            exchange_txn_rate=0.0,
            stamp_buy_rate=0.0,
        )


def test_the_schedule_is_immutable() -> None:
    with pytest.raises(ValidationError):
        DEFAULT.gst_rate = 0.0  # type: ignore[misc]
