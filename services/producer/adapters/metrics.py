"""The Producer's Prometheus metrics (contract names), on an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import PREFIX, BaseMetrics, stream_length_gauge

RECONNECT_REASONS = ("stall", "token", "dropped", "resubscribe")
DROP_REASONS = ("buffer_overflow", "redis_unavailable")
# Exchange timestamps have whole-second resolution: buckets from 0.25 s up.
LAG_BUCKETS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


class ProducerMetrics(BaseMetrics):
    def __init__(self, registry: CollectorRegistry, service: str = "producer") -> None:
        super().__init__(registry, service)
        self.ticks_received = Counter(
            f"{PREFIX}ticks_received",
            "Ticks parsed per connection",
            ["connection"],
            registry=registry,
        )
        self.ticks_published = Counter(
            f"{PREFIX}ticks_published", "Ticks appended to the ticks stream", registry=registry
        )
        self.ticks_dropped = Counter(
            f"{PREFIX}ticks_dropped",
            "Ticks lost before publishing (buffer_overflow: the publisher fell behind)",
            ["reason"],
            registry=registry,
        )
        for reason in DROP_REASONS:
            self.ticks_dropped.labels(reason)
        self.bad_packets = Counter(
            f"{PREFIX}bad_packets",
            "Ticker packets that could not be parsed (dead-lettered)",
            registry=registry,
        )
        self.tick_lag = Histogram(
            f"{PREFIX}tick_lag_seconds",
            "Exchange timestamp -> published (sampled per batch)",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.connected = Gauge(
            f"{PREFIX}ticker_connected", "1 while the connection is open", ["connection"],
            registry=registry,
        )  # fmt: skip
        self.reconnects = Counter(
            f"{PREFIX}ticker_reconnects",
            "Reconnections by reason (stall, token, dropped, gave_up)",
            ["connection", "reason"],
            registry=registry,
        )
        self.seconds_since_last_tick = Gauge(
            f"{PREFIX}seconds_since_last_tick", "Silence per connection", ["connection"],
            registry=registry,
        )  # fmt: skip
        self.feed_stalls = Counter(
            f"{PREFIX}feed_stalls", "Watchdog stalls (alert + forced reconnect)", ["connection"],
            registry=registry,
        )  # fmt: skip
        self.stale_instruments = Gauge(
            f"{PREFIX}stale_instruments",
            "Instruments silent beyond instrument_stale_seconds on a live connection",
            registry=registry,
        )
        self.subscribed_instruments = Gauge(
            f"{PREFIX}subscribed_instruments", "Instruments streamed", registry=registry
        )
        self.buffer_frames = Gauge(
            f"{PREFIX}ticker_buffer_frames", "Frames waiting for the publisher", registry=registry
        )
        self.stream_length = stream_length_gauge(registry)

    def connection_seen(self, connection: str) -> None:
        """Create every per-connection series at 0, so a scrape shows them before any event."""
        self.ticks_received.labels(connection)
        self.feed_stalls.labels(connection)
        self.connected.labels(connection)
        self.seconds_since_last_tick.labels(connection)
        for reason in RECONNECT_REASONS:
            self.reconnects.labels(connection, reason)
