"""`python -m services.consumer`: the composition root (settings, logging, clients, run until a
stop signal). `build_consumer` is the wiring, shared with the tests and the benchmark."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from prometheus_client import CollectorRegistry

from services.consumer.adapters.clickhouse_history import ClickHouseHistory
from services.consumer.adapters.history_loader import HistoryLoader
from services.consumer.adapters.kite_history import KiteHistory, redis_token_source
from services.consumer.adapters.metrics import ConsumerMetrics
from services.consumer.adapters.store import ConsumerStore
from services.consumer.buckets import data_sessions
from services.consumer.service import Consumer, ConsumerDeps
from services.consumer.settings import ConsumerSettings
from shared import constants as c
from shared.bus import StreamBus, redis_client
from shared.calendar import NseCalendar, load_calendar
from shared.clock import Clock, SystemClock
from shared.health import serve_health
from shared.runtime import load_service_settings, stop_on_signals
from shared.store import (
    BatchPolicy,
    ClickHouseInserter,
    Inserter,
    apply_migrations,
    clickhouse_from_settings,
)

logger = logging.getLogger("services.consumer")

SERVICE = "consumer"


def build_consumer(
    settings: ConsumerSettings,
    redis: Any,
    metrics: ConsumerMetrics,
    inserter: Inserter,
    history_client: Any,
    calendar: NseCalendar,
    clock: Clock,
) -> Consumer:
    """The service wired to its clients (tests pass their own ClickHouse clients)."""
    bus = StreamBus(redis, service=SERVICE, maxlen=settings.stream_maxlen, metrics=metrics)
    policy = BatchPolicy(max_rows=settings.clickhouse_batch_rows,
                         max_age_s=settings.clickhouse_flush_s)  # fmt: skip
    store = ConsumerStore(inserter, settings.spool_dir, clock, policy, metrics, SERVICE)
    # Candles: a date with ticks is a trading day (the calendar's sessions, or the regular one);
    # history planning: the calendar's sessions only (no requests for holidays and weekends).
    grid = data_sessions(calendar)
    kite = None
    if settings.api_key:
        kite = KiteHistory(
            settings.api_key, settings.kite_api_root, settings.http_timeout_s,
            redis_token_source(redis, c.ACCESS_TOKEN_KEY),
            requests_per_s=settings.historical_requests_per_s,
            attempts=settings.historical_attempts, metrics=metrics,
        )  # fmt: skip
    history = HistoryLoader(
        ClickHouseHistory(history_client), kite, store,
        calendar_sessions=calendar.sessions, grid_sessions=grid,
        range_days=dict(settings.historical_range_days),
        requests_per_s=settings.historical_requests_per_s,
        max_days=settings.warmup_max_days, clock=clock, metrics=metrics,
    )  # fmt: skip
    deps = ConsumerDeps(redis=redis, bus=bus, store=store, history=history, metrics=metrics,
                        clock=clock, grid_sessions=grid)  # fmt: skip
    return Consumer(settings, deps)


async def serve(settings: ConsumerSettings) -> int:
    clock = SystemClock()
    metrics = ConsumerMetrics(CollectorRegistry())
    redis = redis_client(settings.redis_url)
    writer_client = clickhouse_from_settings(settings)
    await asyncio.to_thread(apply_migrations, writer_client)
    reader_client = clickhouse_from_settings(settings, create_database=False)
    calendar = load_calendar(settings.market_calendar_path or None)
    consumer = build_consumer(
        settings, redis, metrics, ClickHouseInserter(writer_client), reader_client, calendar, clock
    )
    health = await serve_health(
        metrics.registry, settings.metrics_host, settings.metrics_port, consumer.readiness
    )
    stop = stop_on_signals()
    try:
        await consumer.run(stop)
    finally:
        await health.stop()
        await redis.aclose()
        writer_client.disconnect()
        reader_client.disconnect()
    return 0


def main() -> int:
    settings = load_service_settings(ConsumerSettings, SERVICE)
    if settings is None:
        return 2
    logger.info(
        "Consumer starting: %s tick partitions, timeframes %s, history %s",
        settings.tick_partitions,
        ",".join(settings.timeframes),
        settings.kite_api_root if settings.api_key else "from ClickHouse only (no API key)",
    )
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
