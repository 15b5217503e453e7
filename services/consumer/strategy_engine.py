"""Routes closed candles to the strategies bound to their (symbol, timeframe): the pure engine.

The live Consumer calls `on_candle` for every candle its builders close (and `flush` after each
timer sweep, for cross-sectional scanners); at start it replays history through `warm`, which
builds the strategies' state and discards the signals (they are in the past). The backtester
runs the same strategies' `on_candle` directly.

Warm-up ends with the warmed strategies FLAT: a position a strategy "opened" on history was never
traded (its signal was dropped), so it is forgotten (`forget_position`) while the indicators stay
warm. The first live decision is then an entry, never an exit the Gatekeeper would deny for want
of a position, nor a SELL that would open a short instead of closing a long. The backtester's
`BacktestConfig.live_from` ends its warm-up the same way, so the two stay comparable.

Guards, each counted:
- a candle with `revision > 0` is not fed to strategies: indicators are incremental and cannot
  rewind; the revision goes to storage and the late-tick metrics instead.
- a candle whose start is not after the last one seen for its (symbol, timeframe) (a redelivery,
  a replay overlap, a history candle older than live ones) is skipped, so indicator state is
  never fed the same candle twice. Even if it were, the signal id would be the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.consumer.strategies import (
    AnyStrategy,
    Strategy,
    StrategyConfig,
    UniverseStrategy,
    build_strategy,
)
from shared.messages import Candle, Signal, Timeframe

logger = logging.getLogger(__name__)

RouteKey = tuple[str, Timeframe]


@dataclass(frozen=True, slots=True)
class StrategyBinding:
    """A strategy and the symbols it runs on."""

    strategy: AnyStrategy
    symbols: frozenset[str]


class EngineStats:
    """Counters of the engine (exported as metrics by the service)."""

    __slots__ = ("candles", "revisions_skipped", "signals", "stale_skipped", "warmup_dropped")

    def __init__(self) -> None:
        self.candles = 0
        self.signals = 0
        self.revisions_skipped = 0
        self.stale_skipped = 0
        self.warmup_dropped = 0


class StrategyEngine:
    """Every configured strategy with its per-instrument (or per-universe) state."""

    def __init__(self, bindings: Sequence[StrategyBinding]) -> None:
        names = [b.strategy.name for b in bindings]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"strategy names must be unique (signal ids derive from them): {duplicates}"
            )
        self.bindings = tuple(bindings)
        self.stats = EngineStats()
        self._single: dict[RouteKey, list[tuple[Strategy[Any, Any], dict[str, Any]]]] = {}
        self._universe: dict[RouteKey, list[tuple[UniverseStrategy[Any, Any], Any]]] = {}
        self._universe_all: list[tuple[UniverseStrategy[Any, Any], Any]] = []
        self._last_start: dict[RouteKey, datetime] = {}
        self._warming = False
        for binding in self.bindings:
            strategy = binding.strategy
            if isinstance(strategy, UniverseStrategy):
                entry = (strategy, strategy.new_state())
                self._universe_all.append(entry)
                for symbol in binding.symbols:
                    self._universe.setdefault((symbol, strategy.timeframe), []).append(entry)
            else:
                for symbol in binding.symbols:
                    self._single.setdefault((symbol, strategy.timeframe), []).append((strategy, {}))

    @classmethod
    def from_configs(cls, configs: Iterable[StrategyConfig]) -> StrategyEngine:
        """The engine of the enabled configured strategies."""
        return cls(
            [StrategyBinding(build_strategy(c), frozenset(c.symbols)) for c in configs if c.enabled]
        )

    def lookbacks(self) -> dict[RouteKey, int]:
        """Candles to warm up and keep per (symbol, timeframe): the largest declared lookback."""
        depth: dict[RouteKey, int] = {}
        for binding in self.bindings:
            s = binding.strategy
            for symbol in binding.symbols:
                key = (symbol, s.timeframe)
                depth[key] = max(depth.get(key, 0), s.lookback)
        return depth

    def symbols(self) -> frozenset[str]:
        """Every symbol some strategy runs on."""
        return frozenset(symbol for symbol, _ in self.lookbacks())

    def strategy_names(self, symbol: str, timeframe: Timeframe) -> list[str]:
        """The strategies a candle of (symbol, timeframe) goes to."""
        key = (symbol, timeframe)
        return [s.name for s, _ in self._single.get(key, ())] + [
            s.name for s, _ in self._universe.get(key, ())
        ]

    def forget(self, symbols: Iterable[str]) -> None:
        """Drop what per-instrument strategies know of these symbols (their tick partition went to
        another replica, or is being restored from a checkpoint): the next warm-up rebuilds it.
        A universe strategy's shared state cannot forget one member: keys it is bound to keep
        their last candle, so a re-warm never feeds it a candle twice."""
        gone = set(symbols)
        for (symbol, _), entries in self._single.items():
            if symbol in gone:
                for _, states in entries:
                    states.pop(symbol, None)
        for key in [k for k in self._last_start if k[0] in gone and k not in self._universe]:
            del self._last_start[key]

    def last_start(self, symbol: str, timeframe: Timeframe) -> datetime | None:
        """Start of the newest candle fed for (symbol, timeframe), if any."""
        return self._last_start.get((symbol, timeframe))

    def on_candle(self, candle: Candle) -> list[Signal]:
        """The signals of every strategy bound to this candle's (symbol, timeframe)."""
        key = (candle.symbol, candle.timeframe)
        if candle.revision > 0:
            self.stats.revisions_skipped += 1
            logger.info(
                "revision %s of %s %s not fed to strategies", candle.revision, key, candle.start
            )
            return []
        last = self._last_start.get(key)
        if last is not None and candle.start <= last:
            self.stats.stale_skipped += 1
            logger.info("candle %s %s skipped: not after %s", key, candle.start, last)
            return []
        self._last_start[key] = candle.start
        self.stats.candles += 1
        signals: list[Signal] = []
        for strategy, states in self._single.get(key, ()):
            state = states.get(candle.symbol)
            if state is None:
                state = states[candle.symbol] = strategy.new_state()
            signal = strategy.on_candle(candle, state)
            if signal is not None:
                signals.append(signal)
        for universe_strategy, universe_state in self._universe.get(key, ()):
            signals.extend(universe_strategy.on_candle(candle, universe_state))
        self._count(signals)
        return signals

    def flush(self) -> list[Signal]:
        """Decide on buckets cross-sectional scanners are still waiting on (after a timer sweep)."""
        signals: list[Signal] = []
        for strategy, state in self._universe_all:
            signals.extend(strategy.flush(state))
        self._count(signals)
        return signals

    def warm(self, candles: Iterable[Candle]) -> int:
        """Replay history (in time order) to build state, then make the strategies of the warmed
        (symbol, timeframe)s flat; returns how many signals were dropped."""
        dropped = 0
        warmed: set[RouteKey] = set()
        self._warming = True
        try:
            for candle in candles:
                warmed.add((candle.symbol, candle.timeframe))
                dropped += len(self.on_candle(candle))
            dropped += len(self.flush())
        finally:
            self._warming = False
        self.stats.signals -= dropped
        self.stats.warmup_dropped += dropped
        self._end_warmup_flat(warmed)
        logger.info("warm-up done: %s signals on history candles dropped", dropped)
        return dropped

    def _end_warmup_flat(self, warmed: set[RouteKey]) -> None:
        """Forget the positions the warm-up's dropped signals opened (see the module doc).

        Only the warmed symbols: a warm-up runs on a symbol's first tick in its partition (the
        engine forgot it when its partition left), so their states hold nothing but history,
        while other symbols, and other members of a scanner, may hold live positions."""
        members: dict[str, set[str]] = {}  # scanner name -> its warmed members
        for key in sorted(warmed):
            symbol = key[0]
            for strategy, states in self._single.get(key, ()):
                state = states.get(symbol)
                held = strategy.forget_position(state) if state is not None else None
                if held is not None:
                    logger.info("%s %s: warm-up position %s forgotten (never traded): "
                                "starts flat", strategy.name, symbol, held)  # fmt: skip
            for universe_strategy, _ in self._universe.get(key, ()):
                members.setdefault(universe_strategy.name, set()).add(symbol)
        for universe_strategy, universe_state in self._universe_all:
            warmed_members = members.get(universe_strategy.name)
            if not warmed_members:
                continue
            for symbol in universe_strategy.forget_positions(universe_state, warmed_members):
                logger.info("%s %s: warm-up position forgotten (never traded): starts flat",
                            universe_strategy.name, symbol)  # fmt: skip

    def _count(self, signals: list[Signal]) -> None:
        self.stats.signals += len(signals)
        if self._warming:
            return
        for s in signals:
            logger.info(
                "signal %s %s %s %s: %s", s.signal_id, s.strategy, s.action, s.symbol, s.reason
            )
