"""Modelled derivatives: the stated formulas, sane depth, day values that never go backwards."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from services.simulator.instruments import Instrument, Underlying
from services.simulator.pricing import PricingModel, model_note
from services.simulator.settings import SimulatorSettings
from services.simulator.simulation import build_simulation
from shared import black76
from shared.calendar import load_calendar
from shared.clock import IST

NIFTY = Underlying(256265, "NIFTY 50", "NIFTY", 25, 1800, 50.0, 3, 0.13)
MODEL = PricingModel(0.07, 0.07, 0.05, 200_000, 100_000, 1, 1, 40, seed=1)
NOW = datetime(2024, 8, 20, 10, 0, tzinfo=IST).timestamp()


def contract(kind: str, strike: float = 24600.0) -> Instrument:
    return Instrument(
        8962818, 35011, "X", "NIFTY", date(2024, 8, 29), strike, 0.05, 25, kind,
        "NFO-FUT" if kind == "FUT" else "NFO-OPT", "NFO", 256265, 1800,
    )  # fmt: skip


def test_a_future_is_the_index_carried_to_expiry() -> None:
    t = (datetime(2024, 8, 29, 15, 30, tzinfo=IST).timestamp() - NOW) / (365 * 86400)
    expected = 24650.4 * math.exp(0.07 * t)
    assert MODEL.price(contract("FUT"), NIFTY, 24650.4, NOW) == pytest.approx(
        round(expected / 0.05) * 0.05
    )


@pytest.mark.parametrize("kind", ["CE", "PE"])
@pytest.mark.parametrize("strike", [23000.0, 24600.0, 26500.0])
def test_an_option_is_black76_on_the_forward_rounded_to_the_tick_and_never_below_it(
    kind: black76.OptionKind, strike: float
) -> None:
    option = contract(kind, strike)
    t = MODEL.years_to_expiry(option, NOW)
    fair = black76.price(24650.4 * math.exp(0.07 * t), strike, t, 0.13, 0.07, kind)
    got = MODEL.price(option, NIFTY, 24650.4, NOW)
    assert got == pytest.approx(max(round(fair / 0.05) * 0.05, 0.05))
    assert got >= 0.05


def test_depth_straddles_the_last_price_in_whole_lots_and_repeats_per_second() -> None:
    option = contract("CE")
    bids, asks = MODEL.depth(option, 100.0, 1724125800)
    assert [b.price for b in bids] == [99.95, 99.9, 99.85, 99.8, 99.75]
    assert [a.price for a in asks] == [100.05, 100.1, 100.15, 100.2, 100.25]
    assert all(d.quantity % 25 == 0 and d.quantity > 0 and d.orders >= 1 for d in bids + asks)
    assert MODEL.depth(option, 100.0, 1724125800) == (bids, asks)
    low_bids, _ = MODEL.depth(option, 0.05, 1724125800)
    assert all(b.quantity == 0 for b in low_bids)  # nothing bids at or below zero


def test_every_modelled_price_says_so() -> None:
    assert model_note(contract("CE"), NIFTY, MODEL).startswith("modelled: Black-76")
    assert model_note(contract("FUT"), NIFTY, MODEL).startswith("modelled:")


def test_a_derivatives_day_values_stay_consistent_through_the_replay() -> None:
    sim = build_simulation(SimulatorSettings(paused=True, speed=0), load_calendar(), 0.0)
    instruments = [
        sim.universe.by_key[k]
        for k in ("NFO:NIFTY2482224650CE", "NFO:NIFTY2482224650PE", "NFO:NIFTY24AUGFUT")
    ]
    previous = {i.instrument_token: (0, math.inf, -math.inf) for i in instruments}
    end = datetime(2024, 8, 20, 15, 30, tzinfo=IST).timestamp()
    for step in range(0, int(end - sim.replay.first_epoch) + 1, 300):  # type: ignore[operator]
        sim.replay.advance_to(sim.replay.first_epoch + step)  # type: ignore[operator]
        for instrument in instruments:
            tick = sim.market.snapshot(instrument)
            assert tick is not None
            assert tick.low <= tick.last_price <= tick.high
            assert tick.low <= tick.open <= tick.high
            volume, low, high = previous[instrument.instrument_token]
            assert tick.volume >= volume and tick.low <= low and tick.high >= high
            previous[instrument.instrument_token] = (tick.volume, tick.low, tick.high)
    index = sim.market.snapshot(sim.universe.by_key["NSE:NIFTY 50"])
    assert index is not None and index.last_price == sim.replay.days[256265].bars[-1].close
