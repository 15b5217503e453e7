"""The Gatekeeper's settings: every risk number is a field with a default, read from GATEKEEPER_*.

Safety interlock: `mode` defaults to "logging" (nothing is sent). "live" sends real orders with real
money and is refused unless `GATEKEEPER_LIVE_CONFIRM` is set to exactly `LIVE_CONFIRM_PHRASE`
("I understand"), so a stray `GATEKEEPER_MODE=live` alone can never start live trading. Paper mode
sends orders only to a simulator: `paper_fills=simulator` is refused against the real Kite host.

Lists (`GATEKEEPER_ALLOWED_UNDERLYINGS`, `GATEKEEPER_ALLOWED_SYMBOLS`) are comma separated; an empty
list means "no restriction".
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode

from shared.messages import Mode, Timeframe
from shared.settings import ServiceSettings, service_config

LIVE_CONFIRM_PHRASE = "I understand"
# Hosts of the real broker: paper mode never sends an order there.
REAL_KITE_HOSTS = frozenset({"api.kite.trade", "kite.zerodha.com", "ws.kite.trade"})

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
PaperFills = Literal["auto", "local", "simulator"]
OrderUpdateSource = Literal["websocket", "poll"]
ClockSource = Literal["auto", "system", "market"]


def _alias(name: str, fallback: str) -> AliasChoices:
    return AliasChoices(f"GATEKEEPER_{name}", fallback)


def is_real_kite(root: str) -> bool:
    """Whether a Kite root URL points at the real broker (not a simulator)."""
    host = (urlsplit(root).hostname or "").lower()
    return host in REAL_KITE_HOSTS or host.endswith(".zerodha.com") or host.endswith(".kite.trade")


class GatekeeperSettings(ServiceSettings):
    """Pre-trade risk, order sending and the position monitor."""

    model_config = service_config("GATEKEEPER_")

    # Modes and the live interlock.
    mode: Mode = Field(
        "logging", description="logging (log+store, send nothing), paper (simulated fills) or live"
    )
    live_confirm: str = Field(
        "",
        validate_default=True,
        description=f'live mode only starts when this is exactly "{LIVE_CONFIRM_PHRASE}"',
    )

    # Capital and per-trade limits.
    capital: float = Field(100_000.0, gt=0, description="rupees the risk limits refer to")
    risk_per_trade_pct: Pct = Field(2.0, description="capital at risk per trade (to the stop), %")
    max_capital_per_trade_pct: Pct = Field(10.0, description="capital one trade may employ, %")
    max_position_pct: Pct = Field(20.0, description="one position's value as a share of capital")
    max_concurrent_positions: int = Field(5, ge=0, description="open positions at most")
    daily_loss_limit_pct: Pct = Field(
        1.5, description="MTM loss (share of capital) at which NEW entries stop; exits still run"
    )
    kill_switch_loss_pct: Pct = Field(2.0, gt=0, description="MTM loss at or above this trips")
    flatten_on_kill: bool = Field(
        False, description="on a kill-switch trip, close every position with protected LIMITs"
    )
    min_confidence: float = Field(0.0, ge=0, description="entries below this confidence are denied")
    allowed_underlyings: StrList = Field((), description="underlyings allowed (empty: any)")
    allowed_symbols: StrList = Field((), description="EXCHANGE:SYMBOLs allowed (empty: any)")
    max_signal_age_s: float | None = Field(
        None, gt=0, description="oldest entry signal, s (empty: one candle of its timeframe)"
    )
    max_clock_skew_s: float = Field(2.0, ge=0, description="tolerated future created_at, s")
    max_quote_age_s: float = Field(10.0, gt=0, description="entries need an LTP this fresh, s")
    require_margin_check: bool = Field(
        True, description="live: deny entries when the available margin is unknown"
    )
    short_option_margin_pct: Pct = Field(
        15.0, description="estimate of a short option's margin as a share of underlying notional"
    )

    # Order rate: our own token bucket, then the broker's hard caps.
    orders_per_second: float = Field(5.0, gt=0, description="our token bucket's rate, orders/s")
    orders_burst: int = Field(5, ge=1, description="our token bucket's size, orders")
    broker_orders_per_second: int = Field(10, ge=1, description="broker cap, orders per second")
    broker_orders_per_minute: int = Field(200, ge=1, description="broker cap, orders per minute")
    broker_orders_per_day: int = Field(3000, ge=1, description="broker cap, orders per day")
    queue_size: int = Field(100, ge=0, description="entries waiting for the rate at most")
    queue_max_wait_s: float = Field(5.0, gt=0, description="an entry waits this long at most, s")

    # Circuit breaker.
    breaker_failures: int = Field(5, ge=1, description="failed/rejected orders that open it")
    breaker_window_s: float = Field(60.0, gt=0, description="...within this window, s")
    breaker_cooldown_s: float = Field(300.0, gt=0, description="new orders pause this long, s")

    # Prices.
    slippage_pct: float = Field(
        0.5, gt=0, lt=20, description="MARKET -> LIMIT at LTP x (1 +- this %)"
    )
    allow_market_orders: bool = Field(
        False, description="False: every MARKET intent becomes a protected LIMIT order"
    )
    market_protection: float = Field(
        2.0, description="Kite market_protection for MARKET/SL-M orders: a percentage or -1 (auto)"
    )
    fno_band_premium_threshold: float = Field(
        50.0, gt=0, description="F&O price band: premium above which the band is a percentage"
    )
    fno_band_pct: Pct = Field(40.0, description="F&O price band above the threshold, %")
    fno_band_abs: float = Field(20.0, gt=0, description="F&O price band at or below it, rupees")

    # Slicing.
    max_slices: int = Field(10, ge=1, description="child orders of one intent at most (Kite: 10)")

    # Options: strike selection, exits.
    option_min_volume: int = Field(100, ge=0, description="strike filter: day volume at least")
    option_min_oi: int = Field(1000, ge=0, description="strike filter: open interest at least")
    option_strikes_around_atm: int = Field(3, ge=0, description="strikes each side of ATM scored")
    option_weight_distance: Weight = Field(0.30, description="strike score weight: distance")
    option_weight_delta: Weight = Field(0.20, description="strike score weight: delta")
    option_weight_iv: Weight = Field(0.15, description="strike score weight: implied volatility")
    option_weight_liquidity: Weight = Field(0.25, description="strike score weight: liquidity")
    option_weight_spread: Weight = Field(0.10, description="strike score weight: bid-ask spread")
    option_target_delta: float = Field(0.30, gt=0, lt=1, description="preferred |delta|")
    option_rate: float = Field(0.07, ge=0, lt=1, description="risk-free rate for Black-76 IV")
    option_expiry_time: time = Field(time(15, 30), description="contracts expire at (IST)")
    option_stop_pct: float = Field(30.0, gt=0, lt=100, description="option stop-loss, % of premium")
    option_target_multiple: float = Field(
        1.5, gt=0, description="target distance as a multiple of the stop distance"
    )

    # Position monitor.
    exit_before_expiry_s: float = Field(3600.0, ge=0, description="exit this long before expiry, s")
    square_off_time: time = Field(time(15, 15), description="intraday (MIS) square-off time (IST)")
    trailing_stop_pct: float | None = Field(
        None, gt=0, lt=100, description="trailing stop, % from the best price (empty: off)"
    )
    position_check_interval_s: float = Field(
        5.0, gt=0, description="time-based exits and MTM checked at least this often, s"
    )
    recovery_max_age_s: float = Field(
        60.0, gt=0, description="after a crash, a recorded order older than this is not placed"
    )

    # -- the async shell ---------------------------------------------------------------------
    metrics_port: int = Field(9104, ge=0, le=65535, description="/metrics /healthz /ready port")
    api_key: str = Field(
        "",
        validation_alias=_alias("API_KEY", "KITE_API_KEY"),
        description="Kite API key (live, paper against the simulator, quotes)",
    )
    kite_api_root: str = Field(
        "https://api.kite.trade",
        validation_alias=_alias("KITE_API_ROOT", "KITE_API_ROOT"),
        description="Kite REST root (the simulator's in paper mode)",
    )
    kite_ws_root: str = Field(
        "wss://ws.kite.trade",
        validation_alias=_alias("KITE_WS_ROOT", "KITE_WS_ROOT"),
        description="KiteTicker root for order updates",
    )
    http_timeout_s: float = Field(7.0, gt=0, description="Kite REST timeout, s")
    clock: ClockSource = Field(
        "auto",
        description="system (wall clock), market (the newest tick's exchange time: replays on the "
        "simulator), auto (market in paper mode against the simulator, else system)",
    )
    market_clock_symbol: str = Field(
        "NSE:NIFTY 50", description="market clock: the quote whose timestamp starts it"
    )
    paper_fills: PaperFills = Field(
        "auto",
        description="paper fills: local (fill model on live ticks), simulator (orders sent to "
        "the Kite simulator), auto (simulator unless the root is the real Kite)",
    )
    order_updates: OrderUpdateSource = Field(
        "websocket", description="order updates from the KiteTicker (polling always backs it up)"
    )
    order_poll_interval_s: float = Field(
        2.0, gt=0, description="poll the order book this often while orders are open, s"
    )
    broker_retry_attempts: int = Field(
        3, ge=1, description="tries of a READ broker call on network errors (never place_order)"
    )
    broker_retry_initial_s: float = Field(0.2, gt=0, description="first retry back-off, s")
    broker_retry_max_s: float = Field(2.0, gt=0, description="retry back-off ceiling, s")
    recovery_delay_s: float = Field(
        1.0, ge=0, description="after a failed place_order, wait this long before the tag lookup"
    )
    recovery_attempts: int = Field(
        5, ge=1, description="tag lookups of a failed order before it is reported as a conflict"
    )
    token_wait_s: float = Field(
        2.0, gt=0, description="re-read the access token from Redis this often while missing, s"
    )
    tick_partitions: int = Field(
        4,
        ge=1,
        validation_alias=_alias("TICK_PARTITIONS", "TICK_PARTITIONS"),
        description="shards of the ticks stream (ta:ticks:{p}); must match the Producer",
    )
    redis_connections_at_start: int = Field(
        8, ge=1, description="Redis connections opened at start (no handshake on a first intent)"
    )
    gc_freeze_at_start: bool = Field(
        True,
        description="keep the objects built at start out of the garbage collector's full "
        "passes (pauses of the event loop ~2 ms instead of ~15-40 ms)",
    )
    tick_read_count: int = Field(
        500, ge=1, description="most ticks per shard in one XREAD (a whole KiteTicker frame)"
    )
    ticks_per_yield: int = Field(
        32, ge=1, description="ticks handled before the loop lets an intent go first"
    )
    intent_read_count: int = Field(100, ge=1, description="intents per XREADGROUP round trip")
    consumer_name: str = Field(
        "", description="consumer name in the intents group (empty: host-pid)"
    )
    stream_maxlen: int = Field(100_000, ge=10, description="MAXLEN of the streams written")
    reclaim_idle_ms: int = Field(
        60_000, ge=1000, description="an intent pending this long (a dead consumer) is retried"
    )
    chain_refresh_s: float = Field(
        5.0, gt=0, description="option chain quotes (options intents) refreshed this often, s"
    )
    chain_expiries: int = Field(2, ge=1, description="nearest expiries loaded into a chain")
    kill_switch_poll_s: float = Field(
        2.0, gt=0, description="re-read the kill-switch hash (a CLI release) this often, s"
    )
    sample_interval_s: float = Field(5.0, gt=0, description="gauges and heartbeat cadence, s")
    halt_on_reconcile_differences: bool = Field(
        True, description="halt new entries when the start-up reconciliation finds differences"
    )
    state_ttl_s: int = Field(
        3 * 86400, ge=3600, description="TTL of the day's order/decision records in Redis, s"
    )
    clickhouse_batch_rows: int = Field(500, ge=1, description="rows per ClickHouse insert")
    clickhouse_flush_s: float = Field(0.5, gt=0, description="max seconds a row waits, s")

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
        if self.mode == "live" and self.clock == "market":
            raise ValueError("clock=market replays the simulator's day: never in live mode")
        if (
            self.mode == "paper"
            and self.paper_fills == "simulator"
            and is_real_kite(self.kite_api_root)
        ):
            raise ValueError(
                "paper_fills=simulator sends orders to kite_api_root, which is the REAL Kite "
                f"({self.kite_api_root}): point it at the simulator or use paper_fills=local"
            )
        return self

    def signal_max_age_s(self, timeframe: Timeframe) -> float:
        """The oldest an entry signal may be: the setting, or one candle of its timeframe."""
        if self.max_signal_age_s is not None:
            return self.max_signal_age_s
        return float(TIMEFRAME_SECONDS[timeframe])

    def paper_source(self) -> Literal["local", "simulator"]:
        """Where paper fills come from: `auto` is the simulator unless the root is the real Kite."""
        if self.paper_fills == "auto":
            return "local" if is_real_kite(self.kite_api_root) else "simulator"
        return self.paper_fills

    def market_clock(self) -> bool:
        """Whether `now` follows the ticks (a replay on the simulator) instead of the wall."""
        if self.clock == "auto":
            return self.mode == "paper" and self.paper_source() == "simulator"
        return self.clock == "market"

    def sends_to_broker(self) -> bool:
        """Whether orders go to a Kite API (live, or paper against the simulator)."""
        return self.mode == "live" or (self.mode == "paper" and self.paper_source() == "simulator")
