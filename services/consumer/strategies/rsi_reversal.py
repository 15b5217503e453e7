"""RSI reversal: BUY when RSI climbs back out of oversold, SELL when it falls back out of overbought.

Rules (RSI is pandas-ta's Wilder RSI, `length` 14 by default):
- BUY when the previous candle's RSI was <= `oversold` (30) and this candle's RSI is above it.
- SELL when the previous candle's RSI was >= `overbought` (70) and this candle's RSI is below it.
- Nothing is signalled before `length + 1` closes: pandas-ta seeds Wilder's averages with the
  first difference, so its early values are defined but not yet meaningful.
- confidence = 0.5 + 0.5 * min(1, depth / full_confidence_depth), where depth is how far RSI went
  beyond the level during the excursion just ended (30 -> 22 is a depth of 8 RSI points).
- stop_loss / target: `stop_loss_pct` / `target_pct` away from the close.
"""

from __future__ import annotations

import math
from typing import Self

from pydantic import Field, model_validator

from services.consumer.indicators import Rsi
from services.consumer.signals import new_signal
from services.consumer.strategies.base import Strategy, StrategyParams, gap_confidence
from shared.messages import Candle, Signal


class RsiParams(StrategyParams):
    """Parameters of the RSI reversal."""

    length: int = Field(14, ge=1)
    oversold: float = Field(30.0, gt=0, lt=100)
    overbought: float = Field(70.0, gt=0, lt=100)
    stop_loss_pct: float = Field(1.0, gt=0)
    target_pct: float = Field(2.0, gt=0)
    full_confidence_depth: float = Field(10.0, ge=0)
    lookback: int = Field(150, ge=1)

    @model_validator(mode="after")
    def _levels_in_order(self) -> Self:
        if self.oversold >= self.overbought:
            raise ValueError(
                f"oversold ({self.oversold}) must be below overbought ({self.overbought})"
            )
        return self


class RsiState:
    """One instrument's RSI, its previous value and the extreme of the current excursion."""

    __slots__ = ("closes", "extreme", "previous", "rsi")

    def __init__(self, length: int) -> None:
        self.rsi = Rsi(length)
        self.previous = math.nan
        self.closes = 0
        self.extreme = math.nan  # lowest RSI while oversold / highest while overbought


class RsiReversal(Strategy[RsiParams, RsiState]):
    """The RSI strategy (seed 001)."""

    kind = "rsi"
    params_model = RsiParams

    def __init__(self, params: RsiParams | None = None, *, name: str | None = None) -> None:
        super().__init__(params or RsiParams(), name=name)
        self._oversold = self.params.oversold
        self._overbought = self.params.overbought
        self._ready_after = self.params.length + 1

    def new_state(self) -> RsiState:
        return RsiState(self.params.length)

    def on_candle(self, candle: Candle, state: RsiState) -> Signal | None:
        value = state.rsi.update(candle.close)
        previous = state.previous
        state.previous = value
        state.closes += 1
        if state.closes < self._ready_after:
            return None
        oversold = self._oversold
        overbought = self._overbought
        signal = None
        extreme = state.extreme
        if previous <= oversold:
            lowest = extreme if extreme <= previous else previous  # NaN-safe min
            if value > oversold:
                signal = self._signal(candle, "BUY", value, oversold - lowest)
                extreme = math.nan
            else:
                extreme = value if value < lowest else lowest
        elif previous >= overbought:
            highest = extreme if extreme >= previous else previous  # NaN-safe max
            if value < overbought:
                signal = self._signal(candle, "SELL", value, highest - overbought)
                extreme = math.nan
            else:
                extreme = value if value > highest else highest
        else:
            extreme = math.nan  # between the levels: no excursion under way
        state.extreme = extreme
        return signal

    def forget_position(self, state: RsiState) -> str | None:
        # No position to forget: the previous RSI and the excursion's extreme are indicator
        # memory; BUY and SELL are level crossings, whatever the Gatekeeper holds.
        return None

    def _signal(self, candle: Candle, action: str, value: float, depth: float) -> Signal:
        p = self.params
        close = candle.close
        buy = action == "BUY"
        level = p.oversold if buy else p.overbought
        return new_signal(
            self.name,
            candle,
            "BUY" if buy else "SELL",
            confidence=gap_confidence(depth, p.full_confidence_depth),
            reason=(
                f"RSI{p.length} {value:.2f} crossed {'up out of oversold' if buy else 'down out of overbought'} "
                f"{level:g} (extreme depth {depth:.2f}) at close {close:.2f}"
            ),
            stop_loss=close * (1 - p.stop_loss_pct / 100)
            if buy
            else close * (1 + p.stop_loss_pct / 100),
            target=close * (1 + p.target_pct / 100) if buy else close * (1 - p.target_pct / 100),
        )
