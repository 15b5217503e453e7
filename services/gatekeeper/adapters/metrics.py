"""The Gatekeeper's Prometheus metrics (the contract's names), on an injected registry.

Besides the contract (orders by mode and status, latencies by stage, tick -> order sent, limiter
tokens, queue depth, kill switch, breaker, P&L, open positions, denials by rule) it exports the
mode (`tradealgo_gatekeeper_mode{mode}`, read by `tradealgo status`), intent decisions, refused
order updates, reconciliation differences and broker call errors. It implements the bus's
`BusMetrics` seam so the bus counts consumed entries, dead letters and retries here.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import PREFIX, BaseMetrics, stream_length_gauge, stream_pending_gauge

# Sub-millisecond to seconds: the pipeline's hops are ~0.1-3 ms, a broker round trip 10-500 ms.
LATENCY_BUCKETS = (
    0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
)  # fmt: skip
MODES = ("logging", "paper", "live")
PNL_KINDS = ("realised", "unrealised", "mtm")


# (phrase of a denial reason, rule label), tried in order; the first match names the rule.
DENIAL_RULES: tuple[tuple[str, str], ...] = (
    ("already decided", "duplicate"),
    ("already queued", "duplicate"),
    ("kill switch tripped", "kill_switch"),
    ("trading is halted", "halted"),
    ("circuit breaker", "breaker"),
    ("daily loss limit", "daily_loss"),
    ("market is closed", "market_hours"),
    ("signal is", "signal_age"),
    ("not in the allowed", "allow_list"),
    ("confidence", "confidence"),
    ("positions open", "max_positions"),
    ("position value", "position_size"),
    ("margin", "margin"),
    ("last price", "stale_quote"),
    ("queue full", "rate"),
    ("for the order rate", "rate"),
    ("rate caps", "rate"),
    ("option chain", "options"),
    ("strike", "options"),
    ("unknown instrument", "instrument"),
    ("not tradable", "instrument"),
    ("short sale", "short_sale"),
    ("band", "price_band"),
    ("stop-loss", "stop_loss"),
    ("slice", "slicing"),
    ("lot", "lot_size"),
    ("exit", "exit"),
    ("position", "position"),
)
ORDER_STATUSES = (
    "RECORDED", "LOGGED", "SENT", "OPEN", "PARTIAL", "COMPLETE", "REJECTED", "CANCELLED", "FAILED",
)  # fmt: skip
LATENCY_STAGES = ("intent_to_sent", "sent_to_ack", "ack_to_fill")
DECISIONS = ("approved", "denied", "queued", "duplicate")
BROKER_CALLS = (
    "place_order", "modify_order", "cancel_order", "orders", "positions", "margins", "quote",
)  # fmt: skip
BROKER_ERROR_KINDS = ("refused", "network", "token")
TABLES = ("orders", "order_events", "risk_events", "positions", "options_data", "dead_letters")


def denial_rule(reason: str) -> str:
    """A low-cardinality label for a denial reason (the reason text itself goes to the logs)."""
    text = reason.lower()
    for needle, rule in DENIAL_RULES:
        if needle in text:
            return rule
    return "other"


class GatekeeperMetrics(BaseMetrics):
    SPOOLED_NAME = "gatekeeper_spool_rows"
    SPOOLED_HELP = "ClickHouse rows written to the on-disk spool or quarantined there, by table"

    def __init__(self, registry: CollectorRegistry, service: str = "gatekeeper") -> None:
        super().__init__(registry, service)
        self.orders = Counter(
            f"{PREFIX}orders", "Order state changes by mode and status", ["mode", "status"],
            registry=registry,
        )  # fmt: skip
        self.order_latency = Histogram(
            f"{PREFIX}order_latency_seconds",
            "Order stages: intent_to_sent (intent received -> request on the wire to the broker), "
            "sent_to_ack, ack_to_fill",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.tick_to_order = Histogram(
            f"{PREFIX}tick_to_order_seconds",
            "Producer receive time of the tick behind an intent -> its order's request on the wire",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.limiter_tokens = Gauge(
            f"{PREFIX}limiter_tokens", "Tokens in the order-rate bucket", registry=registry
        )
        self.queue_depth = Gauge(
            f"{PREFIX}intent_queue_depth", "Intents waiting for the order rate", registry=registry
        )
        self.kill_switch = Gauge(
            f"{PREFIX}kill_switch_tripped", "1 while the kill switch is tripped", registry=registry
        )
        self.breaker = Gauge(
            f"{PREFIX}breaker_open", "1 while the circuit breaker is open", registry=registry
        )
        self.pnl = Gauge(
            f"{PREFIX}pnl_rupees", "Day P&L in rupees (realised, unrealised, mtm)", ["kind"],
            registry=registry,
        )  # fmt: skip
        self.open_positions = Gauge(f"{PREFIX}open_positions", "Open positions", registry=registry)
        self.denials = Counter(
            f"{PREFIX}risk_denials", "Intents denied, by rule", ["rule"], registry=registry
        )
        self.mode = Gauge(
            f"{PREFIX}gatekeeper_mode", "1 for the mode the Gatekeeper runs in", ["mode"],
            registry=registry,
        )  # fmt: skip
        self.intents = Counter(
            f"{PREFIX}intents", "Intents by decision (approved, denied, queued, duplicate)",
            ["decision"], registry=registry,
        )  # fmt: skip
        self.updates_refused = Counter(
            f"{PREFIX}order_updates_refused",
            "Order updates the state machine refused (out of order, duplicated)",
            registry=registry,
        )
        self.reconciliation_differences = Counter(
            f"{PREFIX}reconciliation_differences",
            "Differences between our orders/positions and the broker's, by kind",
            ["kind"],
            registry=registry,
        )
        self.broker_errors = Counter(
            f"{PREFIX}broker_errors", "Failed broker calls by call and error kind",
            ["call", "kind"], registry=registry,
        )  # fmt: skip
        self.stream_length = stream_length_gauge(registry)
        self.stream_pending = stream_pending_gauge(registry)
        self.handler_failures = Counter(
            f"{PREFIX}handler_failures", "Handler errors left pending for a retry", ["stream"],
            registry=registry,
        )  # fmt: skip
        for kind in PNL_KINDS:
            self.pnl.labels(kind).set(0)
        self.kill_switch.set(0)
        self.breaker.set(0)

    def set_mode(self, mode: str) -> None:
        """The mode gauge, and every series of this mode primed at zero (a fresh scrape shows
        them all, so dashboards and alerts see 0 rather than nothing)."""
        for each in MODES:
            self.mode.labels(each).set(1 if each == mode else 0)
        for status in ORDER_STATUSES:
            self.orders.labels(mode, status)
        for stage in LATENCY_STAGES:
            self.order_latency.labels(stage)
        for decision in DECISIONS:
            self.intents.labels(decision)
        for rule in sorted({rule for _, rule in DENIAL_RULES} | {"other"}):
            self.denials.labels(rule)
        for call in BROKER_CALLS:
            for kind in BROKER_ERROR_KINDS:
                self.broker_errors.labels(call, kind)
        for table in TABLES:
            self.clickhouse_rows_written.labels(self.service, table)
            self.clickhouse_insert_errors.labels(self.service, table)
        for kind in ("malformed", "rejected", "poison"):
            self.dead_letters.labels(self.service, "ta:intents", kind)
        self.messages_consumed.labels(self.service, "ta:intents")
        self.messages_published.labels(self.service, "ta:order_events")
        self.messages_published.labels(self.service, "ta:risk_events")

    def order_status(self, mode: str, status: str) -> None:
        self.orders.labels(mode, status).inc()

    def denied(self, reasons: tuple[str, ...]) -> None:
        for rule in sorted({denial_rule(r) for r in reasons}):
            self.denials.labels(rule).inc()

    def set_pnl(self, realised: float, unrealised: float) -> None:
        self.pnl.labels("realised").set(realised)
        self.pnl.labels("unrealised").set(unrealised)
        self.pnl.labels("mtm").set(realised + unrealised)

    # BusMetrics (shared.bus): the Gatekeeper counts handler failures; the rest is BaseMetrics.
    def handler_failed(self, stream: str) -> None:
        self.handler_failures.labels(stream).inc()
