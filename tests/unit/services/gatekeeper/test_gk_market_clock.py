"""The market clock of a replay: the wall before the first tick, then the newest exchange time,
never going back; latencies stay on the wall clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.gatekeeper.adapters.market_clock import MarketClock
from services.gatekeeper.settings import GatekeeperSettings
from shared.clock import IST, ManualClock

WALL = datetime(2026, 11, 21, 2, 0, tzinfo=IST)
REPLAY = datetime(2024, 8, 8, 10, 15, tzinfo=IST)


def test_the_market_clock_follows_the_newest_tick_and_never_goes_back() -> None:
    wall = ManualClock(WALL)
    clock = MarketClock(wall)
    assert clock.now() == WALL
    clock.observe(REPLAY)
    assert REPLAY <= clock.now() < REPLAY + timedelta(seconds=1)
    clock.observe(REPLAY + timedelta(seconds=120))
    ahead = clock.now()
    assert ahead >= REPLAY + timedelta(seconds=120)
    clock.observe(REPLAY + timedelta(seconds=30))  # a late tick of another partition
    assert clock.now() >= ahead
    clock.observe(WALL + timedelta(microseconds=123))  # a receipt-stamped tick: not market time
    assert clock.now() < REPLAY + timedelta(seconds=121)
    assert clock.time_ns() == wall.time_ns()


def test_the_market_clock_is_chosen_for_paper_on_the_simulator_only() -> None:
    def settings(**values: object) -> GatekeeperSettings:
        return GatekeeperSettings(_env_file=None, **values)  # type: ignore[arg-type]

    assert settings(mode="paper", kite_api_root="http://127.0.0.1:8710").market_clock()
    assert not settings(mode="paper", paper_fills="local").market_clock()
    assert not settings(mode="logging").market_clock()
    assert settings(mode="logging", clock="market").market_clock()
