"""`python -m services.producer`: the composition root (settings, logging, clients, run until a stop
signal). `build_producer` is the wiring, shared with the tests and the benchmark.

The Twisted reactor (KiteTicker) starts on its own daemon thread the first time a connection is
opened and is never stopped: the process exit ends it."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from prometheus_client import CollectorRegistry

from services.producer.adapters.instrument_source import RedisInstruments
from services.producer.adapters.kite_rest import KiteQuotes
from services.producer.adapters.metrics import ProducerMetrics
from services.producer.adapters.publisher import FrameSink, TickSink
from services.producer.service import Producer, ProducerDeps
from services.producer.settings import ProducerSettings
from shared.alerts import Alerter, build_alerter
from shared.bus import StreamBus, redis_client
from shared.calendar import NseCalendar, load_calendar
from shared.clock import Clock, SystemClock
from shared.health import serve_health
from shared.runtime import load_service_settings, stop_on_signals

logger = logging.getLogger("services.producer")

SERVICE = "producer"


def build_producer(
    settings: ProducerSettings,
    redis: Any,
    metrics: ProducerMetrics,
    sink: TickSink | FrameSink | None,
    alerter: Alerter,
    clock: Clock,
    calendar: NseCalendar | None,
) -> Producer:
    """The service wired to its clients (tests pass their own sink and alerter)."""
    bus = StreamBus(
        redis, service=SERVICE, maxlen=settings.control_maxlen,
        publish_batch=settings.publish_batch, metrics=metrics,
    )  # fmt: skip
    deps = ProducerDeps(
        redis=redis,
        bus=bus,
        quotes=KiteQuotes(settings.api_key, settings.kite_api_root, settings.http_timeout_s),
        instruments=RedisInstruments(redis),
        sink=sink,
        alerter=alerter,
        metrics=metrics,
        clock=clock,
        calendar=calendar,
    )
    return Producer(settings, deps)


async def serve(settings: ProducerSettings) -> int:
    from services.producer.adapters.clickhouse_process import ClickHouseTickProcess
    from services.producer.adapters.clickhouse_ticks import ClickHouseTicks

    clock = SystemClock()
    metrics = ProducerMetrics(CollectorRegistry())
    redis = redis_client(settings.redis_url)
    alerter = build_alerter(settings, SERVICE, clock, metrics)
    ticks: ClickHouseTickProcess | ClickHouseTicks | None = None
    if settings.write_clickhouse and settings.clickhouse_writer == "process":
        ticks = ClickHouseTickProcess(settings, metrics)
    elif settings.write_clickhouse:
        ticks = ClickHouseTicks(settings, metrics)
    calendar = load_calendar(settings.market_calendar_path or None)
    producer = build_producer(settings, redis, metrics, ticks, alerter, clock, calendar)
    health = await serve_health(
        metrics.registry, settings.metrics_host, settings.metrics_port, producer.readiness
    )
    stop = stop_on_signals()
    try:
        if ticks is not None:
            await ticks.start()
        await producer.run(stop)
    finally:
        logger.info("Producer stopping")
        await health.stop()
        if ticks is not None:
            await ticks.close()  # flushes (or spools) every queued tick row
        await alerter.close()
        await redis.aclose()
    return 0


def main() -> int:
    settings = load_service_settings(ProducerSettings, SERVICE)
    if settings is None:
        return 2
    logger.info(
        "Producer starting: %s mode, up to %d connection(s), %d partition(s), ticker %s",
        settings.tick_mode,
        settings.max_connections,
        settings.tick_partitions,
        settings.kite_ws_root,
    )
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
