"""The Consumer's Prometheus metrics (the contract's names) on an injected registry.

Contract: candles closed by timeframe and what closed them (tick, timer), revisions and gaps by
timeframe, bucket end -> close delay, signals by strategy and action, intents published by
strategy, time per strategy decision, partitions owned. Beyond it: ticks ignored by reason,
intents withheld (halted) or refused as duplicates, warm-ups and historical API calls. The bus's
`BusMetrics` and the store's `StoreMetrics` seams come from BaseMetrics.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import PREFIX, BaseMetrics, stream_length_gauge, stream_pending_gauge

# A bucket closes ~0-2 s after its end (the next tick, or the timer after the grace period).
DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 30.0, 60.0)
STRATEGY_BUCKETS = (1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.1)


class ConsumerMetrics(BaseMetrics):
    def __init__(self, registry: CollectorRegistry, service: str = "consumer") -> None:
        super().__init__(registry, service)
        self.candles_closed = Counter(
            f"{PREFIX}candles_closed", "Candles closed, by timeframe and what closed them",
            ["timeframe", "closed_by"], registry=registry,
        )  # fmt: skip
        self.candle_revisions = Counter(
            f"{PREFIX}candle_revisions", "Revised candles (late ticks), by timeframe",
            ["timeframe"], registry=registry,
        )  # fmt: skip
        self.candle_gaps = Counter(
            f"{PREFIX}candle_gaps", "Buckets without a tick, by timeframe", ["timeframe"],
            registry=registry,
        )  # fmt: skip
        self.close_delay = Histogram(
            f"{PREFIX}candle_close_delay_seconds",
            "Bucket end -> candle closed, in the partition's market time",
            buckets=DELAY_BUCKETS,
            registry=registry,
        )
        self.signals = Counter(
            f"{PREFIX}signals", "Signals, by strategy and action", ["strategy", "action"],
            registry=registry,
        )  # fmt: skip
        self.intents_published = Counter(
            f"{PREFIX}intents_published", "Intents published, by strategy", ["strategy"],
            registry=registry,
        )  # fmt: skip
        self.strategy_seconds = Histogram(
            f"{PREFIX}strategy_seconds", "Time of one strategy decision on a closed candle",
            ["strategy"], buckets=STRATEGY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.partitions_owned = Gauge(
            f"{PREFIX}partitions_owned", "Tick partitions this replica owns", registry=registry
        )
        self.ticks_ignored = Counter(
            f"{PREFIX}consumer_ticks_ignored",
            "Ticks that made no candle, by reason (receipt_time, outside_session, too_late, ...)",
            ["reason"],
            registry=registry,
        )
        self.intents_not_published = Counter(
            f"{PREFIX}consumer_intents_not_published",
            "Intents not published: halted (withheld) or duplicate (signal id seen before)",
            ["reason"],
            registry=registry,
        )
        self.strategy_errors = Counter(
            f"{PREFIX}consumer_strategy_errors",
            "Closed candles whose strategies raised (a bug; the candle is kept, logged)",
            registry=registry,
        )
        self.warmups = Counter(
            f"{PREFIX}consumer_warmups", "History warm-ups by outcome (ok, partial, failed)",
            ["outcome"], registry=registry,
        )  # fmt: skip
        self.historical_calls = Counter(
            f"{PREFIX}consumer_historical_calls",
            "Historical API calls by outcome (ok, token, rate, error)",
            ["outcome"],
            registry=registry,
        )
        self.stray_entries = Counter(
            f"{PREFIX}consumer_stray_entries",
            "Tick entries claimed from another consumer while this replica owned their partition "
            "(a replica stalled past its lease), handled late",
            registry=registry,
        )
        self.stream_length = stream_length_gauge(registry)
        self.stream_pending = stream_pending_gauge(registry)
        self.partitions_owned.set(0)

    def prime(
        self,
        timeframes: Iterable[str],
        strategies: Iterable[str],
        tick_streams: Iterable[str],
        outputs: Iterable[str],
        tables: Iterable[str],
    ) -> None:
        """Create every series the dashboards and alert rules read, at zero, so a scrape right
        after start already has them (a rate() over a missing series is no data, not zero)."""
        for stream in tick_streams:
            self.messages_consumed.labels(self.service, stream)
            for kind in ("malformed", "rejected"):
                self.dead_letters.labels(self.service, stream, kind)
        for stream in outputs:
            self.messages_published.labels(self.service, stream)
        for table in tables:
            self.clickhouse_rows_written.labels(self.service, table)
            self.clickhouse_insert_errors.labels(self.service, table)
        for timeframe in timeframes:
            for closed_by in ("tick", "timer"):
                self.candles_closed.labels(timeframe, closed_by)
            self.candle_revisions.labels(timeframe)
            self.candle_gaps.labels(timeframe)
        for strategy in strategies:
            for action in ("BUY", "SELL", "EXIT"):
                self.signals.labels(strategy, action)
            self.intents_published.labels(strategy)
            self.strategy_seconds.labels(strategy)
        for reason in ("halted", "duplicate", "backfill"):
            self.intents_not_published.labels(reason)
