"""The panels of the four Grafana dashboards: what each shows, in PromQL.

deploy/tools/grafana_dashboards.py turns these lists into deploy/grafana/dashboards/*.json;
edit here, then run it. Every metric name must be in deploy/metrics.txt (tests/deploy checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

RATE = "$__rate_interval"
SERVICES_UP = 'up{job=~"sentinel|producer|consumer|gatekeeper"}'


@dataclass(frozen=True)
class Panel:
    """One panel: a time series by default, a stat when `kind="stat"`."""

    title: str
    targets: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    description: str = ""
    thresholds: tuple[tuple[float, str], ...] = ()  # (from value, color) above the green base
    mappings: dict[str, str] = field(default_factory=dict)  # value -> text (stat panels)
    text_mode: str = "auto"  # stat panels: "name" shows the series' legend instead of its value


def quantiles(metric: str, by: str = "", label: str = "") -> tuple[tuple[str, str], ...]:
    group = f"le, {by}" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else label
    return tuple(
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RATE}])))",
            f"{prefix}p{int(q * 100)}",
        )
        for q in (0.5, 0.99)
    )


def stat_0_1(title: str, expr: str, ok: str, bad: str, legend: str = "", width: int = 6) -> Panel:
    return Panel(
        title,
        ((expr, legend),),
        kind="stat",
        width=width,
        thresholds=((1, "red"),),
        mappings={"0": ok, "1": bad},
    )


PIPELINE = (
    stat_0_1("Market open (NSE calendar)", "tradealgo:nse_market_open", "closed", "open"),
    Panel(
        "Services up",
        ((SERVICES_UP, "{{job}}"),),
        kind="stat",
        width=18,
        mappings={"0": "DOWN", "1": "up"},
        thresholds=((0, "red"), (1, "green")),
    ),
    Panel(
        "Tick rate",
        (
            (
                f"sum by (connection) (rate(tradealgo_ticks_received_total[{RATE}]))",
                "received {{connection}}",
            ),
            (f"sum(rate(tradealgo_ticks_published_total[{RATE}]))", "published"),
        ),
        unit="ops",
    ),
    Panel(
        "Seconds since the last tick",
        (("max by (connection) (tradealgo_seconds_since_last_tick)", "{{connection}}"),),
        unit="s",
        thresholds=((5, "red"),),
        description="NoTicksInMarketHours fires above 5 s while the market is open.",
    ),
    Panel(
        "Tick lag (exchange time to published)", quantiles("tradealgo_tick_lag_seconds"), unit="s"
    ),
    Panel(
        "Candle-close delay (bucket end to closed)",
        quantiles("tradealgo_candle_close_delay_seconds"),
        unit="s",
    ),
    Panel(
        "Candles closed",
        (
            (
                f"sum by (timeframe, closed_by) (rate(tradealgo_candles_closed_total[{RATE}]))",
                "{{timeframe}} by {{closed_by}}",
            ),
        ),
        unit="ops",
    ),
    Panel(
        "Candle revisions and gaps",
        (
            (
                "sum by (timeframe) (increase(tradealgo_candle_revisions_total[5m]))",
                "revisions {{timeframe}}",
            ),
            (
                "sum by (timeframe) (increase(tradealgo_candle_gaps_total[5m]))",
                "gaps {{timeframe}}",
            ),
        ),
    ),
    Panel("Stream lengths", (("max by (stream) (tradealgo_stream_length)", "{{stream}}"),)),
    Panel(
        "Stream pending (delivered, not acked)",
        (("max by (stream, group) (tradealgo_stream_pending)", "{{stream}} / {{group}}"),),
        thresholds=((100, "orange"),),
    ),
    Panel(
        "Ticker connections",
        (
            ("tradealgo_ticker_connected", "connected {{connection}}"),
            (
                "sum by (connection, reason) (increase(tradealgo_ticker_reconnects_total[5m]))",
                "reconnects {{connection}} {{reason}}",
            ),
            (
                "sum by (connection) (increase(tradealgo_feed_stalls_total[5m]))",
                "stalls {{connection}}",
            ),
        ),
    ),
    Panel("Stale instruments", (("tradealgo_stale_instruments", "stale"),)),
    Panel(
        "Messages published and consumed",
        (
            (
                f"sum by (service, stream) (rate(tradealgo_messages_published_total[{RATE}]))",
                "{{service}} -> {{stream}}",
            ),
            (
                f"sum by (service, stream) (rate(tradealgo_messages_consumed_total[{RATE}]))",
                "{{stream}} -> {{service}}",
            ),
        ),
        unit="ops",
        width=24,
    ),
)

TRADING = (
    Panel(
        "Gatekeeper mode",
        (("tradealgo_gatekeeper_mode == 1", "{{mode}}"),),
        kind="stat",
        width=6,
        text_mode="name",
        description="logging: nothing is sent; paper: simulated fills; live: real orders.",
    ),
    Panel("Open positions", (("tradealgo_open_positions", "positions"),), kind="stat", width=6),
    Panel(
        "Day P&L (MTM)",
        (('tradealgo_pnl_rupees{kind="mtm"}', "MTM"),),
        kind="stat",
        unit="currencyINR",
        width=6,
    ),
    Panel(
        "Fills (last 24 h)",
        (('sum(increase(tradealgo_orders_total{status="COMPLETE"}[1d]))', "fills"),),
        kind="stat",
        width=6,
    ),
    Panel(
        "P&L", (("sum by (kind) (tradealgo_pnl_rupees)", "{{kind}}"),), unit="currencyINR", width=24
    ),
    Panel(
        "Signals",
        (
            (
                "sum by (strategy, action) (increase(tradealgo_signals_total[5m]))",
                "{{strategy}} {{action}}",
            ),
        ),
        description="per 5 minutes",
    ),
    Panel(
        "Intents: published and decided",
        (
            (
                "sum by (strategy) (increase(tradealgo_intents_published_total[5m]))",
                "published {{strategy}}",
            ),
            ("sum by (decision) (increase(tradealgo_intents_total[5m]))", "{{decision}}"),
        ),
        description="per 5 minutes",
    ),
    Panel(
        "Orders by status",
        (("sum by (mode, status) (increase(tradealgo_orders_total[5m]))", "{{mode}} {{status}}"),),
        description="per 5 minutes",
    ),
    Panel(
        "Fills and rejections",
        (
            (
                'sum by (mode) (increase(tradealgo_orders_total{status=~"COMPLETE|PARTIAL"}[5m]))',
                "fills {{mode}}",
            ),
            (
                'sum by (mode) (increase(tradealgo_orders_total{status=~"REJECTED|FAILED"}[5m]))',
                "rejected/failed {{mode}}",
            ),
        ),
        description="per 5 minutes",
    ),
    Panel(
        "Order latency by stage", quantiles("tradealgo_order_latency_seconds", by="stage"), unit="s"
    ),
    Panel("Tick to order sent", quantiles("tradealgo_tick_to_order_seconds"), unit="s"),
    Panel(
        "Strategy time per candle", quantiles("tradealgo_strategy_seconds", by="strategy"), unit="s"
    ),
    Panel("Partitions owned by the Consumer", (("tradealgo_partitions_owned", "partitions"),)),
)

RISK = (
    stat_0_1("Kill switch", "max(tradealgo_kill_switch_tripped)", "armed", "TRIPPED"),
    stat_0_1("Circuit breaker", "max(tradealgo_breaker_open)", "closed", "OPEN"),
    stat_0_1("Halted", "max(tradealgo_halted)", "trading", "HALTED"),
    Panel(
        "Token valid",
        (("max(tradealgo_token_valid)", ""),),
        kind="stat",
        width=6,
        thresholds=((0, "red"), (1, "green")),
        mappings={"0": "INVALID", "1": "valid"},
    ),
    Panel(
        "Halted by service", (("tradealgo_halted", "{{service}}"),), description="1 while halted"
    ),
    Panel(
        "Order-rate limiter headroom",
        (
            ("tradealgo_limiter_tokens", "tokens left"),
            ("tradealgo_intent_queue_depth", "intents queued"),
        ),
    ),
    Panel(
        "Risk denials by rule",
        (("sum by (rule) (increase(tradealgo_risk_denials_total[5m]))", "{{rule}}"),),
        description="per 5 minutes",
    ),
    Panel(
        "Broker errors",
        (
            (
                "sum by (call, kind) (increase(tradealgo_broker_errors_total[5m]))",
                "{{call}} {{kind}}",
            ),
        ),
        description="per 5 minutes",
    ),
    Panel(
        "MTM against the kill-switch limit",
        (('tradealgo_pnl_rupees{kind="mtm"}', "MTM"),),
        unit="currencyINR",
    ),
    Panel(
        "Token time left",
        (("min(tradealgo_token_expiry_seconds)", "expires in"),),
        unit="s",
        thresholds=((0, "red"), (3600, "green")),
    ),
    Panel(
        "Pre-market checks",
        (("tradealgo_premarket_check", "{{check}}"),),
        description="1 pass, 0 fail",
    ),
    Panel(
        "Logins",
        (("sum by (outcome) (increase(tradealgo_logins_total[1h]))", "{{outcome}}"),),
        description="per hour",
    ),
)

STORAGE = (
    Panel(
        "ClickHouse rows written",
        (
            (
                f"sum by (service, table) (rate(tradealgo_clickhouse_rows_written_total[{RATE}]))",
                "{{service}} {{table}}",
            ),
        ),
        unit="ops",
    ),
    Panel(
        "ClickHouse insert errors",
        (
            (
                f"sum by (service, table) (rate(tradealgo_clickhouse_insert_errors_total[{RATE}]))",
                "{{service}} {{table}}",
            ),
        ),
        unit="ops",
        thresholds=((0.0001, "red"),),
    ),
    Panel(
        "Rows waiting in the spool",
        (("max by (service) (tradealgo_spool_rows)", "{{service}}"),),
        description="Rows kept on disk while ClickHouse is unreachable; ClickHouseWritesBacklogged fires after 5 minutes.",
        thresholds=((1, "orange"),),
    ),
    Panel(
        "Dead letters",
        (
            (
                "sum by (service, stream, reason_kind) (increase(tradealgo_dead_letters_total[5m]))",
                "{{service}} {{stream}} {{reason_kind}}",
            ),
        ),
        description="per 5 minutes",
    ),
)

DASHBOARDS = {
    "pipeline": ("TradeAlgo / Pipeline", "Ticks, candles, streams: is data flowing?", PIPELINE),
    "trading": ("TradeAlgo / Trading", "Signals, intents, orders, fills, P&L, positions", TRADING),
    "risk": ("TradeAlgo / Risk", "Kill switch, breaker, halts, limiter headroom, token", RISK),
    "storage": ("TradeAlgo / Storage", "ClickHouse inserts, errors, spool, dead letters", STORAGE),
}
