"""Coalesced commits: intents go out at once, everything else with the next commit.

- A replica killed (SIGKILL) after publishing intents but before its commit leaves the entries
  pending and the checkpoint where it was: its successor handles the same entries again and
  publishes every candle and signal once, and no intent a second time (the NX keys).
- A partition given back on purpose (a second replica joins) is committed first: the new owner
  finds the checkpoint at the last entry and nothing pending.
- One script call publishes the intents of several partitions, each fenced by its own lease.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.consumer.adapters.commit import PartitionCommitter
from services.consumer.adapters.metrics import ConsumerMetrics
from services.consumer.backtest.bars import build_candles
from services.consumer.buckets import TIMEFRAMES, data_sessions
from services.consumer.strategies import EmaCrossover
from services.consumer.strategies.ema_crossover import EmaCrossoverParams
from shared import constants as c
from shared.bus import RetryPolicy, redis_client
from shared.calendar import load_calendar
from shared.messages import Candle, OrderIntent
from tests.integration.consumer_harness import (
    NIFTY,
    NIFTY_FILE,
    NIFTY_TOKEN,
    consumer_settings,
    ohlc,
    producer_ticks,
    publish_ticks,
    read_bars,
    running_consumer,
    stream_candles,
    stream_intents,
    stream_signals,
)
from tests.support import eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2024, 8, 20)
SESSIONS = data_sessions(load_calendar())
PARAMS = {"timeframe": "minute", "fast": 3, "slow": 5, "lookback": 10}
STREAM = c.partitioned(c.TICKS, c.partition_of(NIFTY_TOKEN, 4))
# Nothing is committed unless a test says so: no interval, no size bound, no timer sweep.
NEVER = {"commit_interval_ms": 3_600_000, "commit_max_entries": 1_000_000,
         "timer_interval_s": 3600.0}  # fmt: skip


class Bars:
    def __init__(self, bars: list[Any]) -> None:
        self.symbol, self.instrument_token, self._bars = NIFTY, NIFTY_TOKEN, bars

    def bars(self) -> Any:
        return iter(self._bars)


def expected(bars: list[Any]) -> tuple[list[Candle], list[str]]:
    candles = [x for tf in TIMEFRAMES for x in build_candles(Bars(bars), tf, SESSIONS).candles]
    strategy = EmaCrossover(EmaCrossoverParams.model_validate(PARAMS))
    state = strategy.new_state()
    minute = sorted((x for x in candles if x.timeframe == "minute"), key=lambda x: x.start)
    return candles, [s.signal_id for x in minute if (s := strategy.on_candle(x, state))]


async def pending(redis: Any, stream: str = STREAM) -> int:
    return int((await redis.xpending(stream, c.GROUP_CONSUMER))["pending"])


async def test_a_replica_killed_between_its_intents_and_its_commit_is_redone_once_without_a_second_intent(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, tmp_path: Path
) -> None:
    bars = read_bars(NIFTY_FILE, [DAY], "09:15", "10:14")
    ticks = producer_ticks(bars)
    candles, signal_ids = expected(bars)
    assert len(signal_ids) >= 3
    strategies = [{"kind": "ema_crossover", "symbols": [NIFTY], "params": PARAMS}]
    env = {
        **os.environ,
        "CONSUMER_REDIS_URL": redis_url,
        "CONSUMER_CLICKHOUSE_HOST": clickhouse_server.host,
        "CONSUMER_CLICKHOUSE_PORT": str(clickhouse_server.port),
        "CONSUMER_CLICKHOUSE_DATABASE": clickhouse_db,
        "CONSUMER_SPOOL_DIR": str(tmp_path / "a"),
        "CONSUMER_METRICS_PORT": "0",
        "CONSUMER_REPLICA_NAME": "a",
        "CONSUMER_TICK_PARTITIONS": "4",
        "CONSUMER_LEASE_TTL_S": "3.0",
        "CONSUMER_LEASE_RENEW_S": "0.3",
        "CONSUMER_READ_BLOCK_MS": "50",
        "CONSUMER_STRATEGIES": json.dumps(strategies),
        "CONSUMER_API_KEY": "",
        "CONSUMER_LOG_JSON": "false",
        **{f"CONSUMER_{k.upper()}": str(v) for k, v in NEVER.items()},
    }
    redis = redis_client(redis_url)
    log = (tmp_path / "replica-a.log").open("wb")
    a = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.consumer", cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        await eventually(lambda: _leases_held_by(redis, "a", 4), 30, message="A owns all")
        await publish_ticks(redis, ticks)
        # The intents went out as they were decided; no commit has happened.
        await eventually(lambda: _count(redis, c.INTENTS, len(signal_ids)), 20, message="intents")
        assert await redis.xlen(c.CANDLES) == 0 and await redis.xlen(c.SIGNALS) == 0
        assert await redis.hget(c.CONSUMER_CHECKPOINT_KEY.format(p=2), "_entry") is None
        assert await pending(redis) == len(ticks)
        a.send_signal(signal.SIGKILL)
        await a.wait()
    finally:
        if a.returncode is None:
            a.kill()
            await a.wait()
        log.close()
    settings = consumer_settings(redis_url, clickhouse_server, clickhouse_db, tmp_path / "b",
                                 replica_name="b", strategies=strategies)  # fmt: skip
    async with running_consumer(settings) as b:
        await eventually(lambda: _count(redis, c.SIGNALS, len(signal_ids)), 30, message="redone")
        await eventually(lambda: _no_pending(redis), 10, message="every entry committed")
        b.mono.advance(86_400)  # the last buckets close on B's timer
        await eventually(lambda: _count(redis, c.CANDLES, len(candles)), 10, message="candles")
        published = await stream_candles(redis)
        assert len(published) == len(candles)  # once each ...
        assert sorted(map(ohlc, published)) == sorted(map(ohlc, candles))  # ... and all of them
        assert [s.signal_id for s in await stream_signals(redis)] == signal_ids
        assert [i.intent_id for i in await stream_intents(redis)] == signal_ids  # not twice
        assert b.metric("tradealgo_consumer_intents_not_published_total",
                        {"reason": "duplicate"}) == len(signal_ids)  # fmt: skip
        worker = b.consumer.owned[2].worker
        assert worker.stats.claimed == len(ticks)
    await redis.aclose()


async def test_a_partition_given_back_to_a_new_replica_is_committed_before_its_lease_goes(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, tmp_path: Path
) -> None:
    bars = read_bars(NIFTY_FILE, [DAY], "09:15", "09:44")
    ticks = producer_ticks(bars)
    candles, signal_ids = expected(bars)

    def settings(name: str, **extra: Any) -> Any:
        return consumer_settings(redis_url, clickhouse_server, clickhouse_db, tmp_path / name,
                                 replica_name=name, strategies=[{"kind": "ema_crossover",
                                 "symbols": [NIFTY], "params": PARAMS}], **extra)  # fmt: skip

    async with running_consumer(settings("a", **NEVER)) as a:
        await eventually(lambda: len(a.consumer.owned) == 4, 10, message="A owns all")
        await publish_ticks(a.redis, ticks)
        worker = a.consumer.owned[2].worker
        await eventually(lambda: worker.uncommitted.ticks == len(ticks), 10, message="handled")
        assert await a.redis.xlen(c.CANDLES) == 0 and await pending(a.redis) == len(ticks)
        last_entry = (await a.redis.xrevrange(STREAM, count=1))[0][0].decode()
        async with running_consumer(settings("b")) as b:
            # Two replicas: A gives its highest partitions (3 and 2, NIFTY's) back to B.
            await eventually(lambda: sorted(b.consumer.owned) == [2, 3], 20, message="B took")
            checkpoint = c.CONSUMER_CHECKPOINT_KEY.format(p=2)
            assert (await a.redis.hget(checkpoint, "_entry")).decode() == last_entry
            taken = b.consumer.owned[2].worker.stats
            assert taken.claimed == 0 and taken.restored_instruments == 1
            b.mono.advance(86_400)
            await eventually(lambda: _count(a.redis, c.CANDLES, len(candles)), 10)
            published = await stream_candles(a.redis)
            assert sorted(map(ohlc, published)) == sorted(map(ohlc, candles))
            assert [s.signal_id for s in await stream_signals(a.redis)] == signal_ids
            assert [i.intent_id for i in await stream_intents(a.redis)] == signal_ids


async def test_one_call_publishes_the_intents_of_several_partitions_each_fenced_by_its_lease(
    redis_url: str,
) -> None:
    redis = redis_client(redis_url)
    committer = PartitionCommitter(
        redis, owner="me:1", group=c.GROUP_CONSUMER, maxlen=1000, dead_letter_maxlen=100,
        intent_ttl_ms=60_000, retry=RetryPolicy(attempts=1),
        metrics=ConsumerMetrics(CollectorRegistry()),
    )  # fmt: skip
    await redis.set(c.PARTITION_LEASE_KEY.format(p=0), "me:1")
    await redis.set(c.PARTITION_LEASE_KEY.format(p=1), "someone-else:2")
    await redis.set(c.PARTITION_LEASE_KEY.format(p=2), "me:1")
    first = await committer.publish_intents(
        [(0, [intent("a"), intent("b")]), (1, [intent("c")]), (2, [intent("d")])]
    )
    assert [(p.flags, p.lease_held) for p in first] == [
        ((True, True), True), ((False,), False), ((True,), True),
    ]  # fmt: skip
    assert first[1].last_id == "" and first[0].last_id < first[2].last_id
    again = await committer.publish_intents([(0, [intent("b"), intent("e")])])
    assert [(p.flags, p.lease_held) for p in again] == [((False, True), True)]
    assert [i.intent_id for i in await stream_intents(redis)] == ["a", "b", "d", "e"]
    await committer.close()
    await redis.aclose()


def intent(intent_id: str) -> OrderIntent:
    now = datetime(2024, 8, 20, 4, 0, tzinfo=UTC)
    return OrderIntent(
        intent_id=intent_id, signal_id=intent_id, strategy="ema_crossover", symbol=NIFTY,
        instrument_token=NIFTY_TOKEN, side="BUY", order_type="MARKET", reference_price=100.0,
        confidence=0.5, timeframe="minute", candle_start=now, created_at=now, reason="test",
        quantity=1, product="MIS",
    )  # fmt: skip


async def _leases_held_by(redis: Any, replica: str, count: int) -> bool:
    values = await redis.mget([c.PARTITION_LEASE_KEY.format(p=p) for p in range(4)])
    return sum(1 for v in values if v and v.decode().startswith(f"{replica}:")) == count


async def _count(redis: Any, stream: str, n: int) -> bool:
    return int(await redis.xlen(stream)) >= n


async def _no_pending(redis: Any) -> bool:
    return all([await pending(redis, c.partitioned(c.TICKS, p)) == 0 for p in range(4)])
