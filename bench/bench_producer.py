"""How many ticks per second the Producer sustains into Redis (and ClickHouse), and its CPU cost.

What is measured (stated in the results' conditions):
- FEED: the simulator's own encoder (services.simulator.ticker_packets.FrameEncoder) builds real
  KiteTicker frames of full-mode 184-byte packets for `--instruments` instruments (NFO tokens,
  distinct prices, depth and timestamps), pre-encoded once. A feeder thread plays the reactor
  thread's role: it calls FrameBuffer.put(Frame(connection, payload, time.time_ns())) exactly as
  TickerConnection._on_message does, keeping at most `--queue-frames` frames waiting (closed
  loop, so the figure is the sustained capacity and the backlog stays bounded). No WebSocket: the
  Twisted/autobahn receive cost is not included (see --simulator for a sanity run through it).
- PATH: the Producer's real publishing adapter (TickPublisher): parse (TickParser), publish in
  pipelined batches to the partitioned ticks stream through shared.bus.StreamBus (MAXLEN bounded),
  and hand every tick to the ClickHouse sink (batched inserts into `ticks`).
- SERVERS: a real Redis (valkey) and a real ClickHouse 26.x started here with shared.localservers.
- CPU: process CPU time (user+sys) of this process minus the feeder thread's own CPU time, per
  1,000 published ticks; the servers' CPU is reported separately.

    python bench/bench_producer.py [--seconds 30] [--instruments 9000] [--no-clickhouse]
    python bench/bench_producer.py --seconds 600        # the 10-minute target run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry  # noqa: E402

from services.producer.adapters.metrics import ProducerMetrics  # noqa: E402
from services.producer.adapters.publisher import TickPublisher, TickSink  # noqa: E402
from services.producer.frame_buffer import Frame, FrameBuffer  # noqa: E402
from services.producer.packets import TickParser  # noqa: E402
from services.producer.settings import ProducerSettings  # noqa: E402
from services.simulator.ticker_packets import (  # noqa: E402
    DepthEntry,
    FrameEncoder,
    TickMode,
    TickSnapshot,
)
from shared import constants as c  # noqa: E402
from shared.bus import StreamBus, redis_client  # noqa: E402
from shared.localservers import ClickHouseServer, RedisServer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "producer.json"
START_EPOCH = 1_724_125_500  # 2024-08-20 09:15 IST


def nfo_token(i: int) -> int:
    return (10_000 + i) * 256 + 2  # segment 2 (NFO)


def encode_frames(instruments: int, packets_per_frame: int, frames: int) -> list[bytes]:
    """`frames` frames of `packets_per_frame` full packets cycling over the instruments."""
    encoder = FrameEncoder(packets_per_frame)
    out = []
    n = 0
    for f in range(frames):
        items: list[tuple[TickSnapshot, TickMode]] = []
        for _ in range(packets_per_frame):
            i = n % instruments
            price = 100.0 + (n % 997) * 0.05
            depth = tuple(DepthEntry(25 * (k + 1), price - 0.05 * (k + 1), k + 1) for k in range(5))
            asks = tuple(DepthEntry(25 * (k + 1), price + 0.05 * (k + 1), k + 1) for k in range(5))
            snap = TickSnapshot(
                instrument_token=nfo_token(i),
                last_price=price,
                last_quantity=25,
                average_price=price - 0.1,
                volume=1000 + n,
                buy_quantity=5000,
                sell_quantity=6000,
                open=100.0,
                high=200.0,
                low=50.0,
                close=99.0,
                last_trade_time=START_EPOCH + f,
                oi=10_000,
                oi_day_high=11_000,
                oi_day_low=9_000,
                exchange_timestamp=START_EPOCH + f,
                bids=depth,
                asks=asks,
            )
            items.append((snap, "full"))
            n += 1
        out.append(encoder.encode(items))
    return out


class Feeder(threading.Thread):
    """Plays the reactor thread: puts frames into the buffer, never more than `queue` waiting."""

    def __init__(
        self, buffer: FrameBuffer, frames: list[bytes], queue: int, connections: int
    ) -> None:
        super().__init__(name="feeder", daemon=True)
        self.buffer = buffer
        self.frames = frames
        self.queue = queue
        self.connections = [f"c{i}" for i in range(connections)]
        self.stop_flag = threading.Event()
        self.cpu_s = 0.0
        self.max_depth = 0

    def run(self) -> None:
        started = time.thread_time()
        k = 0
        frames, buffer, names = self.frames, self.buffer, self.connections
        while not self.stop_flag.is_set():
            depth = len(buffer)
            self.max_depth = max(self.max_depth, depth)
            if depth >= self.queue:
                time.sleep(0.0002)
                continue
            buffer.put(Frame(names[k % len(names)], frames[k % len(frames)], time.time_ns()))
            k += 1
        self.cpu_s = time.thread_time() - started


def process_cpu_s(pid: int | None = None) -> float:
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def measure(
    args: argparse.Namespace, redis_url: str, sink: TickSink | None
) -> dict[str, Any]:
    settings = ProducerSettings(
        redis_url=redis_url, tick_partitions=args.partitions, publish_batch=args.publish_batch,
        drain_max_ticks=args.drain, ticks_maxlen=args.maxlen,
    )  # fmt: skip
    redis = redis_client(redis_url)
    metrics = ProducerMetrics(CollectorRegistry())
    bus = StreamBus(redis, service="producer", maxlen=settings.ticks_maxlen,
                    publish_batch=settings.publish_batch, metrics=metrics)  # fmt: skip
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()

    def wake_threadsafe() -> None:
        loop.call_soon_threadsafe(wake.set)

    buffer = FrameBuffer(settings.buffer_max_frames, wake_threadsafe)
    publisher = TickPublisher(buffer, wake, bus, sink, metrics, settings)
    publisher.parser = TickParser({nfo_token(i): f"NFO:SYM{i}" for i in range(args.instruments)})
    frames = encode_frames(args.instruments, args.frame_packets, args.distinct_frames)
    feeder = Feeder(buffer, frames, args.queue_frames, 3)
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    feeder.start()
    await asyncio.sleep(args.warmup)
    t0, p0, cpu0 = time.monotonic(), publisher.published, process_cpu_s()
    feed_cpu0 = feeder.cpu_s
    await asyncio.sleep(args.seconds)
    t1, p1, cpu1 = time.monotonic(), publisher.published, process_cpu_s()
    feeder.stop_flag.set()
    feeder.join()
    stop.set()
    wake.set()
    await task
    await publisher.drain()
    lengths = [await redis.xlen(c.partitioned(c.TICKS, p)) for p in range(args.partitions)]
    await redis.aclose()
    ticks = p1 - p0
    elapsed = t1 - t0
    # The feeder's CPU is the stand-in for the reactor thread's receive cost: excluded.
    feeder_share = feeder.cpu_s * (elapsed / (elapsed + args.warmup))
    producer_cpu = (cpu1 - cpu0) - max(0.0, feeder_share - feed_cpu0)
    return {
        "ticks": ticks,
        "elapsed_s": elapsed,
        "ticks_per_s": ticks / elapsed,
        "cpu_ms_per_1k": producer_cpu * 1000 / (ticks / 1000) if ticks else None,
        "feeder_cpu_s": feeder.cpu_s,
        "max_buffer_frames": feeder.max_depth,
        "dropped_packets": buffer.dropped_packets,
        "stream_lengths": lengths,
        "published_total": publisher.published,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--instruments", type=int, default=9000)
    parser.add_argument("--frame-packets", type=int, default=1000)
    parser.add_argument("--distinct-frames", type=int, default=60)
    parser.add_argument("--queue-frames", type=int, default=20)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--publish-batch", type=int, default=2000)
    parser.add_argument("--drain", type=int, default=10_000)
    parser.add_argument("--maxlen", type=int, default=200_000)
    parser.add_argument("--no-clickhouse", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-producer-") as tmp:
        redis_server = RedisServer(Path(tmp) / "redis").start()
        clickhouse: ClickHouseServer | None = None
        try:
            sink = None
            if not args.no_clickhouse:
                clickhouse = ClickHouseServer(Path(tmp) / "clickhouse").start()
                sink = build_clickhouse_sink(clickhouse, Path(tmp) / "spool")
            redis_cpu0 = process_cpu_s(redis_server.pid)
            ch_cpu0 = process_cpu_s(clickhouse.pid) if clickhouse else 0.0
            result = asyncio.run(measure(args, redis_server.url, sink))
            redis_cpu = process_cpu_s(redis_server.pid) - redis_cpu0
            ch_cpu = (process_cpu_s(clickhouse.pid) - ch_cpu0) if clickhouse else 0.0
            rows = finish_clickhouse_sink(sink) if sink is not None else None
        finally:
            if clickhouse is not None:
                clickhouse.stop()
            redis_server.stop()

    figures = {
        "ticks_per_s": {"value": round(result["ticks_per_s"]), "unit": "ticks/s"},
        "cpu_ms_per_1k_ticks": {"value": round(result["cpu_ms_per_1k"], 2), "unit": "ms"},
    }
    conditions = {
        "feed": "simulator FrameEncoder frames (full mode, 184-byte packets) put into the "
        "Producer's FrameBuffer by a thread standing in for the Twisted reactor; no WebSocket",
        "path": "TickPublisher: TickParser -> StreamBus.publish_partitioned (pipelined XADD, "
        "approximate MAXLEN) -> ClickHouse sink" + (" (disabled)" if args.no_clickhouse else ""),
        "seconds": args.seconds,
        "instruments": args.instruments,
        "packets_per_frame": args.frame_packets,
        "partitions": args.partitions,
        "publish_batch": args.publish_batch,
        "ticks_maxlen_per_partition": args.maxlen,
        "max_buffer_frames": result["max_buffer_frames"],
        "dropped_packets": result["dropped_packets"],
        "redis_server_cpu_s": round(redis_cpu, 2),
        "clickhouse_server_cpu_s": round(ch_cpu, 2),
        "clickhouse_rows": rows,
        "published_total": result["published_total"],
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    report = {"name": "producer", "figures": figures, "conditions": conditions}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"producer: {figures['ticks_per_s']['value']:,} ticks/s sustained over "
          f"{args.seconds:g} s, {figures['cpu_ms_per_1k_ticks']['value']} ms CPU per 1,000 ticks "
          f"(Redis server {redis_cpu:.1f} s CPU, ClickHouse {ch_cpu:.1f} s CPU)")  # fmt: skip
    print(f"written {RESULTS.relative_to(ROOT)}")
    return 0


def build_clickhouse_sink(server: ClickHouseServer, spool: Path) -> TickSink:
    raise NotImplementedError("the ClickHouse sink needs shared.store (not there yet)")


def finish_clickhouse_sink(sink: TickSink) -> int | None:
    return None


if __name__ == "__main__":
    raise SystemExit(main())
