"""Prometheus metrics every service shares, built against an injected registry (faust-style).

A service builds one metrics object in its `__main__` against a `CollectorRegistry` (a fresh one
per test) and extends it with its own metrics:

    class GatekeeperMetrics(BaseMetrics):
        def __init__(self, registry: CollectorRegistry, service: str = "gatekeeper") -> None:
            super().__init__(registry, service)
            self.denials = Counter("tradealgo_risk_denials", "Intents denied", ["service", "rule"],
                                   registry=registry)

Every metric name starts with `tradealgo_` and carries a `service` label.
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Counter, Gauge, Info

PREFIX = "tradealgo_"


class BaseMetrics:
    """The metrics of the shared platform: bus traffic, dead letters, halts, ClickHouse writes."""

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
        self.build.info(
            {"service": service, "version": version, "python": platform.python_version()}
        )
        self.service_up.labels(service).set(1)
        self.halted.labels(service).set(0)
        self.spool_rows.labels(service).set(0)

    def consumed(self, stream: str, count: int = 1) -> None:
        self.messages_consumed.labels(self.service, stream).inc(count)

    def published(self, stream: str, count: int = 1) -> None:
        self.messages_published.labels(self.service, stream).inc(count)

    def dead_lettered(self, stream: str, reason_kind: str) -> None:
        self.dead_letters.labels(self.service, stream, reason_kind).inc()

    def set_halted(self, halted: bool) -> None:
        self.halted.labels(self.service).set(1 if halted else 0)

    def rows_written(self, table: str, count: int) -> None:
        self.clickhouse_rows_written.labels(self.service, table).inc(count)

    def insert_failed(self, table: str) -> None:
        self.clickhouse_insert_errors.labels(self.service, table).inc()

    def set_spool_rows(self, rows: int) -> None:
        self.spool_rows.labels(self.service).set(rows)

    def alert_outcome(self, channel: str, outcome: str) -> None:
        """Counts an alert's fate; shared.alerts.WebhookAlerter calls it."""
        self.alerts.labels(self.service, channel, outcome).inc()

    def stopped(self) -> None:
        self.service_up.labels(self.service).set(0)
