"""Running Consumer replicas against the real test Redis and ClickHouse (and the simulator).

Wired exactly as services/consumer/__main__.py wires it (`build_consumer`), with a fake
monotonic clock the test moves (the feed clock's elapsed time: the close timer), short lease and
flush intervals, and Producer-shaped ticks from real 1-minute bars when a test publishes ticks
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from clickhouse_driver import Client
from prometheus_client import CollectorRegistry

from services.consumer.__main__ import build_consumer
from services.consumer.adapters.metrics import ConsumerMetrics
from services.consumer.backtest.bars import Bar, ticks_of_bar
from services.consumer.service import Consumer
from services.consumer.settings import ConsumerSettings
from shared import constants as c
from shared.bus import StreamBus, decode_entry, redis_client
from shared.calendar import load_calendar
from shared.clock import IST, SystemClock
from shared.messages import Candle, Message, OrderIntent, Signal, Tick
from shared.store import ClickHouseInserter, apply_migrations

ROOT = Path(__file__).resolve().parents[2]
NIFTY_FILE = ROOT / "shared/marketdata/nifty50_index_1m_2024-01-01_2024-08-23.csv.gz"
NIFTY, NIFTY_TOKEN = "NSE:NIFTY 50", 256265
BANKNIFTY_FILE = ROOT / "shared/marketdata/niftybank_index_1m_2024-01-01_2024-08-23.csv.gz"
BANKNIFTY, BANKNIFTY_TOKEN = "NSE:NIFTY BANK", 260105


class FakeMono:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def read_bars(
    path: Path, days: Sequence[date], first: str = "09:15", last: str = "15:29"
) -> list[Bar]:
    """Real 1-minute bars of some days (bar starts between `first` and `last`, IST)."""
    wanted = {d.isoformat() for d in days}
    bars: list[Bar] = []
    with gzip.open(path, "rt") as f:
        next(f)
        for line in f:
            fields = line.rstrip("\n").split(",")
            stamp = fields[0]
            if stamp[:10] not in wanted or not first <= stamp[11:16] <= last:
                continue
            start = datetime.fromisoformat(stamp).astimezone(IST)
            o, h, low, cl = (float(x) for x in fields[1:5])
            bars.append(Bar(start, o, h, low, cl, int(float(fields[5]))))
    return bars


def producer_ticks(
    bars: Sequence[Bar], symbol: str = NIFTY, token: int = NIFTY_TOKEN
) -> list[Tick]:
    """Four ticks per bar (the backtester's ticks), with a Producer receive time."""
    out: list[Tick] = []
    for bar in bars:
        for t in ticks_of_bar(bar, symbol, token, 0):
            out.append(Tick(instrument_token=t.instrument_token, symbol=t.symbol,
                            last_price=t.last_price, exchange_ts=t.exchange_ts,
                            received_ns=1_700_000_000_000_000_000))  # fmt: skip
    return out


def consumer_settings(
    redis_url: str, clickhouse: Any, database: str, spool: Path, **overrides: Any
) -> ConsumerSettings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "clickhouse_host": clickhouse.host,
        "clickhouse_port": clickhouse.port,
        "clickhouse_database": database,
        "spool_dir": str(spool),
        "metrics_port": 0,
        "tick_partitions": 4,
        "lease_ttl_s": 3.0,
        "lease_renew_s": 0.3,
        "timer_interval_s": 0.1,
        "clickhouse_flush_s": 0.2,
        "sample_interval_s": 0.5,
        "read_block_ms": 50,
        "api_key": "",
        "gc_freeze_at_start": False,  # many replicas in one test process: nothing to freeze
        "strategies": [
            {
                "kind": "ema_crossover",
                "symbols": [NIFTY],
                "params": {"timeframe": "minute", "fast": 3, "slow": 5, "lookback": 10},
            }
        ],
    }
    values.update(overrides)
    return ConsumerSettings(**values)


@dataclass
class RunningConsumer:
    consumer: Consumer
    metrics: ConsumerMetrics
    redis: Any
    clickhouse: Client
    stop: asyncio.Event
    task: asyncio.Task[None]
    mono: FakeMono
    extra: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.metrics.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value


def clickhouse_client(clickhouse: Any, database: str) -> Client:
    return Client(host=clickhouse.host, port=clickhouse.port, database=database)


@contextlib.asynccontextmanager
async def running_consumer(
    settings: ConsumerSettings, mono: FakeMono | None = None
) -> AsyncIterator[RunningConsumer]:
    redis = redis_client(settings.redis_url)
    writer = Client(host=settings.clickhouse_host, port=settings.clickhouse_port,
                    database=settings.clickhouse_database)  # fmt: skip
    await asyncio.to_thread(apply_migrations, writer)
    reader = Client(host=settings.clickhouse_host, port=settings.clickhouse_port,
                    database=settings.clickhouse_database)  # fmt: skip
    metrics = ConsumerMetrics(CollectorRegistry())
    clock = mono or FakeMono()
    consumer = build_consumer(
        settings, redis, metrics, ClickHouseInserter(writer), reader, load_calendar(), SystemClock()
    )
    consumer.d.mono = clock
    consumer.context.mono = clock
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop), name=f"test-consumer-{consumer.replica}")
    try:
        yield RunningConsumer(consumer, metrics, redis, reader, stop, task, clock)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        await redis.aclose()
        writer.disconnect()
        reader.disconnect()


async def publish_ticks(redis: Any, ticks: Sequence[Tick], partitions: int = 4) -> None:
    bus = StreamBus(redis, service="test-producer", maxlen=1_000_000, publish_batch=2000)
    await bus.publish_partitioned(c.TICKS, ticks, partitions)


async def stream_messages(redis: Any, stream: str) -> list[Message]:
    return [decode_entry(stream, fields) for _, fields in await redis.xrange(stream)]


async def stream_candles(redis: Any) -> list[Candle]:
    return [m for m in await stream_messages(redis, c.CANDLES) if isinstance(m, Candle)]


async def stream_signals(redis: Any) -> list[Signal]:
    return [m for m in await stream_messages(redis, c.SIGNALS) if isinstance(m, Signal)]


async def stream_intents(redis: Any) -> list[OrderIntent]:
    return [m for m in await stream_messages(redis, c.INTENTS) if isinstance(m, OrderIntent)]


def ohlc(candle: Candle) -> tuple[Any, ...]:
    """What parity compares: the candle's identity and values (not tick counts)."""
    return (
        candle.symbol, candle.timeframe, candle.start, candle.end, candle.open, candle.high,
        candle.low, candle.close, candle.volume, candle.revision,
    )  # fmt: skip


def signal_key(signal: Signal) -> tuple[Any, ...]:
    return (signal.signal_id, signal.strategy, signal.symbol, signal.timeframe, signal.action,
            signal.price, signal.candle_start, signal.confidence, signal.reason)  # fmt: skip


def stored_candles(client: Client) -> list[tuple[Any, ...]]:
    """candles FINAL: (symbol, timeframe, start, open, high, low, close, volume, revision)."""
    rows: list[tuple[Any, ...]] = client.execute(
        "SELECT symbol, timeframe, start, open, high, low, close, volume, revision "
        "FROM candles FINAL ORDER BY symbol, timeframe, start"
    )
    return [(r[0], r[1], r[2].astimezone(IST), *r[3:]) for r in rows]


def count_rows(client: Client, table: str, final: bool = True) -> int:
    rows: list[tuple[int]] = client.execute(
        f"SELECT count() FROM {table}{' FINAL' if final else ''}"
    )
    return int(rows[0][0])
