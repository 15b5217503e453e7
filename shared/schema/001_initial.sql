-- TradeAlgo schema, version 1. Applied by shared.store.migrations at every service's start-up.
--
-- Rules for every migration file:
-- * plain standard DDL that runs on the embedded ClickHouse 26.9 (chdb, tests) and on the official
--   clickhouse/clickhouse-server image (production); unqualified table names (the client picks the
--   database); every statement idempotent (IF NOT EXISTS), because a migration interrupted half-way
--   is run again from its first statement;
-- * a statement ends on a line ending with ';'; lines starting with '--' are comments;
-- * never edit a migration once it ran anywhere: its checksum is recorded; add NNN_next.sql.
--
-- Times are DateTime64(6, 'Asia/Kolkata'): microseconds, stored as UTC instants, shown in IST.
-- Write timezone-aware datetimes only (a naive one would be read as IST wall time).
-- Each table has ONE owning service that writes it (the COMMENT says which); others only read.
-- MergeTree tables keep a deduplication window so a batch replayed from a service's on-disk spool
-- with the same insert_deduplication_token is not written twice.

CREATE TABLE IF NOT EXISTS ticks
(
    instrument_token UInt32,
    symbol LowCardinality(String),
    exchange_ts DateTime64(6, 'Asia/Kolkata'),
    received_ns Int64,
    last_price Float64,
    volume Int64,
    last_quantity Int64,
    average_price Float64,
    buy_quantity Int64,
    sell_quantity Int64,
    open Float64,
    high Float64,
    low Float64,
    close Float64,
    oi Int64,
    last_trade_ts Nullable(DateTime64(6, 'Asia/Kolkata')),
    bid_prices Array(Float64),
    bid_quantities Array(Int64),
    bid_orders Array(Int64),
    ask_prices Array(Float64),
    ask_quantities Array(Int64),
    ask_orders Array(Int64)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(exchange_ts)
ORDER BY (instrument_token, exchange_ts)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: producer. One row per Tick message; volume is cumulative for the day.';

CREATE TABLE IF NOT EXISTS candles
(
    instrument_token UInt32,
    symbol LowCardinality(String),
    timeframe LowCardinality(String),
    start DateTime64(6, 'Asia/Kolkata'),
    `end` DateTime64(6, 'Asia/Kolkata'),
    open Float64,
    high Float64,
    low Float64,
    close Float64,
    volume Int64,
    tick_count UInt32,
    revision UInt32,
    source LowCardinality(String),
    last_tick_received_ns Int64
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(start)
ORDER BY (instrument_token, timeframe, start)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: consumer. Candle messages; the highest revision of a candle wins (query with FINAL).';

CREATE TABLE IF NOT EXISTS historical_data
(
    instrument_token UInt32,
    timeframe LowCardinality(String),
    start DateTime64(6, 'Asia/Kolkata'),
    open Float64,
    high Float64,
    low Float64,
    close Float64,
    volume Int64,
    oi Int64,
    fetched_at DateTime64(6, 'Asia/Kolkata')
)
ENGINE = ReplacingMergeTree(fetched_at)
PARTITION BY toYYYYMM(start)
ORDER BY (instrument_token, timeframe, start)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: consumer. Cache of Kite historical candles for indicator warm-up; the latest fetch wins.';

CREATE TABLE IF NOT EXISTS instruments
(
    instrument_token UInt32,
    exchange_token UInt32,
    tradingsymbol String,
    name String,
    last_price Float64,
    expiry Nullable(Date),
    strike Float64,
    tick_size Float64,
    lot_size UInt32,
    instrument_type LowCardinality(String),
    segment LowCardinality(String),
    exchange LowCardinality(String),
    freeze_quantity UInt32,
    refreshed_at DateTime64(6, 'Asia/Kolkata')
)
ENGINE = ReplacingMergeTree(refreshed_at)
ORDER BY (exchange, tradingsymbol, instrument_token)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: sentinel. The daily Kite instrument dump; the latest refresh of a row wins. freeze_quantity 0 = unknown.';

CREATE TABLE IF NOT EXISTS options_data
(
    ts DateTime64(6, 'Asia/Kolkata'),
    underlying LowCardinality(String),
    underlying_price Float64,
    expiry Date,
    strike Float64,
    option_type LowCardinality(String),
    instrument_token UInt32,
    tradingsymbol String,
    ltp Float64,
    iv Nullable(Float64),
    delta Nullable(Float64),
    gamma Nullable(Float64),
    theta Nullable(Float64),
    vega Nullable(Float64),
    oi Int64,
    volume Int64,
    bid Float64,
    ask Float64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (underlying, expiry, ts, strike, option_type)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: gatekeeper. Option chain snapshots with IV and greeks (NULL when they cannot be computed).';

CREATE TABLE IF NOT EXISTS trading_signals
(
    signal_id String,
    strategy LowCardinality(String),
    symbol String,
    instrument_token UInt32,
    timeframe LowCardinality(String),
    action LowCardinality(String),
    price Float64,
    confidence Float64,
    candle_start DateTime64(6, 'Asia/Kolkata'),
    created_at DateTime64(6, 'Asia/Kolkata'),
    reason String,
    stop_loss Nullable(Float64),
    target Nullable(Float64),
    underlying Nullable(String),
    option_type Nullable(String),
    last_tick_received_ns Int64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY signal_id
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: consumer. Signal messages, one row per signal_id.';

CREATE TABLE IF NOT EXISTS order_intents
(
    intent_id String,
    signal_id String,
    strategy LowCardinality(String),
    symbol String,
    instrument_token UInt32,
    side LowCardinality(String),
    order_type LowCardinality(String),
    reference_price Float64,
    confidence Float64,
    timeframe LowCardinality(String),
    candle_start DateTime64(6, 'Asia/Kolkata'),
    created_at DateTime64(6, 'Asia/Kolkata'),
    reason String,
    quantity Nullable(Int64),
    product LowCardinality(String),
    limit_price Nullable(Float64),
    stop_loss Nullable(Float64),
    target Nullable(Float64),
    underlying Nullable(String),
    option_type Nullable(String),
    is_exit Bool,
    last_tick_received_ns Int64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY intent_id
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: consumer. OrderIntent messages as published, one row per intent_id; decisions on them are in risk_events and orders.';

CREATE TABLE IF NOT EXISTS orders
(
    order_id String,
    intent_id String,
    tag String,
    broker_order_id Nullable(String),
    mode LowCardinality(String),
    status LowCardinality(String),
    strategy LowCardinality(String),
    symbol String,
    instrument_token UInt32,
    side LowCardinality(String),
    order_type LowCardinality(String),
    product LowCardinality(String),
    quantity Int64,
    filled_quantity Int64,
    price Nullable(Float64),
    trigger_price Nullable(Float64),
    average_price Float64,
    reason String,
    created_at DateTime64(6, 'Asia/Kolkata'),
    updated_at DateTime64(6, 'Asia/Kolkata'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY order_id
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: gatekeeper. Current state of each order (highest version wins; created_at never changes for an order_id).';

CREATE TABLE IF NOT EXISTS order_events
(
    event_id String,
    order_id String,
    intent_id String,
    mode LowCardinality(String),
    status LowCardinality(String),
    symbol String,
    side LowCardinality(String),
    quantity Int64,
    order_type LowCardinality(String),
    price Nullable(Float64),
    ts DateTime64(6, 'Asia/Kolkata'),
    reason String,
    broker_order_id Nullable(String),
    filled_quantity Int64,
    average_price Float64,
    tag String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (order_id, ts, event_id)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: gatekeeper. OrderEvent messages: every step in an order life.';

CREATE TABLE IF NOT EXISTS positions
(
    position_id String,
    symbol String,
    instrument_token UInt32,
    product LowCardinality(String),
    mode LowCardinality(String),
    strategy LowCardinality(String),
    quantity Int64,
    average_price Float64,
    last_price Float64,
    realised_pnl Float64,
    unrealised_pnl Float64,
    stop_loss Nullable(Float64),
    target Nullable(Float64),
    opened_at DateTime64(6, 'Asia/Kolkata'),
    updated_at DateTime64(6, 'Asia/Kolkata'),
    closed_at Nullable(DateTime64(6, 'Asia/Kolkata')),
    status LowCardinality(String),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(opened_at)
ORDER BY position_id
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: gatekeeper. Positions (quantity < 0 is short); highest version wins; opened_at never changes for a position_id.';

CREATE TABLE IF NOT EXISTS risk_events
(
    event_id String,
    kind LowCardinality(String),
    reason String,
    ts DateTime64(6, 'Asia/Kolkata'),
    intent_id Nullable(String),
    symbol Nullable(String),
    details Map(String, String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, event_id)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: gatekeeper. RiskEvent messages: every denial, kill switch, breaker and exit, with its reason.';

CREATE TABLE IF NOT EXISTS sessions
(
    login_time DateTime64(6, 'Asia/Kolkata'),
    user_id String,
    outcome LowCardinality(String),
    method LowCardinality(String),
    token_fingerprint String,
    reason String,
    expires_at Nullable(DateTime64(6, 'Asia/Kolkata'))
)
ENGINE = MergeTree
ORDER BY (login_time, user_id)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: sentinel. Login audit trail. NEVER a token, password, TOTP or API secret: only a fingerprint.';

CREATE TABLE IF NOT EXISTS performance_metrics
(
    ts DateTime64(6, 'Asia/Kolkata'),
    service LowCardinality(String),
    name LowCardinality(String),
    value Float64,
    labels Map(String, String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (service, name, ts)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: every service, its own rows (service column). Latencies, throughputs, P&L snapshots.';

CREATE TABLE IF NOT EXISTS dead_letters
(
    ts DateTime64(6, 'Asia/Kolkata'),
    service LowCardinality(String),
    stream LowCardinality(String),
    entry_id String,
    kind LowCardinality(String),
    reason String,
    deliveries UInt32,
    model LowCardinality(String),
    payload String
)
ENGINE = ReplacingMergeTree
ORDER BY (service, stream, entry_id)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'owner: every service, its own rows. Bus entries given up on; payload = base64(msgpack([[field, value], ...])) of the original entry.';
