"""The Gatekeeper's settings: every risk number is a field with a default, read from GATEKEEPER_*.

Safety interlock: `mode` defaults to "logging" (nothing is sent). "live" sends real orders with real
money and is refused unless `GATEKEEPER_LIVE_CONFIRM` is set to exactly `LIVE_CONFIRM_PHRASE`
("I understand"), so a stray `GATEKEEPER_MODE=live` alone can never start live trading.

Lists (`GATEKEEPER_ALLOWED_UNDERLYINGS`, `GATEKEEPER_ALLOWED_SYMBOLS`) are comma separated; an empty
list means "no restriction".
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode

from shared.messages import Mode, Timeframe
from shared.settings import ServiceSettings, service_config

LIVE_CONFIRM_PHRASE = "I understand"

# One candle of each timeframe: the default maximum age of a signal.
TIMEFRAME_SECONDS: dict[Timeframe, int] = {
    "minute": 60,
    "3minute": 180,
    "5minute": 300,
    "15minute": 900,
    "30minute": 1800,
    "60minute": 3600,
    "day": 86400,
}

Pct = Annotated[float, Field(ge=0, le=100)]
Weight = Annotated[float, Field(ge=0, le=1)]
StrList = Annotated[tuple[str, ...], NoDecode]


class GatekeeperSettings(ServiceSettings):
    """Pre-trade risk, order sending and the position monitor."""

    model_config = service_config("GATEKEEPER_")

    # Modes and the live interlock.
    mode: Mode = "logging"
    live_confirm: str = Field("", validate_default=True)

    # Capital and per-trade limits.
    capital: float = Field(100_000.0, gt=0, description="rupees the risk limits refer to")
    risk_per_trade_pct: Pct = 2.0
    max_capital_per_trade_pct: Pct = 10.0
    max_position_pct: Pct = Field(20.0, description="one position's value as a share of capital")
    max_concurrent_positions: int = Field(5, ge=0)
    daily_loss_limit_pct: Pct = Field(
        1.5, description="MTM loss (share of capital) at which NEW entries stop; exits still run"
    )
    kill_switch_loss_pct: Pct = Field(2.0, gt=0, description="MTM loss at or above this trips")
    flatten_on_kill: bool = False
    min_confidence: float = Field(0.0, ge=0)
    allowed_underlyings: StrList = ()
    allowed_symbols: StrList = ()
    max_signal_age_s: float | None = Field(
        None, gt=0, description="None: one candle of the intent's timeframe"
    )
    max_clock_skew_s: float = Field(2.0, ge=0, description="tolerated future created_at")
    max_quote_age_s: float = Field(10.0, gt=0, description="entries need an LTP this fresh")
    require_margin_check: bool = Field(
        True, description="live: deny entries when the available margin is unknown"
    )
    short_option_margin_pct: Pct = Field(
        15.0, description="estimate of a short option's margin as a share of underlying notional"
    )

    # Order rate: our own token bucket, then the broker's hard caps.
    orders_per_second: float = Field(5.0, gt=0)
    orders_burst: int = Field(5, ge=1)
    broker_orders_per_second: int = Field(10, ge=1)
    broker_orders_per_minute: int = Field(200, ge=1)
    broker_orders_per_day: int = Field(3000, ge=1)
    queue_size: int = Field(100, ge=0)
    queue_max_wait_s: float = Field(5.0, gt=0)

    # Circuit breaker.
    breaker_failures: int = Field(5, ge=1)
    breaker_window_s: float = Field(60.0, gt=0)
    breaker_cooldown_s: float = Field(300.0, gt=0)

    # Prices.
    slippage_pct: float = Field(0.5, gt=0, lt=20)
    allow_market_orders: bool = Field(
        False, description="False: every MARKET intent becomes a protected LIMIT order"
    )
    market_protection: float = Field(
        2.0, description="Kite market_protection for MARKET/SL-M orders: a percentage or -1 (auto)"
    )
    fno_band_premium_threshold: float = Field(50.0, gt=0)
    fno_band_pct: Pct = 40.0
    fno_band_abs: float = Field(20.0, gt=0)

    # Slicing.
    max_slices: int = Field(10, ge=1)

    # Options: strike selection, exits.
    option_min_volume: int = Field(100, ge=0)
    option_min_oi: int = Field(1000, ge=0)
    option_strikes_around_atm: int = Field(3, ge=0)
    option_weight_distance: Weight = 0.30
    option_weight_delta: Weight = 0.20
    option_weight_iv: Weight = 0.15
    option_weight_liquidity: Weight = 0.25
    option_weight_spread: Weight = 0.10
    option_target_delta: float = Field(0.30, gt=0, lt=1)
    option_rate: float = Field(0.07, ge=0, lt=1, description="risk-free rate for Black-76 IV")
    option_expiry_time: time = time(15, 30)
    option_stop_pct: float = Field(30.0, gt=0, lt=100)
    option_target_multiple: float = Field(
        1.5, gt=0, description="target distance as a multiple of the stop distance"
    )

    # Position monitor.
    exit_before_expiry_s: float = Field(3600.0, ge=0)
    square_off_time: time = time(15, 15)
    trailing_stop_pct: float | None = Field(None, gt=0, lt=100)
    position_check_interval_s: float = Field(5.0, gt=0)
    recovery_max_age_s: float = Field(
        60.0, gt=0, description="after a crash, a recorded order older than this is not placed"
    )

    @field_validator("allowed_underlyings", "allowed_symbols", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("live_confirm")
    @classmethod
    def _live_needs_confirmation(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("mode") == "live" and value != LIVE_CONFIRM_PHRASE:
            raise ValueError(
                f'live mode needs GATEKEEPER_LIVE_CONFIRM="{LIVE_CONFIRM_PHRASE}" '
                "(a safety interlock: live sends real orders with real money)"
            )
        return value

    @field_validator("market_protection")
    @classmethod
    def _market_protection(cls, value: float) -> float:
        # Zerodha rejects market_protection=0 on MARKET and SL-M orders.
        if value != -1 and not 0 < value <= 100:
            raise ValueError("must be -1 (auto) or a percentage in (0, 100]")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> GatekeeperSettings:
        weights = (
            self.option_weight_distance
            + self.option_weight_delta
            + self.option_weight_iv
            + self.option_weight_liquidity
            + self.option_weight_spread
        )
        if abs(weights - 1.0) > 1e-9:
            raise ValueError(f"option weights must sum to 1 (got {weights:.4f})")
        if self.max_slices > self.broker_orders_per_second:
            raise ValueError(
                "max_slices cannot exceed broker_orders_per_second: a sliced intent goes out at once"
            )
        if self.daily_loss_limit_pct > self.kill_switch_loss_pct:
            raise ValueError("daily_loss_limit_pct must not exceed kill_switch_loss_pct")
        return self

    def signal_max_age_s(self, timeframe: Timeframe) -> float:
        """The oldest an entry signal may be: the setting, or one candle of its timeframe."""
        if self.max_signal_age_s is not None:
            return self.max_signal_age_s
        return float(TIMEFRAME_SECONDS[timeframe])
