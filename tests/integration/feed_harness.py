"""Building the Sentinel and the Producer against the Kite simulator and the real test servers.

Shared by tests/integration/test_sentinel_*.py, test_producer_*.py and tests/e2e/test_feed_*.py.
Everything is wired exactly as the services' __main__ wires it, except the clock-independent
switches tests need (the stall watchdog runs outside market hours, short intervals).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from services.producer import __main__ as producer_main
from services.producer.adapters.metrics import ProducerMetrics
from services.producer.adapters.publisher import TickSink
from services.producer.service import Producer
from services.producer.settings import ProducerSettings
from services.sentinel import __main__ as sentinel_main
from services.sentinel.adapters.instrument_loader import InstrumentLoader
from services.sentinel.adapters.kite_session import KiteSessionClient
from services.sentinel.adapters.metrics import SentinelMetrics
from services.sentinel.adapters.session_store import SessionInfo, SessionStore
from services.sentinel.kite_login import BackoffPolicy
from services.sentinel.service import Sentinel
from services.sentinel.settings import SentinelSettings
from services.sentinel.token_expiry import token_expires_at
from shared.alerts import Alert, Alerter
from shared.bus import StreamBus, redis_client
from shared.calendar import load_calendar
from shared.clock import SystemClock
from shared.session import token_fingerprint
from tests.sim_fixtures import KiteSim

FAST_BACKOFF = BackoffPolicy(attempts=2, initial_s=0.05, max_s=0.1)


class RecordingAlerter:
    """An Alerter that keeps what it was asked to send (and hands it on to `forward`)."""

    def __init__(self, forward: Alerter | None = None) -> None:
        self.alerts: list[Alert] = []
        self.forward = forward

    async def send(self, alert: Alert) -> None:
        self.alerts.append(alert)
        if self.forward is not None:
            await self.forward.send(alert)

    async def close(self) -> None:
        if self.forward is not None:
            await self.forward.close()

    def keys(self) -> list[str]:
        return [a.key for a in self.alerts]


class NullInstrumentSink:
    """Instruments go nowhere (tests that only need them in Redis)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    async def write_instruments(self, rows: Sequence[dict[str, Any]]) -> None:
        self.rows.extend(rows)


async def seed_session(redis: Any, sim: KiteSim, exchanges: Sequence[str] = ("NSE", "NFO")) -> str:
    """Log in on the simulator and distribute the token + instruments as the Sentinel would."""
    token = await asyncio.to_thread(sim.login)
    clock = SystemClock()
    now = clock.now()
    bus = StreamBus(redis, service="test", maxlen=10_000)
    info = SessionInfo(sim.user_id, now, token_expires_at(now), token_fingerprint(token), "cli")
    await SessionStore(redis, bus).distribute(token, info)
    session_client = KiteSessionClient(sim.api_key, sim.rest_root, 10.0, FAST_BACKOFF)
    loader = InstrumentLoader(session_client, redis, NullInstrumentSink(), exchanges, {})
    await loader.load(token, now)
    return token


def producer_settings(sim: KiteSim, redis_url: str, **overrides: Any) -> ProducerSettings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "api_key": sim.api_key,
        "kite_api_root": sim.rest_root,
        "kite_ws_root": sim.ws_root,
        "instruments": ("NSE:NIFTY 50", "NSE:NIFTY BANK"),
        "option_underlyings": {"NIFTY": "NSE:NIFTY 50"},
        "option_strikes_each_side": 2,
        "metrics_port": 0,
        "write_clickhouse": False,
        "clickhouse_writer": "thread",
        "watch_outside_market_hours": True,
        "watchdog_interval_s": 0.1,
        "sample_interval_s": 0.5,
        "token_poll_s": 0.2,
        "gc_freeze_at_start": False,  # many Producers in one test process: nothing to freeze
        "stall_seconds": 5.0,
        "reconnect_max_delay_s": 5,
    }
    values.update(overrides)
    return ProducerSettings(**values)


@dataclass
class RunningProducer:
    producer: Producer
    metrics: ProducerMetrics
    alerter: RecordingAlerter
    redis: Any
    stop: asyncio.Event
    task: asyncio.Task[None]
    extra: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.metrics.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value


@contextlib.asynccontextmanager
async def running_producer(
    settings: ProducerSettings, sink: TickSink | None = None, forward_alerts: Alerter | None = None
) -> AsyncIterator[RunningProducer]:
    redis = redis_client(settings.redis_url)
    metrics = ProducerMetrics(CollectorRegistry())
    alerter = RecordingAlerter(forward_alerts)
    producer = producer_main.build_producer(
        settings, redis, metrics, sink, alerter, SystemClock(), load_calendar()
    )
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop), name="test-producer")
    try:
        yield RunningProducer(producer, metrics, alerter, redis, stop, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await alerter.close()
        await redis.aclose()


# -- the Sentinel --------------------------------------------------------------------------------


class RecordingAudit:
    """Session audit rows kept in memory."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def record(self, row: dict[str, Any]) -> None:
        self.rows.append(row)


def sentinel_settings(sim: KiteSim, redis_url: str, **overrides: Any) -> SentinelSettings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "api_key": sim.api_key,
        "api_secret": sim.api_secret,
        "user_id": sim.user_id,
        "password": sim.password,
        "totp_secret": sim.totp_secret,
        "kite_api_root": sim.rest_root,
        "kite_login_root": sim.rest_root,
        "metrics_port": 0,
        "redirect_port": 0,
        "check_interval_s": 0.3,
        "relogin_min_interval_s": 0.0,
        "login_network_attempts": 2,
        "login_backoff_initial_s": 0.05,
        "login_backoff_max_s": 0.1,
        "http_timeout_s": 5.0,
        "freeze_quantities": {"NIFTY": 1800, "BANKNIFTY": 600},
    }
    values.update(overrides)
    return SentinelSettings(**values)


@dataclass
class RunningSentinel:
    sentinel: Sentinel
    metrics: SentinelMetrics
    alerter: RecordingAlerter
    audit: RecordingAudit
    instruments: NullInstrumentSink
    redis: Any
    stop: asyncio.Event
    task: asyncio.Task[None]

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.metrics.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value


def build_sentinel(
    settings: SentinelSettings,
    redis: Any,
    clickhouse_ping: Callable[[], Awaitable[Any]],
) -> tuple[Sentinel, SentinelMetrics, RecordingAlerter, RecordingAudit, NullInstrumentSink]:
    """The Sentinel as __main__ builds it, with in-memory audit/instrument sinks and alerter."""
    metrics = SentinelMetrics(CollectorRegistry())
    alerter = RecordingAlerter()
    audit = RecordingAudit()
    sink = NullInstrumentSink()
    parts = sentinel_main.build_sentinel(
        settings, redis, metrics, audit, sink, clickhouse_ping, alerter, SystemClock(),
        load_calendar(),
    )  # fmt: skip
    return parts.sentinel, metrics, alerter, audit, sink


async def always_reachable() -> None:
    return None


@contextlib.asynccontextmanager
async def running_sentinel(
    settings: SentinelSettings,
    clickhouse_ping: Callable[[], Awaitable[Any]] = always_reachable,
) -> AsyncIterator[RunningSentinel]:
    redis = redis_client(settings.redis_url)
    sentinel, metrics, alerter, audit, sink = build_sentinel(settings, redis, clickhouse_ping)
    stop = asyncio.Event()
    task = asyncio.create_task(sentinel.run(stop), name="test-sentinel")
    try:
        yield RunningSentinel(sentinel, metrics, alerter, audit, sink, redis, stop, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await redis.aclose()
