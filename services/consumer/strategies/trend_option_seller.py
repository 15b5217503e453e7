"""The hybrid option seller of seed 004: sell a put in an up-trend, a call in a down-trend.

Rules (on the UNDERLYING's candles, e.g. NSE:NIFTY 50 15minute; regime as in `trend.py`):
- flat and the regime turns bullish -> SELL a PE (short put: profits if the index does not fall);
  flat and bearish -> SELL a CE.
- short PE and the regime is no longer bullish -> EXIT the PE; short CE and no longer bearish ->
  EXIT the CE. At most one signal per candle, so a flip from bullish to bearish exits on the
  flip candle and sells the call on the next candle if the trend still holds.
- Signals carry `underlying` (Kite's name, e.g. NIFTY) and `option_type`; the Gatekeeper picks
  expiry and strike. `stop_loss` / `target` are None: the exit is this strategy's EXIT signal
  (the trend invalidation level, the slow EMA, is in the reason).
- confidence: entries 0.5 + 0.5 * min(1, gap / full_confidence_gap_pct) (EMA gap in % of the
  close); exits 1.0.
The position is the strategy's own belief from its signals; the Gatekeeper holds the real one.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from services.consumer.signals import new_signal
from services.consumer.strategies.base import (
    DEFAULT_UNDERLYINGS,
    Strategy,
    StrategyParams,
    gap_confidence,
    underlying_of,
)
from services.consumer.strategies.trend import TrendState
from shared.messages import Candle, Signal


class TrendOptionSellerParams(StrategyParams):
    """Parameters of the hybrid option seller."""

    fast: int = Field(9, ge=1)
    slow: int = Field(21, ge=2)
    band_pct: float = Field(0.05, ge=0, description="EMA gap below which the trend is neutral")
    full_confidence_gap_pct: float = Field(0.3, ge=0)
    underlyings: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_UNDERLYINGS))

    @model_validator(mode="after")
    def _fast_below_slow(self) -> Self:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class TrendOptionSellerState:
    """The underlying's trend and the short option this strategy believes it holds."""

    __slots__ = ("short", "trend")

    def __init__(self, fast: int, slow: int) -> None:
        self.trend = TrendState(fast, slow)
        self.short: Literal["CE", "PE"] | None = None


class TrendOptionSeller(Strategy[TrendOptionSellerParams, TrendOptionSellerState]):
    """Sells puts in up-trends and calls in down-trends (seed 004)."""

    kind = "trend_option_seller"
    params_model = TrendOptionSellerParams

    def __init__(
        self, params: TrendOptionSellerParams | None = None, *, name: str | None = None
    ) -> None:
        super().__init__(params or TrendOptionSellerParams(), name=name)

    def new_state(self) -> TrendOptionSellerState:
        return TrendOptionSellerState(self.params.fast, self.params.slow)

    def forget_position(self, state: TrendOptionSellerState) -> str | None:
        short, state.short = state.short, None
        return f"short {short}" if short is not None else None

    def on_candle(self, candle: Candle, state: TrendOptionSellerState) -> Signal | None:
        p = self.params
        regime, fast, slow, gap_pct = state.trend.update(candle.close, p.band_pct)
        if regime == "unknown":
            return None
        short = state.short
        if short is not None:
            still = (short == "PE" and regime == "bullish") or (
                short == "CE" and regime == "bearish"
            )
            if still:
                return None
            state.short = None
            levels = f"EMA{p.fast} {fast:.2f}, EMA{p.slow} {slow:.2f}, close {candle.close:.2f}"
            underlying = underlying_of(candle.symbol, p.underlyings)
            return new_signal(
                self.name,
                candle,
                "EXIT",
                confidence=1.0,
                reason=f"exit short {underlying} {short}: trend now {regime} ({levels})",
                underlying=underlying,
                option_type=short,
            )
        if regime == "neutral":
            return None
        option_type: Literal["CE", "PE"] = "PE" if regime == "bullish" else "CE"
        state.short = option_type
        levels = f"EMA{p.fast} {fast:.2f}, EMA{p.slow} {slow:.2f}, close {candle.close:.2f}"
        underlying = underlying_of(candle.symbol, p.underlyings)
        return new_signal(
            self.name,
            candle,
            "SELL",
            confidence=gap_confidence(gap_pct, p.full_confidence_gap_pct),
            reason=(
                f"sell {underlying} {option_type}: trend {regime} ({levels}, gap {gap_pct:.3f}%); "
                f"invalidated when the trend is no longer {regime} (slow EMA {slow:.2f})"
            ),
            underlying=underlying,
            option_type=option_type,
        )
