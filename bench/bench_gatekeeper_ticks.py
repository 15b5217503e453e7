"""What the Gatekeeper's tick path costs: CPU per 1,000 ticks, and how long it keeps the loop.

The Gatekeeper reads EVERY tick (quotes, MTM, the kill switch, paper fills) in the same process
that decides intents, so its tick CPU competes with the intent path on a 2-core machine.
Set-up: a real Redis (shared.localservers); the real Gatekeeper (paper mode, local fills, the
market clock of a replay, the journal in memory) with positions open in 5 of the 170 instruments
and a resting limit order; a feeder PROCESS shaped like KiteTicker -> Producer: every 17 ms a
frame of 170 full-mode ticks (5 depth levels a side), one per instrument, appended to the 4 tick
partitions in one atomic MULTI/EXEC (like the Producer's one script call per batch) at
10,000 ticks/s.
Measured in this (the Gatekeeper's) process:
- cpu_ms_per_1000_ticks: process CPU while the ticks are read, minus the idle CPU of the service
  over the same time (measured first, no ticks), per 1,000 ticks; xreads_per_1000_ticks from
  Redis' command stats;
- in a second run: step_cpu_p99_ms / step_cpu_max_ms, the CPU time of each step the event loop
  runs (a task's run up to its next await: at most one slice of ticks), i.e. how long an intent
  arriving mid-burst can wait behind the tick path (CPU time: far less sensitive to the
  machine's other load than wall time); and
  loop_lag_p99_ms / loop_lag_max_ms, how late a 1 ms timer fires (wall time: includes the OS
  running Redis, the feeder and anything else on the 2 cores instead of this process).
Usage: python bench/bench_gatekeeper_ticks.py [ticks]; BENCH_GATEKEEPER='{"ticks_per_yield": 8}'
overrides Gatekeeper settings. Writes bench/results/gatekeeper_ticks.json. The machine is
shared: compare versions with runs interleaved, not one run each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from results_file import write_results

FRAME = 170  # ticks per KiteTicker frame
FRAME_EVERY_S = 0.017  # ~10,000 ticks/s
PARTITIONS = 4
HELD = 5  # instruments with an open position
IDLE_S = 3.0


def _symbol(i: int) -> tuple[str, int]:
    return f"NSE:BENCH{i:03d}", 100_000 + i * 256


def _feed(redis_url: str, ticks: int, start_ts: float, done: Any) -> None:
    """The feeder process: `ticks` ticks in frames of FRAME every FRAME_EVERY_S."""
    import redis

    from shared import constants as c
    from shared.bus import entry_fields
    from shared.clock import IST
    from shared.messages import DepthLevel, Tick

    client = redis.Redis.from_url(redis_url)
    market = datetime.fromtimestamp(int(start_ts), IST)
    frames = (ticks + FRAME - 1) // FRAME
    next_at = time.monotonic()
    for f in range(frames):
        # Kite's exchange stamps are whole seconds: ~59 frames share one.
        ts = market + timedelta(seconds=int(f * FRAME_EVERY_S))
        # One atomic append per frame, like the Producer's script: a blocked XREAD wakes once
        # the whole frame is in (a plain pipeline would wake it after the first XADD).
        pipe = client.pipeline(transaction=True)
        for i in range(min(FRAME, ticks - f * FRAME)):
            symbol, token = _symbol(i)
            price = 1000.0 + i + ((f + i) % 5) * 0.05
            tick = Tick(
                instrument_token=token, symbol=symbol, last_price=price, exchange_ts=ts,
                received_ns=time.time_ns(), volume=1000 + f, last_quantity=1,
                average_price=price, buy_quantity=500, sell_quantity=500, open=price,
                high=price + 1, low=price - 1, close=price, last_trade_ts=ts,
                bids=tuple(DepthLevel(round(price - 0.05 * (k + 1), 2), 100, 1) for k in range(5)),
                asks=tuple(DepthLevel(round(price + 0.05 * (k + 1), 2), 100, 1) for k in range(5)),
            )  # fmt: skip
            shard = c.partitioned(c.TICKS, c.partition_of(token, PARTITIONS))
            pipe.xadd(shard, entry_fields(shard, tick), maxlen=200_000, approximate=True)  # type: ignore[arg-type]
        pipe.execute()
        next_at += FRAME_EVERY_S
        time.sleep(max(0.0, next_at - time.monotonic()))
    done.set()


def _ticks_handled(gk: Any) -> int:
    # The service's own count (the metrics registry is too costly to poll here).
    return int(gk.service._ticks_seen)


async def _run_feed(
    gk: Any, redis_url: str, ticks: int, market_ts: float, lags: list[float] | None = None
) -> float:
    """Feed `ticks` and wait until the Gatekeeper has handled them; returns the seconds taken.
    With `lags`, the loop's lateness is sampled meanwhile (from after the feeder started: the
    start itself blocks the loop)."""
    before = _ticks_handled(gk)
    ctx = multiprocessing.get_context("spawn")
    done = ctx.Event()
    feeder = ctx.Process(target=_feed, args=(redis_url, ticks, market_ts, done))
    t0 = time.monotonic()
    feeder.start()
    probe_stop = asyncio.Event()
    probe = asyncio.ensure_future(_lag_probe(probe_stop, lags if lags is not None else []))
    if lags is None:
        probe_stop.set()
    while _ticks_handled(gk) < before + ticks:
        if not feeder.is_alive() and not done.is_set():
            raise RuntimeError("the feeder died")
        if gk.task.done():
            gk.task.result()
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - t0
    probe_stop.set()
    await probe
    feeder.join(10)
    return elapsed


@contextlib.contextmanager
def _step_cpu(steps: list[float]) -> Iterator[None]:
    """Record the CPU ms of every callback the loop runs (Handle._run: a task step is one)."""
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.Handle) -> None:
        t0 = time.thread_time()
        run(handle)
        steps.append((time.thread_time() - t0) * 1000)

    asyncio.events.Handle._run = timed  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        asyncio.events.Handle._run = run  # type: ignore[method-assign]


async def _lag_probe(stop: asyncio.Event, lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + 0.001
        await asyncio.sleep(0.001)
        lags.append(max(0.0, loop.time() - due) * 1000)


async def _open_positions(gk: Any, clock: Any) -> None:
    from tests.gatekeeper_support import intent, tick
    from tests.support import eventually

    now = clock.now()
    await gk.publish_ticks([tick(*_symbol(i), 1000.0 + i, now) for i in range(FRAME)])
    await eventually(lambda: len(gk.service.state.quotes) >= FRAME, timeout=20)
    for i in range(HELD):
        symbol, token = _symbol(i)
        await gk.publish_intent(intent(symbol, token, 1000.0 + i, clock.now(), quantity=1))
    # A resting BUY limit far below the market: the paper model looks at every tick of it.
    symbol, token = _symbol(HELD)
    await gk.publish_intent(
        intent(
            symbol, token, 1000.0, clock.now(), quantity=1, order_type="LIMIT", limit_price=900.0
        )
    )
    await eventually(lambda: len(gk.service.state.decided) >= HELD + 1, timeout=20)
    await gk.publish_ticks(
        [tick(*_symbol(i), 1000.0 + i, clock.now(), depth=5) for i in range(HELD)]
    )
    await eventually(
        lambda: sum(gk.service.state.book.quantity(_symbol(i)[0]) for i in range(HELD)) == HELD,
        timeout=20,
    )


async def _bench(redis_url: str, ticks: int, overrides: dict[str, Any]) -> dict[str, Any]:
    from services.gatekeeper.adapters.market_clock import MarketClock
    from tests.gatekeeper_support import (
        MemoryJournal,
        TradingClock,
        gk_settings,
        instrument_row,
        running_gatekeeper,
        seed_instruments,
    )

    wall = TradingClock()
    clock = MarketClock(wall)
    values: dict[str, Any] = {
        "mode": "paper",
        "paper_fills": "local",
        "clock": "market",
        "tick_partitions": PARTITIONS,
        "capital": 1e9,
        "position_check_interval_s": 1.0,
        "kill_switch_poll_s": 1.0,
        "sample_interval_s": 5.0,
        "max_quote_age_s": 3600.0,
        "max_signal_age_s": 3600.0,
        **overrides,
    }
    settings = gk_settings(redis_url, **values)
    # The market clock of a replay (as in paper mode against the simulator), on a trading day.
    market_clock: Any = clock
    async with running_gatekeeper(settings, MemoryJournal(), clock=market_clock) as gk:
        rows = {_symbol(i)[0]: instrument_row(*_symbol(i)) for i in range(FRAME)}
        await seed_instruments(gk.redis, rows)
        await _open_positions(gk, wall)
        market_ts = wall.now().timestamp()

        cpu0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(IDLE_S)
        idle_rate = (time.process_time() - cpu0) / (time.monotonic() - t0)

        await gk.redis.config_resetstat()
        cpu0 = time.process_time()
        print(f"feeding {ticks} ticks (pid {os.getpid()})", file=sys.stderr, flush=True)
        elapsed = await _run_feed(gk, redis_url, ticks, market_ts)
        gross = time.process_time() - cpu0
        stats = await gk.redis.info("commandstats")
        reads = int(stats.get("cmdstat_xread", {}).get("calls", 0))
        net = gross - idle_rate * elapsed

        lags: list[float] = []
        steps: list[float] = []
        with _step_cpu(steps):
            await _run_feed(gk, redis_url, ticks // 2, market_ts + 3600, lags)
        tripped = gk.service.state.kill_switch.tripped
    ordered = sorted(lags)
    steps.sort()
    return {
        "cpu_ms_per_1000_ticks": round(net / ticks * 1e6, 2),
        "cpu_ms_per_1000_ticks_gross": round(gross / ticks * 1e6, 2),
        "idle_cpu_pct": round(idle_rate * 100, 2),
        "xreads_per_1000_ticks": round(reads / ticks * 1000, 1),
        "feed_s": round(elapsed, 2),
        "step_cpu_p99_ms": round(steps[int(len(steps) * 0.99) - 1], 3),
        "step_cpu_max_ms": round(steps[-1], 3),
        "loop_lag_p50_ms": round(statistics.median(ordered), 3),
        "loop_lag_p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 3),
        "loop_lag_max_ms": round(ordered[-1], 3),
        "settings": {
            "tick_read_count": settings.tick_read_count,
            "ticks_per_yield": settings.ticks_per_yield,
        },
        "kill_switch_tripped": tripped,
    }


def _unit(figure: str) -> str:
    if figure.startswith("cpu") or figure.endswith("_ms"):
        return "ms"
    return {"feed_s": "s", "idle_cpu_pct": "%"}.get(figure, "reads")


def main() -> None:
    import logging

    from shared.localservers import RedisServer

    logging.basicConfig(level=logging.WARNING)
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 60_000
    overrides = json.loads(os.environ.get("BENCH_GATEKEEPER", "{}"))
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        try:
            result = asyncio.run(_bench(server.url, ticks, overrides))
        finally:
            server.stop()
    if result["kill_switch_tripped"]:
        raise SystemExit("the kill switch tripped: the figures are not the steady tick path")
    figures = {
        key: (value, _unit(key))
        for key, value in result.items()
        if isinstance(value, float | int) and not isinstance(value, bool)
    }  # fmt: skip
    write_results(
        "gatekeeper_ticks",
        figures,
        {
            "ticks": ticks,
            "frame": f"{FRAME} full-mode ticks (5 depth levels) every {FRAME_EVERY_S * 1000:.0f} ms",
            "partitions": PARTITIONS,
            "held_positions": HELD,
            "mode": "paper, local fills, market clock, journal in memory",
            **result["settings"],
            "cpu": "process CPU (this process) minus the idle service's CPU rate x feed time",
            "step_cpu": "thread CPU time of each event-loop callback, second run of ticks/2",
            "lag": "lateness of a 1 ms asyncio timer (wall), second run of ticks/2",
        },
    )


if __name__ == "__main__":
    main()
