"""Building and driving the Gatekeeper in tests: settings, a clock on a trading day, instruments,
ticks and intents on the real streams, a running service and its metrics.

Used by tests/integration/test_gatekeeper_*.py, tests/e2e/test_gatekeeper_*.py and the pipeline
benchmark. Everything is wired as services/gatekeeper/__main__.py wires it (`build_gatekeeper`),
except the clock (a trading day, running at wall speed) and the alerter (recorded).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import json
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry

from services.gatekeeper.__main__ import build_broker, build_gatekeeper
from services.gatekeeper.adapters.clickhouse_journal import clickhouse_journal
from services.gatekeeper.adapters.journal import Journal
from services.gatekeeper.adapters.kite_broker import Broker
from services.gatekeeper.adapters.metrics import GatekeeperMetrics
from services.gatekeeper.service import Gatekeeper
from services.gatekeeper.settings import LIVE_CONFIRM_PHRASE, GatekeeperSettings
from shared import constants as c
from shared.alerts import Alert
from shared.bus import StreamBus, redis_client
from shared.calendar import load_calendar
from shared.clock import IST
from shared.messages import DepthLevel, OrderEvent, OrderIntent, RiskEvent, Tick, decode

TRADING_MORNING = datetime(2024, 8, 20, 9, 16, tzinfo=IST)  # a Tuesday; the simulator's day


class TradingClock:
    """A clock on a trading day that runs at wall speed (rate limits need real seconds)."""

    def __init__(self, start: datetime = TRADING_MORNING) -> None:
        self.start = start
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self._t0)

    def time_ns(self) -> int:
        return time.time_ns()


class RecordingAlerter:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    async def send(self, alert: Alert) -> None:
        self.alerts.append(alert)

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class Store:
    """Where the test ClickHouse database is (fixtures clickhouse_server, clickhouse_db)."""

    host: str
    port: int
    database: str

    @classmethod
    def of(cls, server: Any, database: str) -> Store:
        return cls(server.host, server.port, database)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        from clickhouse_driver import Client

        client = Client(host=self.host, port=self.port, database=self.database)
        try:
            return list(client.execute(sql))
        finally:
            client.disconnect()


def gk_settings(redis_url: str, store: Store | None = None, **overrides: Any) -> GatekeeperSettings:
    """Short intervals for tests; everything else at its default unless overridden."""
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "spool_dir": tempfile.mkdtemp(prefix="gk-spool-"),
        "metrics_port": 0,
        "capital": 1_000_000.0,
        "tick_partitions": 2,
        "position_check_interval_s": 0.2,
        "kill_switch_poll_s": 0.2,
        "order_poll_interval_s": 0.3,
        "sample_interval_s": 0.5,
        "recovery_delay_s": 0.1,
        "max_quote_age_s": 30.0,
        "max_signal_age_s": 30.0,
        "gc_freeze_at_start": False,  # many Gatekeepers in one test process: nothing to freeze
    }
    if store is not None:
        values |= {
            "clickhouse_host": store.host,
            "clickhouse_port": store.port,
            "clickhouse_database": store.database,
        }
    values.update(overrides)
    return GatekeeperSettings(_env_file=None, **values)


def instrument_row(
    symbol: str,
    token: int,
    *,
    lot_size: int = 1,
    segment: str | None = None,
    kind: str = "EQ",
    name: str = "",
    freeze: int = 0,
    tick_size: float = 0.05,
    expiry: str = "",
) -> str:
    """An INSTRUMENTS_KEY value as the Sentinel writes it."""
    exchange, tradingsymbol = symbol.split(":", 1)
    return json.dumps(
        {
            "instrument_token": token,
            "exchange_token": token >> 8,
            "tradingsymbol": tradingsymbol,
            "name": name,
            "exchange": exchange,
            "segment": segment or exchange,
            "instrument_type": kind,
            "expiry": expiry,
            "strike": 0.0,
            "tick_size": tick_size,
            "lot_size": lot_size,
            "freeze_quantity": freeze,
            "last_price": 0.0,
        }
    )


def tick(
    symbol: str,
    token: int,
    price: float,
    ts: datetime,
    *,
    received_ns: int | None = None,
    depth: int = 0,
    depth_qty: int = 100,
) -> Tick:
    """A tick (with `depth` levels of `depth_qty` each side, a tick apart, when asked)."""
    bids = tuple(DepthLevel(round(price - 0.05 * (i + 1), 2), depth_qty, 1) for i in range(depth))
    asks = tuple(DepthLevel(round(price + 0.05 * (i + 1), 2), depth_qty, 1) for i in range(depth))
    return Tick(
        instrument_token=token,
        symbol=symbol,
        last_price=price,
        exchange_ts=ts,
        received_ns=received_ns if received_ns is not None else time.time_ns(),
        bids=bids,
        asks=asks,
    )


_ids = itertools.count(1)


def intent(symbol: str, token: int, price: float, now: datetime, **changes: Any) -> OrderIntent:
    n = next(_ids)
    values: dict[str, Any] = {
        "intent_id": f"test-{n}-{time.time_ns()}",
        "signal_id": f"sig-{n}",
        "strategy": "test",
        "symbol": symbol,
        "instrument_token": token,
        "side": "BUY",
        "order_type": "MARKET",
        "reference_price": price,
        "confidence": 0.9,
        "timeframe": "minute",
        "candle_start": now - timedelta(minutes=1),
        "created_at": now,
        "reason": "test signal",
    }
    values.update(changes)
    if values["signal_id"] != values["intent_id"]:
        values["signal_id"] = values["intent_id"]
    return OrderIntent(**values)


@dataclass
class RunningGatekeeper:
    service: Gatekeeper
    metrics: GatekeeperMetrics
    alerter: RecordingAlerter
    redis: Any
    bus: StreamBus
    stop: asyncio.Event
    task: asyncio.Task[None]
    settings: GatekeeperSettings
    extra: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.metrics.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value

    async def publish_intent(self, message: OrderIntent) -> None:
        await self.bus.publish(c.INTENTS, message)

    async def publish_ticks(self, ticks: list[Tick]) -> None:
        await self.bus.publish_partitioned(c.TICKS, ticks, self.settings.tick_partitions)

    async def order_events(self) -> list[OrderEvent]:
        return [decode(OrderEvent, f[b"d"]) for _, f in await self.redis.xrange(c.ORDER_EVENTS)]

    async def risk_events(self) -> list[RiskEvent]:
        return [decode(RiskEvent, f[b"d"]) for _, f in await self.redis.xrange(c.RISK_EVENTS)]

    async def ready(self) -> bool:
        return self.service.readiness()[0]


@contextlib.asynccontextmanager
async def running_gatekeeper(
    settings: GatekeeperSettings,
    journal: Journal | None = None,
    *,
    clock: TradingClock | None = None,
    broker: Broker | None = None,
    websocket: bool = True,
    wait_started: bool = True,
) -> AsyncIterator[RunningGatekeeper]:
    """The service in a task (its journal: ClickHouse at the settings' address unless given);
    stopped gracefully at the end unless the test crashed it."""
    redis = redis_client(settings.redis_url)
    metrics = GatekeeperMetrics(CollectorRegistry())
    alerter = RecordingAlerter()
    clock = clock or TradingClock()
    if journal is None:
        journal = await asyncio.to_thread(clickhouse_journal, settings, clock, metrics)
    service, bus = build_gatekeeper(
        settings,
        redis,
        metrics,
        journal,
        alerter,
        clock,
        load_calendar().is_market_open,
        broker=broker,
        websocket=websocket,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop), name="test-gatekeeper")
    running = RunningGatekeeper(
        service, metrics, alerter, redis, bus, stop, task, settings, {"journal": journal}
    )
    try:
        if wait_started:
            deadline = time.monotonic() + 20
            while service.starting and not task.done():
                if time.monotonic() > deadline:
                    raise AssertionError(f"Gatekeeper did not start: {service.starting}")
                await asyncio.sleep(0.02)
            if task.done():
                task.result()
        yield running
    finally:
        stop.set()
        if not task.done():
            await asyncio.wait_for(task, 30)
        elif not task.cancelled() and task.exception() is not None:
            pass  # a crashed service is the test's business
        await redis.aclose()


async def seed_instruments(redis: Any, rows: dict[str, str]) -> None:
    await redis.hset(c.INSTRUMENTS_KEY, mapping=rows)


class MemoryJournal:
    """The Journal seam kept in memory (the pipeline bench without ClickHouse)."""

    def __init__(self) -> None:
        self.orders: list[Any] = []
        self.events: list[OrderEvent] = []
        self.risk: list[RiskEvent] = []
        self.positions: list[tuple[str, int]] = []
        self.chains: list[str] = []
        self.letters: list[Any] = []

    def order(self, entry: Any) -> None:
        self.orders.append(entry)

    def order_event(self, event: OrderEvent) -> None:
        self.events.append(event)

    def risk_event(self, event: RiskEvent) -> None:
        self.risk.append(event)

    def position(self, position: Any, mode: str, now: datetime) -> None:
        self.positions.append((position.symbol, position.quantity))

    def options_chain(self, underlying: str, price: float, quotes: Any, ts: datetime) -> None:
        self.chains.append(underlying)

    def dead_letter(self, letter: Any) -> None:
        self.letters.append(letter)

    async def decided_intents(self, since: datetime) -> set[str]:
        return {o.order.plan.intent_id for o in self.orders} | {
            r.intent_id for r in self.risk if r.kind == "DENIED" and r.intent_id
        }

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()


def assert_loopback(root: str) -> None:
    """Tests send orders ONLY to the local simulator."""
    host = urlsplit(root).hostname
    assert host is not None and ipaddress.ip_address(host).is_loopback, root


def simulator_settings(
    sim: Any, redis_url: str, store: Store | None, mode: str = "live", **overrides: Any
) -> GatekeeperSettings:
    """Live (or paper) against the simulator; the roots are asserted to be loopback."""
    assert_loopback(sim.rest_root)
    assert_loopback(sim.ws_root)
    values: dict[str, Any] = {
        "mode": mode,
        "api_key": sim.api_key,
        "kite_api_root": sim.rest_root,
        "kite_ws_root": sim.ws_root,
        "capital": 10_000_000.0,
        "max_capital_per_trade_pct": 100.0,
        "max_position_pct": 100.0,
    }
    if mode == "live":
        values["live_confirm"] = LIVE_CONFIRM_PHRASE
    if mode == "paper":
        values["paper_fills"] = "simulator"
    values.update(overrides)
    settings = gk_settings(redis_url, store, **values)
    assert_loopback(settings.kite_api_root)
    return settings


async def simulator_future(sim: Any) -> tuple[str, int, float]:
    """The simulator's nearest NIFTY future: (symbol, token, last price)."""
    kite = await asyncio.to_thread(sim.kite)
    rows = await asyncio.to_thread(kite.instruments, "NFO")
    futures = [r for r in rows if r["instrument_type"] == "FUT" and r["name"] == "NIFTY"]
    future = min(futures, key=lambda r: r["expiry"])
    symbol = f"NFO:{future['tradingsymbol']}"
    ltp = await asyncio.to_thread(kite.ltp, [symbol])
    return symbol, int(future["instrument_token"]), float(ltp[symbol]["last_price"])


async def broker_orders_with_tag(sim: Any, token: str, tag: str) -> list[dict[str, Any]]:
    kite = sim.kite(token)
    orders = await asyncio.to_thread(kite.orders)
    return [o for o in orders if o.get("tag") == tag]


async def seed_simulator_session(redis_url: str, sim: Any) -> str:
    """Log in on the simulator and distribute token + instruments as the Sentinel does."""
    from tests.integration.feed_harness import seed_session

    redis = redis_client(redis_url)
    try:
        return await seed_session(redis, sim)
    finally:
        await redis.aclose()


@contextlib.asynccontextmanager
async def kite_broker(settings: GatekeeperSettings, redis_url: str) -> AsyncIterator[Broker]:
    """The service's own Kite adapter, as __main__ builds it (to wrap in a test's broker)."""
    redis = redis_client(redis_url)
    bus = StreamBus(redis, service="test", maxlen=1000)
    try:
        broker = build_broker(
            settings, redis, bus, TradingClock(), GatekeeperMetrics(CollectorRegistry())
        )
        assert broker is not None, f"mode {settings.mode!r} has no broker"
        yield broker
    finally:
        await redis.aclose()
