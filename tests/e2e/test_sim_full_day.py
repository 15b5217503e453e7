"""A full day of NIFTY 50 at maximum speed through the official KiteTicker: the per-minute OHLC
of the received ticks equals the real 1-minute bars exactly."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import datetime, time
from pathlib import Path

import pytest

from tests.sim_fixtures import KiteSim, TickerHarness
from tests.support import eventually_sync

pytestmark = pytest.mark.e2e

NIFTY = 256265
SOURCE = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "marketdata"
    / "nifty50_index_1m_2024-01-01_2024-08-23.csv.gz"
)


def source_bars(day: str) -> dict[int, tuple[float, float, float, float]]:
    bars = {}
    with gzip.open(SOURCE, "rt") as lines:
        for line in lines:
            if line.startswith(day):
                stamp, o, h, low, c, _ = line.strip().split(",")
                bars[int(datetime.fromisoformat(stamp).timestamp())] = (
                    float(o),
                    float(h),
                    float(low),
                    float(c),
                )
    return bars


def test_a_full_day_at_max_speed_reproduces_every_minute_bar(
    kite_sim_factory: Callable[..., KiteSim],
) -> None:
    sim = kite_sim_factory(start_time=time(9, 14))
    expected = source_bars("2024-08-20")
    assert len(expected) == 375
    harness = TickerHarness.open(sim, sim.login(), [NIFTY], mode="full")
    try:
        eventually_sync(lambda: harness.connects == 1, timeout=10)
        eventually_sync(
            lambda: (
                "full"
                in str(sim.runner.call(lambda s: [c.subscriptions.modes for c in s.connections]))
            ),
            timeout=10,
        )
        sim.control.resume()
        eventually_sync(
            lambda: sim.control.state()["finished"], timeout=60, message="replay finished"
        )
        eventually_sync(
            lambda: harness.tick_count() >= 375 * 60, timeout=60, message="every tick received"
        )
        ticks = harness.snapshot()
    finally:
        harness.close()
    assert len(ticks) == 375 * 60
    minutes: dict[int, list[float]] = {}
    for tick in ticks:
        assert tick["instrument_token"] == NIFTY and tick["mode"] == "full"
        second = int(tick["exchange_timestamp"].timestamp())
        minutes.setdefault(second - second % 60, []).append(tick["last_price"])
    got = {m: (p[0], max(p), min(p), p[-1]) for m, p in minutes.items()}
    assert got == expected
    assert sim.control.state()["session_closed"] is True
