"""How many ticks per second the Producer sustains into Redis (and ClickHouse), and its CPU cost.

What is measured (stated in the results' conditions):
- FEED: the simulator's own encoder (services.simulator.ticker_packets.FrameEncoder) builds real
  KiteTicker frames of full-mode 184-byte packets for `--instruments` instruments (NFO tokens,
  distinct prices, depth and timestamps), pre-encoded once. A feeder thread plays the reactor
  thread's role: it calls FrameBuffer.put(Frame(connection, payload, time.time_ns())) exactly as
  TickerConnection._on_message does, keeping at most `--queue-frames` frames waiting (closed
  loop, so the figure is the sustained capacity and the backlog stays bounded). No WebSocket: the
  Twisted/autobahn receive cost is not included (see --simulator for a sanity run through it).
- PATH: the Producer's real publishing adapter (TickPublisher): parse (TickParser), append in
  scripted batches to the partitioned ticks stream (the bus's entries, MAXLEN bounded), and hand
  the raw frames to the ClickHouse worker process, which decodes them into numpy columns and
  inserts them as columns through the shared BatchWriter into `ticks` (--clickhouse-writer
  thread: rows built from the Ticks and inserted in-process).
- SERVERS: a real Redis (valkey) and a real ClickHouse 26.x started here with shared.localservers.
- CPU: process CPU time (user+sys) of this process minus the feeder thread's own CPU time, per
  1,000 published ticks, plus (process writer) the worker process's CPU time; the Redis and
  ClickHouse servers' CPU over the same window (from /proc), per 1,000 ticks, and the total of
  the four: what the whole path costs the machine's cores.

    python bench/bench_producer.py [--seconds 30] [--instruments 9000] [--no-clickhouse]
                                   [--clickhouse-batch-rows 10000]
    python bench/bench_producer.py --seconds 600        # the 10-minute target run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry  # noqa: E402
from results_file import write_results  # noqa: E402  (bench/ is the script directory)

from services.producer.adapters.metrics import ProducerMetrics  # noqa: E402
from services.producer.adapters.publisher import TickPublisher  # noqa: E402
from services.producer.frame_buffer import Frame, FrameBuffer  # noqa: E402
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
SIM_API_KEY, SIM_API_SECRET, SIM_USER, SIM_PASSWORD = (
    "sim_api_key", "sim_api_secret", "SIM001", "sim-password",
)  # fmt: skip
SIM_TOTP = "SIMULATORTOTPSECRETFORTESTSONLYA"  # the simulator's documented fake account
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
    """Plays the reactor thread: puts frames into the buffer, never more than `queue` waiting,
    and holds back while the ClickHouse writer is near its in-flight bound (so the sustained
    rate is the one BOTH Redis and ClickHouse keep up with, nothing dropped)."""

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
        self.clickhouse_busy: Callable[[], bool] = lambda: False

    def run(self) -> None:
        started = time.thread_time()
        k = 0
        frames, buffer, names = self.frames, self.buffer, self.connections
        while not self.stop_flag.is_set():
            depth = len(buffer)
            self.max_depth = max(self.max_depth, depth)
            if depth >= self.queue or self.clickhouse_busy():
                # Long enough not to steal the GIL from the publisher every few microseconds;
                # `queue` frames last far longer than this.
                time.sleep(0.002)
                continue
            buffer.put(Frame(names[k % len(names)], frames[k % len(frames)], time.time_ns()))
            k += 1
        self.cpu_s = time.thread_time() - started


def worker_cpu_s(sink: Any) -> float:
    """CPU seconds of the ClickHouse worker process (0 without one)."""
    pool = getattr(sink, "_pool", None)
    processes = getattr(pool, "_processes", None) or {}
    return sum(process_cpu_s(pid) for pid in list(processes))


def process_cpu_s(pid: int | None = None) -> float:
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def measure(
    args: argparse.Namespace,
    redis_url: str,
    clickhouse: ClickHouseTarget | None,
    server_pids: dict[str, int],
) -> dict[str, Any]:
    settings = ProducerSettings(
        redis_url=redis_url, tick_partitions=args.partitions, publish_batch=args.publish_batch,
        drain_max_ticks=args.drain, ticks_maxlen=args.maxlen,
        **(clickhouse.settings("encoder") if clickhouse else {}),
    )  # fmt: skip
    sink = await clickhouse.start_sink(settings) if clickhouse else None
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
    publisher.set_symbols({nfo_token(i): f"NFO:SYM{i}" for i in range(args.instruments)})
    frames = encode_frames(args.instruments, args.frame_packets, args.distinct_frames)
    feeder = Feeder(buffer, frames, args.queue_frames, 3)
    if sink is not None and hasattr(sink, "_in_flight"):
        limit = settings.clickhouse_max_inflight - 2
        feeder.clickhouse_busy = lambda: len(sink._in_flight) >= limit
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    feeder.start()
    await asyncio.sleep(args.warmup)
    t0, p0, cpu0 = time.monotonic(), publisher.published, process_cpu_s()
    feed_cpu0, worker_cpu0 = feeder.cpu_s, worker_cpu_s(sink)
    servers0 = {name: process_cpu_s(pid) for name, pid in server_pids.items()}
    await asyncio.sleep(args.seconds)
    t1, p1, cpu1 = time.monotonic(), publisher.published, process_cpu_s()
    worker_cpu = worker_cpu_s(sink) - worker_cpu0
    servers = {name: process_cpu_s(pid) - servers0[name] for name, pid in server_pids.items()}
    feeder.stop_flag.set()
    feeder.join()
    stop.set()
    wake.set()
    await task
    await publisher.drain()
    if clickhouse is not None and sink is not None:
        await clickhouse.close_sink(sink)
    lengths = [await redis.xlen(c.partitioned(c.TICKS, p)) for p in range(args.partitions)]
    await redis.aclose()
    ticks = p1 - p0
    elapsed = t1 - t0
    # The feeder's CPU is the stand-in for the reactor thread's receive cost: excluded.
    feeder_share = feeder.cpu_s * (elapsed / (elapsed + args.warmup))
    producer_cpu = (cpu1 - cpu0) - max(0.0, feeder_share - feed_cpu0)

    def per_1k(cpu_s: float) -> float | None:
        return cpu_s * 1000 / (ticks / 1000) if ticks else None

    return {
        "ticks": ticks,
        "elapsed_s": elapsed,
        "ticks_per_s": ticks / elapsed,
        "cpu_ms_per_1k": (producer_cpu + worker_cpu) * 1000 / (ticks / 1000) if ticks else None,
        "main_cpu_ms_per_1k": producer_cpu * 1000 / (ticks / 1000) if ticks else None,
        "worker_cpu_ms_per_1k": worker_cpu * 1000 / (ticks / 1000) if ticks else None,
        "server_cpu_ms_per_1k": {name: per_1k(cpu) for name, cpu in servers.items()},
        "feeder_cpu_s": feeder.cpu_s,
        "max_buffer_frames": feeder.max_depth,
        "dropped_packets": buffer.dropped_packets,
        "stream_lengths": lengths,
        "published_total": publisher.published,
    }


# -- through the simulator (sanity run: WebSocket, Twisted, the whole Producer) ------------------


def start_simulator() -> tuple[subprocess.Popen[str], str, str]:
    command = [sys.executable, "-m", "services.simulator", "--rest-port", "0", "--ws-port", "0"]
    command += ["--speed", "max", "--paused", "--start-time", "09:14", "--log-level", "WARNING"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    rest = process.stdout.readline().strip().removeprefix("REST root: ")
    ws = process.stdout.readline().strip().removeprefix("WebSocket root: ")
    if not rest.startswith("http") or not ws.startswith("ws"):
        process.kill()
        raise RuntimeError(f"the simulator did not start: {rest!r} {ws!r}")
    return process, rest, ws


async def seed(redis: Any, rest: str) -> str:
    """Log in on the simulator and publish the token and instruments as the Sentinel does."""
    from services.sentinel.adapters.instrument_loader import InstrumentLoader
    from services.sentinel.adapters.kite_session import KiteSessionClient
    from services.sentinel.adapters.session_store import SessionInfo, SessionStore
    from services.sentinel.kite_login import BackoffPolicy, KiteLoginClient
    from services.sentinel.token_expiry import token_expires_at
    from shared.clock import SystemClock
    from shared.session import token_fingerprint

    backoff = BackoffPolicy(2, 0.1, 0.5)
    request_token = await KiteLoginClient(rest, SIM_API_KEY, 10.0, backoff).request_token(
        SIM_USER, SIM_PASSWORD, SIM_TOTP
    )
    session = KiteSessionClient(SIM_API_KEY, rest, 30.0, backoff)
    issued = await session.generate_session(request_token, SIM_API_SECRET)
    now = SystemClock().now()
    info = SessionInfo(
        SIM_USER, now, token_expires_at(now), token_fingerprint(issued.access_token), "cli"
    )
    bus = StreamBus(redis, service="bench", maxlen=10_000)
    await SessionStore(redis, bus).distribute(issued.access_token, info)

    class NoInstrumentRows:
        async def write_instruments(self, rows: Any) -> None:
            return None

    await InstrumentLoader(session, redis, NoInstrumentRows(), ("NSE", "NFO"), {}).load(
        issued.access_token, now
    )
    return issued.access_token


async def measure_simulator(
    args: argparse.Namespace,
    redis_url: str,
    rest: str,
    ws: str,
    clickhouse: ClickHouseTarget | None,
) -> dict[str, Any]:
    from services.producer.__main__ import build_producer
    from shared.alerts import LogAlerter
    from shared.calendar import load_calendar
    from shared.clock import SystemClock

    settings = ProducerSettings(
        redis_url=redis_url, api_key=SIM_API_KEY, kite_api_root=rest, kite_ws_root=ws,
        option_strikes_each_side=args.strikes, tick_partitions=args.partitions,
        publish_batch=args.publish_batch, drain_max_ticks=args.drain, ticks_maxlen=args.maxlen,
        **(clickhouse.settings("simulator") if clickhouse else {"write_clickhouse": False}),
    )  # fmt: skip
    sink = await clickhouse.start_sink(settings) if clickhouse else None
    redis = redis_client(redis_url)
    await seed(redis, rest)
    # Past the opening tick, so the indices have a quote to centre the option chains on.
    await asyncio.to_thread(requests_post, f"{rest}/_sim/clock", {"action": "step", "seconds": 70})
    metrics = ProducerMetrics(CollectorRegistry())
    producer = build_producer(
        settings, redis, metrics, sink, LogAlerter("producer"), SystemClock(), load_calendar()
    )
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(stop))
    for _ in range(600):  # up to 30 s for the login, instruments and subscription
        if producer.readiness()[0]:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # the subscription snapshots
    instruments = len(producer.subscription.symbols)
    await asyncio.to_thread(requests_post, f"{rest}/_sim/clock", {"action": "resume"})
    await asyncio.sleep(1.0)
    t0, p0, cpu0 = time.monotonic(), producer.published, process_cpu_s()
    worker_cpu0 = worker_cpu_s(sink)
    await asyncio.sleep(args.sim_seconds)
    t1, p1, cpu1 = time.monotonic(), producer.published, process_cpu_s()
    cpu1 += worker_cpu_s(sink) - worker_cpu0
    await asyncio.to_thread(requests_post, f"{rest}/_sim/clock", {"action": "pause"})
    stop.set()
    await task
    published = producer.published
    if clickhouse is not None and sink is not None:
        await clickhouse.close_sink(sink)
    await redis.aclose()
    ticks = p1 - p0
    return {
        "ticks_per_s": ticks / (t1 - t0),
        "cpu_ms_per_1k": (cpu1 - cpu0) * 1000 / (ticks / 1000) if ticks else None,
        "instruments": instruments,
        "dropped_packets": producer.buffer.dropped_packets,
        "ticks": ticks,
        "published_total": published,
    }


def requests_post(url: str, body: dict[str, Any]) -> None:
    import requests

    requests.post(url, json=body, timeout=30).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="encoder-fed window")
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
    parser.add_argument("--clickhouse-batch-rows", type=int, default=None,
                        help="rows per ClickHouse insert (default: the Producer's setting)")  # fmt: skip
    parser.add_argument("--clickhouse-writer", choices=["process", "thread"], default="process")
    parser.add_argument("--sim-seconds", type=float, default=10.0, help="0: skip the simulator run")
    parser.add_argument("--strikes", type=int, default=20, help="simulator run: strikes each side")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was

    with tempfile.TemporaryDirectory(prefix="bench-producer-") as tmp:
        redis_server = RedisServer(Path(tmp) / "redis").start()
        clickhouse: ClickHouseServer | None = None
        simulator: subprocess.Popen[str] | None = None
        try:
            if not args.no_clickhouse:
                clickhouse = ClickHouseServer(Path(tmp) / "clickhouse").start()
            target = (
                ClickHouseTarget(
                    clickhouse,
                    Path(tmp) / "spool",
                    args.clickhouse_writer,
                    args.clickhouse_batch_rows,
                )
                if clickhouse
                else None
            )
            redis_cpu0 = process_cpu_s(redis_server.pid)
            ch_cpu0 = process_cpu_s(clickhouse.pid) if clickhouse else 0.0
            pids = {"redis": redis_server.pid, "clickhouse": clickhouse.pid if clickhouse else None}
            server_pids = {name: pid for name, pid in pids.items() if pid is not None}
            result = asyncio.run(measure(args, redis_server.url, target, server_pids))
            redis_cpu = process_cpu_s(redis_server.pid) - redis_cpu0
            ch_cpu = (process_cpu_s(clickhouse.pid) - ch_cpu0) if clickhouse else 0.0
            rows = target.rows("encoder") if target else None
            sim: dict[str, Any] | None = None
            sim_rows: int | None = None
            if args.sim_seconds > 0:
                simulator, rest, ws = start_simulator()
                sim = asyncio.run(measure_simulator(args, redis_server.url, rest, ws, target))
                sim_rows = target.rows("simulator") if target else None
        finally:
            if simulator is not None:
                simulator.terminate()
                simulator.wait(timeout=30)
            if clickhouse is not None:
                clickhouse.stop()
            redis_server.stop()

    # The busier of the two processes bounds what one free core each can sustain.
    bottleneck = max(result["main_cpu_ms_per_1k"] or 0.0, result["worker_cpu_ms_per_1k"] or 0.0)
    figures: dict[str, Any] = {
        "ticks_per_s": {"value": round(result["ticks_per_s"]), "unit": "ticks/s"},
        "cpu_ms_per_1k_ticks": {"value": round(result["cpu_ms_per_1k"], 2), "unit": "ms"},
        "ticks_per_s_per_cpu_core": {
            "value": round(1_000_000 / bottleneck) if bottleneck else 0,
            "unit": "ticks/s",
        },
        "main_process_cpu_ms_per_1k_ticks": {
            "value": round(result["main_cpu_ms_per_1k"], 2),
            "unit": "ms",
        },
        "clickhouse_worker_cpu_ms_per_1k_ticks": {
            "value": round(result["worker_cpu_ms_per_1k"], 2),
            "unit": "ms",
        },
    }
    servers = result["server_cpu_ms_per_1k"]
    for name, value in servers.items():
        figures[f"{name}_server_cpu_ms_per_1k_ticks"] = {"value": round(value, 2), "unit": "ms"}
    total = result["cpu_ms_per_1k"] + sum(servers.values())
    figures["total_cpu_ms_per_1k_ticks"] = {"value": round(total, 2), "unit": "ms"}
    figures["ticks_per_s_on_2_cores"] = {"value": round(2 * 1_000_000 / total), "unit": "ticks/s"}
    if sim is not None:
        figures["simulator_ticks_per_s"] = {"value": round(sim["ticks_per_s"]), "unit": "ticks/s"}
        figures["simulator_cpu_ms_per_1k_ticks"] = {
            "value": round(sim["cpu_ms_per_1k"], 2) if sim["cpu_ms_per_1k"] else None,
            "unit": "ms",
        }
    conditions = {
        "feed": "simulator FrameEncoder frames (full mode, 184-byte packets) put into the "
        "Producer's FrameBuffer by a thread standing in for the Twisted reactor; no WebSocket "
        "(ticks_per_s, cpu_ms_per_1k_ticks)",
        "path": "TickPublisher: TickParser -> scripted XADD batches to the partitioned ticks "
        "stream (approximate MAXLEN) -> ClickHouse `ticks` via the shared BatchWriter "
        f"(batches of {target.batch_rows if target else 0:,} rows; --clickhouse-writer process: "
        "frames decoded into numpy columns and inserted as columns by a worker process, thread: "
        "rows built from the Ticks and inserted in the Producer's process)"
        + (" (disabled)" if args.no_clickhouse else ""),
        "total_cpu_ms_per_1k_ticks": "main process + ClickHouse worker + Redis server + "
        "ClickHouse server, per 1,000 ticks over the measured window (the servers' merges and "
        "background work included); ticks_per_s_on_2_cores = 2e6 / that total",
        "ticks_per_s_per_cpu_core": "1e6 / the CPU ms per 1,000 ticks of the busier of the "
        "Producer's two processes (main, ClickHouse worker): the rate with one free core each; "
        "the measured ticks_per_s is lower when other processes share the 2 cores",
        "cpu_ms_per_1k_ticks": "main process + ClickHouse worker process, per 1,000 ticks",
        "simulator_run": "the whole Producer (KiteTicker on Twisted, WebSocket, full mode) fed by "
        "the simulator process at max speed; its rate is bounded by the simulator's own output",
        "seconds": args.seconds,
        "simulator_seconds": args.sim_seconds,
        "instruments": args.instruments,
        "simulator_instruments": sim["instruments"] if sim else None,
        "simulator_dropped_packets": sim["dropped_packets"] if sim else None,
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
        "clickhouse_writer": args.clickhouse_writer,
        "clickhouse_dropped_ticks": target.dropped[0] if target else None,
        "clickhouse_backlog_at_window_end": target.backlog_at_end[0] if target else None,
        "clickhouse_drain_after_window_s": round(target.drain_s[0], 2) if target else None,
        "simulator_published_total": sim["published_total"] if sim else None,
        "simulator_clickhouse_rows": sim_rows,
        "cpus": os.cpu_count(),
        "load_average_1m_before": round(load_before, 2),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    write_results("producer", {n: (f["value"], f["unit"]) for n, f in figures.items()}, conditions)
    print(f"(Redis server {redis_cpu:.1f} s CPU, ClickHouse server {ch_cpu:.1f} s CPU, "
          f"load average before {load_before:.1f})")  # fmt: skip
    return 0


class ClickHouseTarget:
    """The bench's ClickHouse: settings for the Producer and the sinks started on it."""

    def __init__(
        self, server: ClickHouseServer, spool_root: Path, writer: str, batch_rows: int | None
    ) -> None:
        self.writer = writer
        self.batch_rows = (
            batch_rows or ProducerSettings.model_fields["clickhouse_batch_rows"].default
        )
        self.server = server
        self.spool_root = spool_root
        self.sinks: list[Any] = []
        self.backlog_at_end: list[int] = []
        self.drain_s: list[float] = []
        self.dropped: list[int] = []

    def settings(self, name: str) -> dict[str, Any]:
        return {
            "clickhouse_host": self.server.host,
            "clickhouse_port": self.server.port,
            "clickhouse_database": f"bench_{name}",
            "spool_dir": str(self.spool_root / name),
            "write_clickhouse": True,
            "clickhouse_writer": self.writer,
            "clickhouse_batch_rows": self.batch_rows,
        }

    async def start_sink(self, settings: ProducerSettings) -> Any:
        from services.producer.adapters.clickhouse_process import ClickHouseTickProcess
        from services.producer.adapters.clickhouse_ticks import ClickHouseTicks

        metrics = ProducerMetrics(CollectorRegistry())
        sink: Any = (
            ClickHouseTickProcess(settings, metrics)
            if settings.clickhouse_writer == "process"
            else ClickHouseTicks(settings, metrics)
        )
        await sink.start()
        self.sinks.append(sink)
        return sink

    async def close_sink(self, sink: Any) -> None:
        """Close after the measured window: how far behind the inserts were, and how long the
        rest took to drain."""
        self.dropped.append(getattr(sink, "dropped", 0))
        if hasattr(sink, "writer"):  # in-process writer: rows still buffered
            self.backlog_at_end.append(sink.writer.buffered)
        else:  # worker process: rows handed over and not yet added, as of its last answer
            self.backlog_at_end.append(len(sink._in_flight))
        started = time.monotonic()
        await sink.close()
        self.drain_s.append(time.monotonic() - started)

    def rows(self, name: str) -> int:
        from clickhouse_driver import Client

        client = Client(host=self.server.host, port=self.server.port, database=f"bench_{name}")
        try:
            count: int = client.execute("SELECT count() FROM ticks")[0][0]
            return count
        finally:
            client.disconnect()


if __name__ == "__main__":
    raise SystemExit(main())
