"""Momentum scanner: rank a universe of symbols by N-candle return and hold the top k.

Rules:
- Every member's return is pandas-ta's ROC over `period` candles, updated on each of its candles.
- Rebalance buckets: intraday, every `rebalance_every`-th bucket counted from `rebalance_anchor` (09:15)
  (15minute with 4: 09:15, 10:15, ...); on `day` candles, every day, or only on
  `rebalance_weekday` (0 = Monday) when set. Anchoring on the clock, not on a count of candles
  seen, makes live and backtest rebalance on the same candles whatever their start.
- A rebalance bucket is ranked as soon as every member has delivered its candle for it; members
  that never deliver (no trades, a gap) are left out when the first candle of a later bucket
  arrives, or when the service calls `flush` after its timer sweep (end of bucket + grace). They
  are named in the reasons.
- Selection: the `top_k` members with the highest return strictly above `min_return_pct`, ties
  broken by symbol. BUY each newly selected member; SELL each member selected before that is no
  longer (only when it has a candle in this bucket to price the exit; otherwise it is kept until
  it has one). SELLs come first, then BUYs, each in symbol order.
- confidence: BUY = 1 - 0.5 * rank / top_k (the leader 1.0); SELL = 1.0 when the member's return
  fell to or below the threshold (momentum gone), 0.5 when it was merely outranked.
- stop_loss / target: `stop_loss_pct` / `target_pct` away from the close of the signal's candle.
The scanner's state is its universe's: the engine keeps one per scanner, not one per symbol. For
live scale-out this means every member's candles must reach the replica running the scanner
(e.g. read from the candles stream) rather than only the members of its own tick partitions.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from datetime import datetime, time

from pydantic import Field

from services.consumer.buckets import TIMEFRAME_MINUTES
from services.consumer.indicators import RateOfChange
from services.consumer.signals import new_signal
from services.consumer.strategies.base import StrategyParams, UniverseStrategy
from shared.clock import IST
from shared.messages import Candle, Signal, Timeframe


class MomentumParams(StrategyParams):
    """Parameters of the momentum scanner."""

    timeframe: Timeframe = "day"
    universe: tuple[str, ...] = ()
    period: int = Field(20, ge=1)
    top_k: int = Field(3, ge=1)
    min_return_pct: float = 0.0
    rebalance_every: int = Field(1, ge=1)
    rebalance_weekday: int | None = Field(None, ge=0, le=6)
    rebalance_anchor: time = time(9, 15)
    stop_loss_pct: float = Field(3.0, gt=0)
    target_pct: float = Field(6.0, gt=0)
    lookback: int = Field(60, ge=1)


class MomentumState:
    """Returns per member, the bucket being collected and the members currently held."""

    __slots__ = ("held", "pending", "pending_start", "returns")

    def __init__(self) -> None:
        self.returns: dict[str, RateOfChange] = {}
        self.pending_start: datetime | None = None
        self.pending: dict[str, tuple[Candle, float]] = {}
        self.held: set[str] = set()


class MomentumScanner(UniverseStrategy[MomentumParams, MomentumState]):
    """The equity momentum scanner (seed 002)."""

    kind = "momentum"
    params_model = MomentumParams

    def __init__(self, params: MomentumParams | None = None, *, name: str | None = None) -> None:
        super().__init__(params or MomentumParams(), name=name)
        if not self.params.universe:
            raise ValueError("the momentum scanner needs a universe of symbols")
        self.universe = frozenset(self.params.universe)

    def new_state(self) -> MomentumState:
        return MomentumState()

    def on_candle(self, candle: Candle, state: MomentumState) -> list[Signal]:
        symbol = candle.symbol
        if symbol not in self.universe:
            return []
        roc = state.returns.get(symbol)
        if roc is None:
            roc = state.returns[symbol] = RateOfChange(self.params.period)
        value = roc.update(candle.close)
        signals: list[Signal] = []
        pending_start = state.pending_start
        if pending_start is not None and candle.start > pending_start:
            signals = self._rank(state)
        elif pending_start is not None and candle.start < pending_start:
            return []  # a member's candle of a bucket already ranked without it
        if self._is_rebalance(candle):
            state.pending_start = candle.start
            state.pending[symbol] = (candle, value)
            if len(state.pending) == len(self.universe):
                signals += self._rank(state)
        return signals

    def flush(self, state: MomentumState) -> list[Signal]:
        return self._rank(state) if state.pending else []

    def forget_positions(self, state: MomentumState, symbols: Collection[str]) -> list[str]:
        forgotten = sorted(state.held.intersection(symbols))
        state.held.difference_update(forgotten)
        return forgotten

    def _is_rebalance(self, candle: Candle) -> bool:
        p = self.params
        start = candle.start.astimezone(IST)  # candles off the bus are UTC-aware
        if candle.timeframe == "day":
            return p.rebalance_weekday is None or start.weekday() == p.rebalance_weekday
        step = TIMEFRAME_MINUTES[candle.timeframe]
        anchor = p.rebalance_anchor
        minutes = (start.hour * 60 + start.minute) - (anchor.hour * 60 + anchor.minute)
        return (minutes // step) % p.rebalance_every == 0

    def _rank(self, state: MomentumState) -> list[Signal]:
        p = self.params
        pending = state.pending
        state.pending = {}
        state.pending_start = None
        ranked = sorted(
            (
                (-value, symbol)
                for symbol, (_, value) in pending.items()
                if not math.isnan(value) and value > p.min_return_pct
            )
        )
        selected = [symbol for _, symbol in ranked[: p.top_k]]
        missing = sorted(self.universe - pending.keys())
        note = f"; missing: {', '.join(missing)}" if missing else ""
        signals: list[Signal] = []
        for symbol in sorted(state.held - set(selected)):
            if symbol not in pending:
                continue  # no candle to price the exit: keep it until there is one
            candle, value = pending[symbol]
            gone = math.isnan(value) or value <= p.min_return_pct
            signals.append(
                new_signal(
                    self.name,
                    candle,
                    "SELL",
                    confidence=1.0 if gone else 0.5,
                    reason=(
                        f"dropped from the top {p.top_k}: {p.period}-candle return {value:.2f}% "
                        f"({'at or below' if gone else 'above'} threshold {p.min_return_pct:g}%){note}"
                    ),
                    stop_loss=candle.close * (1 + p.stop_loss_pct / 100),
                    target=candle.close * (1 - p.target_pct / 100),
                )
            )
            state.held.discard(symbol)
        for rank, symbol in enumerate(selected):
            if symbol in state.held:
                continue
            candle, value = pending[symbol]
            signals.append(
                new_signal(
                    self.name,
                    candle,
                    "BUY",
                    confidence=1.0 - 0.5 * rank / p.top_k,
                    reason=(
                        f"rank {rank + 1} of {len(pending)} by {p.period}-candle return "
                        f"{value:.2f}% (top {p.top_k}, threshold {p.min_return_pct:g}%){note}"
                    ),
                    stop_loss=candle.close * (1 - p.stop_loss_pct / 100),
                    target=candle.close * (1 + p.target_pct / 100),
                )
            )
            state.held.add(symbol)
        buys = [s for s in signals if s.action == "BUY"]
        sells = [s for s in signals if s.action == "SELL"]
        return sells + sorted(buys, key=lambda s: s.symbol)
