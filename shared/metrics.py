"""Prometheus metrics every service shares, built against an injected registry (faust-style).

A service builds one metrics object in its `__main__` against a `CollectorRegistry` (a fresh one
per test) and extends it with its own metrics:

    class GatekeeperMetrics(BaseMetrics):
        def __init__(self, registry: CollectorRegistry, service: str = "gatekeeper") -> None:
            super().__init__(registry, service)
            self.denials = Counter("tradealgo_risk_denials", "Intents denied", ["service", "rule"],
                                   registry=registry)

Every metric name starts with `tradealgo_` and carries a `service` label. BaseMetrics also implements
the bus's `BusMetrics` and the store's `StoreMetrics` seams, so a service class adds only its own
metrics (and the stream gauges below, for the services that sample streams).
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Counter, Gauge, Info

PREFIX = "tradealgo_"


def stream_length_gauge(registry: CollectorRegistry) -> Gauge:
    """`tradealgo_stream_length{stream}`, set by a service that samples its streams' lengths."""
    return Gauge(f"{PREFIX}stream_length", "Entries in a stream", ["stream"], registry=registry)


def stream_pending_gauge(registry: CollectorRegistry) -> Gauge:
    """`tradealgo_stream_pending{stream,group}`, set by a service that samples its groups."""
    return Gauge(
        f"{PREFIX}stream_pending", "Entries delivered to a group and not acked yet",
        ["stream", "group"], registry=registry,
    )  # fmt: skip


class BaseMetrics:
    """The metrics of the shared platform: bus traffic, dead letters, halts, ClickHouse writes."""

    # The spool counter {table, outcome}; the Gatekeeper keeps its older name (dashboards use it).
    SPOOLED_NAME = "clickhouse_rows_spooled"
    SPOOLED_HELP = "Rows written to the on-disk spool (spooled) or set aside (quarantined)"

    def __init__(self, registry: CollectorRegistry, service: str, version: str = "0.1.0") -> None:
        self.registry = registry
        self.service = service
        self.messages_consumed = Counter(
            f"{PREFIX}messages_consumed",
            "Stream entries handled and acked",
            ["service", "stream"],
            registry=registry,
        )
        self.messages_published = Counter(
            f"{PREFIX}messages_published",
            "Stream entries published",
            ["service", "stream"],
            registry=registry,
        )
        self.dead_letters = Counter(
            f"{PREFIX}dead_letters",
            "Entries moved to the dead-letter stream",
            ["service", "stream", "reason_kind"],
            registry=registry,
        )
        self.halted = Gauge(
            f"{PREFIX}halted",
            "1 while trading is halted for this service",
            ["service"],
            registry=registry,
        )
        self.service_up = Gauge(
            f"{PREFIX}service_up", "1 while the service runs", ["service"], registry=registry
        )
        self.build = Info(f"{PREFIX}build", "Build of the running service", registry=registry)
        self.clickhouse_rows_written = Counter(
            f"{PREFIX}clickhouse_rows_written",
            "Rows inserted into ClickHouse",
            ["service", "table"],
            registry=registry,
        )
        self.clickhouse_insert_errors = Counter(
            f"{PREFIX}clickhouse_insert_errors",
            "Failed ClickHouse insert attempts",
            ["service", "table"],
            registry=registry,
        )
        self.spool_rows = Gauge(
            f"{PREFIX}spool_rows",
            "Rows waiting in the on-disk spool for ClickHouse",
            ["service"],
            registry=registry,
        )
        self.alerts = Counter(
            f"{PREFIX}alerts", "Alerts by channel and outcome (sent, duplicate, rate_limited, "
            "failed)", ["service", "channel", "outcome"], registry=registry,
        )  # fmt: skip
        self.redis_retries = Counter(
            f"{PREFIX}redis_retries", "Redis calls retried", ["service", "operation"],
            registry=registry,
        )  # fmt: skip
        self.rows_spooled_total = Counter(
            f"{PREFIX}{self.SPOOLED_NAME}", self.SPOOLED_HELP, ["table", "outcome"],
            registry=registry,
        )  # fmt: skip
        self._spool_backlog: dict[str, int] = {}
        self._consumed_of: dict[str, Counter] = {}
        self._published_of: dict[str, Counter] = {}
        self.build.info(
            {"service": service, "version": version, "python": platform.python_version()}
        )
        self.service_up.labels(service).set(1)
        self.halted.labels(service).set(0)
        self.spool_rows.labels(service).set(0)

    def consumed(self, stream: str, count: int = 1) -> None:
        # Per message on the hot paths: the labelled child is looked up once per stream.
        child = self._consumed_of.get(stream)
        if child is None:
            child = self._consumed_of[stream] = self.messages_consumed.labels(self.service, stream)
        child.inc(count)

    def published(self, stream: str, count: int = 1) -> None:
        child = self._published_of.get(stream)
        if child is None:
            child = self._published_of[stream] = self.messages_published.labels(
                self.service, stream
            )
        child.inc(count)

    def dead_lettered(self, stream: str, reason_kind: str) -> None:
        self.dead_letters.labels(self.service, stream, reason_kind).inc()

    def set_halted(self, halted: bool) -> None:
        self.halted.labels(self.service).set(1 if halted else 0)

    def rows_written(self, table: str, count: int) -> None:
        self.clickhouse_rows_written.labels(self.service, table).inc(count)

    def insert_failed(self, table: str, kind: str = "temporary") -> None:
        """StoreMetrics: kind (temporary, rejected) is in the logs; the counter is by table."""
        self.clickhouse_insert_errors.labels(self.service, table).inc()

    def set_spool_rows(self, rows: int) -> None:
        self.spool_rows.labels(self.service).set(rows)

    def alert_outcome(self, channel: str, outcome: str) -> None:
        """Counts an alert's fate; shared.alerts.WebhookAlerter calls it."""
        self.alerts.labels(self.service, channel, outcome).inc()

    # BusMetrics (shared.bus); published and dead_lettered are above.
    def handled(self, stream: str) -> None:
        self.consumed(stream)

    def handled_many(self, stream: str, count: int) -> None:
        self.consumed(stream, count)

    def handler_failed(self, stream: str) -> None:
        pass  # the bus logs it; the entry stays pending (visible as stream_pending)

    def reclaimed(self, stream: str, count: int) -> None:
        pass  # visible as stream_pending; the bus logs every reclaim

    def trimmed(self, stream: str, count: int) -> None:
        pass  # the bus logs trimmed entries with their ids

    def io_retried(self, operation: str) -> None:
        self.redis_retries.labels(self.service, operation).inc()

    # StoreMetrics (shared.store); rows_written and insert_failed are above.
    def rows_spooled(self, table: str, count: int) -> None:
        self.rows_spooled_total.labels(table, "spooled").inc(count)

    def rows_quarantined(self, table: str, count: int) -> None:
        self.rows_spooled_total.labels(table, "quarantined").inc(count)

    def spool_backlog(self, table: str, files: int, rows: int) -> None:
        """The spool_rows gauge is the backlog summed over every table this service spools."""
        self._spool_backlog[table] = rows
        self.set_spool_rows(sum(self._spool_backlog.values()))

    def stopped(self) -> None:
        self.service_up.labels(self.service).set(0)
