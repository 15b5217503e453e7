"""Consumer figures: candle builder throughput, backtest speed, memory, candle-close -> intent latency.

    /work/venv/bin/python bench/bench_consumer.py [--quick]

The pure-core figures run without Redis or ClickHouse, on real NIFTY / NIFTY BANK minutes.
Throughputs are measured in CPU time (`time.process_time`, best of several rounds) because the
bench machine is shared: wall time would measure the neighbours. Latency is wall time
(`perf_counter_ns`) since that is what a candle close waits for; the load average is recorded.
`service_close_to_intent_*` runs the Consumer SERVICE (local Redis and ClickHouse servers, four
tick partitions, all seven timeframes): 1,000 instruments' closing ticks published in one burst,
latency = the intent's stream entry time minus the burst's publish time (`--no-service` skips it).
Writes bench/results/consumer.json.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results_file import write_results  # noqa: E402  (bench/ is the script directory)

from services.consumer.backtest.bars import Bar, CsvBarSource, build_candles  # noqa: E402
from services.consumer.backtest.engine import BacktestConfig, run_backtest  # noqa: E402
from services.consumer.backtest.fills import zerodha_costs  # noqa: E402
from services.consumer.buckets import TIMEFRAMES, data_sessions  # noqa: E402
from services.consumer.candles import CandleBuilder  # noqa: E402
from services.consumer.history import CandleHistory  # noqa: E402
from services.consumer.signals import intent_from_signal  # noqa: E402
from services.consumer.strategies import StrategyConfig, build_strategy  # noqa: E402
from services.consumer.strategy_engine import StrategyEngine  # noqa: E402
from shared.calendar import load_calendar  # noqa: E402
from shared.charges import ChargeSchedule  # noqa: E402
from shared.clock import IST  # noqa: E402
from shared.messages import Candle, OrderIntent, Tick  # noqa: E402

DATA = ROOT / "shared" / "marketdata"
NIFTY_FILE = DATA / "nifty50_index_1m_2024-01-01_2024-08-23.csv.gz"
BANK_FILE = DATA / "niftybank_index_1m_2024-01-01_2024-08-23.csv.gz"
RESULTS = ROOT / "bench" / "results" / "consumer.json"


def best_cpu_seconds(run: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def ticks_from_bars(bars: Sequence[Bar], per_bar: int, zone: Any) -> list[Tick]:
    """`per_bar` ticks per minute walking open -> high -> low -> close, cumulative volume rising."""
    ticks: list[Tick] = []
    volume = 0
    step = timedelta(seconds=60 / per_bar)
    for bar in bars:
        path = (bar.open, bar.high, bar.low, bar.close)
        start = bar.start.astimezone(zone)
        for i in range(per_bar):
            leg = min(2, i * 3 // per_bar)
            frac = (i * 3 / per_bar) - leg
            price = round(path[leg] + (path[leg + 1] - path[leg]) * frac, 2)
            volume += 7
            ticks.append(
                Tick(
                    instrument_token=256265,
                    symbol="NSE:NIFTY 50",
                    last_price=price if i < per_bar - 1 else bar.close,
                    exchange_ts=start + i * step,
                    received_ns=0,
                    volume=volume,
                )
            )
    return ticks


def bench_candle_builder(bars: list[Bar], rounds: int) -> dict[str, float]:
    sessions = data_sessions(load_calendar())
    day_bars = [b for b in bars if b.start.date() <= bars[0].start.date() + timedelta(days=14)]
    out: dict[str, float] = {}
    for label, zone in (("utc", UTC), ("ist", IST)):
        ticks = ticks_from_bars(day_bars, 60, zone)
        for timeframe in ("minute", "15minute"):

            def run(tf: Any = timeframe, ts: list[Tick] = ticks) -> None:
                update = CandleBuilder(256265, "NSE:NIFTY 50", tf, sessions_of=sessions).update
                for t in ts:
                    update(t)

            out[f"{label}_{timeframe}"] = len(ticks) / best_cpu_seconds(run, rounds)

        def run_all(ts: list[Tick] = ticks) -> None:
            updates = [
                CandleBuilder(256265, "NSE:NIFTY 50", tf, sessions_of=sessions).update
                for tf in TIMEFRAMES
            ]
            for t in ts:
                for update in updates:
                    update(t)

        out[f"{label}_all_timeframes"] = len(ticks) / best_cpu_seconds(run_all, rounds)
    return out


def bench_backtest(rounds: int) -> dict[str, float]:
    sessions = data_sessions(load_calendar())
    nifty = build_candles(
        CsvBarSource(NIFTY_FILE, "NSE:NIFTY 50", 256265), "minute", sessions
    ).candles
    bank = build_candles(
        CsvBarSource(BANK_FILE, "NSE:NIFTY BANK", 260105), "minute", sessions
    ).candles
    both = sorted(nifty + bank, key=lambda c: (c.start, c.symbol))
    costs = zerodha_costs(ChargeSchedule(), "futures")
    cases: list[tuple[str, dict[str, Any], list[Candle]]] = [
        ("ema_crossover", {}, nifty),
        ("rsi", {}, nifty),
        ("trend_option_seller", {}, nifty),
        ("straddle", {}, nifty),
        ("momentum", {"period": 30, "top_k": 1, "rebalance_every": 15}, both),
    ]
    out: dict[str, float] = {}
    for kind, params, candles in cases:
        symbols = tuple(sorted({c.symbol for c in candles}))
        strategy = build_strategy(
            StrategyConfig(kind=kind, symbols=symbols, params={**params, "timeframe": "minute"})
        )

        def run(s: Any = strategy, cs: list[Candle] = candles) -> None:
            run_backtest(s, cs, BacktestConfig(costs=costs))

        out[kind] = len(candles) / best_cpu_seconds(run, rounds)
        signals = len(run_backtest(strategy, candles, BacktestConfig(costs=costs)).signals)
        out[f"{kind}_signals"] = signals
        if kind == "ema_crossover":

            def run_free(s: Any = strategy, cs: list[Candle] = candles) -> None:
                run_backtest(s, cs, BacktestConfig())

            out[f"{kind}_no_costs"] = len(candles) / best_cpu_seconds(run_free, rounds)
    return out


def bench_backtest_command() -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "services.consumer.backtest.cli",
                "--strategy",
                "ema_crossover",
                "--data",
                str(NIFTY_FILE),
                "--timeframe",
                "15minute",
                "--out",
                out,
                "--quiet",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - start


def bench_memory(instruments: int, bars: list[Bar]) -> dict[str, float]:
    """Steady state after a full session, in MB per 1,000 instruments, part by part:
    - builders: 7 per instrument fed one tick a minute for 375 minutes (revision windows full);
    - history: 250 15-minute candles per instrument in CandleHistory (neighbouring candles share
      their boundary datetime, as the builder makes them);
    - strategy_state: EMA 9/21 crossover + RSI 14 state per instrument, warmed on that history.
    Measured with tracemalloc (Python allocations)."""
    sessions = data_sessions(load_calendar())
    symbols = [f"NSE:SYM{i:04d}" for i in range(instruments)]
    closes = [b.close for b in bars[:375]]
    day = bars[0].start
    scale = 1000 / instruments / 1e6
    kept: list[object] = []

    def traced() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    mark = traced()
    builders: list[CandleBuilder] = []
    for n, symbol in enumerate(symbols):
        own = [CandleBuilder(n, symbol, tf, sessions_of=sessions) for tf in TIMEFRAMES]
        for minute, close in enumerate(closes):
            tick = Tick(
                instrument_token=n,
                symbol=symbol,
                last_price=close,
                exchange_ts=day + timedelta(minutes=minute, seconds=5),
                received_ns=0,
                volume=minute,
            )
            for b in own:
                b.update(tick)
        builders.extend(own)
    kept.append(builders)
    now = traced()
    parts = {"builders": (now - mark) * scale}

    mark = now
    engine = StrategyEngine.from_configs(
        [
            StrategyConfig(kind="ema_crossover", symbols=tuple(symbols)),
            StrategyConfig(kind="rsi", symbols=tuple(symbols)),
        ]
    )
    history = CandleHistory(engine.lookbacks())
    for n, symbol in enumerate(symbols):
        bounds = [day - timedelta(minutes=15 * (250 - i)) for i in range(251)]
        for i, close in enumerate(closes[:250]):
            history.add(
                Candle(
                    instrument_token=n,
                    symbol=symbol,
                    timeframe="15minute",
                    start=bounds[i],
                    end=bounds[i + 1],
                    open=close,
                    high=close,
                    low=close,
                    close=close,
                    volume=0,
                )
            )
    kept.append(history)
    now = traced()
    parts["history"] = (now - mark) * scale

    mark = now
    for symbol in symbols:
        engine.warm(history.candles(symbol, "15minute"))
    kept.append(engine)
    now = traced()
    parts["strategy_state"] = (now - mark) * scale
    tracemalloc.stop()
    parts["total"] = sum(parts.values())
    del kept
    return parts


def bench_close_to_intent(instruments: int, bursts: int) -> dict[str, float]:
    """All instruments close a 15-minute candle at the same moment; every one crosses (BUY)."""
    latencies: list[float] = []
    per_instrument: list[float] = []
    for burst in range(bursts):
        symbols = [f"NSE:SYM{i:04d}" for i in range(instruments)]
        engine = StrategyEngine.from_configs(
            [StrategyConfig(kind="ema_crossover", symbols=tuple(symbols))]
        )
        day = datetime(2024, 3, 1, 9, 15, tzinfo=IST) + timedelta(days=7 * burst)
        builders = []
        for n, symbol in enumerate(symbols):
            falling = [
                Candle(
                    instrument_token=n,
                    symbol=symbol,
                    timeframe="15minute",
                    start=day - timedelta(minutes=15 * (40 - i)),
                    end=day - timedelta(minutes=15 * (39 - i)),
                    open=100.0 - i,
                    high=100.0 - i,
                    low=100.0 - i,
                    close=100.0 - i,
                    volume=0,
                )
                for i in range(40)
            ]
            engine.warm(falling)
            builder = CandleBuilder(
                n, symbol, "15minute", sessions_of=data_sessions(load_calendar())
            )
            builder.update(
                Tick(
                    instrument_token=n,
                    symbol=symbol,
                    last_price=150.0,
                    exchange_ts=day + timedelta(seconds=5),
                    received_ns=0,
                )
            )
            builders.append(builder)
        closing = [
            Tick(
                instrument_token=n,
                symbol=s,
                last_price=150.0,
                exchange_ts=day + timedelta(minutes=15, seconds=1),
                received_ns=0,
            )
            for n, s in enumerate(symbols)
        ]
        intents: list[OrderIntent] = []
        gc.collect()
        gc.disable()
        start = time.perf_counter_ns()
        for builder, tick in zip(builders, closing, strict=True):
            t0 = time.perf_counter_ns()
            for candle in builder.update(tick):
                for signal in engine.on_candle(candle):
                    intents.append(intent_from_signal(signal))
            done = time.perf_counter_ns()
            latencies.append((done - start) / 1e6)
            per_instrument.append((done - t0) / 1e3)
        gc.enable()
        assert len(intents) == instruments, (
            f"expected one intent per instrument, got {len(intents)}"
        )
    latencies.sort()
    return {
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
        "max_ms": latencies[-1],
        "per_instrument_mean_us": statistics.fmean(per_instrument),
        "per_instrument_p99_us": sorted(per_instrument)[int(0.99 * (len(per_instrument) - 1))],
    }


def bench_service_close_to_intent(instruments: int) -> dict[str, float]:
    """The same burst through the running Consumer service (Redis in, Redis out)."""
    import asyncio

    from clickhouse_driver import Client
    from prometheus_client import CollectorRegistry

    from services.consumer.__main__ import build_consumer
    from services.consumer.adapters.metrics import ConsumerMetrics
    from services.consumer.settings import ConsumerSettings
    from shared import constants as c
    from shared.bus import StreamBus, redis_client
    from shared.clock import SystemClock
    from shared.localservers import ClickHouseServer, RedisServer
    from shared.store import MESSAGE_TABLES, ClickHouseInserter, apply_migrations

    day = datetime(2024, 3, 1, 9, 15, tzinfo=IST)
    symbols = [f"NSE:SYM{i:04d}" for i in range(instruments)]
    tokens = list(range(10_001, 10_001 + instruments))

    def tick(n: int, at: datetime, price: float, received_ns: int = 1) -> Tick:
        return Tick(instrument_token=tokens[n], symbol=symbols[n], last_price=price,
                    exchange_ts=at, received_ns=received_ns)  # fmt: skip

    async def until(condition: Callable[[], bool], what: str) -> None:
        for _ in range(1200):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"bench: timed out waiting for {what}")

    async def run(redis_url: str, clickhouse: Any, spool: str) -> list[float]:
        writer = Client(host=clickhouse.host, port=clickhouse.port)
        writer.execute("CREATE DATABASE IF NOT EXISTS bench")
        writer = Client(host=clickhouse.host, port=clickhouse.port, database="bench")
        apply_migrations(writer)
        spec = MESSAGE_TABLES[Candle]
        falling = [
            Candle(instrument_token=tokens[n], symbol=symbols[n], timeframe="15minute",
                   start=day - timedelta(days=1) + timedelta(minutes=15 * i),
                   end=day - timedelta(days=1) + timedelta(minutes=15 * (i + 1)),
                   open=100.0 - i, high=100.0 - i, low=100.0 - i, close=100.0 - i, volume=0)
            for n in range(instruments) for i in range(25)
        ]  # fmt: skip
        writer.execute(f"INSERT INTO candles ({', '.join(spec.columns)}) VALUES",
                       [tuple(spec.row(x)[k] for k in spec.columns) for x in falling])  # fmt: skip
        reader = Client(host=clickhouse.host, port=clickhouse.port, database="bench")
        settings = ConsumerSettings(
            redis_url=redis_url, clickhouse_host=clickhouse.host,
            clickhouse_port=clickhouse.port, clickhouse_database="bench", spool_dir=spool,
            metrics_port=0, tick_partitions=4, lease_renew_s=0.3, api_key="",
            strategies=[StrategyConfig(kind="ema_crossover", symbols=tuple(symbols),
                                       params={"timeframe": "15minute", "lookback": 25})],
        )  # fmt: skip
        redis = redis_client(redis_url)
        consumer = build_consumer(settings, redis, ConsumerMetrics(CollectorRegistry()),
                                  ClickHouseInserter(writer), reader, load_calendar(),
                                  SystemClock())  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        bus = StreamBus(redis, service="bench", maxlen=1_000_000, publish_batch=2000)
        try:
            await until(lambda: len(consumer.owned) == 4, "partitions owned")
            opening = [tick(n, day + timedelta(seconds=5), 150.0) for n in range(instruments)]
            await bus.publish_partitioned(c.TICKS, opening, 4)
            await until(  # warm-up from ClickHouse: 25 falling candles each
                lambda: (
                    sum(len(o.worker.stats.warmed) for o in consumer.owned.values()) == instruments
                ),
                "instruments warmed",
            )
            await asyncio.sleep(0.5)
            sent_ns = time.time_ns()
            closing = [tick(n, day + timedelta(minutes=15, seconds=1), 150.0, sent_ns)
                       for n in range(instruments)]  # fmt: skip
            await bus.publish_partitioned(c.TICKS, closing, 4)
            for _ in range(6000):
                if await redis.xlen(c.INTENTS) >= instruments:
                    break
                await asyncio.sleep(0.01)
            entries: Any = await redis.xrange(c.INTENTS)
            assert len(entries) == instruments, f"{len(entries)} intents of {instruments}"
            return [int(e[0].split(b"-")[0]) - sent_ns / 1e6 for e in entries]
        finally:
            stop.set()
            await task
            await redis.aclose()
            writer.disconnect()
            reader.disconnect()

    with tempfile.TemporaryDirectory(prefix="bench-consumer-") as tmp:
        redis_server = RedisServer(Path(tmp) / "redis").start()
        clickhouse = ClickHouseServer(Path(tmp) / "clickhouse").start()
        try:
            latencies = sorted(asyncio.run(run(redis_server.url, clickhouse, f"{tmp}/spool")))
        finally:
            clickhouse.stop()
            redis_server.stop()
    return {
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
        "max_ms": latencies[-1],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--no-service", action="store_true", help="skip the service latency")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else 7
    import logging

    logging.disable(logging.INFO)  # the engine logs every signal; not what is measured here
    load_before = os.getloadavg()
    bars = list(CsvBarSource(NIFTY_FILE, "NSE:NIFTY 50", 256265).bars())

    builder = bench_candle_builder(bars, rounds)
    backtest = bench_backtest(rounds)
    command_s = bench_backtest_command()
    memory = bench_memory(100 if args.quick else 1000, bars)
    latency = bench_close_to_intent(1000, 2 if args.quick else 5)
    service = None if args.no_service else bench_service_close_to_intent(1000)

    figures: dict[str, dict[str, Any]] = {
        "candle_builder_ticks_per_s": {"value": round(builder["utc_minute"]), "unit": "ticks/s"},
        "candle_builder_ticks_per_s_15minute": {
            "value": round(builder["utc_15minute"]),
            "unit": "ticks/s",
        },
        "candle_builder_ticks_per_s_ist_minute": {
            "value": round(builder["ist_minute"]),
            "unit": "ticks/s",
        },
        "candle_builder_ticks_per_s_all_7_timeframes": {
            "value": round(builder["utc_all_timeframes"]),
            "unit": "ticks/s",
        },
        "backtest_candles_per_s": {"value": round(backtest["ema_crossover"]), "unit": "candles/s"},
    }
    for kind in (
        "ema_crossover",
        "ema_crossover_no_costs",
        "rsi",
        "momentum",
        "trend_option_seller",
        "straddle",
    ):
        figures[f"backtest_candles_per_s_{kind}"] = {
            "value": round(backtest[kind]),
            "unit": "candles/s",
        }
    figures["backtest_8_month_nifty_file_15minute_s"] = {"value": round(command_s, 2), "unit": "s"}
    figures["memory_mb_per_1k_instruments"] = {"value": round(memory["total"], 2), "unit": "MB"}
    for part in ("builders", "history", "strategy_state"):
        figures[f"memory_mb_per_1k_instruments_{part}"] = {
            "value": round(memory[part], 2),
            "unit": "MB",
        }
    figures["close_to_intent_p99_ms"] = {"value": round(latency["p99_ms"], 2), "unit": "ms"}
    figures["close_to_intent_max_ms"] = {"value": round(latency["max_ms"], 2), "unit": "ms"}
    figures["close_to_intent_per_instrument_mean_us"] = {
        "value": round(latency["per_instrument_mean_us"], 1),
        "unit": "us",
    }
    figures["close_to_intent_per_instrument_p99_us"] = {
        "value": round(latency["per_instrument_p99_us"], 1),
        "unit": "us",
    }
    if service is not None:
        for key in ("p50_ms", "p99_ms", "max_ms"):
            figures[f"service_close_to_intent_{key}"] = {"value": round(service[key], 1),
                                                          "unit": "ms"}  # fmt: skip
    result = {
        "name": "consumer",
        "figures": figures,
        "conditions": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "quick": args.quick,
            "throughput_clock": f"process_time, best of {rounds} rounds",
            "latency_clock": "perf_counter_ns wall time, gc disabled during the burst",
            "candle_builder": "real NIFTY minutes as 60 ticks/minute, 15 days; bus-decoded ticks are UTC-aware (the headline), Producer ticks IST-aware",
            "backtest": "1-minute candles of the 8-month NIFTY file (57,960; momentum: NIFTY + NIFTY BANK, 115,920) through run_backtest: strategy + fills at next open + Zerodha futures charges + per-candle equity; candles prebuilt",
            "backtest_signals": {k: int(v) for k, v in backtest.items() if k.endswith("_signals")},
            "backtest_costs": "Zerodha futures charges per fill (shared.charges) unless named no_costs",
            "memory": "tracemalloc after a full session: 7 builders per instrument (375 minutes of ticks, 600 s revision window), 250 15-minute candles of history, EMA 9/21 + RSI 14 state",
            "close_to_intent": "1,000 instruments, one tick each closing a 15-minute candle in sequence on one core; every close crosses EMA9 over EMA21 and makes an intent; latency of instrument i counts from the burst start",
            "service_close_to_intent": "the Consumer service in this process with local Redis and ClickHouse servers: 1,000 instruments on 4 tick partitions, 7 timeframes each, warmed from ClickHouse; their closing ticks published in one pipelined burst; latency = intent entry id (Redis ms) - burst publish time; includes the bus, decoding, builders, strategies, the atomic commit; ms resolution",
        },
    }
    write_results(
        "consumer",
        {name: (f["value"], f["unit"]) for name, f in figures.items()},
        result["conditions"],
    )
    print(f"load average before/after: {load_before} / {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
