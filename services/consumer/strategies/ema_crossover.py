"""EMA crossover: BUY when the fast EMA crosses above the slow one on a closed candle, SELL below.

Rules:
- EMAs are pandas-ta's (SMA seed): nothing is signalled until BOTH exist, and the first candle on
  which both exist only records which side the fast EMA is on (a crossing needs a "before").
- A crossing is a change of the sign of `fast - slow` against the last NON-ZERO sign, so a fast
  EMA that touches the slow one and turns back is not a crossing, and one that sits exactly on it
  for a candle and then goes through is one crossing, not two.
- confidence = 0.5 + 0.5 * min(1, gap / full_confidence_gap_pct), gap = |fast - slow| / close in
  percent: a bare crossing is 0.5, a decisive one 1.0.
- stop_loss / target: `stop_loss_pct` / `target_pct` away from the close, on the losing / winning
  side of the trade.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from services.consumer.indicators import Ema
from services.consumer.signals import new_signal
from services.consumer.strategies.base import Strategy, StrategyParams, gap_confidence
from shared.messages import Candle, Signal


class EmaCrossoverParams(StrategyParams):
    """Parameters of the EMA crossover."""

    fast: int = Field(9, ge=1)
    slow: int = Field(21, ge=2)
    stop_loss_pct: float = Field(1.0, gt=0)
    target_pct: float = Field(2.0, gt=0)
    full_confidence_gap_pct: float = Field(0.1, ge=0)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        if self.lookback < self.slow:
            raise ValueError(f"lookback ({self.lookback}) must cover slow ({self.slow})")
        return self


class EmaCrossoverState:
    """One instrument's EMAs and the side the fast EMA was last seen on (+1, -1, 0 unknown)."""

    __slots__ = ("fast", "fast_update", "side", "slow", "slow_update")

    def __init__(self, fast: int, slow: int) -> None:
        self.fast = Ema(fast)
        self.slow = Ema(slow)
        self.fast_update = self.fast.update  # bound once: the hot path saves a lookup
        self.slow_update = self.slow.update
        self.side = 0


class EmaCrossover(Strategy[EmaCrossoverParams, EmaCrossoverState]):
    """The EMA crossover strategy (seed 000)."""

    kind = "ema_crossover"
    params_model = EmaCrossoverParams

    def __init__(
        self, params: EmaCrossoverParams | None = None, *, name: str | None = None
    ) -> None:
        super().__init__(params or EmaCrossoverParams(), name=name)

    def new_state(self) -> EmaCrossoverState:
        return EmaCrossoverState(self.params.fast, self.params.slow)

    def on_candle(self, candle: Candle, state: EmaCrossoverState) -> Signal | None:
        close = candle.close
        fast = state.fast_update(close)
        slow = state.slow_update(close)
        diff = fast - slow  # NaN while either EMA warms up: both comparisons below are False
        if diff > 0:
            if state.side < 0:
                state.side = 1
                return self._signal(candle, "BUY", fast, slow)
            state.side = 1
        elif diff < 0:
            if state.side > 0:
                state.side = -1
                return self._signal(candle, "SELL", fast, slow)
            state.side = -1
        return None

    def forget_position(self, state: EmaCrossoverState) -> str | None:
        # No position to forget: `side` is where the fast EMA is, indicator memory that the next
        # crossing needs; BUY and SELL are crossings, whatever the Gatekeeper holds.
        return None

    def _signal(self, candle: Candle, action: str, fast: float, slow: float) -> Signal:
        p = self.params
        close = candle.close
        gap_pct = abs(fast - slow) / close * 100.0
        buy = action == "BUY"
        return new_signal(
            self.name,
            candle,
            "BUY" if buy else "SELL",
            confidence=gap_confidence(gap_pct, p.full_confidence_gap_pct),
            reason=(
                f"EMA{p.fast} {fast:.2f} crossed {'above' if buy else 'below'} EMA{p.slow} "
                f"{slow:.2f} (gap {gap_pct:.3f}%) at close {close:.2f}"
            ),
            stop_loss=close * (1 - p.stop_loss_pct / 100)
            if buy
            else close * (1 + p.stop_loss_pct / 100),
            target=close * (1 + p.target_pct / 100) if buy else close * (1 - p.target_pct / 100),
        )
