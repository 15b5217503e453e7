"""What the Gatekeeper's pure core costs per decision (no IO): the share of the tick -> order budget.

Measures, per call, p50 and p99 in microseconds of:
- `RiskEngine.evaluate` on an equity MARKET intent (rules, pricing, sizing, one order);
- `RiskEngine.evaluate` on an option intent (strike selection with Black-76 IV over the ATM +- 3
  window, then the same);
- `RiskEngine.on_tick` with 5 open positions (mark, kill switch, exit checks).
Rate limits are set out of the way so every intent is planned in full. Writes
bench/results/gatekeeper_core.json.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from results_file import write_results

from services.gatekeeper.engine import RiskEngine
from services.gatekeeper.positions import PositionTerms
from shared.messages import Tick
from tests.unit.services.gatekeeper.gk_fixtures import (
    NIFTY,
    NOW,
    RELIANCE,
    SPOT,
    fill,
    intent,
    market_hours,
    settings,
    state,
)

CALLS = 5_000


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    return {
        "p50_us": round(statistics.median(ordered) / 1000, 2),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] / 1000, 2),
    }


def main() -> None:
    config = settings(
        capital=1e12,
        orders_per_second=1e9,
        orders_burst=10**9,
        broker_orders_per_second=10**9,
        broker_orders_per_minute=10**9,
        broker_orders_per_day=10**9,
        max_position_pct=100.0,
    )
    engine = RiskEngine(config, market_hours)
    risk = state(config)
    results: dict[str, dict[str, float]] = {}

    samples = []
    for i in range(CALLS):
        candidate = intent(f"eq{i}", quantity=1)
        start = time.perf_counter_ns()
        engine.evaluate(candidate, risk, NOW)
        samples.append(time.perf_counter_ns() - start)
    results["evaluate_equity"] = _percentiles(samples)

    samples = []
    for i in range(CALLS // 5):
        candidate = intent(
            f"opt{i}",
            symbol=NIFTY,
            side="SELL",
            underlying="NIFTY",
            option_type="PE",
            reference_price=SPOT,
            product="NRML",
            stop_loss=None,
            target=None,
        )
        start = time.perf_counter_ns()
        engine.evaluate(candidate, risk, NOW)
        samples.append(time.perf_counter_ns() - start)
    results["evaluate_option"] = _percentiles(samples)

    risk = state(config)
    for n, symbol in enumerate(["NSE:A", "NSE:B", "NSE:C", "NSE:D", RELIANCE]):
        fill(risk, symbol, "BUY", 1, 2450.0, n, PositionTerms(stop_loss=1.0, target=1e9))
    samples = []
    for i in range(CALLS):
        tick = Tick(
            instrument_token=738561,
            symbol=RELIANCE,
            last_price=2450.0 + (i % 7) * 0.05,
            exchange_ts=NOW,
            received_ns=0,
        )
        start = time.perf_counter_ns()
        engine.on_tick(risk, tick, NOW)
        samples.append(time.perf_counter_ns() - start)
    results["on_tick_5_positions"] = _percentiles(samples)

    write_results(
        "gatekeeper_core",
        {
            f"{call}_{stat}": (value, "us")
            for call, stats in results.items()
            for stat, value in stats.items()
        },
        {"clock": "perf_counter_ns per call; pure engine only, no IO"},
    )


if __name__ == "__main__":
    main()
