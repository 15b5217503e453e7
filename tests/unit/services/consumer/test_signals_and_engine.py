from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from services.consumer.history import CandleHistory
from services.consumer.signals import intent_from_signal, new_signal, signal_id
from services.consumer.strategies import StrategyConfig, StrategyConfigError
from services.consumer.strategy_engine import StrategyEngine
from shared.clock import IST
from shared.messages import Candle
from tests.unit.services.consumer.consumer_factories import NIFTY, candles_from_closes

START = datetime(2024, 3, 1, 9, 15, tzinfo=IST)
CROSSING = [100.0 - i for i in range(30)] + [71.0 + 3 * i for i in range(15)]


# --- signal ids ----------------------------------------------------------------------------------


def test_a_signal_id_is_deterministic_short_and_alphanumeric() -> None:
    first = signal_id("ema_crossover", NIFTY, "15minute", START)
    assert first == signal_id("ema_crossover", NIFTY, "15minute", START)
    assert len(first) == 16 and first.isalnum() and first == first.lower()


def test_a_signal_id_names_an_instant_not_a_zone() -> None:
    assert signal_id("s", NIFTY, "minute", START) == signal_id(
        "s", NIFTY, "minute", START.astimezone(UTC)
    )


@pytest.mark.parametrize(
    ("strategy", "symbol", "timeframe", "start"),
    [
        ("rsi", NIFTY, "15minute", START),
        ("ema_crossover", "NSE:NIFTY BANK", "15minute", START),
        ("ema_crossover", NIFTY, "5minute", START),
        ("ema_crossover", NIFTY, "15minute", START + timedelta(minutes=15)),
    ],
)
def test_a_signal_id_changes_with_each_part_of_its_key(
    strategy: str, symbol: str, timeframe: str, start: datetime
) -> None:
    base = signal_id("ema_crossover", NIFTY, "15minute", START)
    assert signal_id(strategy, symbol, timeframe, start) != base  # type: ignore[arg-type]


def test_a_signal_id_refuses_a_naive_candle_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        signal_id("s", NIFTY, "minute", datetime(2024, 3, 1, 9, 15))


# --- intents -------------------------------------------------------------------------------------


def candle() -> Candle:
    return candles_from_closes([22000.5])[0]


def test_an_intent_carries_the_signals_whole_context_and_its_id() -> None:
    c = msgspec.structs.replace(candle(), last_tick_received_ns=123)
    signal = new_signal(
        "ema_crossover", c, "BUY", confidence=1.7, reason="why", stop_loss=21000.0, target=23000.0
    )
    assert signal.confidence == 1.0  # clamped to [0, 1]
    assert (signal.price, signal.created_at, signal.candle_start) == (22000.5, c.end, c.start)
    intent = intent_from_signal(signal, product="CNC", quantity=5)
    assert intent.intent_id == intent.signal_id == signal.signal_id
    assert (intent.side, intent.reference_price, intent.stop_loss, intent.target) == (
        "BUY",
        22000.5,
        21000.0,
        23000.0,
    )
    assert (intent.strategy, intent.symbol, intent.instrument_token, intent.timeframe) == (
        "ema_crossover",
        NIFTY,
        c.instrument_token,
        "15minute",
    )
    assert (intent.confidence, intent.reason, intent.candle_start, intent.created_at) == (
        1.0,
        "why",
        c.start,
        c.end,
    )
    assert (intent.product, intent.quantity, intent.order_type, intent.is_exit) == (
        "CNC",
        5,
        "MARKET",
        False,
    )
    assert intent.last_tick_received_ns == 123


def test_an_exit_without_an_underlying_has_no_defined_side() -> None:
    signal = new_signal("x", candle(), "EXIT", confidence=1, reason="r")
    with pytest.raises(ValueError, match="option-selling"):
        intent_from_signal(signal)


# --- engine --------------------------------------------------------------------------------------


def engine(*configs: StrategyConfig) -> StrategyEngine:
    return StrategyEngine.from_configs(configs)


EMA = StrategyConfig(kind="ema_crossover", symbols=(NIFTY,))


def test_the_engine_routes_candles_to_the_strategies_of_their_symbol_and_timeframe() -> None:
    e = engine(EMA, StrategyConfig(kind="rsi", symbols=("NSE:NIFTY BANK",)))
    signals = [s for c in candles_from_closes(CROSSING) for s in e.on_candle(c)]
    assert [(s.strategy, s.action) for s in signals] == [("ema_crossover", "BUY")]
    other_timeframe = candles_from_closes(CROSSING, timeframe="5minute")
    assert [s for c in other_timeframe for s in e.on_candle(c)] == []


def test_a_redelivered_candle_is_not_fed_twice_and_cannot_make_a_second_signal() -> None:
    e = engine(EMA)
    candles = candles_from_closes(CROSSING)
    first = [s for c in candles for s in e.on_candle(c)]
    again = [s for c in candles for s in e.on_candle(c)]
    assert len(first) == 1 and again == []
    assert e.stats.stale_skipped == len(candles)
    # A fresh engine replaying the same candles names the same decision with the same id.
    fresh = engine(EMA)
    replay = [s for c in candles for s in fresh.on_candle(c)]
    assert [s.signal_id for s in replay] == [s.signal_id for s in first]


def test_a_revised_candle_is_counted_but_not_fed_to_strategies() -> None:
    e = engine(EMA)
    c = msgspec.structs.replace(candle(), revision=1)
    assert e.on_candle(c) == []
    assert (e.stats.revisions_skipped, e.stats.candles) == (1, 0)


def test_warm_up_builds_state_and_drops_the_signals_of_history() -> None:
    candles = candles_from_closes(CROSSING + [110.0 - 4 * i for i in range(15)])
    cold, warm = engine(EMA), engine(EMA)
    split = 40  # the BUY crossing is in the history part
    assert warm.warm(candles[:split]) == 1
    live_warm = [s for c in candles[split:] for s in warm.on_candle(c)]
    live_all = [s for c in candles for s in cold.on_candle(c)][1:]
    assert [s.signal_id for s in live_warm] == [s.signal_id for s in live_all]
    assert warm.stats.warmup_dropped == 1 and warm.stats.signals == len(live_warm)


def test_the_engine_flushes_a_scanner_waiting_for_a_missing_member() -> None:
    e = engine(
        StrategyConfig(
            kind="momentum", symbols=("NSE:A", "NSE:B"), params={"period": 1, "top_k": 1}
        )
    )
    a = candles_from_closes([100, 110], symbol="NSE:A", token=1, timeframe="day")
    b = candles_from_closes([100], symbol="NSE:B", token=2, timeframe="day")
    assert [s for c in [a[0], b[0], a[1]] for s in e.on_candle(c)] == []
    [buy] = e.flush()
    assert (buy.action, buy.symbol) == ("BUY", "NSE:A") and "missing: NSE:B" in buy.reason


def test_lookbacks_take_the_largest_declared_per_symbol_and_timeframe() -> None:
    e = engine(
        EMA,
        StrategyConfig(
            kind="ema_crossover", name="ema_long", symbols=(NIFTY,), params={"lookback": 400}
        ),
        StrategyConfig(kind="rsi", symbols=(NIFTY,), params={"timeframe": "5minute"}),
    )
    assert e.lookbacks() == {(NIFTY, "15minute"): 400, (NIFTY, "5minute"): 150}


@pytest.mark.parametrize(
    ("configs", "message"),
    [
        ([StrategyConfig(kind="nope", symbols=(NIFTY,))], "unknown strategy kind 'nope'"),
        ([StrategyConfig(kind="ema_crossover", symbols=(NIFTY,), params={"fast": 0})], "fast"),
        ([StrategyConfig(kind="ema_crossover", symbols=(NIFTY,), params={"speed": 3})], "speed"),
        (
            [StrategyConfig(kind="rsi", symbols=(NIFTY,), params={"oversold": 80})],
            "below overbought",
        ),
    ],
)
def test_a_bad_strategy_config_is_refused_with_its_reason(
    configs: list[StrategyConfig], message: str
) -> None:
    with pytest.raises(StrategyConfigError, match=message):
        StrategyEngine.from_configs(configs)


def test_two_instances_need_two_names() -> None:
    with pytest.raises(ValueError, match="unique"):
        engine(EMA, EMA)


def test_a_disabled_strategy_is_not_built() -> None:
    e = engine(StrategyConfig(kind="ema_crossover", symbols=(NIFTY,), enabled=False))
    assert e.bindings == ()


# --- history -------------------------------------------------------------------------------------


def test_history_keeps_the_last_n_candles_and_replaces_revisions() -> None:
    candles = candles_from_closes([float(i) for i in range(10)])
    history = CandleHistory({(NIFTY, "15minute"): 3})
    assert all(history.add(c) for c in candles)
    assert [c.close for c in history.candles(NIFTY, "15minute")] == [7.0, 8.0, 9.0]
    revised = msgspec.structs.replace(candles[8], close=80.0, revision=1)
    assert history.add(revised)
    assert [c.close for c in history.candles(NIFTY, "15minute")] == [7.0, 80.0, 9.0]
    assert not history.add(candles[2])  # older than the window
    assert not history.add(candles_from_closes([1.0], timeframe="day")[0])  # not tracked
    assert len(history) == 3


def test_history_inserts_a_revived_gap_candle_in_order() -> None:
    candles = candles_from_closes([1.0, 2.0, 3.0, 4.0])
    history = CandleHistory({(NIFTY, "15minute"): 3})
    for c in (candles[0], candles[1], candles[3]):
        history.add(c)
    history.add(msgspec.structs.replace(candles[2], revision=1))
    assert [c.close for c in history.candles(NIFTY, "15minute")] == [2.0, 3.0, 4.0]


def test_a_signal_id_is_stable_across_releases() -> None:
    # Ids dedupe intents across restarts and replays: changing the scheme would double orders.
    assert signal_id("ema_crossover", NIFTY, "15minute", START) == "dc39f90cc8e51e4a"
