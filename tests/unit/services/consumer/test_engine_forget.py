"""The engine forgets a symbol's per-instrument state (its partition moved) and re-warms it."""

from __future__ import annotations

from services.consumer.strategies import StrategyConfig
from services.consumer.strategy_engine import StrategyEngine
from tests.unit.services.consumer.consumer_factories import NIFTY, candles_from_closes

CLOSES = [100.0 + (i % 17) - (i % 5) * 1.5 for i in range(120)]


def engine() -> StrategyEngine:
    return StrategyEngine.from_configs(
        [StrategyConfig(kind="ema_crossover", symbols=(NIFTY,), params={"lookback": 30})]
    )


def test_a_forgotten_symbol_warmed_again_decides_like_one_never_forgotten() -> None:
    candles = candles_from_closes(CLOSES)
    steady = engine()
    expected = [s for c in candles for s in steady.on_candle(c)]
    moved = engine()
    first = [s for c in candles[:80] for s in moved.on_candle(c)]
    moved.forget([NIFTY])
    assert moved.last_start(NIFTY, "15minute") is None
    moved.warm(candles[:80])  # the new owner's warm-up: same history, state rebuilt
    rest = [s for c in candles[80:] for s in moved.on_candle(c)]
    assert first + rest == expected and expected
    assert moved.symbols() == frozenset({NIFTY})
    assert moved.strategy_names(NIFTY, "15minute") == ["ema_crossover"]
    assert moved.strategy_names(NIFTY, "5minute") == []


def test_forgetting_another_symbol_changes_nothing() -> None:
    candles = candles_from_closes(CLOSES)
    e = engine()
    for c in candles[:50]:
        e.on_candle(c)
    e.forget(["NSE:OTHER"])
    assert e.last_start(NIFTY, "15minute") == candles[49].start
