"""Every tunable of the Consumer (and of the backtester that runs its strategies), prefix CONSUMER_.

Strategies are configured as JSON, e.g.
`CONSUMER_STRATEGIES='[{"kind": "ema_crossover", "symbols": ["NSE:NIFTY 50"],
"params": {"timeframe": "15minute", "fast": 9, "slow": 21}}]'`; each one's parameters are
validated against its parameter model when the settings load, so a typo fails at start with the
variable's name, not at the first candle.
"""

from __future__ import annotations

from datetime import time
from typing import Literal, Self

from pydantic import AliasChoices, Field, field_validator, model_validator

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
    strategies: tuple[StrategyConfig, ...] = Field(
        default_factory=_default_strategies,
        description="strategies as JSON: [{kind, symbols, name, params, enabled}]",
    )
    intent_order_type: OrderType = Field("MARKET", description="order type of the intents")
    intent_product: Product = Field("MIS", description="product of equity/index intents")
    option_intent_product: Product = Field("NRML", description="product of option intents")

    # History warm-up
    history_candles: int | None = Field(
        None, ge=1, description="candles kept per (instrument, timeframe); None: the lookback"
    )
    historical_range_days: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_HISTORICAL_RANGE_DAYS),
        description="longest range (days) of one historical API call, per interval (JSON)",
    )
    historical_requests_per_s: float = Field(
        3.0, gt=0, description="historical API calls per second (Kite allows 3)"
    )
    warmup_max_days: int = Field(3000, ge=1, description="how far back warm-up may look")
    warmup: bool = Field(
        True, description="warm strategies from history when a strategy instrument is first seen"
    )
    backfill_gaps: bool = Field(
        True, description="fetch buckets a strategy instrument got no tick for from the API"
    )

    # The Kite historical API (warm-up and backfill); the token is read from Redis.
    api_key: str = Field(
        "",
        validation_alias=AliasChoices("CONSUMER_API_KEY", "KITE_API_KEY"),
        description="Kite Connect API key (empty: history from ClickHouse only)",
    )
    kite_api_root: str = Field(
        "https://api.kite.trade",
        validation_alias=AliasChoices("CONSUMER_KITE_API_ROOT", "KITE_API_ROOT"),
        description="Kite REST root of the historical API",
    )
    http_timeout_s: float = Field(7.0, gt=0, description="timeout of one historical API call, s")
    historical_attempts: int = Field(
        3, ge=1, description="tries of a historical call on a network error or HTTP 429"
    )

    # The service: streams, partitions, replicas.
    metrics_port: int = Field(9103, ge=0, le=65535, description="/metrics /healthz /ready port")
    tick_partitions: int = Field(
        4,
        ge=1,
        validation_alias=AliasChoices("CONSUMER_TICK_PARTITIONS", "TICK_PARTITIONS"),
        description="shards of the ticks stream (ta:ticks:{p}); must match the Producer",
    )
    replica_name: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_.-]{0,60}$",
        description="this replica's name in leases and consumer groups (empty: host-pid)",
    )
    stream_maxlen: int = Field(
        100_000, ge=100, description="approximate MAXLEN of the candles, signals, intents streams"
    )
    read_count: int = Field(
        500, ge=1, le=2000, description="tick entries read per partition in one read"
    )
    commit_interval_ms: int = Field(
        100,
        ge=1,
        description="candles, signals, checkpoint and acks are committed this often, ms "
        "(intents go out at once)",
    )
    commit_max_entries: int = Field(
        2000, ge=1, description="commit sooner once this many tick entries are uncommitted"
    )
    intent_batch_ms: float = Field(
        1.0,
        ge=0,
        description="intents decided within this long of the first waiting one go out in one "
        "call, ms",
    )
    read_block_ms: int = Field(
        200, ge=1, le=4000,
        description="how long one read waits for ticks, ms (under the Redis client's 5 s timeout)",
    )  # fmt: skip
    redis_connections_at_start: int = Field(
        8, ge=1, description="Redis connections opened at start (no handshake on a first intent)"
    )
    gc_freeze_at_start: bool = Field(
        True,
        description="keep the objects built at start out of the garbage collector's full "
        "passes (pauses of the event loop ~2 ms instead of ~15-40 ms)",
    )
    lease_ttl_s: float = Field(
        10.0, gt=0, description="a partition lease lapses this long after its last renewal"
    )
    lease_renew_s: float = Field(
        2.0, gt=0, description="lease renewal and ownership round interval, s"
    )
    timer_interval_s: float = Field(
        1.0, gt=0, description="how often buckets past end + grace are closed, s"
    )
    market_clock: Literal["feed", "system"] = Field(
        "feed",
        description="time of the close timer: the partition's newest exchange time + elapsed "
        "(feed; replays too) or the wall clock (system)",
    )
    receipt_time_ticks: bool = Field(
        False,
        description="build candles from ticks stamped with their receipt time (Producer in "
        "quote/ltp mode); false: only ticks carrying the exchange's timestamp",
    )
    checkpoint_keep_days: float = Field(
        5.0, gt=0, description="instruments idle this long leave a checkpoint at restore, days"
    )
    intent_dedup_ttl_s: float = Field(
        7 * 86400.0, gt=0, description="how long a published signal id blocks a second intent, s"
    )
    clickhouse_batch_rows: int = Field(5000, ge=1, description="rows per ClickHouse insert")
    clickhouse_flush_s: float = Field(0.5, gt=0, description="max seconds a row waits")
    sample_interval_s: float = Field(5.0, gt=0, description="stream gauges and heartbeat, s")

    # Backtester defaults (the CLI flags override them)
    backtest_mode: Literal["long-only", "long-short"] = Field(
        "long-only", description="backtest: enter on BUY, exit on SELL; or stop and reverse"
    )
    backtest_fill: Literal["next-open", "close"] = Field(
        "next-open", description="backtest: fill at the next candle's open or the signal's close"
    )
    backtest_quantity: int = Field(1, ge=1, description="backtest: units per trade")
    backtest_capital: float = Field(100_000.0, gt=0, description="backtest: starting capital")
    backtest_segment: ChargeSegment = Field(
        "futures", description="charges segment; an index trades through its future"
    )
    backtest_periods_per_year: int = Field(252, ge=1, description="trading days (Sharpe)")
    charges: ChargeSchedule = Field(
        default_factory=ChargeSchedule, description="backtest: Zerodha charge schedule (JSON)"
    )

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
        if self.lease_renew_s * 2 >= self.lease_ttl_s:
            raise ValueError("lease_renew_s must be under half of lease_ttl_s")
        return self
