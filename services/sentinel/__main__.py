"""`python -m services.sentinel`: the composition root (settings, logging, clients, run until a stop
signal). `build_sentinel` is the wiring, shared with the tests; `tradealgo login` uses
`services.sentinel.adapters.commands`, built from the same pieces."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from services.sentinel.adapters.halt_store import HaltStore
from services.sentinel.adapters.instrument_loader import InstrumentLoader, InstrumentSink
from services.sentinel.adapters.kite_session import KiteSessionClient
from services.sentinel.adapters.login_flow import Credentials, LoginFlow, SessionAudit
from services.sentinel.adapters.metrics import SentinelMetrics
from services.sentinel.adapters.redirect_app import RedirectServer
from services.sentinel.adapters.session_store import SessionStore
from services.sentinel.kite_login import BackoffPolicy, KiteLoginClient, connect_login_url
from services.sentinel.service import Sentinel, SentinelDeps
from services.sentinel.settings import SentinelSettings
from shared.alerts import Alerter, build_alerter
from shared.bus import StreamBus, redis_client
from shared.calendar import NseCalendar, load_calendar
from shared.clock import Clock, SystemClock
from shared.health import serve_health
from shared.logs import register_secret
from shared.runtime import load_service_settings, stop_on_signals

logger = logging.getLogger("services.sentinel")

SERVICE = "sentinel"


def login_flow(
    settings: SentinelSettings, redis: Any, bus: StreamBus, audit: SessionAudit, clock: Clock
) -> tuple[LoginFlow, KiteSessionClient, SessionStore]:
    """The login pieces (also used by `tradealgo login`)."""
    backoff = BackoffPolicy(
        settings.login_network_attempts, settings.login_backoff_initial_s,
        settings.login_backoff_max_s,
    )  # fmt: skip
    login_client = KiteLoginClient(
        settings.kite_login_root, settings.api_key, settings.http_timeout_s, backoff
    )
    session_client = KiteSessionClient(
        settings.api_key, settings.kite_api_root, settings.http_timeout_s, backoff
    )
    sessions = SessionStore(redis, bus)
    credentials = Credentials(
        settings.api_secret, settings.user_id, settings.password, settings.totp_secret
    )
    flow = LoginFlow(
        credentials, login_client, session_client, sessions, audit, clock,
        settings.token_expiry_time,
    )  # fmt: skip
    return flow, session_client, sessions


@dataclass
class SentinelParts:
    sentinel: Sentinel
    bus: StreamBus
    metrics: SentinelMetrics


def build_sentinel(
    settings: SentinelSettings,
    redis: Any,
    metrics: SentinelMetrics,
    audit: SessionAudit,
    instruments: InstrumentSink,
    clickhouse_ping: Callable[[], Awaitable[Any]],
    alerter: Alerter,
    clock: Clock,
    calendar: NseCalendar | None,
) -> SentinelParts:
    """The service wired to its clients (tests pass in-memory sinks)."""
    bus = StreamBus(redis, service=SERVICE, maxlen=10_000, metrics=metrics)
    flow, session_client, sessions = login_flow(settings, redis, bus, audit, clock)
    loader = InstrumentLoader(
        session_client, redis, instruments, settings.instrument_exchanges,
        settings.freeze_quantities,
    )  # fmt: skip
    deps = SentinelDeps(
        redis=redis, bus=bus, flow=flow, session_client=session_client, sessions=sessions,
        halts=HaltStore(redis, bus), loader=loader, clickhouse_ping=clickhouse_ping,
        metrics=metrics, alerter=alerter, clock=clock, calendar=calendar,
    )  # fmt: skip
    return SentinelParts(Sentinel(settings, deps), bus, metrics)


async def serve(settings: SentinelSettings) -> int:
    from services.sentinel.adapters.clickhouse_store import SentinelClickHouse

    clock = SystemClock()
    metrics = SentinelMetrics(CollectorRegistry())
    redis = redis_client(settings.redis_url)
    alerter = build_alerter(settings, SERVICE, clock, metrics)
    store = SentinelClickHouse(settings, metrics)
    calendar = load_calendar(settings.market_calendar_path or None)
    parts = build_sentinel(
        settings, redis, metrics, store, store, store.ping, alerter, clock, calendar
    )
    sentinel = parts.sentinel
    health = await serve_health(
        metrics.registry, settings.metrics_host, settings.metrics_port, sentinel.readiness
    )
    redirect: RedirectServer | None = None
    if settings.redirect_port:
        redirect = RedirectServer(
            settings.redirect_host,
            settings.redirect_port,
            connect_login_url(settings.kite_login_root, settings.api_key),
            sentinel.login_with_request_token,
        )
        await redirect.start()
    stop = stop_on_signals()
    try:
        await store.start()
        await sentinel.run(stop)
    finally:
        logger.info("Sentinel stopping")
        if redirect is not None:
            await redirect.stop()
        await health.stop()
        await store.close()
        await alerter.close()
        await redis.aclose()
    return 0


def main() -> int:
    settings = load_service_settings(SentinelSettings, SERVICE)
    if settings is None:
        return 2
    for secret in settings.secrets():
        register_secret(secret)
    logger.info(
        "Sentinel starting: %s login at %s IST, Kite %s",
        settings.login_method,
        settings.login_time.strftime("%H:%M"),
        settings.kite_api_root,
    )
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
