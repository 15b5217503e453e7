"""The ticker's hot path (`Market.wire_tick`) gives exactly the packet of `Market.snapshot`.

Two identical simulations replay the same moments: one asks for wire ticks, the other for
snapshots (then their packet integers); every instrument must agree at every moment, for the
default model (depth in whole paise) and for one whose depth levels fall off the paise grid (the
float path), including options quoted at one tick whose lower bids are empty levels.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from services.simulator.pricing import mix, mix_in
from services.simulator.settings import SimulatorSettings
from services.simulator.simulation import Simulation, build_simulation
from services.simulator.ticker_packets import wire_values
from shared.calendar import load_calendar
from shared.clock import IST


def simulation(**overrides: Any) -> Simulation:
    settings = SimulatorSettings(paused=True, speed=0, **overrides)
    return build_simulation(settings, load_calendar(), 0.0)


def at(hh: int, mm: int, ss: int = 0) -> float:
    return datetime(2024, 8, 20, hh, mm, ss, tzinfo=IST).timestamp()


# Moments the two replays stop at: the first ticks, later ones, a seek back (None) and the close.
STOPS: list[float | None] = [
    at(9, 15),
    at(9, 15, 1),
    at(9, 15, 7),
    at(10, 42, 30),
    None,
    at(13, 5),
    at(15, 29, 59),
]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="depth-in-whole-paise"),
        pytest.param({"tick_size": 0.025, "depth_spread_ticks": 3}, id="depth-off-the-paise-grid"),
    ],
)
def test_every_wire_tick_is_the_packet_of_the_snapshot(overrides: dict[str, Any]) -> None:
    wired, snapped = simulation(**overrides), simulation(**overrides)
    everything = sorted(wired.universe.by_token.values(), key=lambda i: i.instrument_token)
    instruments = everything[::3]  # every kind, expiry and moneyness, in a few seconds
    empty_bid_levels = 0
    for stop in STOPS:
        for sim in (wired, snapped):
            if stop is None:
                sim.replay.seek(at(11, 0))
                sim.market.reset()
            else:
                sim.replay.advance_to(stop)
        for instrument in instruments:
            snapshot = snapped.market.snapshot(instrument)
            assert snapshot is not None
            assert wired.market.wire_tick(instrument) == wire_values(snapshot), instrument.key
            empty_bid_levels += snapshot.bids[-1].quantity == 0
    assert empty_bid_levels > 0  # the path for empty levels was taken too


def test_a_wire_tick_is_none_before_the_underlying_ticks() -> None:
    sim = simulation()
    assert all(sim.market.wire_tick(i) is None for i in sim.universe.by_token.values())


@pytest.mark.parametrize(
    "values", [(1, 2, 3), (20240820, 8962818, 1724125800), (0, 0, 0), (2**40, -5, 7)]
)
def test_mixing_in_one_more_value_continues_the_hash(values: tuple[int, int, int]) -> None:
    assert mix_in(mix(*values[:2]), values[2]) == mix(*values)
