"""The Producer's settings, read from PRODUCER_* (Kite fields also from KITE_*)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from shared.settings import ServiceSettings, service_config

KITE_MAX_CONNECTIONS = 3  # per API key (Kite's limit)
KITE_MAX_INSTRUMENTS_PER_CONNECTION = 3000

TickMode = Literal["full", "quote", "ltp"]


def _alias(name: str, fallback: str) -> AliasChoices:
    return AliasChoices(f"PRODUCER_{name}", fallback)


def split_symbols(value: Any) -> Any:
    """ "NSE:NIFTY 50, NSE:NIFTY BANK" -> ("NSE:NIFTY 50", "NSE:NIFTY BANK") (spaces inside kept)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def split_underlyings(value: Any) -> Any:
    """ "NIFTY=NSE:NIFTY 50,BANKNIFTY=NSE:NIFTY BANK" -> {"NIFTY": "NSE:NIFTY 50", ...}."""
    if not isinstance(value, str):
        return value
    result: dict[str, str] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        name, sep, spot = part.partition("=")
        if not sep or not name.strip() or ":" not in spot:
            raise ValueError(f"expected NAME=EXCHANGE:SPOT_SYMBOL, got {part.strip()!r}")
        result[name.strip().upper()] = spot.strip()
    return result


class ProducerSettings(ServiceSettings):
    """KiteTicker -> Redis Streams and ClickHouse."""

    model_config = service_config("PRODUCER_")

    metrics_port: int = Field(9102, ge=0, le=65535, description="/metrics /healthz /ready port")

    # Kite.
    api_key: str = Field(
        "", validation_alias=_alias("API_KEY", "KITE_API_KEY"), description="Kite Connect API key"
    )
    kite_api_root: str = Field(
        "https://api.kite.trade",
        validation_alias=_alias("KITE_API_ROOT", "KITE_API_ROOT"),
        description="Kite REST root (quotes of the option underlyings)",
    )
    kite_ws_root: str = Field(
        "wss://ws.kite.trade",
        validation_alias=_alias("KITE_WS_ROOT", "KITE_WS_ROOT"),
        description="KiteTicker WebSocket root",
    )
    http_timeout_s: float = Field(7.0, gt=0, description="Kite REST timeout")

    # What to subscribe.
    instruments: Annotated[tuple[str, ...], NoDecode] = Field(
        ("NSE:NIFTY 50", "NSE:NIFTY BANK"),
        description="EXCHANGE:TRADINGSYMBOL list, comma separated",
    )
    option_underlyings: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: {"NIFTY": "NSE:NIFTY 50", "BANKNIFTY": "NSE:NIFTY BANK"},
        description="option chains to stream: NAME=EXCHANGE:SPOT_SYMBOL,... (empty: none)",
    )
    option_exchange: str = Field("NFO", description="exchange of the option chains")
    option_strikes_each_side: int = Field(
        10, ge=0, description="strikes above and below the money, nearest expiry, CE and PE"
    )
    tick_mode: TickMode = Field("full", description="KiteTicker mode")
    max_connections: int = Field(
        KITE_MAX_CONNECTIONS, ge=1, le=KITE_MAX_CONNECTIONS, description="WebSocket connections"
    )
    instruments_per_connection: int = Field(
        KITE_MAX_INSTRUMENTS_PER_CONNECTION,
        ge=1,
        le=KITE_MAX_INSTRUMENTS_PER_CONNECTION,
        description="instruments per WebSocket connection",
    )
    reconnect_max_delay_s: int = Field(
        60, ge=5, description="KiteTicker's own reconnect back-off ceiling (its floor is 5)"
    )
    reconnect_max_tries: int = Field(300, ge=1, le=300, description="KiteTicker reconnect tries")
    connect_timeout_s: int = Field(30, ge=1, description="WebSocket connect timeout")

    # Publishing.
    tick_partitions: int = Field(
        4,
        ge=1,
        validation_alias=_alias("TICK_PARTITIONS", "TICK_PARTITIONS"),
        description="shards of the ticks stream (ta:ticks:{p}); must match the Consumer",
    )
    ticks_maxlen: int = Field(
        200_000, ge=1000, description="approximate MAXLEN of each ticks shard"
    )
    control_maxlen: int = Field(10_000, ge=10, description="MAXLEN of the other streams written")
    publish_batch: int = Field(
        2000, ge=1, description="ticks per Redis append call (one scripted call per batch)"
    )
    buffer_max_frames: int = Field(
        20_000,
        ge=1,
        description="frames held between the WebSocket thread and the publisher; beyond it the "
        "OLDEST frame is dropped and counted",
    )
    drain_max_ticks: int = Field(
        10_000, ge=1, description="ticks parsed per publish cycle (bounds one cycle's latency)"
    )
    clickhouse_batch_rows: int = Field(
        50_000,
        ge=1,
        description="tick rows per ClickHouse insert (large: fewer parts for ClickHouse to merge)",
    )
    clickhouse_flush_s: float = Field(1.0, gt=0, description="max seconds a tick row waits")
    write_clickhouse: bool = Field(True, description="also write every tick to ClickHouse `ticks`")
    clickhouse_writer: Literal["process", "thread"] = Field(
        "process",
        description="process: tick rows are built and inserted by a worker process (another "
        "core); thread: in the Producer's own process",
    )
    gc_freeze_at_start: bool = Field(
        True,
        description="keep the objects built at start out of the garbage collector's full "
        "passes (pauses of the event loop ~2 ms instead of ~15-40 ms)",
    )
    rest_after_ms: float = Field(
        3.0,
        ge=0,
        le=100,
        description="ms a frame's option-chain ticks follow its listed instruments' ticks "
        "(indices, futures, equities: sent first), leaving the CPU to the decisions those set "
        "off (0: at once)",
    )
    clickhouse_handoff_ms: float = Field(
        100.0,
        ge=0,
        description="process writer: frames are handed to it together once the oldest waited "
        "this long (ms; 0: every frame at once)",
    )
    clickhouse_writer_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="process writer: how much lower its CPU priority is (nice, 0-19), so "
        "publishing ticks wins a busy core; rows wait, none is dropped",
    )
    clickhouse_max_inflight: int = Field(
        32,
        ge=1,
        description="process writer: batches handed over and not yet written; beyond it frames "
        "are not written to ClickHouse and are counted (Redis is never held up)",
    )

    # Watchdog.
    stall_seconds: float = Field(
        5.0,
        gt=0,
        description="no tick on a connection this long in market hours: alert + reconnect",
    )
    stall_backoff_max_s: float = Field(
        60.0,
        gt=0,
        description="cap of the doubling wait between forced reconnects of a silent feed",
    )
    snapshot_grace_s: float = Field(
        0.5,
        ge=0,
        description="frames this soon after (re)subscribing are Kite's snapshot, not proof of a "
        "live feed (watchdog back-off)",
    )
    watchdog_interval_s: float = Field(0.5, gt=0, description="watchdog cadence")
    instrument_stale_seconds: float = Field(
        60.0, gt=0, description="an instrument silent this long (feed alive) counts as stale"
    )
    watch_outside_market_hours: bool = Field(
        False, description="run the stall watchdog even when the market is closed (tests, sims)"
    )
    token_poll_s: float = Field(
        5.0, gt=0, description="while the token is rejected or missing, re-read Redis this often"
    )
    sample_interval_s: float = Field(5.0, gt=0, description="stream length / gauges sampling")

    @field_validator("instruments", mode="before")
    @classmethod
    def _split_instruments(cls, value: Any) -> Any:
        return split_symbols(value)

    @field_validator("option_underlyings", mode="before")
    @classmethod
    def _split_underlyings(cls, value: Any) -> Any:
        return split_underlyings(value)

    @field_validator("instruments")
    @classmethod
    def _exchange_prefixed(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for symbol in value:
            exchange, sep, name = symbol.partition(":")
            if not sep or not exchange or not name:
                raise ValueError(f"{symbol!r} is not EXCHANGE:TRADINGSYMBOL")
        return value

    @model_validator(mode="after")
    def _capacity(self) -> ProducerSettings:
        if self.drain_max_ticks < 1 or self.publish_batch < 1:
            raise ValueError("drain_max_ticks and publish_batch must be positive")
        return self

    @property
    def capacity(self) -> int:
        """Instruments this API key can stream at once with these settings."""
        return self.max_connections * self.instruments_per_connection
