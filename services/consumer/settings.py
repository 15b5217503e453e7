"""Every tunable of the Consumer (and of the backtester that runs its strategies), prefix CONSUMER_.

Strategies are configured as JSON, e.g.
`CONSUMER_STRATEGIES='[{"kind": "ema_crossover", "symbols": ["NSE:NIFTY 50"],
"params": {"timeframe": "15minute", "fast": 9, "slow": 21}}]'`; each one's parameters are
validated against its parameter model when the settings load, so a typo fails at start with the
variable's name, not at the first candle. The service helper extends this class.
"""

from __future__ import annotations

from datetime import time
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from services.consumer.buckets import TIMEFRAMES
from services.consumer.strategies import StrategyConfig, StrategyConfigError, build_strategy
from shared.charges import ChargeSchedule, ChargeSegment
from shared.messages import OrderType, Product, Timeframe
from shared.settings import ServiceSettings, service_config

# Kite's historical API: the longest range one request may span, per interval. Sources disagree
# (minute 30 or 60 days, 15minute 180 or 200): override if Kite refuses a range.
DEFAULT_HISTORICAL_RANGE_DAYS: dict[str, int] = {
    "minute": 60,
    "3minute": 100,
    "5minute": 100,
    "10minute": 100,
    "15minute": 200,
    "30minute": 200,
    "60minute": 400,
    "day": 2000,
}


def _default_strategies() -> tuple[StrategyConfig, ...]:
    return (StrategyConfig(kind="ema_crossover", symbols=("NSE:NIFTY 50",)),)


class ConsumerSettings(ServiceSettings):
    """The Consumer's settings."""

    model_config = service_config("CONSUMER_")

    # Candles
    timeframes: tuple[Timeframe, ...] = Field(
        TIMEFRAMES, description="timeframes built for every subscribed instrument"
    )
    candle_grace_s: float = Field(2.0, ge=0, description="close a bucket this long after its end")
    candle_revision_window_s: float = Field(
        600.0, ge=0, description="how late (exchange time) a tick may still revise a candle"
    )
    session_open: time = Field(time(9, 15), description="regular session open (IST)")
    session_close: time = Field(time(15, 30), description="regular session close (IST)")

    # Strategies and intents
    strategies: tuple[StrategyConfig, ...] = Field(default_factory=_default_strategies)
    intent_order_type: OrderType = "MARKET"
    intent_product: Product = "MIS"
    option_intent_product: Product = "NRML"

    # History warm-up
    history_candles: int | None = Field(
        None, ge=1, description="candles kept per (instrument, timeframe); None: the lookback"
    )
    historical_range_days: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_HISTORICAL_RANGE_DAYS)
    )
    historical_requests_per_s: float = Field(3.0, gt=0)
    warmup_max_days: int = Field(3000, ge=1, description="how far back warm-up may look")

    # Backtester defaults (the CLI flags override them)
    backtest_mode: Literal["long-only", "long-short"] = "long-only"
    backtest_fill: Literal["next-open", "close"] = "next-open"
    backtest_quantity: int = Field(1, ge=1)
    backtest_capital: float = Field(100_000.0, gt=0)
    backtest_segment: ChargeSegment = Field(
        "futures", description="charges segment; an index trades through its future"
    )
    backtest_periods_per_year: int = Field(252, ge=1, description="trading days (Sharpe)")
    charges: ChargeSchedule = Field(default_factory=ChargeSchedule)

    @field_validator("strategies")
    @classmethod
    def _strategies_build(
        cls, strategies: tuple[StrategyConfig, ...]
    ) -> tuple[StrategyConfig, ...]:
        for config in strategies:
            try:
                build_strategy(config)
            except StrategyConfigError as exc:
                raise ValueError(str(exc)) from None
        names = [c.name or c.kind for c in strategies if c.enabled]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"two enabled strategies share a name {duplicates}: give each a name")
        return strategies

    @model_validator(mode="after")
    def _session_in_order(self) -> Self:
        if self.session_open >= self.session_close:
            raise ValueError("session_open must be before session_close")
        return self
