"""The Consumer's hop alone at 10,000 ticks/s: closing tick entry -> intent entry, and its CPU.

Set-up (every server real, each its own process): Redis, ClickHouse, the Consumer service
(`python -m services.consumer`, 1-minute candles, EMA 2/3 crossover on 8 of 180 instruments)
and a feeder process shaped like the Producer: every 18 ms one frame of 180 full-mode ticks (five
depth levels a side), one per instrument, appended to the 4 tick partitions with the Producer's
own one-script-per-batch call (services/producer/adapters/tick_stream.py). Exchange time runs
at `--speed` x real time (30: a minute closes every 2 s, all 180 candles in one frame, as the
simulator's frames do); the strategy instruments' closes alternate, so each of them crosses
every minute from its 4th on.
Latency = the intent's entry id - its closing tick's entry id (Redis's clock, 1 ms steps): the
pipeline bench's `stage_consumer`. Also the Consumer's CPU per 1,000 ticks (from /proc, what
neighbours on a shared machine do not change much) and its pending entries at the end (at most
one commit interval's worth when it keeps up).
Usage: python bench/bench_consumer_stage.py [seconds] [--speed X] [--code DIR] [--env K=V ...]
(`--code` runs the Consumer from another checkout: an A/B of two versions on the same machine).
Writes bench/results/consumer_stage.json unless --code names another checkout.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results_file import write_results  # noqa: E402  (bench/ is the script directory)

INSTRUMENTS = 180
STRATEGY_INSTRUMENTS = 8
TICKS_PER_BATCH = INSTRUMENTS  # one frame: a tick of every instrument
BATCH_EVERY_S = 0.018  # 10,000 ticks/s
PARTITIONS = 4
START = datetime(2024, 8, 20, 4, 14, tzinfo=UTC)  # 09:44 IST, a trading day
WARM_UP_S = 3.0


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))]


def instruments() -> list[tuple[str, int]]:
    futures = [(f"NFO:BENCHFUT{i}", 30_000_000 + i) for i in range(STRATEGY_INSTRUMENTS)]
    others = [(f"NFO:BENCHOPT{i:03d}", 20_000_000 + i) for i in range(INSTRUMENTS - len(futures))]
    return futures + others


def feed(redis_url: str, speed: float, seconds: float, out: Any) -> None:
    import redis

    from services.producer.adapters.tick_stream import APPEND_SCRIPT
    from shared import constants as c
    from shared.bus import entry_fields
    from shared.bus.wire import DATA_FIELD, MODEL_FIELD
    from shared.messages import DepthLevel, Tick

    client = redis.Redis.from_url(redis_url)
    append = client.register_script(APPEND_SCRIPT)
    names = instruments()
    depth = tuple(
        DepthLevel(price=100.0 + k, quantity=75 * (k + 1), orders=k + 1) for k in range(5)
    )
    sent, n = 0, 0
    wall0 = time.monotonic()
    next_at = wall0
    while (now := time.monotonic()) - wall0 < seconds:
        exchange = START + timedelta(seconds=(now - wall0) * speed)
        minute = int((exchange - START).total_seconds() // 60)
        level = 100.0 + (10.0 if minute % 2 else 0.0)  # the strategy instruments cross each minute
        received = time.time_ns()
        stamp = exchange.replace(microsecond=0)  # Kite's exchange timestamps are whole seconds
        shards: dict[str, list[bytes]] = {}
        for k in range(TICKS_PER_BATCH):
            symbol, token = names[(n * TICKS_PER_BATCH + k) % len(names)]
            price = level + (k % 5) * 0.05
            tick = Tick(instrument_token=token, symbol=symbol, last_price=price,
                        exchange_ts=stamp, received_ns=received, volume=1000 + n, last_quantity=75,
                        average_price=price, buy_quantity=5000, sell_quantity=4000, open=100.0,
                        high=111.0, low=99.0, close=100.0, oi=10_000, last_trade_ts=stamp,
                        bids=depth, asks=depth)  # fmt: skip
            stream = c.partitioned(c.TICKS, c.partition_of(token, PARTITIONS))
            fields = entry_fields(stream, tick)
            shards.setdefault(stream, []).append(fields[DATA_FIELD])
        argv: list[Any] = [500_000, MODEL_FIELD, b"Tick", DATA_FIELD]
        for payloads in shards.values():
            argv.extend([len(payloads), *payloads])
        append(keys=list(shards), args=argv)
        sent += TICKS_PER_BATCH
        n += 1
        next_at += BATCH_EVERY_S
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    out.send({"ticks": sent, "seconds": time.monotonic() - wall0})
    client.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(seconds: float, speed: float, code: Path, extra_env: dict[str, str]) -> dict[str, Any]:
    import json

    import redis

    from shared import constants as c
    from shared.bus import decode_entry
    from shared.localservers import ClickHouseServer, RedisServer, free_port
    from shared.messages import OrderIntent, Tick

    workdir = Path(tempfile.mkdtemp(prefix="bench-consumer-stage-"))
    redis_server = RedisServer(workdir / "redis").start()
    clickhouse = ClickHouseServer(workdir / "clickhouse").start()
    strategy = [{"kind": "ema_crossover",
                 "symbols": [s for s, _ in instruments()[:STRATEGY_INSTRUMENTS]],
                 "params": {"timeframe": "minute", "fast": 2, "slow": 3, "lookback": 6}}]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUMER_")} | {
        "PYTHONPATH": str(code), "REDIS_URL": redis_server.url,
        "CLICKHOUSE_HOST": clickhouse.host, "CLICKHOUSE_PORT": str(clickhouse.port),
        "CLICKHOUSE_DATABASE": "bench", "SPOOL_DIR": str(workdir / "spool"),
        "TICK_PARTITIONS": str(PARTITIONS), "CONSUMER_METRICS_PORT": str(free_port()),
        "CONSUMER_WARMUP": "false", "CONSUMER_BACKFILL_GAPS": "false", "CONSUMER_API_KEY": "",
        "CONSUMER_TIMEFRAMES": '["minute"]', "CONSUMER_STRATEGIES": json.dumps(strategy),
        "CONSUMER_CANDLE_GRACE_S": "0.5", "CONSUMER_LOG_LEVEL": "WARNING",
    } | extra_env  # fmt: skip
    log = (workdir / "consumer.log").open("wb")
    consumer = subprocess.Popen([sys.executable, "-m", "services.consumer"], cwd=workdir, env=env,
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    client = redis.Redis.from_url(redis_server.url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the Consumer owns its partitions
            if all(client.get(c.PARTITION_LEASE_KEY.format(p=p)) for p in range(PARTITIONS)):
                break
            time.sleep(0.1)
        receiver, sender = multiprocessing.Pipe(duplex=False)
        feeder = multiprocessing.get_context("spawn").Process(
            target=feed, args=(redis_server.url, speed, seconds + WARM_UP_S, sender)
        )
        feeder.start()
        time.sleep(WARM_UP_S)
        cpu0, started_ms = cpu_seconds(consumer.pid), time.time() * 1000
        fed = receiver.recv()
        cpu = cpu_seconds(consumer.pid) - cpu0
        feeder.join()
        pending = sum(
            int(client.xpending(c.partitioned(c.TICKS, p), c.GROUP_CONSUMER)["pending"])
            for p in range(PARTITIONS)
        )
        time.sleep(1.0)  # the last intents
        stage_ms: list[float] = []
        for entry_id, fields in client.xrange(c.INTENTS):
            intent = decode_entry(c.INTENTS, fields)
            intent_ms = float(entry_id.split(b"-")[0])
            if not isinstance(intent, OrderIntent) or intent_ms < started_ms:
                continue
            stream = c.partitioned(c.TICKS, c.partition_of(intent.instrument_token, PARTITIONS))
            window = client.xrange(stream, min=int(intent_ms) - 3000, max=int(intent_ms) + 1)
            for tick_id, tick_fields in reversed(window):
                tick = decode_entry(stream, tick_fields)
                if (isinstance(tick, Tick) and tick.instrument_token == intent.instrument_token
                        and tick.received_ns == intent.last_tick_received_ns):  # fmt: skip
                    stage_ms.append(intent_ms - float(tick_id.split(b"-")[0]))
                    break
    finally:
        consumer.send_signal(signal.SIGTERM)
        try:
            consumer.wait(30)
        except subprocess.TimeoutExpired:
            consumer.kill()
        log.close()
        client.close()
        redis_server.stop()
        clickhouse.stop()
    measured_s = fed["seconds"] - WARM_UP_S
    ticks = fed["ticks"] * measured_s / fed["seconds"]
    return {"stage_ms": stage_ms, "cpu_s": cpu, "ticks": ticks, "seconds": measured_s,
            "pending_at_end": pending, "log": str(workdir / "consumer.log")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("seconds", nargs="?", type=float, default=30.0)
    parser.add_argument("--speed", type=float, default=30.0)
    parser.add_argument("--code", type=Path, default=ROOT)
    parser.add_argument("--env", action="append", default=[], help="K=V for the Consumer")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    load0 = os.getloadavg()[0]
    result = run(args.seconds, args.speed, args.code.resolve(), extra)
    stage = result["stage_ms"]
    if len(stage) < 10:
        raise SystemExit(f"too few intents measured: {len(stage)} (log: {result['log']})")
    figures = {
        "stage_consumer_p50_ms": _percentile(stage, 50),
        "stage_consumer_p90_ms": _percentile(stage, 90),
        "stage_consumer_p99_ms": _percentile(stage, 99),
        "stage_consumer_max_ms": max(stage),
        "stage_consumer_mean_ms": round(statistics.fmean(stage), 2),
        "intents_measured": len(stage),
        "ticks_per_s": round(result["ticks"] / result["seconds"]),
        "consumer_cpu_ms_per_1000_ticks": round(result["cpu_s"] * 1e6 / result["ticks"], 1),
        "consumer_cpu_share_of_a_core": round(result["cpu_s"] / result["seconds"], 3),
        "consumer_pending_at_end": result["pending_at_end"],
    }
    if args.code.resolve() != ROOT:  # an A/B run: printed, not written
        for name, value in figures.items():
            print(f"{name:40s} {value}")
        return
    conditions = {
        "path": "feeder (Producer-shaped: a frame of 180 full-mode ticks every 18 ms, one script "
        "call per frame) -> "
        "ta:ticks (4 partitions) -> Consumer (1-minute candles, EMA 2/3 on 8 instruments, "
        "ClickHouse rows) -> ta:intents; latency from the closing tick's entry id",
        "speed": args.speed,
        "seconds": round(result["seconds"], 1),
        "consumer_env": extra,
        "load_avg_1m_at_start": round(load0, 2),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
    }
    units = {"intents_measured": "count", "ticks_per_s": "per second",
             "consumer_cpu_ms_per_1000_ticks": "ms", "consumer_cpu_share_of_a_core": "ratio",
             "consumer_pending_at_end": "count"}  # fmt: skip
    write_results(
        "consumer_stage",
        {k: (v, units.get(k, "ms")) for k, v in figures.items()},
        conditions,
    )


if __name__ == "__main__":
    main()
