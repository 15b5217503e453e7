"""Tick -> order-sent latency through the whole pipeline at ~10,000 ticks/s, against the Kite simulator.

Default (the issue's figure): every service a process of its own, as in production, on real
servers (Redis and ClickHouse from shared.localservers):
- the Kite simulator (`python -m services.simulator`) replaying real NSE data at BENCH_SIM_SPEED
  (30x) with BENCH_SIM_TICKS_PER_S (2) ticks per underlying-second: ~180 instruments (indices,
  futures, two option chains) at ~10,000 ticks/s, a 1-minute candle close every 2 s of wall time;
- the Producer (KiteTicker -> ta:ticks, 4 partitions; ticks also written to ClickHouse unless
  BENCH_PRODUCER_CLICKHOUSE=false), the Consumer (candles, an EMA 2/3 crossover on the futures ->
  ta:intents) and the Gatekeeper in paper mode with fills from the simulator; its broker adapter
  is wrapped to timestamp the moment each order's request is on the wire (HandOffTimer; the
  broker round trip excluded).
Latency = that time - the closing tick's Producer `received_ns`, per order, with its stages
from Redis entry ids (whole milliseconds): Producer, Consumer, transit, inside the Gatekeeper.
Writes bench/results/pipeline.json.

`--direct-intents`: a Producer-shaped feeder in this process publishes 10,000 ticks/s over 200
instruments and, every 100 ms, an intent carrying its last tick's `received_ns` (no Producer, no
Consumer); the Gatekeeper runs in this process. It isolates the Gatekeeper's share
(bench/results/pipeline_direct.json; `--memory-journal` keeps its journal out of ClickHouse).

Usage: python bench/bench_pipeline.py [seconds] [--direct-intents] [--memory-journal];
BENCH_GATEKEEPER='{"ticks_per_yield": 8}' overrides Gatekeeper settings for an experiment;
BENCH_DEBUG=1 prints each order's stages.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from results_file import write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
TICKS_PER_S = 10_000
BATCH_EVERY_S = 0.010
INTENT_EVERY_BATCHES = 10  # 10 intents/s
INSTRUMENTS = 200
PARTITIONS = 4
WARM_UP_S = 2.0
MEMORY_JOURNAL = "--memory-journal" in sys.argv  # skip ClickHouse (the journal in memory)
DIRECT = "--direct-intents" in sys.argv  # the feeder stands in for the Producer and the Consumer
# The whole path: the simulator's ticks at ~10,000/s to the Producer (about 180 instruments: the
# indices, the futures, two option chains of 41 strikes x CE/PE; ~58 ticks per instrument-second).
# 30x with 2 ticks per underlying-second: a candle close every 2 s of wall time (15x with 4 gave
# the same tick rate but half the closes: a p99 over ~8 bursts was little more than the worst).
SIM_SPEED = float(os.environ.get("BENCH_SIM_SPEED", "30"))
SIM_TICKS_PER_S = float(os.environ.get("BENCH_SIM_TICKS_PER_S", "2"))
# 2024-08-20 from 09:44: NIFTY's 1-minute EMA 2/3 crosses at 09:45, 09:46, 09:52, 09:54, 09:55, 09:57, ...
SIM_START = os.environ.get("BENCH_SIM_START", "09:44")
# Every tick also written to ClickHouse by the Producer, as in production (false: Redis only).
PRODUCER_CLICKHOUSE = os.environ.get("BENCH_PRODUCER_CLICKHOUSE", "true").lower() == "true"


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


# -- the feeder (a separate process) ----------------------------------------------------------


def feed(redis_url: str, symbol: str, token: int, price: float, wall_t0: float, seconds: float,
         out: Any) -> None:  # fmt: skip
    import redis

    from shared import constants as c
    from shared.bus import entry_fields
    from shared.messages import OrderIntent, Tick
    from tests.gatekeeper_support import TRADING_MORNING

    client = redis.Redis.from_url(redis_url)
    per_batch = int(TICKS_PER_S * BATCH_EVERY_S)
    others = [(f"NFO:BENCH{i:03d}", 20_000_000 + i, 100.0 + i) for i in range(INSTRUMENTS - 1)]
    sent_ticks, intents, n = 0, 0, 0
    published: dict[str, int] = {}
    start = time.monotonic()
    next_at = start
    while time.monotonic() - start < seconds:
        now_wall = time.time()
        exchange_ts = TRADING_MORNING + timedelta(seconds=now_wall - wall_t0)
        received = time.time_ns()
        batch = [
            Tick(instrument_token=t, symbol=s, last_price=p, exchange_ts=exchange_ts,
                 received_ns=received)
            for s, t, p in (others[(n * per_batch + k) % len(others)] for k in range(per_batch - 1))
        ]  # fmt: skip
        closing = Tick(instrument_token=token, symbol=symbol, last_price=price,
                       exchange_ts=exchange_ts, received_ns=received)  # fmt: skip
        batch.append(closing)
        pipe = client.pipeline(transaction=False)
        for tick in batch:
            stream = c.partitioned(c.TICKS, c.partition_of(tick.instrument_token, PARTITIONS))
            fields: dict[Any, Any] = entry_fields(stream, tick)
            pipe.xadd(stream, fields, maxlen=200_000, approximate=True)
        pipe.execute()
        sent_ticks += len(batch)
        if n % INTENT_EVERY_BATCHES == 0:
            intents += 1
            intent_id = f"bench-{os.getpid()}-{intents}"
            message = OrderIntent(
                intent_id=intent_id, signal_id=intent_id, strategy="bench", symbol=symbol,
                instrument_token=token, side="BUY" if intents % 2 else "SELL",
                order_type="MARKET", reference_price=price, confidence=1.0, timeframe="minute",
                candle_start=exchange_ts - timedelta(minutes=1), created_at=exchange_ts,
                reason="bench", quantity=25, product="NRML", last_tick_received_ns=received,
            )  # fmt: skip
            intent_fields: dict[Any, Any] = entry_fields(c.INTENTS, message)
            client.xadd(c.INTENTS, intent_fields)
            published[intent_id] = time.time_ns()
        n += 1
        next_at += BATCH_EVERY_S
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.monotonic() - start
    out.send({"ticks": sent_ticks, "intents": intents, "seconds": elapsed, "published": published})
    client.close()


# -- the simulator (a separate process) -------------------------------------------------------


def start_simulator(
    speed: float | None = None,
    ticks_per_s: float | None = None,
    start: str | None = None,
    log: Path | None = None,
) -> tuple[subprocess.Popen[str], str, str]:
    """The Kite simulator as its own process: paused at 09:15 (direct-intents mode), or replaying
    from `start` at `speed` x real time with `ticks_per_s` ticks per underlying (whole path)."""
    env = {
        **os.environ,
        "SIM_RATE_ORDERS_PER_S": "1000",
        "SIM_ORDERS_PER_MINUTE": "100000",
        "SIM_ORDERS_PER_DAY": "1000000",
        "SIM_RATE_OTHER_PER_S": "1000",
        "SIM_RATE_QUOTE_PER_S": "1000",
        "SIM_LOG_LEVEL": "WARNING",
    }
    args = [sys.executable, "-m", "services.simulator", "--rest-port", "0", "--ws-port", "0"]
    args += ["--log-level", "WARNING"]
    if speed is None:
        args.append("--paused")
    else:
        args += ["--speed", str(speed), "--ticks-per-second", str(ticks_per_s)]
        args += ["--start-time", start or "09:15"]
    stderr = log.open("wb") if log is not None else None
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    assert proc.stdout is not None
    rest = proc.stdout.readline().split(": ", 1)[1].strip()
    ws = proc.stdout.readline().split(": ", 1)[1].strip()
    return proc, rest, ws


# -- the Gatekeeper (this process) ------------------------------------------------------------


class HandOffTimer:
    """The broker adapter, timestamping when each order's request is on the wire: the adapter
    writes it before it first waits (on a kept-alive connection; a cold one is still being
    opened then), so the time is taken when its call first yields."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.handed: dict[str, int] = {}

    async def place(self, params: dict[str, Any]) -> str:
        placing = asyncio.Task(
            self.inner.place(params), loop=asyncio.get_running_loop(), eager_start=True
        )
        self.handed[str(params["tag"])] = time.time_ns()
        result: str = await placing
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class BenchClock:
    """The trading morning, advancing with the wall clock shared with the feeder."""

    def __init__(self, wall_t0: float) -> None:
        from tests.gatekeeper_support import TRADING_MORNING

        self.start, self.wall_t0 = TRADING_MORNING, wall_t0

    def now(self) -> Any:
        return self.start + timedelta(seconds=time.time() - self.wall_t0)

    def time_ns(self) -> int:
        return time.time_ns()


async def run(seconds: float) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from services.gatekeeper.__main__ import build_broker, build_gatekeeper
    from services.gatekeeper.adapters.clickhouse_journal import clickhouse_journal
    from services.gatekeeper.adapters.metrics import GatekeeperMetrics
    from services.gatekeeper.order_journal import decode_entry
    from services.simulator.settings import SimulatorSettings
    from shared import constants as c
    from shared.bus import StreamBus, redis_client
    from shared.calendar import load_calendar
    from shared.localservers import ClickHouseServer, RedisServer
    from tests.gatekeeper_support import MemoryJournal, Store, gk_settings
    from tests.integration.feed_harness import seed_session
    from tests.sim_fixtures import KiteSim, SimControl

    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    redis_server = RedisServer(workdir / "redis").start()
    clickhouse = None if MEMORY_JOURNAL else ClickHouseServer(workdir / "clickhouse").start()
    sim_proc, rest, ws = start_simulator()
    try:
        defaults = SimulatorSettings(_env_file=None)
        sim = KiteSim(None, SimControl(rest), rest, ws, defaults.api_key,  # type: ignore[arg-type]
                      defaults.api_secret.get_secret_value(), defaults.user_id,
                      defaults.password.get_secret_value(),
                      defaults.totp_secret.get_secret_value())  # fmt: skip
        redis = redis_client(redis_server.url)
        await seed_session(redis, sim)
        kite = sim.kite()
        rows = await asyncio.to_thread(kite.instruments, "NFO")
        future = min(
            (r for r in rows if r["instrument_type"] == "FUT" and r["name"] == "NIFTY"),
            key=lambda r: r["expiry"],
        )
        symbol, token = f"NFO:{future['tradingsymbol']}", int(future["instrument_token"])
        price = float((await asyncio.to_thread(kite.ltp, [symbol]))[symbol]["last_price"])

        wall_t0 = time.time()
        clock = BenchClock(wall_t0)
        store = None if clickhouse is None else Store(clickhouse.host, clickhouse.port, "bench")
        settings = gk_settings(
            redis_server.url, store, mode="paper", paper_fills="simulator", api_key=sim.api_key,
            kite_api_root=rest, kite_ws_root=ws, capital=1e8, max_capital_per_trade_pct=100.0,
            max_position_pct=100.0, tick_partitions=PARTITIONS, orders_per_second=50.0,
            orders_burst=10, broker_orders_per_second=50, broker_orders_per_minute=100_000,
            broker_orders_per_day=1_000_000, order_poll_interval_s=1.0, log_level="WARNING",
            **json.loads(os.environ.get("BENCH_GATEKEEPER", "{}")),
        )  # fmt: skip
        metrics = GatekeeperMetrics(CollectorRegistry())
        bus = StreamBus(redis, service="bench", maxlen=10_000)
        timer = HandOffTimer(build_broker(settings, redis, bus, clock, metrics))
        journal: Any = (
            MemoryJournal()
            if MEMORY_JOURNAL
            else await asyncio.to_thread(clickhouse_journal, settings, clock, metrics)
        )
        service, _ = build_gatekeeper(
            settings, redis, metrics, journal, _NullAlerter(), clock,
            load_calendar().is_market_open, broker=timer,
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        while service.starting:  # noqa: ASYNC110 (the service exposes a reason, not an event)
            await asyncio.sleep(0.05)

        receiver, sender = multiprocessing.Pipe(duplex=False)
        feeder = multiprocessing.get_context("spawn").Process(
            target=feed, args=(redis_server.url, symbol, token, price, wall_t0, seconds, sender)
        )
        started = time.monotonic()
        feeder.start()
        fed = await asyncio.to_thread(receiver.recv)
        feeder.join()
        await asyncio.sleep(1.0)  # the last intents
        consumed = sum(
            metrics.registry.get_sample_value(
                "tradealgo_messages_consumed_total",
                {"service": "gatekeeper", "stream": c.partitioned(c.TICKS, p)},
            )
            or 0.0
            for p in range(PARTITIONS)
        )
        stop.set()
        await task
        records = await redis.hgetall(c.GATEKEEPER_ORDERS_KEY.format(day="2024-08-20"))
        samples_ms: list[float] = []
        inside_ms: list[float] = []
        feeder_ms: list[float] = []
        transit_ms: list[float] = []
        for value in records.values():
            entry = decode_entry(value)
            handed = timer.handed.get(entry.order.plan.tag)
            if handed is None or not entry.tick_received_ns:
                continue
            if (entry.tick_received_ns / 1e9) - wall_t0 < WARM_UP_S:
                continue
            samples_ms.append((handed - entry.tick_received_ns) / 1e6)
            inside_ms.append((handed - entry.intent_received_ns) / 1e6)
            out_at = fed["published"].get(entry.order.plan.intent_id)
            if out_at:
                feeder_ms.append((out_at - entry.tick_received_ns) / 1e6)
                transit_ms.append((entry.intent_received_ns - out_at) / 1e6)
        await redis.aclose()
        elapsed = time.monotonic() - started
    finally:
        sim_proc.terminate()
        sim_proc.wait(10)
        redis_server.stop()
        if clickhouse is not None:
            clickhouse.stop()
    return {
        "samples_ms": samples_ms,
        "inside_ms": inside_ms,
        "feeder_ms": feeder_ms,
        "transit_ms": transit_ms,
        "fed": fed,
        "consumed_ticks": consumed,
        "elapsed_s": elapsed,
    }


# -- the whole path: simulator -> Producer -> Consumer -> Gatekeeper --------------------------


def _service(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A service as its own process (`python -m services.<module>`), its output in `log`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PRODUCER_", "CONSUMER_"))}
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{module}"],
        cwd=log.parent, env=base | env | {"PYTHONPATH": str(ROOT)},
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _metric(port: int, name: str) -> float:
    import requests

    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


async def run_whole_path(seconds: float) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from services.gatekeeper.__main__ import build_broker, build_gatekeeper
    from services.gatekeeper.adapters.clickhouse_journal import clickhouse_journal
    from services.gatekeeper.adapters.market_clock import MarketClock
    from services.gatekeeper.adapters.metrics import GatekeeperMetrics
    from services.gatekeeper.order_journal import decode_entry
    from services.simulator.settings import SimulatorSettings
    from shared import constants as c
    from shared.bus import StreamBus, redis_client
    from shared.bus import decode_entry as decode_entry_
    from shared.calendar import load_calendar
    from shared.clock import SystemClock
    from shared.localservers import ClickHouseServer, RedisServer, free_port
    from shared.messages import RiskEvent
    from tests.gatekeeper_support import Store, gk_settings
    from tests.integration.feed_harness import seed_session
    from tests.sim_fixtures import KiteSim, SimControl

    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    redis_server = RedisServer(workdir / "redis").start()
    clickhouse = ClickHouseServer(workdir / "clickhouse").start()
    sim_log = workdir / "simulator.log"
    sim_proc, rest, ws = start_simulator(SIM_SPEED, SIM_TICKS_PER_S, SIM_START, sim_log)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        defaults = SimulatorSettings(_env_file=None)
        sim = KiteSim(None, SimControl(rest), rest, ws, defaults.api_key,  # type: ignore[arg-type]
                      defaults.api_secret.get_secret_value(), defaults.user_id,
                      defaults.password.get_secret_value(),
                      defaults.totp_secret.get_secret_value())  # fmt: skip
        redis = redis_client(redis_server.url)
        await seed_session(redis, sim)
        kite = sim.kite()
        rows = await asyncio.to_thread(kite.instruments, "NFO")
        futures = sorted(f"NFO:{r['tradingsymbol']}" for r in rows if r["instrument_type"] == "FUT")
        shared_env = {
            "REDIS_URL": redis_server.url, "CLICKHOUSE_HOST": clickhouse.host,
            "CLICKHOUSE_PORT": str(clickhouse.port), "CLICKHOUSE_DATABASE": "bench",
            "SPOOL_DIR": str(workdir / "spool"), "LOG_LEVEL": "WARNING", "TICK_PARTITIONS": "4",
            "KITE_API_KEY": sim.api_key, "KITE_API_ROOT": rest, "KITE_WS_ROOT": ws,
        }  # fmt: skip
        producer_port = free_port()
        processes.append(
            _service(
                "producer",
                shared_env
                | {
                    "PRODUCER_METRICS_PORT": str(producer_port),
                    "PRODUCER_INSTRUMENTS": ",".join(["NSE:NIFTY 50", "NSE:NIFTY BANK", *futures]),
                    "PRODUCER_OPTION_UNDERLYINGS": "NIFTY=NSE:NIFTY 50,BANKNIFTY=NSE:NIFTY BANK",
                    "PRODUCER_OPTION_STRIKES_EACH_SIDE": "20",
                    "PRODUCER_WRITE_CLICKHOUSE": str(PRODUCER_CLICKHOUSE).lower(),
                },
                workdir / "producer.log",
            )
        )
        strategy = [
            {
                "kind": "ema_crossover",
                "symbols": futures,
                "params": {"timeframe": "minute", "fast": 2, "slow": 3, "lookback": 6},
            }
        ]
        processes.append(
            _service(
                "consumer",
                shared_env
                | {
                    "CONSUMER_METRICS_PORT": str(free_port()),
                    "CONSUMER_WARMUP": "true",
                    "CONSUMER_BACKFILL_GAPS": "false",
                    "CONSUMER_TIMEFRAMES": '["minute"]',
                    "CONSUMER_STRATEGIES": json.dumps(strategy),
                    "CONSUMER_LOG_LEVEL": os.environ.get("BENCH_CONSUMER_LOG", "WARNING"),
                    "CONSUMER_CANDLE_GRACE_S": "0.5",
                },
                workdir / "consumer.log",
            )
        )
        settings = gk_settings(
            redis_server.url, Store(clickhouse.host, clickhouse.port, "bench"), mode="paper",
            paper_fills="simulator", api_key=sim.api_key, kite_api_root=rest, kite_ws_root=ws,
            capital=2_000_000.0, tick_partitions=4, orders_per_second=50.0, orders_burst=10,
            broker_orders_per_second=50, broker_orders_per_minute=100_000,
            broker_orders_per_day=1_000_000, breaker_failures=1000, order_poll_interval_s=1.0,
            max_signal_age_s=None, max_quote_age_s=10.0, log_level="WARNING",
            max_clock_skew_s=120.0,  # a 30x replay turns a 1 s lag of a reader into 30 s
            gc_freeze_at_start=True,  # as the service runs (gk_settings turns it off for tests)
            **json.loads(os.environ.get("BENCH_GATEKEEPER", "{}")),
        )  # fmt: skip
        clock = MarketClock(SystemClock())
        metrics = GatekeeperMetrics(CollectorRegistry())
        bus = StreamBus(redis, service="bench", maxlen=10_000)
        timer = HandOffTimer(build_broker(settings, redis, bus, clock, metrics))
        journal = await asyncio.to_thread(clickhouse_journal, settings, clock, metrics)
        service, _ = build_gatekeeper(
            settings, redis, metrics, journal, _NullAlerter(), clock,
            load_calendar().is_market_open, broker=timer,
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        await asyncio.sleep(WARM_UP_S * 3)  # producer subscribed, consumer owns its partitions
        published_0 = await asyncio.to_thread(_metric, producer_port, "tradealgo_ticks_published")
        started_ns = time.time_ns()
        started = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - started
        published = await asyncio.to_thread(_metric, producer_port, "tradealgo_ticks_published")
        consumed = sum(
            metrics.registry.get_sample_value(
                "tradealgo_messages_consumed_total",
                {"service": "gatekeeper", "stream": c.partitioned(c.TICKS, p)},
            )
            or 0.0
            for p in range(4)
        )
        if os.environ.get("BENCH_DEBUG"):
            print(
                "DEBUG consumed",
                consumed,
                "clock",
                clock.now(),
                "quotes",
                len(service.state.quotes),
            )
        stop.set()
        await task
        records = await redis.hgetall(
            c.GATEKEEPER_ORDERS_KEY.format(day=clock.now().date().isoformat())
        )
        samples_ms: list[float] = []
        inside_ms: list[float] = []
        upstream_ms: list[float] = []
        stages = await _stage_marks(redis)
        stage_ms: dict[str, list[float]] = {"producer": [], "consumer": [], "transit": []}
        for value in records.values():
            entry = decode_entry(value)
            handed = timer.handed.get(entry.order.plan.tag)
            if handed is None or not entry.tick_received_ns or entry.tick_received_ns < started_ns:
                continue
            samples_ms.append((handed - entry.tick_received_ns) / 1e6)
            inside_ms.append((handed - entry.intent_received_ns) / 1e6)
            upstream_ms.append((entry.intent_received_ns - entry.tick_received_ns) / 1e6)
            marks = stages.get(entry.order.plan.intent_id)
            if marks is not None and marks[1] is not None:
                tick_ms, intent_ms = marks[1], marks[0]
                stage_ms["producer"].append(tick_ms - entry.tick_received_ns / 1e6)
                stage_ms["consumer"].append(intent_ms - tick_ms)
                stage_ms["transit"].append(entry.intent_received_ns / 1e6 - intent_ms)
                if os.environ.get("BENCH_DEBUG"):
                    print(
                        f"DEBUG {entry.order.plan.intent_id} intent at {intent_ms:.0f}: "
                        f"producer {tick_ms - entry.tick_received_ns / 1e6:.1f} consumer "
                        f"{intent_ms - tick_ms:.1f} transit "
                        f"{entry.intent_received_ns / 1e6 - intent_ms:.1f} inside "
                        f"{(handed - entry.intent_received_ns) / 1e6:.2f}"
                    )
        intents = await redis.xlen(c.INTENTS)
        candles, signals = await redis.xlen(c.CANDLES), await redis.xlen(c.SIGNALS)
        denials: dict[str, int] = {}
        risk_entries: Any = await redis.xrange(c.RISK_EVENTS)
        for _, fields in risk_entries:
            event = decode_entry_(c.RISK_EVENTS, fields)
            if isinstance(event, RiskEvent) and event.kind == "DENIED":
                key = event.reason[:90]
                denials[key] = denials.get(key, 0) + 1
        await redis.aclose()
    finally:
        for proc in processes:
            proc.send_signal(signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        sim_proc.terminate()
        sim_proc.wait(10)
        redis_server.stop()
        clickhouse.stop()
    dropped = sim_log.read_text(errors="replace").count("frame dropped")
    return {
        "samples_ms": samples_ms,
        "inside_ms": inside_ms,
        "upstream_ms": upstream_ms,
        "stage_ms": stage_ms,
        "dropped_frames": dropped,
        "ticks_per_s": (published - published_0) / elapsed,
        "consumed_per_s": consumed / elapsed,
        "intents": intents,
        "candles": candles,
        "signals": signals,
        "denials": denials,
        "seconds": elapsed,
    }


async def _stage_marks(redis: Any) -> dict[str, tuple[float, float | None]]:
    """Per intent id: when its intent entry was added to ta:intents and when its closing tick's
    entry was added to its ticks partition (Redis entry ids: the server's clock, 1 ms steps).
    They split the upstream latency into Producer (receipt -> XADD), Consumer (tick XADD ->
    intent XADD) and transit (intent XADD -> Gatekeeper read), to the millisecond."""
    from shared import constants as c
    from shared.bus import decode_entry
    from shared.messages import OrderIntent, Tick

    marks: dict[str, tuple[float, float | None]] = {}
    for entry_id, fields in await redis.xrange(c.INTENTS):
        intent = decode_entry(c.INTENTS, fields)
        if not isinstance(intent, OrderIntent) or not intent.last_tick_received_ns:
            continue
        intent_ms = float(entry_id.split(b"-")[0])
        stream = c.partitioned(c.TICKS, c.partition_of(intent.instrument_token, 4))
        window = await redis.xrange(stream, min=int(intent_ms) - 3000, max=int(intent_ms) + 1)
        tick_ms = None
        for tick_id, tick_fields in reversed(window):
            tick = decode_entry(stream, tick_fields)
            if (
                isinstance(tick, Tick)
                and tick.instrument_token == intent.instrument_token
                and tick.received_ns == intent.last_tick_received_ns
            ):
                tick_ms = float(tick_id.split(b"-")[0])
                break
        marks[intent.intent_id] = (intent_ms, tick_ms)
    return marks


class _NullAlerter:
    async def send(self, alert: Any) -> None:
        return None

    async def close(self) -> None:
        return None


def _figures(samples: list[float], inside: list[float]) -> dict[str, float]:
    return {
        "tick_to_order_p50_ms": round(_percentile(samples, 50), 3),
        "tick_to_order_p99_ms": round(_percentile(samples, 99), 3),
        "tick_to_order_max_ms": round(max(samples), 3),
        "tick_to_order_mean_ms": round(statistics.fmean(samples), 3),
        "orders_measured": len(samples),
        "intent_received_to_order_p50_ms": round(_percentile(inside, 50), 3),
        "intent_received_to_order_p99_ms": round(_percentile(inside, 99), 3),
    }


def _common_conditions() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "mode": "paper against the Kite simulator (separate process, loopback)",
        "journal": "in memory (--memory-journal)"
        if MEMORY_JOURNAL
        else "ClickHouse 26.9 (chdb, separate process): orders, order_events, risk_events, "
        "positions through shared.store's BatchWriter, flushed every 0.2 s in a thread",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_1m_at_end": round(load[0], 2),
    }


def report_direct(seconds: float) -> dict[str, Any]:
    result = asyncio.run(run(seconds))
    samples, fed = result["samples_ms"], result["fed"]
    if len(samples) < 20:
        raise SystemExit(f"too few orders measured: {len(samples)}")
    figures: dict[str, Any] = _figures(samples, result["inside_ms"])
    figures |= {
        "ticks_per_s": round(fed["ticks"] / fed["seconds"]),
        "gatekeeper_ticks_consumed_per_s": round(result["consumed_ticks"] / fed["seconds"]),
        "tick_to_intent_published_p50_ms": round(_percentile(result["feeder_ms"], 50), 3),
        "tick_to_intent_published_p99_ms": round(_percentile(result["feeder_ms"], 99), 3),
        "intent_published_to_received_p50_ms": round(_percentile(result["transit_ms"], 50), 3),
        "intent_published_to_received_p99_ms": round(_percentile(result["transit_ms"], 99), 3),
    }
    conditions = {
        "path": "--direct-intents: a Producer-shaped feeder publishes the ticks and, after each "
        "'candle-closing' tick, an intent carrying its received_ns (no Consumer) -> Redis "
        "Streams -> Gatekeeper -> order request on the wire (broker round trip excluded)",
        "ticks_per_s_target": TICKS_PER_S,
        "instruments": INSTRUMENTS,
        "tick_partitions": PARTITIONS,
        "intents_per_s": round(fed["intents"] / fed["seconds"], 1),
        "seconds": round(fed["seconds"], 1),
        "warm_up_s": WARM_UP_S,
    }
    return {"name": "pipeline", "figures": figures, "conditions": conditions | _common_conditions()}


def report_whole_path(seconds: float) -> dict[str, Any]:
    result = asyncio.run(run_whole_path(seconds))
    samples = result["samples_ms"]
    if len(samples) < 10:
        raise SystemExit(
            f"too few orders measured: {len(samples)} ({result['candles']} candles, "
            f"{result['signals']} signals, {result['intents']} intents; denied: "
            f"{result['denials']})"
        )
    figures: dict[str, Any] = _figures(samples, result["inside_ms"])
    figures |= {
        "ticks_per_s": round(result["ticks_per_s"]),
        "gatekeeper_ticks_consumed_per_s": round(result["consumed_per_s"]),
        "tick_to_intent_received_p50_ms": round(_percentile(result["upstream_ms"], 50), 3),
        "tick_to_intent_received_p99_ms": round(_percentile(result["upstream_ms"], 99), 3),
    }
    for stage, values in result["stage_ms"].items():
        if values:  # whole milliseconds: Redis entry ids
            figures[f"stage_{stage}_p50_ms"] = round(_percentile(values, 50), 1)
            figures[f"stage_{stage}_p99_ms"] = round(_percentile(values, 99), 1)
    conditions = {
        "path": "the whole pipeline, each service its own process: Kite simulator (KiteTicker, "
        f"speed {SIM_SPEED:g}x, {SIM_TICKS_PER_S:g} ticks/s per underlying) -> Producer -> "
        "ta:ticks (4 partitions) -> Consumer (1-minute candles, EMA 2/3 crossover on the "
        "futures) -> ta:intents -> Gatekeeper -> order request on the wire (broker round trip "
        "excluded); latency from the closing tick's Producer received_ns",
        "seconds": round(result["seconds"], 1),
        "intents_published": result["intents"],
        "simulator_frames_dropped_slow_client": result["dropped_frames"],
        "producer_writes_ticks_to_clickhouse": PRODUCER_CLICKHOUSE,
        "intents_denied": sum(result["denials"].values()),
        "denial_reasons": sorted(result["denials"]),
    }
    return {"name": "pipeline", "figures": figures, "conditions": conditions | _common_conditions()}


def _unit(figure: str) -> str:
    if figure.endswith("_ms"):
        return "ms"
    if figure.endswith("_per_s"):
        return "per second"
    return "count"


def main() -> None:
    numbers = [a for a in sys.argv[1:] if not a.startswith("--")]
    seconds = float(numbers[0]) if numbers else (30.0 if DIRECT else 90.0)
    report = report_direct(seconds) if DIRECT else report_whole_path(seconds)
    write_results(
        "pipeline_direct" if DIRECT else "pipeline",
        {name: (value, _unit(name)) for name, value in report["figures"].items()},
        report["conditions"],
    )


if __name__ == "__main__":
    main()
