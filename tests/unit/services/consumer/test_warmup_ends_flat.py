"""Warm-up leaves the indicators warm and the strategies flat: live trading starts with an entry.

Each case's history makes its strategy "open" a position (a signal the warm-up drops: nobody
traded it); its live candles then move against that position. Carried into live trading, the
position would make the first live signal an EXIT (the Gatekeeper denies it: no open position)
or a SELL of a long nobody holds (which would open a short); flat, the first live signal is an
entry. The backtester's warm-up (`BacktestConfig.live_from`) decides the same signals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from services.consumer.backtest.engine import BacktestConfig, run_backtest
from services.consumer.signals import intent_from_signal
from services.consumer.strategies import StrategyConfig, build_strategy
from services.consumer.strategy_engine import StrategyEngine
from shared.messages import Candle, Signal
from tests.unit.services.consumer.consumer_factories import NIFTY, candles_from_closes

RISING = [100.0] * 21 + [100 + 0.5 * i for i in range(1, 20)]  # a SELL PE on candle 21
QUIET = [100.0 + (0.05 if i % 2 else -0.05) for i in range(40)]  # a straddle sold on candle 20


@dataclass(frozen=True)
class Case:
    config: StrategyConfig
    history: dict[str, list[Candle]]  # per symbol: warmed one after the other, as live
    live: list[Candle]  # in (start, symbol) order

    def candles(self) -> list[Candle]:
        every = [x for xs in self.history.values() for x in xs] + self.live
        return sorted(every, key=lambda x: (x.start, x.symbol))


def one(kind: str, history: list[float], live: list[float]) -> Case:
    candles = candles_from_closes(history + live)
    split = len(history)
    return Case(StrategyConfig(kind=kind, symbols=(NIFTY,)), {NIFTY: candles[:split]},
                candles[split:])  # fmt: skip


def momentum(history: dict[str, list[float]], live: dict[str, list[float]]) -> Case:
    symbols = tuple(history)
    config = StrategyConfig(
        kind="momentum", symbols=symbols, params={"period": 1, "top_k": 1}
    )  # fmt: skip
    warm: dict[str, list[Candle]] = {}
    rest: list[Candle] = []
    for token, symbol in enumerate(symbols, start=1):
        candles = candles_from_closes(
            history[symbol] + live[symbol], symbol=symbol, token=token, timeframe="day"
        )
        warm[symbol] = candles[: len(history[symbol])]
        rest += candles[len(history[symbol]) :]
    return Case(config, warm, sorted(rest, key=lambda x: (x.start, x.symbol)))


CASES = {
    # short PE from the up-trend; the index drops: the trend turns neutral, then bearish
    "trend_option_seller": (
        one("trend_option_seller", RISING, [100 - 1.0 * i for i in range(20)]),
        ("SELL", "CE"),
        ("EXIT", "PE"),
    ),
    # a straddle sold in the quiet market; the index moves 0.6% and goes quiet again
    "straddle": (
        one("straddle", QUIET, [100.6] + [100.6 + (0.05 if i % 2 else -0.05) for i in range(40)]),
        ("SELL", None),
        ("EXIT", None),
    ),
    # A held from its jump; on the first live day B leads and A fades
    "momentum": (
        momentum(
            {"NSE:A": [100, 110, 111], "NSE:B": [100, 100, 100]},
            {"NSE:A": [105, 104, 103], "NSE:B": [101, 103, 104]},
        ),
        ("BUY", None),
        ("SELL", None),
    ),
}


def live_signals(case: Case) -> tuple[StrategyEngine, list[Signal]]:
    engine = StrategyEngine.from_configs([case.config])
    dropped = sum(engine.warm(history) for history in case.history.values())
    assert dropped >= 1  # the warm-up did decide to open a position
    signals = [s for candle in case.live for s in engine.on_candle(candle)]
    return engine, signals + engine.flush()


def carried_signals(case: Case) -> list[Signal]:
    """What live trading would decide with the warm-up's position carried over."""
    engine = StrategyEngine.from_configs([case.config])
    decided = [s for candle in case.candles() for s in engine.on_candle(candle)]
    live_from = case.live[0].start
    return [s for s in decided + engine.flush() if s.candle_start >= live_from]


def actions(signals: Sequence[Signal]) -> list[tuple[str, str | None]]:
    return [(s.action, s.option_type) for s in signals]


@pytest.mark.parametrize(("case", "entry", "carried_exit"), CASES.values(), ids=list(CASES))
def test_after_a_warm_up_that_opened_a_position_the_first_live_signal_is_an_entry(
    case: Case, entry: tuple[str, str | None], carried_exit: tuple[str, str | None]
) -> None:
    _, signals = live_signals(case)
    assert signals, "the live candles must make the strategy decide"
    first = signals[0]
    assert (first.action, first.option_type) == entry
    assert first.action != "EXIT"
    if first.underlying is not None:  # an option entry: sells, and is no exit, at the Gatekeeper
        assert not intent_from_signal(first).is_exit
    # The position carried from the warm-up would have made the first live signal its exit.
    assert actions(carried_signals(case))[0] == carried_exit


@pytest.mark.parametrize("case", [c for c, _, _ in CASES.values()], ids=list(CASES))
def test_the_backtester_after_its_warm_up_decides_what_the_live_engine_decides(
    case: Case,
) -> None:
    _, live = live_signals(case)
    strategy = build_strategy(case.config)
    result = run_backtest(strategy, case.candles(), BacktestConfig(live_from=case.live[0].start))
    assert [s.signal_id for s in result.signals] == [s.signal_id for s in live]
    assert result.candles == case.live  # the warm-up candles are not part of the backtest


@pytest.mark.parametrize(
    "kind", ["ema_crossover", "rsi"], ids=["ema_crossover", "rsi"]
)  # fmt: skip
def test_a_strategy_without_positions_decides_after_warm_up_as_if_it_had_run_all_along(
    kind: str,
) -> None:
    # Their crossing memory is indicator state, kept: the first live crossing is the one an
    # uninterrupted run makes (a SELL after the warm-up's BUY, not a second BUY).
    closes = RISING + [109 - 1.5 * i for i in range(1, 20)] + [80 + 2.0 * i for i in range(20)]
    case = one(kind, closes[:40], closes[40:])
    engine = StrategyEngine.from_configs([case.config])
    engine.warm(case.history[NIFTY])
    live = [s for candle in case.live for s in engine.on_candle(candle)]
    assert live and [s.signal_id for s in live] == [s.signal_id for s in carried_signals(case)]


def test_warming_up_one_symbol_keeps_another_symbols_live_position() -> None:
    bank = "NSE:NIFTY BANK"
    config = StrategyConfig(kind="trend_option_seller", symbols=(NIFTY, bank))
    falling = [109 - 1.5 * i for i in range(1, 20)]
    nifty = candles_from_closes(RISING + falling)
    banknifty = candles_from_closes(RISING, symbol=bank, token=260105)
    engine = StrategyEngine.from_configs([config])
    engine.warm(nifty[:21])  # flat at the end: the up-trend starts live
    [sell] = [s for candle in nifty[21:30] for s in engine.on_candle(candle)]
    assert (sell.action, sell.option_type) == ("SELL", "PE")  # traded: a live position
    engine.warm(banknifty)  # NIFTY BANK's first tick: its warm-up must not flatten NIFTY
    later = [s for candle in nifty[30:] for s in engine.on_candle(candle)]
    assert actions(later)[0] == ("EXIT", "PE")
