"""`python -m services.gatekeeper`: the composition root (settings, logging, clients, run until a
stop signal). `build_gatekeeper` is the wiring, shared with the tests and the pipeline bench."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry

from services.gatekeeper.adapters.journal import Journal
from services.gatekeeper.adapters.kite_broker import Broker, BrokerOptions, KiteBroker
from services.gatekeeper.adapters.market_clock import MarketClock
from services.gatekeeper.adapters.metrics import GatekeeperMetrics
from services.gatekeeper.adapters.order_feed import OrderUpdateFeed
from services.gatekeeper.adapters.order_updates import FeedFactory
from services.gatekeeper.adapters.redis_state import RedisState
from services.gatekeeper.service import Gatekeeper, GatekeeperDeps
from services.gatekeeper.settings import GatekeeperSettings
from shared import constants as c
from shared.alerts import Alerter, build_alerter
from shared.bus import RetryPolicy, StreamBus, redis_client
from shared.calendar import load_calendar
from shared.clock import Clock, SystemClock
from shared.health import serve_health
from shared.messages import Message
from shared.runtime import load_service_settings, stop_on_signals
from shared.session import token_rejected_event
from shared.settings import SettingsError

logger = logging.getLogger("services.gatekeeper")

SERVICE = "gatekeeper"


def build_broker(
    settings: GatekeeperSettings,
    redis: Any,
    bus: StreamBus,
    clock: Clock,
    metrics: GatekeeperMetrics,
) -> KiteBroker | None:
    """The Kite client (live, paper against the simulator, option quotes); None without a key."""
    if not settings.api_key:
        return None
    state = RedisState(redis, settings.state_ttl_s)

    async def token_rejected(token: str) -> None:
        event: Message = token_rejected_event(token, SERVICE, clock.now())
        await bus.publish(c.SESSION_EVENTS, event)

    options = BrokerOptions(
        api_key=settings.api_key,
        root=settings.kite_api_root,
        timeout_s=settings.http_timeout_s,
        retry_attempts=settings.broker_retry_attempts,
        retry_initial_s=settings.broker_retry_initial_s,
        retry_max_s=settings.broker_retry_max_s,
    )
    return KiteBroker(
        options,
        state.access_token,
        token_rejected,
        lambda call, kind: metrics.broker_errors.labels(call, kind).inc(),
    )


def build_gatekeeper(
    settings: GatekeeperSettings,
    redis: Any,
    metrics: GatekeeperMetrics,
    journal: Journal,
    alerter: Alerter,
    clock: Clock,
    market_open: Callable[[datetime], bool],
    *,
    broker: Broker | None = None,
    websocket: bool = True,
) -> tuple[Gatekeeper, StreamBus]:
    """The service wired to its clients (`broker` overrides the Kite client, e.g. in tests)."""
    bus = StreamBus(
        redis,
        service=SERVICE,
        maxlen=settings.stream_maxlen,
        retry=RetryPolicy(),
        metrics=metrics,
        on_dead_letter=journal.dead_letter,
    )
    kite = broker if broker is not None else build_broker(settings, redis, bus, clock, metrics)
    if settings.sends_to_broker() and kite is None:
        raise SettingsError(
            f"{settings.mode} mode sends orders to {settings.kite_api_root}: "
            "GATEKEEPER_API_KEY (or KITE_API_KEY) is required"
        )
    feed_factory: FeedFactory | None = None
    if websocket and settings.sends_to_broker() and settings.order_updates == "websocket":

        def feed_factory(token: str, deliver: Any, on_status: Any) -> OrderUpdateFeed:
            return OrderUpdateFeed(
                settings.api_key, settings.kite_ws_root, token, deliver, on_status
            )

    deps = GatekeeperDeps(
        redis=redis,
        bus=bus,
        journal=journal,
        alerter=alerter,
        metrics=metrics,
        clock=clock,
        market_open=market_open,
        broker=kite,
        feed_factory=feed_factory,
    )
    return Gatekeeper(settings, deps), bus


async def serve(settings: GatekeeperSettings) -> int:
    from services.gatekeeper.adapters.clickhouse_journal import clickhouse_journal

    wall = SystemClock()
    clock: Clock = MarketClock(wall) if settings.market_clock() else wall
    registry = CollectorRegistry()
    metrics = GatekeeperMetrics(registry)
    redis = redis_client(settings.redis_url)
    alerter = build_alerter(settings, SERVICE, clock, metrics)
    journal = await asyncio.to_thread(clickhouse_journal, settings, clock, metrics)
    calendar = load_calendar(settings.market_calendar_path or None)
    service, _ = build_gatekeeper(
        settings, redis, metrics, journal, alerter, clock, calendar.is_market_open
    )
    health = await serve_health(
        registry, settings.metrics_host, settings.metrics_port, service.readiness
    )
    stop = stop_on_signals()
    try:
        await service.run(stop)
    finally:
        await health.stop()
        await alerter.close()
        await redis.aclose()
    return 0


def main() -> int:
    settings = load_service_settings(GatekeeperSettings, SERVICE)
    if settings is None:
        return 2
    logger.info(
        "Gatekeeper starting in %s mode%s%s",
        settings.mode,
        f" (paper fills: {settings.paper_source()})" if settings.mode == "paper" else "",
        ", clock: the market's (newest tick)" if settings.market_clock() else "",
    )
    try:
        return asyncio.run(serve(settings))
    except SettingsError as exc:
        logger.critical("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
