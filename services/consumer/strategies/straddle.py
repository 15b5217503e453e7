"""The straddle manager of seed 004: sell an ATM straddle in a quiet market, exit on a real move.

Rules (on the UNDERLYING's candles; regime as in `trend.py`):
- flat, the trend neutral AND RSI inside [rsi_low, rsi_high] (40..60) -> SELL a straddle: one
  signal with `underlying` set and `option_type` None, meaning both legs at the same ATM strike
  (the Gatekeeper picks expiry and strike and places both legs).
- short a straddle and the underlying's close has moved `exit_move_pct` percent or more from the
  close it was sold at (either way) -> EXIT both legs. The entry price is the signal candle's
  close (the strategy cannot know the fill).
- `stop_loss` / `target` are None: the exit is this strategy's EXIT signal.
- confidence: entries 1 - 0.5 * |RSI - mid| / half-band (RSI 50 -> 1.0, at 40 or 60 -> 0.5);
  exits 1.0.
"""

from __future__ import annotations

import math
from typing import Self

from pydantic import Field, model_validator

from services.consumer.indicators import Rsi
from services.consumer.signals import new_signal
from services.consumer.strategies.base import (
    DEFAULT_UNDERLYINGS,
    Strategy,
    StrategyParams,
    underlying_of,
)
from services.consumer.strategies.trend import TrendState
from shared.messages import Candle, Signal


class StraddleParams(StrategyParams):
    """Parameters of the straddle manager."""

    fast: int = Field(9, ge=1)
    slow: int = Field(21, ge=2)
    band_pct: float = Field(0.05, ge=0, description="EMA gap below which the trend is neutral")
    rsi_length: int = Field(14, ge=1)
    rsi_low: float = Field(40.0, gt=0, lt=100)
    rsi_high: float = Field(60.0, gt=0, lt=100)
    exit_move_pct: float = Field(0.5, gt=0)
    underlyings: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_UNDERLYINGS))

    @model_validator(mode="after")
    def _bands_in_order(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        if self.rsi_low >= self.rsi_high:
            raise ValueError(f"rsi_low ({self.rsi_low}) must be below rsi_high ({self.rsi_high})")
        return self


class StraddleState:
    """Trend, RSI and the close at which the straddle was sold (NaN when flat)."""

    __slots__ = ("entry", "rsi", "trend")

    def __init__(self, fast: int, slow: int, rsi_length: int) -> None:
        self.trend = TrendState(fast, slow)
        self.rsi = Rsi(rsi_length)
        self.entry = math.nan


class StraddleManager(Strategy[StraddleParams, StraddleState]):
    """Sells ATM straddles when the underlying is quiet and exits on a move (seed 004)."""

    kind = "straddle"
    params_model = StraddleParams

    def __init__(self, params: StraddleParams | None = None, *, name: str | None = None) -> None:
        super().__init__(params or StraddleParams(), name=name)

    def new_state(self) -> StraddleState:
        p = self.params
        return StraddleState(p.fast, p.slow, p.rsi_length)

    def forget_position(self, state: StraddleState) -> str | None:
        entry, state.entry = state.entry, math.nan
        return f"short straddle sold at {entry:.2f}" if entry == entry else None

    def on_candle(self, candle: Candle, state: StraddleState) -> Signal | None:
        p = self.params
        close = candle.close
        regime, fast, slow, gap_pct = state.trend.update(close, p.band_pct)
        rsi = state.rsi.update(close)
        entry = state.entry
        if entry == entry:  # short a straddle
            move_pct = (close - entry) / entry * 100.0
            if abs(move_pct) < p.exit_move_pct:
                return None
            state.entry = math.nan
            underlying = underlying_of(candle.symbol, p.underlyings)
            return new_signal(
                self.name,
                candle,
                "EXIT",
                confidence=1.0,
                reason=(
                    f"exit {underlying} straddle: moved {move_pct:+.2f}% from {entry:.2f} to "
                    f"{close:.2f} (limit {p.exit_move_pct:g}%)"
                ),
                underlying=underlying,
            )
        if regime != "neutral" or not p.rsi_low <= rsi <= p.rsi_high:
            return None
        state.entry = close
        underlying = underlying_of(candle.symbol, p.underlyings)
        mid = (p.rsi_low + p.rsi_high) / 2
        half_band = (p.rsi_high - p.rsi_low) / 2
        return new_signal(
            self.name,
            candle,
            "SELL",
            confidence=1.0 - 0.5 * abs(rsi - mid) / half_band,
            reason=(
                f"sell {underlying} ATM straddle: trend neutral (EMA{p.fast} {fast:.2f}, "
                f"EMA{p.slow} {slow:.2f}, gap {gap_pct:.3f}% < {p.band_pct:g}%), "
                f"RSI{p.rsi_length} {rsi:.2f} in [{p.rsi_low:g}, {p.rsi_high:g}], close {close:.2f}; "
                f"exit on a {p.exit_move_pct:g}% move"
            ),
            underlying=underlying,
        )
