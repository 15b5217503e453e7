from __future__ import annotations

import importlib
import math
import warnings
from datetime import UTC, timedelta
from typing import Any

import msgspec
import numpy as np
import pytest

from services.consumer.buckets import bucket_of, regular_sessions
from services.consumer.signals import intent_from_signal
from services.consumer.strategies import (
    EmaCrossover,
    MomentumScanner,
    RsiReversal,
    StraddleManager,
    TrendOptionSeller,
)
from services.consumer.strategies.ema_crossover import EmaCrossoverParams
from services.consumer.strategies.momentum import MomentumParams
from services.consumer.strategies.rsi_reversal import RsiParams
from services.consumer.strategies.straddle import StraddleParams
from shared.clock import IST
from shared.messages import Candle, Signal
from tests.unit.services.consumer.consumer_factories import candles_from_closes, read_closes


def pandas_ta() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module("pandas_ta")


def series(values: list[float]) -> Any:
    return importlib.import_module("pandas").Series(values)


@pytest.fixture(scope="module")
def nifty_15m_closes() -> list[float]:
    """Real NIFTY 15-minute closes (the close of each bucket's last minute)."""
    closes: dict[Any, float] = {}
    sessions = regular_sessions()
    for ts, close in read_closes():
        bucket = bucket_of(ts, "15minute", sessions)
        assert bucket is not None
        closes[bucket.start] = close
    return list(closes.values())


def run(strategy: Any, candles: list[Candle]) -> list[tuple[int, Signal]]:
    state = strategy.new_state()
    out = []
    for i, candle in enumerate(candles):
        signal = strategy.on_candle(candle, state)
        if signal is not None:
            out.append((i, signal))
    return out


def crossings(diff: np.ndarray[Any, Any]) -> list[tuple[int, str]]:
    """Reference rule, vectorised: sign changes of `diff` against the last non-zero sign."""
    out, side = [], 0
    for i, d in enumerate(diff):
        if np.isnan(d) or d == 0:
            continue
        s = 1 if d > 0 else -1
        if side and s != side:
            out.append((i, "BUY" if s > 0 else "SELL"))
        side = s
    return out


# --- EMA crossover -------------------------------------------------------------------------------


def test_ema_crossover_buys_when_fast_crosses_above_and_sells_when_below() -> None:
    closes = (
        [100 - i for i in range(30)]
        + [71 + 3 * i for i in range(15)]
        + [113 - 4 * i for i in range(15)]
    )
    signals = run(EmaCrossover(), candles_from_closes(closes))
    assert [s.action for _, s in signals] == ["BUY", "SELL"]
    buy_at, buy = signals[0]
    assert 30 < buy_at < 45 and buy.price == closes[buy_at]
    assert buy.stop_loss == pytest.approx(buy.price * 0.99) and buy.target == pytest.approx(
        buy.price * 1.02
    )
    assert 0.5 <= buy.confidence <= 1.0
    assert "EMA9" in buy.reason and "crossed above EMA21" in buy.reason
    sell = signals[1][1]
    assert sell.stop_loss == pytest.approx(sell.price * 1.01) and sell.target == pytest.approx(
        sell.price * 0.98
    )


def test_ema_crossover_says_nothing_while_either_ema_warms_up() -> None:
    # Fast and slow cross around candle 12, before the slow EMA (21) exists.
    closes = [100 - i for i in range(10)] + [91 + 5 * i for i in range(11)] + [150.0] * 5
    assert run(EmaCrossover(), candles_from_closes(closes)) == []


def test_ema_crossover_signals_equal_pandas_ta_crossings_on_real_nifty_15_minutes(
    nifty_15m_closes: list[float],
) -> None:
    ta = pandas_ta()
    s = series(nifty_15m_closes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diff = (ta.ema(s, 9) - ta.ema(s, 21)).to_numpy()
    expected = crossings(diff)
    got = [(i, sig.action) for i, sig in run(EmaCrossover(), candles_from_closes(nifty_15m_closes))]
    assert got == expected
    assert len(got) > 100  # 8 months of 15-minute candles cross often


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"fast": 21, "slow": 9}, "shorter than slow"), ({"slow": 50, "lookback": 30}, "cover slow")],
)
def test_ema_crossover_params_refuse_inconsistent_values(
    overrides: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        EmaCrossoverParams.model_validate(overrides)


# --- RSI -----------------------------------------------------------------------------------------


def test_rsi_buys_out_of_oversold_and_sells_out_of_overbought(
    nifty_15m_closes: list[float],
) -> None:
    ta = pandas_ta()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rsi = ta.rsi(series(nifty_15m_closes), 14).to_numpy()
    expected = []
    for i in range(15, len(rsi)):
        if rsi[i - 1] <= 30 < rsi[i]:
            expected.append((i, "BUY"))
        elif rsi[i - 1] >= 70 > rsi[i]:
            expected.append((i, "SELL"))
    got = [(i, s.action) for i, s in run(RsiReversal(), candles_from_closes(nifty_15m_closes))]
    assert got == expected and len(got) > 10


def test_rsi_confidence_grows_with_the_depth_of_the_excursion() -> None:
    closes = (
        [100.0 + (i % 2) for i in range(20)] + [100 - 2 * i for i in range(1, 12)] + [90, 96, 100]
    )
    signals = run(RsiReversal(RsiParams(full_confidence_depth=20)), candles_from_closes(closes))
    # The pandas-ta seed starts RSI at 100, so the first ready candle leaves overbought (71.6 ->
    # 66.5: depth 1.6); the dive to 17.9 then ends with 48.1 (depth 30 - 17.9 = 12.1).
    [(_, sell), (_, buy)] = signals
    assert (sell.action, buy.action) == ("SELL", "BUY")
    depths = [float(s.reason.split("extreme depth ")[1].split(")")[0]) for s in (sell, buy)]
    assert depths == pytest.approx([1.64, 12.05], abs=0.01)
    assert sell.confidence == pytest.approx(0.5 + 0.5 * depths[0] / 20, abs=1e-3)
    assert buy.confidence == pytest.approx(0.5 + 0.5 * depths[1] / 20, abs=1e-3)


def test_rsi_waits_for_length_plus_one_closes() -> None:
    # RSI dives below 30 and back within the first 15 closes: too early to act.
    closes = [100.0, 99, 98, 97, 96, 95, 94, 93, 92, 91, 101, 102, 103, 104, 105]
    assert run(RsiReversal(), candles_from_closes(closes)) == []


# --- momentum scanner ----------------------------------------------------------------------------


def universe_candles(paths: dict[str, list[float]]) -> list[Candle]:
    out: list[Candle] = []
    for token, (symbol, closes) in enumerate(paths.items(), start=1):
        out += candles_from_closes(closes, symbol=symbol, token=token, timeframe="day")
    return sorted(out, key=lambda c: (c.start, c.symbol))


def run_universe(scanner: MomentumScanner, candles: list[Candle]) -> list[tuple[str, str, str]]:
    state = scanner.new_state()
    out: list[tuple[str, str, str]] = []
    for c in candles:
        out += [
            (s.candle_start.date().isoformat(), s.action, s.symbol)
            for s in scanner.on_candle(c, state)
        ]
    out += [(s.candle_start.date().isoformat(), s.action, s.symbol) for s in scanner.flush(state)]
    return out


def test_momentum_buys_the_top_k_and_sells_what_drops_out() -> None:
    scanner = MomentumScanner(
        MomentumParams(universe=("NSE:A", "NSE:B", "NSE:C"), period=2, top_k=1)
    )
    candles = universe_candles(
        {
            "NSE:A": [100, 101, 110, 111, 112],  # leads on day 3, fades
            "NSE:B": [100, 100, 101, 108, 118],  # leads from day 4
            "NSE:C": [100, 99, 98, 97, 96],  # never positive
        }
    )
    assert run_universe(scanner, candles) == [
        ("2024-03-05", "BUY", "NSE:A"),
        ("2024-03-07", "SELL", "NSE:A"),  # on 03-06 A's 2-day return (9.9%) still beats B's (8%)
        ("2024-03-07", "BUY", "NSE:B"),
    ]


def test_momentum_buys_nothing_below_the_threshold() -> None:
    scanner = MomentumScanner(
        MomentumParams(universe=("NSE:A", "NSE:B"), period=1, top_k=2, min_return_pct=5)
    )
    candles = universe_candles({"NSE:A": [100, 104, 108], "NSE:B": [100, 90, 94]})
    assert run_universe(scanner, candles) == []


def test_momentum_ranks_a_bucket_without_a_missing_member_and_names_it() -> None:
    scanner = MomentumScanner(MomentumParams(universe=("NSE:A", "NSE:B"), period=1, top_k=1))
    a = candles_from_closes([100, 110, 111], symbol="NSE:A", token=1, timeframe="day")
    b = candles_from_closes([100], symbol="NSE:B", token=2, timeframe="day")  # stops trading
    state = scanner.new_state()
    signals = [
        s
        for c in sorted(a + b, key=lambda c: (c.start, c.symbol))
        for s in scanner.on_candle(c, state)
    ]
    assert [(s.action, s.symbol) for s in signals] == [("BUY", "NSE:A")]
    assert "missing: NSE:B" in signals[0].reason
    assert scanner.flush(state) == []  # day 3 ranked on flush: A still leads, nothing to do


def test_momentum_rebalances_only_on_anchored_buckets() -> None:
    scanner = MomentumScanner(
        MomentumParams(
            universe=("NSE:A",), period=1, top_k=1, timeframe="15minute", rebalance_every=4
        )
    )
    candles = candles_from_closes(
        [100 + i for i in range(10)], symbol="NSE:A", timeframe="15minute"
    )
    state = scanner.new_state()
    signals = [s for c in candles for s in scanner.on_candle(c, state)]
    # 09:15 has no return yet; 10:15 is the next anchored bucket (every 4th from 09:15).
    assert [(s.action, s.candle_start.strftime("%H:%M")) for s in signals] == [("BUY", "10:15")]


def test_momentum_rebalances_on_ist_buckets_whatever_the_zone_of_the_candle() -> None:
    scanner = MomentumScanner(
        MomentumParams(
            universe=("NSE:A",), period=1, top_k=1, timeframe="15minute", rebalance_every=4
        )
    )
    candles = [
        msgspec.structs.replace(c, start=c.start.astimezone(UTC), end=c.end.astimezone(UTC))
        for c in candles_from_closes(
            [100 + i for i in range(10)], symbol="NSE:A", timeframe="15minute"
        )
    ]
    state = scanner.new_state()
    signals = [s for c in candles for s in scanner.on_candle(c, state)]
    assert [s.candle_start.astimezone(IST).strftime("%H:%M") for s in signals] == ["10:15"]


def test_momentum_needs_a_universe() -> None:
    with pytest.raises(ValueError, match="universe"):
        MomentumScanner(MomentumParams())


# --- option sellers ------------------------------------------------------------------------------


def test_trend_option_seller_sells_a_put_in_an_up_trend_and_flips_through_an_exit() -> None:
    closes = (
        [100.0] * 21 + [100 + 0.5 * i for i in range(1, 20)] + [109 - 1.5 * i for i in range(1, 20)]
    )
    signals = run(TrendOptionSeller(), candles_from_closes(closes))
    assert [(s.action, s.option_type) for _, s in signals] == [
        ("SELL", "PE"),
        ("EXIT", "PE"),
        ("SELL", "CE"),
    ]
    (_, sell_put), (exit_at, exit_put), (call_at, _) = signals
    assert sell_put.underlying == "NIFTY" and sell_put.stop_loss is None and sell_put.target is None
    assert call_at > exit_at  # one signal per candle: the exit first, the call once bearish
    put_intent = intent_from_signal(sell_put)
    assert (put_intent.side, put_intent.option_type, put_intent.is_exit) == ("SELL", "PE", False)
    exit_intent = intent_from_signal(exit_put)
    assert (exit_intent.side, exit_intent.option_type, exit_intent.is_exit) == ("BUY", "PE", True)


def test_trend_option_seller_stays_out_of_a_flat_market() -> None:
    assert (
        run(TrendOptionSeller(), candles_from_closes([100.0 + 0.01 * (i % 3) for i in range(80)]))
        == []
    )


def test_straddle_manager_sells_in_a_quiet_market_and_exits_on_a_move() -> None:
    quiet = [100.0 + (0.05 if i % 2 else -0.05) for i in range(40)]
    closes = [*quiet, 100.2, 100.3, 100.7]
    signals = run(StraddleManager(StraddleParams(exit_move_pct=0.5)), candles_from_closes(closes))
    assert [(s.action, s.option_type) for _, s in signals] == [("SELL", None), ("EXIT", None)]
    (sold_at, sell), (exit_at, exit_) = signals
    assert sold_at >= 20 and exit_at == len(closes) - 1  # 20: the slow EMA's first value
    assert sell.underlying == exit_.underlying == "NIFTY"
    assert "straddle" in sell.reason and "RSI14" in sell.reason
    intent = intent_from_signal(exit_)
    assert (intent.side, intent.is_exit, intent.option_type) == ("BUY", True, None)


def test_straddle_manager_confidence_is_highest_at_rsi_50() -> None:
    closes = [100.0 + (0.05 if i % 2 else -0.05) for i in range(40)]
    [(_, sell)] = run(StraddleManager(), candles_from_closes(closes))
    rsi = float(sell.reason.split("RSI14 ")[1].split(" ")[0])
    assert sell.confidence == pytest.approx(1 - 0.5 * abs(rsi - 50) / 10, abs=1e-3)


def test_every_signal_is_stamped_with_its_candle_and_not_the_wall_clock() -> None:
    candles = candles_from_closes([100 - i for i in range(30)] + [71 + 3 * i for i in range(15)])
    [(i, signal)] = run(EmaCrossover(), candles)
    assert signal.candle_start == candles[i].start
    assert signal.created_at == candles[i].end == candles[i].start + timedelta(minutes=15)
    assert signal.timeframe == "15minute" and signal.strategy == "ema_crossover"
    assert not math.isnan(signal.confidence)
