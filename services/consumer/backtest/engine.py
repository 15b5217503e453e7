"""The event-driven backtest: closed candles, one at a time, through the live strategy classes.

Each candle goes to `strategy.on_candle(candle, state)`, the very call the live engine makes,
with one state per instrument (one per universe for a scanner). A signal fills at the NEXT
candle's open of the same instrument by default (`fill="next-open"`: the decision is only known
once the candle has closed), or at the signal candle's close (`fill="close"`). A signal on the
last candle of an instrument has nothing to fill on: it is reported as unfilled. Positions still
open at the end are closed at the last close ("end of data").

Option-selling strategies (their signals name an underlying and an option side) are run for
their signals only: there are no option prices in the data, so no fills and no trades.

`live_from` mirrors the live Consumer's warm-up: candles starting before it only build the
strategy's state (their signals dropped, nothing filled), then the strategy is made flat with
the indicators kept (`forget_position`), as `StrategyEngine.warm` ends, and the backtest proper
starts at the first candle from `live_from` on. Without it the strategy starts cold and flat at
the first candle.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any, Literal

import numpy as np

from services.consumer.backtest.fills import Book, CostModel, Fill, Mode, Trade, no_costs
from services.consumer.strategies import OPTION_STRATEGY_KINDS, AnyStrategy, UniverseStrategy
from shared.messages import Candle, Signal

logger = logging.getLogger(__name__)

FillAt = Literal["next-open", "close"]


@dataclass(frozen=True)
class BacktestConfig:
    """How signals become trades."""

    mode: Mode = "long-only"
    fill: FillAt = "next-open"
    quantity: int = 1
    capital: float = 100_000.0
    costs: CostModel = no_costs
    live_from: datetime | None = None  # candles starting earlier only warm the strategy up


@dataclass
class BacktestResult:
    """Everything a report needs."""

    strategy: str
    candles: Sequence[Candle]
    signals: list[Signal]
    fills: list[Fill]
    trades: list[Trade]
    equity_values: list[float]  # marked-to-market equity after each candle, aligned with candles
    unfilled: list[Signal] = field(default_factory=list)
    ignored_signals: int = 0
    trades_simulated: bool = True

    @property
    def equity(self) -> list[tuple[datetime, float]]:
        """(candle end, equity) with one point per end time (several instruments share one)."""
        points: list[tuple[datetime, float]] = []
        for candle, value in zip(self.candles, self.equity_values, strict=True):
            if points and points[-1][0] == candle.end:
                points[-1] = (candle.end, value)
            else:
                points.append((candle.end, value))
        return points


def run_backtest(
    strategy: AnyStrategy, candles: Sequence[Candle], config: BacktestConfig
) -> BacktestResult:
    """Run one strategy over candles sorted by (start, symbol)."""
    book = Book(config.mode, config.quantity, config.costs)
    trading = strategy.kind not in OPTION_STRATEGY_KINDS
    states, candles = _warm_up(strategy, candles, config.live_from)
    symbols = set(map(attrgetter("symbol"), candles))
    if isinstance(strategy, UniverseStrategy):
        universe_state = states[""] if "" in states else strategy.new_state()
        signals, pending = _run_universe(strategy, candles, book, config, trading, universe_state)
    elif len(symbols) == 1:
        symbol = candles[0].symbol
        state = states[symbol] if symbol in states else strategy.new_state()
        signals, pending = _run_one_instrument(strategy, candles, book, config, trading, state)
    else:
        signals, pending = _run_single(strategy, candles, book, config, trading, states)
    book.close_all(_last_marks(candles, len(symbols)), "end of data")
    if pending:
        logger.info("%s signals on the last candle of their instrument stay unfilled", len(pending))
    return BacktestResult(
        strategy=strategy.name,
        candles=candles,
        signals=signals,
        fills=book.fills,
        trades=book.trades,
        equity_values=equity_curve(
            candles, book.fills, config.capital, one_instrument=len(symbols) == 1
        ),
        unfilled=list(pending.values()),
        ignored_signals=book.ignored,
        trades_simulated=trading,
    )


def _warm_up(
    strategy: AnyStrategy, candles: Sequence[Candle], live_from: datetime | None
) -> tuple[dict[str, Any], Sequence[Candle]]:
    """The states after the candles before `live_from`, made flat (per symbol; "" for a
    scanner's one state), and the candles from `live_from` on. A scanner's members are warmed
    together in time order here, one after the other live (each on its first tick): the same
    returns, rankings during the warm-up may differ, and they are dropped either way."""
    if live_from is None:
        return {}, candles
    cut = next((i for i, x in enumerate(candles) if x.start >= live_from), len(candles))
    history, live = candles[:cut], candles[cut:]
    dropped = 0
    if isinstance(strategy, UniverseStrategy):
        state = strategy.new_state()
        for candle in history:
            if not candle.revision:
                dropped += len(strategy.on_candle(candle, state))
        dropped += len(strategy.flush(state))
        strategy.forget_positions(state, {x.symbol for x in history})
        logger.info("warm-up on %s candles: %s signals dropped", len(history), dropped)
        return {"": state}, live
    states: dict[str, Any] = {}
    for candle in history:
        if candle.revision:
            continue
        state = states.get(candle.symbol)
        if state is None:
            state = states[candle.symbol] = strategy.new_state()
        if strategy.on_candle(candle, state) is not None:
            dropped += 1
    for state in states.values():
        strategy.forget_position(state)
    logger.info("warm-up on %s candles: %s signals dropped", len(history), dropped)
    return states, live


def _last_marks(candles: Sequence[Candle], symbols: int) -> dict[str, tuple[float, datetime, int]]:
    marks: dict[str, tuple[float, datetime, int]] = {}
    for index in range(len(candles) - 1, -1, -1):
        candle = candles[index]
        if candle.symbol not in marks:
            marks[candle.symbol] = (candle.close, candle.end, index)
            if len(marks) == symbols:
                break
    return marks


def _run_one_instrument(
    strategy: Any,
    candles: Sequence[Candle],
    book: Book,
    config: BacktestConfig,
    trading: bool,
    state: Any,
) -> tuple[list[Signal], dict[str, Signal]]:
    # The hot loop of the usual case, one instrument: locals only, nothing allocated per candle.
    on_candle = strategy.on_candle
    on_signal = book.on_signal
    next_open = config.fill == "next-open"
    symbol = candles[0].symbol if candles else ""
    signals: list[Signal] = []
    waiting: Signal | None = None
    for index, candle in enumerate(candles):
        if candle.revision:
            continue  # as live: revisions are not fed to strategies
        if waiting is not None:
            on_signal(waiting.action, symbol, candle.open, candle.start, index)
            waiting = None
        signal = on_candle(candle, state)
        if signal is not None:
            signals.append(signal)
            if not trading:
                continue
            if next_open:
                waiting = signal
            else:
                on_signal(signal.action, symbol, candle.close, candle.end, index)
    return signals, ({symbol: waiting} if waiting is not None else {})


def _run_single(
    strategy: Any,
    candles: Sequence[Candle],
    book: Book,
    config: BacktestConfig,
    trading: bool,
    states: dict[str, Any],
) -> tuple[list[Signal], dict[str, Signal]]:
    # Several instruments: one state each (those the warm-up built, new ones for the others).
    pending: dict[str, Signal] = {}
    signals: list[Signal] = []
    on_candle = strategy.on_candle
    new_state = strategy.new_state
    on_signal = book.on_signal
    next_open = config.fill == "next-open"
    for index, candle in enumerate(candles):
        if candle.revision:
            continue  # as live: revisions are not fed to strategies
        symbol = candle.symbol
        if pending:
            waiting = pending.pop(symbol, None)
            if waiting is not None:
                on_signal(waiting.action, symbol, candle.open, candle.start, index)
        state = states.get(symbol)
        if state is None:
            state = states[symbol] = new_state()
        signal = on_candle(candle, state)
        if signal is not None:
            signals.append(signal)
            if not trading:
                continue
            if next_open:
                pending[symbol] = signal
            else:
                on_signal(signal.action, symbol, candle.close, candle.end, index)
    return signals, pending


def _run_universe(
    strategy: UniverseStrategy[Any, Any],
    candles: Sequence[Candle],
    book: Book,
    config: BacktestConfig,
    trading: bool,
    state: Any,
) -> tuple[list[Signal], dict[str, Signal]]:
    pending: dict[str, Signal] = {}
    signals: list[Signal] = []
    next_open = config.fill == "next-open"
    last: dict[str, tuple[Candle, int]] = {}
    for index, candle in enumerate(candles):
        if candle.revision:
            continue
        symbol = candle.symbol
        waiting = pending.pop(symbol, None)
        if waiting is not None:
            book.on_signal(waiting.action, symbol, candle.open, candle.start, index)
        last[symbol] = (candle, index)
        for signal in strategy.on_candle(candle, state):
            _take(signal, signals, pending, book, last, next_open, trading)
    for signal in strategy.flush(state):
        _take(signal, signals, pending, book, last, next_open, trading)
    return signals, pending


def _take(
    signal: Signal,
    signals: list[Signal],
    pending: dict[str, Signal],
    book: Book,
    last: dict[str, tuple[Candle, int]],
    next_open: bool,
    trading: bool,
) -> None:
    signals.append(signal)
    if not trading:
        return
    if next_open:
        pending[signal.symbol] = signal
    else:
        candle, index = last[signal.symbol]
        book.on_signal(signal.action, signal.symbol, candle.close, candle.end, index)


def equity_curve(
    candles: Sequence[Candle],
    fills: Sequence[Fill],
    capital: float,
    *,
    one_instrument: bool | None = None,
) -> list[float]:
    """Marked-to-market equity after every candle close: cash + units held x last close."""
    by_index: dict[int, list[Fill]] = {}
    for f in fills:
        by_index.setdefault(f.candle_index, []).append(f)
    fill_indexes = sorted(by_index)
    fill_indexes.append(len(candles))  # a sentinel: no fill there
    if one_instrument is None:
        one_instrument = len(set(map(attrgetter("symbol"), candles))) <= 1
    if one_instrument:
        return _equity_one_instrument(candles, by_index, fill_indexes, capital)
    next_fill = fill_indexes[0]
    position = 1
    cash = capital
    value = 0.0  # sum over instruments of units held x last close
    units: dict[str, int] = {}
    last_close: dict[str, float] = {}
    curve: list[float] = []
    append = curve.append
    for index, candle in enumerate(candles):
        symbol = candle.symbol
        close = candle.close
        if units:
            held = units.get(symbol)
            if held:
                value += held * (close - last_close[symbol])
        if index == next_fill:
            for f in by_index[index]:
                signed = f.quantity if f.side == "BUY" else -f.quantity
                cash -= signed * f.price + f.costs
                units[f.symbol] = units.get(f.symbol, 0) + signed
                value += signed * close
            next_fill = fill_indexes[position]
            position += 1
        last_close[symbol] = close
        append(cash + value)
    return curve


def _equity_one_instrument(
    candles: Sequence[Candle],
    by_index: dict[int, list[Fill]],
    fill_indexes: list[int],
    capital: float,
) -> list[float]:
    # One instrument: equity = cash + units x close, vectorised (cash and units change at fills).
    count = len(candles)
    closes = np.fromiter(map(attrgetter("close"), candles), dtype=np.float64, count=count)
    cash_moves = np.zeros(count, dtype=np.float64)
    unit_moves = np.zeros(count, dtype=np.float64)
    for index in fill_indexes[:-1]:
        for f in by_index[index]:
            signed = f.quantity if f.side == "BUY" else -f.quantity
            cash_moves[index] -= signed * f.price + f.costs
            unit_moves[index] += signed
    equity = capital + np.cumsum(cash_moves) + np.cumsum(unit_moves) * closes
    values: list[float] = equity.tolist()
    return values
