"""Two Consumer replicas share four tick partitions; one is killed (SIGKILL) mid-replay.

Replica A runs in this process, replica B is a real `python -m services.consumer` process. They
split the partitions; B is killed while ticks flow; A takes B's partitions over once its leases
lapse (checkpoint restored, unflushed rows re-stored, pending entries claimed). Every candle must
come out exactly once (stream and ClickHouse FINAL, equal to the candles built in one piece),
and every signal must become exactly one intent, equal to one uninterrupted run's.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from services.consumer.backtest.bars import Bar, build_candles
from services.consumer.buckets import TIMEFRAMES, data_sessions
from services.consumer.strategies import EmaCrossover
from services.consumer.strategies.ema_crossover import EmaCrossoverParams
from shared import constants as c
from shared.bus.wire import entry_fields
from shared.calendar import load_calendar
from shared.clock import IST
from shared.messages import Candle, Tick
from tests.integration.consumer_harness import (
    BANKNIFTY,
    BANKNIFTY_FILE,
    BANKNIFTY_TOKEN,
    NIFTY,
    NIFTY_FILE,
    NIFTY_TOKEN,
    consumer_settings,
    ohlc,
    producer_ticks,
    publish_ticks,
    read_bars,
    running_consumer,
    stored_candles,
    stream_candles,
    stream_intents,
    stream_signals,
)
from tests.support import eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2024, 8, 20)
SESSIONS = data_sessions(load_calendar())
SYNTHETIC = (1001, 1002, 1004, 1005, 1007, 1009)  # with the indices: two per partition
PARAMS = {"timeframe": "minute", "fast": 3, "slow": 5, "lookback": 400}


class Source:
    def __init__(self, symbol: str, token: int, bars: list[Bar]) -> None:
        self.symbol, self.instrument_token, self._bars = symbol, token, bars

    def bars(self) -> Any:
        return iter(self._bars)


def instruments() -> list[Source]:
    nifty = read_bars(NIFTY_FILE, [DAY], "09:15", "11:14")
    out = [
        Source(NIFTY, NIFTY_TOKEN, nifty),
        Source(BANKNIFTY, BANKNIFTY_TOKEN, read_bars(BANKNIFTY_FILE, [DAY], "09:15", "11:14")),
    ]
    for k, token in enumerate(SYNTHETIC, start=1):
        f = 1 + k / 50
        scaled = [
            Bar(
                b.start,
                round(b.open * f, 2),
                round(b.high * f, 2),
                round(b.low * f, 2),
                round(b.close * f, 2),
                b.volume,
            )
            for b in nifty
        ]
        out.append(Source(f"NSE:SYN{token}", token, scaled))
    return out


def expected(sources: list[Source]) -> tuple[list[Candle], list[str]]:
    candles: list[Candle] = []
    signal_ids: list[str] = []
    for source in sources:
        for timeframe in TIMEFRAMES:
            candles.extend(build_candles(source, timeframe, SESSIONS).candles)
        strategy = EmaCrossover(EmaCrossoverParams.model_validate(PARAMS))
        state = strategy.new_state()
        minute = build_candles(source, "minute", SESSIONS).candles
        signal_ids += [s.signal_id for x in minute if (s := strategy.on_candle(x, state))]
    return candles, signal_ids


def feed_order(sources: list[Source]) -> list[list[Tick]]:
    """The ticks of every instrument, minute by minute, as one feed would interleave them."""
    per = [producer_ticks(s._bars, s.symbol, s.instrument_token) for s in sources]
    minutes = len(per[0]) // 4
    return [[t for ticks in per for t in ticks[4 * m : 4 * m + 4]] for m in range(minutes)]


async def all_consumed(redis: Any) -> bool:
    for p in range(4):
        stream = c.partitioned(c.TICKS, p)
        last = await redis.xrevrange(stream, count=1)
        if not last:
            continue
        groups = {g["name"].decode(): g for g in await redis.xinfo_groups(stream)}
        group = groups.get(c.GROUP_CONSUMER)
        if group is None or group["pending"] or group["last-delivered-id"] != last[0][0]:
            return False
    return True


async def test_a_replica_killed_mid_replay_loses_and_doubles_no_candle_and_no_intent(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, tmp_path: Path
) -> None:
    sources = instruments()
    candles, signal_ids = expected(sources)
    strategies = [{"kind": "ema_crossover", "symbols": [s.symbol for s in sources],
                   "params": PARAMS}]  # fmt: skip
    common: dict[str, Any] = {"candle_grace_s": 120.0, "strategies": strategies}
    settings = consumer_settings(redis_url, clickhouse_server, clickhouse_db, tmp_path / "a",
                                 replica_name="a", **common)  # fmt: skip
    env = {
        **os.environ,
        "CONSUMER_REDIS_URL": redis_url,
        "CONSUMER_CLICKHOUSE_HOST": clickhouse_server.host,
        "CONSUMER_CLICKHOUSE_PORT": str(clickhouse_server.port),
        "CONSUMER_CLICKHOUSE_DATABASE": clickhouse_db,
        "CONSUMER_SPOOL_DIR": str(tmp_path / "b"),
        "CONSUMER_METRICS_PORT": "0",
        "CONSUMER_REPLICA_NAME": "b",
        "CONSUMER_TICK_PARTITIONS": "4",
        "CONSUMER_LEASE_TTL_S": str(settings.lease_ttl_s),
        "CONSUMER_LEASE_RENEW_S": str(settings.lease_renew_s),
        "CONSUMER_CLICKHOUSE_FLUSH_S": "0.2",
        "CONSUMER_READ_BLOCK_MS": "50",
        "CONSUMER_READ_COUNT": "20",  # small rounds: B dies in the middle of the burst
        "CONSUMER_CANDLE_GRACE_S": "120",
        "CONSUMER_STRATEGIES": json.dumps(strategies),
        "CONSUMER_LOG_JSON": "false",
        "CONSUMER_LOG_LEVEL": "INFO",
        "CONSUMER_API_KEY": "",
    }
    minutes = feed_order(sources)
    log = (tmp_path / "replica-b.log").open("wb")
    async with running_consumer(settings) as a:
        await eventually(lambda: len(a.consumer.owned) == 4, 10, message="A alone owns all")
        b = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.consumer", cwd=ROOT, env=env, stdout=log, stderr=log
        )
        try:
            await eventually(lambda: len(a.consumer.owned) == 2, 30, message="A gave B half")
            await eventually(lambda: _held_by(a.redis, "b", 2), 30, message="B owns two")
            b_parts = [p for p in range(4) if p not in a.consumer.owned]
            for minute in minutes[:45]:
                await publish_ticks(a.redis, minute)
            await eventually(lambda: _committed(a.redis, b_parts), 30, message="B committed")
            before = await _entries(a.redis, b_parts)
            await publish_ticks(a.redis, [t for m in minutes[45:90] for t in m])  # a burst
            await eventually(lambda: _moved(a.redis, b_parts, before), 30, message="B at work")
            b.send_signal(signal.SIGKILL)  # in the middle of the burst
            await b.wait()
            pending_at_kill = 0
            for p in b_parts:
                summary = await a.redis.xpending(c.partitioned(c.TICKS, p), c.GROUP_CONSUMER)
                pending_at_kill += summary["pending"]
            for minute in minutes[90:]:
                await publish_ticks(a.redis, minute)
            await eventually(lambda: len(a.consumer.owned) == 4, 30, message="A took over")
            await eventually(lambda: all_consumed(a.redis), 30, message="every tick handled")
        finally:
            if b.returncode is None:
                b.kill()
                await b.wait()
            log.close()
        a.mono.advance(86_400)  # the last buckets close on A's timer
        await eventually(lambda: _stream_count(a.redis, len(candles)), 20, message="all candles")
        published = await stream_candles(a.redis)
        assert len(published) == len(candles)  # nothing twice ...
        assert sorted(map(ohlc, published)) == sorted(map(ohlc, candles))  # ... nothing lost
        intents = await stream_intents(a.redis)
        assert len({i.intent_id for i in intents}) == len(intents)
        assert sorted(i.intent_id for i in intents) == sorted(signal_ids)
        assert sorted(s.signal_id for s in await stream_signals(a.redis)) == sorted(signal_ids)
        await asyncio.sleep(0.5)  # the flusher's last round
        assert stored_candles(a.clickhouse) == sorted(
            (x.symbol, x.timeframe, x.start, x.open, x.high, x.low, x.close, x.volume, 0)
            for x in candles
        )
        rows = a.clickhouse.execute("SELECT count(), uniqExact(intent_id) FROM order_intents FINAL")
        assert rows == [(len(signal_ids), len(signal_ids))]
        took_over = [o.worker.stats for p, o in a.consumer.owned.items() if p in b_parts]
        assert sum(s.restored_instruments for s in took_over) == 4  # B's four instruments
        assert sum(s.claimed for s in took_over) == pending_at_kill  # read by B, never committed


async def _held_by(redis: Any, replica: str, count: int) -> bool:
    values = await redis.mget([c.PARTITION_LEASE_KEY.format(p=p) for p in range(4)])
    return sum(1 for v in values if v and v.decode().startswith(f"{replica}:")) == count


async def _committed(redis: Any, partitions: list[int]) -> bool:
    for p in partitions:
        if not await redis.hget(c.CONSUMER_CHECKPOINT_KEY.format(p=p), "_entry"):
            return False
    return True


async def _entries(redis: Any, partitions: list[int]) -> list[bytes | None]:
    return [await redis.hget(c.CONSUMER_CHECKPOINT_KEY.format(p=p), "_entry") for p in partitions]


async def _moved(redis: Any, partitions: list[int], before: list[bytes | None]) -> bool:
    now = await _entries(redis, partitions)
    return all(x != y for x, y in zip(now, before, strict=True))


async def _stream_count(redis: Any, n: int) -> bool:
    return int(await redis.xlen(c.CANDLES)) >= n


async def test_entries_a_dead_owner_read_but_never_committed_are_claimed_and_handled_once(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, tmp_path: Path
) -> None:
    source = instruments()[0]
    ticks = producer_ticks(source._bars[:30], source.symbol, source.instrument_token)
    settings = consumer_settings(redis_url, clickhouse_server, clickhouse_db, tmp_path,
                                 timeframes=["minute", "5minute"])  # fmt: skip
    stream = c.partitioned(c.TICKS, c.partition_of(source.instrument_token, 4))
    from shared.bus import redis_client

    redis = redis_client(redis_url)
    await publish_ticks(redis, ticks)
    await redis.xgroup_create(stream, c.GROUP_CONSUMER, id="0", mkstream=True)
    read: Any = await redis.xreadgroup(c.GROUP_CONSUMER, "ghost:dead", {stream: ">"}, count=37)
    assert len(read[0][1]) == 37  # delivered to an owner that died before its commit
    await redis.aclose()
    async with running_consumer(settings) as a:
        await eventually(lambda: all_consumed(a.redis), 10, message="every tick handled")
        a.mono.advance(86_400)
        want = [*build_candles(source_of(source, 30), "minute", SESSIONS).candles,
                *build_candles(source_of(source, 30), "5minute", SESSIONS).candles]  # fmt: skip
        await eventually(lambda: _stream_count(a.redis, len(want)), 10)
        assert sorted(map(ohlc, await stream_candles(a.redis))) == sorted(map(ohlc, want))
        owner = a.consumer.owned[c.partition_of(source.instrument_token, 4)]
        assert owner.worker.stats.claimed == 37
        consumers = await a.redis.xinfo_consumers(stream, c.GROUP_CONSUMER)
        assert "ghost:dead" not in {x["name"].decode() for x in consumers}  # cleaned up


def source_of(source: Source, bars: int) -> Source:
    return Source(source.symbol, source.instrument_token, source._bars[:bars])


async def test_a_partition_handed_over_gracefully_loses_no_entry_to_the_old_owner_s_blocked_read(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, tmp_path: Path
) -> None:
    # Redis gives a blocked read the entries that arrive while it waits. A's reads block for
    # 4 s: the one it is in when it hands partitions over would take the first entries
    # published for the new owner, which claimed only what was pending when it took over.
    nifty, banknifty = (source_of(x, 20) for x in instruments()[:2])
    ticks = producer_ticks(nifty._bars, nifty.symbol, nifty.instrument_token)
    kept = producer_ticks(banknifty._bars[:1], banknifty.symbol, banknifty.instrument_token)

    def settings(name: str, **overrides: Any) -> Any:
        return consumer_settings(redis_url, clickhouse_server, clickhouse_db, tmp_path / name,
                                 replica_name=name, timeframes=["minute"], **overrides)  # fmt: skip

    async with running_consumer(settings("a", read_block_ms=4000)) as a:
        await eventually(lambda: len(a.consumer.owned) == 4, 10, message="A alone owns all")
        await publish_ticks(a.redis, kept[:1])  # A's next read then covers all four partitions
        await eventually(lambda: all_consumed(a.redis), 10, message="A handled its tick")
        async with running_consumer(settings("b"), mono=a.mono) as b:
            await eventually(lambda: _held_by(a.redis, "b", 2), 10, message="B owns two")
            assert c.partition_of(nifty.instrument_token, 4) in b.consumer.owned
            assert c.partition_of(banknifty.instrument_token, 4) in a.consumer.owned
            await publish_ticks(a.redis, ticks)
            await eventually(lambda: all_consumed(a.redis), 10, message="every tick handled")
            a.mono.advance(86_400)  # the last minute closes on B's timer
            want = build_candles(nifty, "minute", SESSIONS).candles
            await eventually(lambda: _stream_count(a.redis, len(want) + 1), 10, message="candles")
            published = [x for x in await stream_candles(a.redis) if x.symbol == nifty.symbol]
            assert sorted(map(ohlc, published)) == sorted(map(ohlc, want))


async def test_an_entry_a_stalled_replica_was_handed_after_the_take_over_is_claimed_and_handled_late(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, tmp_path: Path
) -> None:
    # Redis serves a blocked read even of a replica stalled past its lease: an entry can turn up
    # pending with a consumer that no longer owns the partition, after its owner's take-over.
    nifty = source_of(instruments()[0], 16)
    ticks = producer_ticks(nifty._bars, nifty.symbol, nifty.instrument_token)
    stream = c.partitioned(c.TICKS, c.partition_of(nifty.instrument_token, 4))
    high = max(b.high for b in nifty._bars) + 50
    late_at = datetime(2024, 8, 20, 9, 20, 50, tzinfo=IST)  # its minute long closed
    stray = Tick(instrument_token=nifty.instrument_token, symbol=nifty.symbol, last_price=high,
                 exchange_ts=late_at, received_ns=1)  # fmt: skip
    settings = consumer_settings(redis_url, clickhouse_server, clickhouse_db, tmp_path,
                                 timeframes=["minute"])  # fmt: skip
    async with running_consumer(settings) as a:
        await eventually(lambda: len(a.consumer.owned) == 4, 10, message="A owns all")
        await publish_ticks(a.redis, ticks)
        await eventually(lambda: all_consumed(a.redis), 10, message="the ticks handled")
        async with a.redis.pipeline(transaction=True) as pipe:  # the stalled one reads first
            pipe.xadd(stream, entry_fields(stream, stray))
            pipe.xreadgroup(c.GROUP_CONSUMER, "ghost:stalled", {stream: ">"}, count=1)
            delivered = (await pipe.execute())[1]
        assert len(delivered[0][1]) == 1
        await eventually(lambda: all_consumed(a.redis), 10, message="the stray claimed")
        owner = a.consumer.owned[c.partition_of(nifty.instrument_token, 4)]
        assert owner.worker.stats.strays == 1
        assert a.metric("tradealgo_consumer_stray_entries_total") == 1
        revised = [x for x in await stream_candles(a.redis) if x.revision]
        assert [(x.start, x.high) for x in revised] == [(late_at.replace(second=0), high)]
