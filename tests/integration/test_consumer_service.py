"""The Consumer service on the real Redis and ClickHouse: ticks -> candles -> signals -> intents."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from services.consumer.backtest.bars import build_candles
from services.consumer.buckets import TIMEFRAMES, data_sessions
from services.consumer.strategies import EmaCrossover
from services.consumer.strategies.ema_crossover import EmaCrossoverParams
from shared import constants as c
from shared.bus import parse_dead_letter
from shared.calendar import load_calendar
from shared.clock import IST
from shared.messages import Candle, Control, Tick
from tests.integration.consumer_harness import (
    NIFTY,
    NIFTY_FILE,
    NIFTY_TOKEN,
    RunningConsumer,
    consumer_settings,
    count_rows,
    ohlc,
    producer_ticks,
    publish_ticks,
    read_bars,
    running_consumer,
    signal_key,
    stored_candles,
    stream_candles,
    stream_intents,
    stream_signals,
)
from tests.support import eventually

pytestmark = pytest.mark.integration

DAY = date(2024, 8, 20)
SESSIONS = data_sessions(load_calendar())


class Bars:
    def __init__(self, bars: list[Any]) -> None:
        self.symbol, self.instrument_token, self._bars = NIFTY, NIFTY_TOKEN, bars

    def bars(self) -> Any:
        return iter(self._bars)


def expected_candles(bars: list[Any]) -> list[Candle]:
    out: list[Candle] = []
    for timeframe in TIMEFRAMES:
        out.extend(build_candles(Bars(bars), timeframe, SESSIONS).candles)
    return out


def expected_signals(candles: list[Candle]) -> list[Any]:
    strategy = EmaCrossover(EmaCrossoverParams(timeframe="minute", fast=3, slow=5, lookback=10))
    state = strategy.new_state()
    minute = sorted((x for x in candles if x.timeframe == "minute"), key=lambda x: x.start)
    return [s for x in minute if (s := strategy.on_candle(x, state)) is not None]


def ticks_handled(rc: RunningConsumer) -> int:
    return sum(o.worker.stats.ticks for o in rc.consumer.owned.values())


async def run_through(rc: RunningConsumer, ticks: list[Tick], handled_before: int = 0) -> None:
    """Publish ticks, wait until every one is handled, then let a day pass (timer closes all)."""
    await eventually(lambda: rc.consumer.readiness()[1].startswith(("ready", "halted")), 10)
    await publish_ticks(rc.redis, ticks)
    await eventually(lambda: ticks_handled(rc) >= handled_before + len(ticks), 20,
                     message="every tick handled")  # fmt: skip
    rc.mono.advance(86_400)


@pytest.fixture
def settings_for(redis_url: str, clickhouse_server: Any, clickhouse_db: str, tmp_path: Path) -> Any:
    def make(**overrides: Any) -> Any:
        return consumer_settings(redis_url, clickhouse_server, clickhouse_db, tmp_path / "spool",
                                 **overrides)  # fmt: skip

    return make


async def test_real_ticks_become_the_backtester_s_candles_and_one_intent_per_signal(
    settings_for: Any,
) -> None:
    bars = read_bars(NIFTY_FILE, [DAY], "09:15", "10:14")
    candles = expected_candles(bars)
    signals = expected_signals(candles)
    assert len(signals) >= 3
    async with running_consumer(settings_for()) as rc:
        await run_through(rc, producer_ticks(bars))
        await eventually(lambda: _count(rc, len(candles)), 10, message="all candles published")
        published = await stream_candles(rc.redis)
        assert sorted(map(ohlc, published)) == sorted(map(ohlc, candles))
        assert [signal_key(s) for s in await stream_signals(rc.redis)] == [
            signal_key(s) for s in signals
        ]
        intents = await stream_intents(rc.redis)
        assert [i.intent_id for i in intents] == [s.signal_id for s in signals]
        assert {i.side for i in intents} == {"BUY", "SELL"}
        await eventually(lambda: count_rows(rc.clickhouse, "order_intents") == len(signals), 10)
        # Rows follow their commits (every commit_interval_ms) and the flusher: eventually.
        await eventually(lambda: len(stored_candles(rc.clickhouse)) == len(candles), 10)
        assert stored_candles(rc.clickhouse) == sorted(
            (x.symbol, x.timeframe, x.start, x.open, x.high, x.low, x.close, x.volume, 0)
            for x in candles
        )
        assert count_rows(rc.clickhouse, "trading_signals") == len(signals)
        assert rc.metric("tradealgo_candles_closed_total",
                         {"timeframe": "minute", "closed_by": "tick"}) == 59  # fmt: skip
        assert rc.metric("tradealgo_candles_closed_total",
                         {"timeframe": "minute", "closed_by": "timer"}) == 1  # fmt: skip
        assert rc.metric("tradealgo_intents_published_total",
                         {"strategy": "ema_crossover"}) == len(signals)  # fmt: skip
        assert rc.metric("tradealgo_partitions_owned") == 4
        assert rc.metric("tradealgo_strategy_seconds_count", {"strategy": "ema_crossover"}) == 60


async def _count(rc: RunningConsumer, n: int) -> bool:
    return len(await stream_candles(rc.redis)) >= n


async def test_a_late_tick_is_stored_and_published_as_a_counted_revision_never_fed_to_strategies(
    settings_for: Any,
) -> None:
    bars = read_bars(NIFTY_FILE, [DAY], "09:15", "09:40")
    ticks = producer_ticks(bars)
    late_at = datetime(2024, 8, 20, 9, 35, 50, tzinfo=IST)
    high = max(b.high for b in bars) + 50
    late = Tick(instrument_token=NIFTY_TOKEN, symbol=NIFTY, last_price=high, exchange_ts=late_at,
                received_ns=1)  # fmt: skip
    async with running_consumer(settings_for(timeframes=["minute", "5minute"])) as rc:
        await eventually(lambda: rc.consumer.readiness()[0], 10)
        await publish_ticks(rc.redis, ticks)
        await eventually(lambda: ticks_handled(rc) >= len(ticks), 20)
        signals_before = len(await stream_signals(rc.redis))
        await publish_ticks(rc.redis, [late])
        await eventually(lambda: ticks_handled(rc) >= len(ticks) + 1, 10)
        revised = [x for x in await stream_candles(rc.redis) if x.revision]
        assert sorted((x.timeframe, x.start.astimezone(IST).time().isoformat(), x.high)
                      for x in revised) == [("5minute", "09:35:00", high),
                                            ("minute", "09:35:00", high)]  # fmt: skip
        assert rc.metric("tradealgo_candle_revisions_total", {"timeframe": "minute"}) == 1
        assert len(await stream_signals(rc.redis)) == signals_before
        await eventually(lambda: _stored_revision(rc, late_at) == (1, high), 10)


def _stored_revision(rc: RunningConsumer, at: datetime) -> tuple[int, float] | None:
    rows = rc.clickhouse.execute(
        "SELECT revision, high FROM candles FINAL WHERE timeframe = 'minute' "
        "AND start = toDateTime64(%(s)s, 6, 'Asia/Kolkata')",
        {"s": at.replace(second=0).strftime("%Y-%m-%d %H:%M:%S")},
    )
    return (int(rows[0][0]), float(rows[0][1])) if rows else None


async def test_a_malformed_or_impossible_tick_is_dead_lettered_with_its_reason_and_the_loop_goes_on(
    settings_for: Any,
) -> None:
    bars = read_bars(NIFTY_FILE, [DAY], "09:15", "09:20")
    ticks = producer_ticks(bars)
    stream = c.partitioned(c.TICKS, c.partition_of(NIFTY_TOKEN, 4))
    negative = Tick(instrument_token=NIFTY_TOKEN, symbol=NIFTY, last_price=-3.0,
                    exchange_ts=bars[2].start, received_ns=1)  # fmt: skip
    async with running_consumer(settings_for(timeframes=["minute"])) as rc:
        await eventually(lambda: rc.consumer.readiness()[0], 10)
        await publish_ticks(rc.redis, ticks[:8])
        await rc.redis.xadd(stream, {b"m": b"Tick", b"d": b"\xc1 not msgpack"})
        await rc.redis.xadd(stream, {b"junk": b"1"})
        await publish_ticks(rc.redis, [negative, *ticks[8:]])
        await eventually(lambda: ticks_handled(rc) >= len(ticks), 10)
        letters = [parse_dead_letter(f) for _, f in await rc.redis.xrange(c.DEAD_LETTERS)]
        assert [(x.kind.value, x.stream) for x in letters] == [
            ("malformed", stream), ("malformed", stream), ("rejected", stream),
        ]  # fmt: skip
        assert "not a positive finite number" in letters[2].reason
        assert "lacks the m/d fields" in letters[1].reason
        assert rc.metric("tradealgo_dead_letters_total", {"service": "consumer",
                         "stream": stream, "reason_kind": "malformed"}) == 2  # fmt: skip
        await eventually(lambda: count_rows(rc.clickhouse, "dead_letters") == 3, 10)
        minute = [x for x in await stream_candles(rc.redis) if x.timeframe == "minute"]
        assert len(minute) == len(bars) - 1  # every good tick still made its candle
        pending = await rc.redis.xpending(stream, c.GROUP_CONSUMER)
        assert pending["pending"] == 0


async def test_while_halted_candles_and_signals_go_on_but_intents_are_withheld(
    settings_for: Any,
) -> None:
    from shared.bus import StreamBus

    bars = read_bars(NIFTY_FILE, [DAY], "09:15", "10:14")
    ticks = producer_ticks(bars)
    half = len(ticks) // 2
    async with running_consumer(settings_for()) as rc:
        await eventually(lambda: rc.consumer.readiness()[0], 10)
        bus = StreamBus(rc.redis, service="test", maxlen=100)
        now = datetime.now(IST)
        await bus.publish(c.CONTROL, Control(command="HALT", reason="kill switch", source="cli",
                                             ts=now))  # fmt: skip
        await eventually(lambda: "halted by cli: kill switch" in rc.consumer.readiness()[1])
        await publish_ticks(rc.redis, ticks[:half])
        await eventually(lambda: ticks_handled(rc) >= half, 10)
        withheld = await stream_signals(rc.redis)
        assert withheld and await stream_intents(rc.redis) == []
        assert rc.metric("tradealgo_consumer_intents_not_published_total",
                         {"reason": "halted"}) == len(withheld)  # fmt: skip
        assert rc.metric("tradealgo_halted", {"service": "consumer"}) == 1
        await bus.publish(c.CONTROL, Control(command="RESUME", reason="ok", source="cli", ts=now))
        await eventually(lambda: rc.consumer.readiness()[0])
        await publish_ticks(rc.redis, ticks[half:])
        await eventually(lambda: ticks_handled(rc) >= len(ticks), 10)
        later = (await stream_signals(rc.redis))[len(withheld) :]
        assert later
        assert [i.intent_id for i in await stream_intents(rc.redis)] == [s.signal_id for s in later]


async def test_a_restart_continues_from_the_checkpoint_and_a_lost_checkpoint_never_doubles_an_intent(
    settings_for: Any,
) -> None:
    bars = read_bars(NIFTY_FILE, [DAY], "09:15", "10:14")
    ticks = producer_ticks(bars)
    candles = expected_candles(bars)
    signals = expected_signals(candles)
    settings = settings_for()
    async with running_consumer(settings) as first:
        await eventually(lambda: first.consumer.readiness()[0], 10)
        await publish_ticks(first.redis, ticks[:101])  # stops inside a bucket of every timeframe
        await eventually(lambda: ticks_handled(first) >= 101, 10)
    async with running_consumer(settings) as second:
        await run_through(second, ticks[101:])
        await eventually(lambda: _count(second, len(candles)), 10)
        assert sorted(map(ohlc, await stream_candles(second.redis))) == sorted(map(ohlc, candles))
        assert [i.intent_id for i in await stream_intents(second.redis)] == [
            s.signal_id for s in signals
        ]
    # The checkpoints and the group positions are lost (say, a bad restore of Redis): the
    # partitions are read again from the start. Candles come again; no intent does.
    redis = second.redis.__class__.from_url(settings.redis_url.get_secret_value())
    for p in range(4):
        await redis.delete(c.CONSUMER_CHECKPOINT_KEY.format(p=p))
        await redis.xgroup_setid(c.partitioned(c.TICKS, p), c.GROUP_CONSUMER, "0")
    await redis.aclose()
    async with running_consumer(settings) as third:
        await eventually(lambda: ticks_handled(third) >= len(ticks), 20)
        third.mono.advance(86_400)
        await eventually(lambda: _count(third, 2 * len(candles)), 10)
        assert len(await stream_intents(third.redis)) == len(signals)
        assert third.metric("tradealgo_consumer_intents_not_published_total",
                            {"reason": "duplicate"}) == len(signals)  # fmt: skip
        await eventually(lambda: count_rows(third.clickhouse, "order_intents") == len(signals), 10)
        await eventually(lambda: len(stored_candles(third.clickhouse)) >= len(candles), 10)
        assert len(stored_candles(third.clickhouse)) == len(candles)


async def test_a_bucket_left_open_by_a_stopped_replica_is_closed_by_its_successor_s_timer(
    settings_for: Any,
) -> None:
    bars = read_bars(NIFTY_FILE, [DAY], "09:15", "09:21")
    candles = [x for x in expected_candles(bars) if x.timeframe in ("minute", "5minute")]
    settings = settings_for(timeframes=["minute", "5minute"])
    async with running_consumer(settings) as first:
        await eventually(lambda: first.consumer.readiness()[0], 10)
        await publish_ticks(first.redis, producer_ticks(bars))
        await eventually(lambda: ticks_handled(first) >= 4 * len(bars), 10)
    async with running_consumer(settings) as second:  # no tick will ever come again
        await eventually(lambda: len(second.consumer.owned) == 4, 10)
        second.mono.advance(86_400)
        await eventually(lambda: _count(second, len(candles)), 10, message="restored buckets")
        assert sorted(map(ohlc, await stream_candles(second.redis))) == sorted(map(ohlc, candles))


async def test_a_strategy_that_raises_is_logged_and_counted_and_the_partition_goes_on(
    settings_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.consumer import strategies

    class Broken(EmaCrossover):
        kind = "broken"

        def on_candle(self, candle: Candle, state: Any) -> Any:
            if candle.start.minute % 2:
                raise ZeroDivisionError("a bug in a strategy")
            return super().on_candle(candle, state)

    monkeypatch.setitem(strategies.STRATEGY_KINDS, "broken", Broken)
    bars = read_bars(NIFTY_FILE, [DAY], "09:15", "09:40")
    settings = settings_for(timeframes=["minute"], strategies=[
        {"kind": "broken", "symbols": [NIFTY], "params": {"timeframe": "minute", "fast": 3,
                                                          "slow": 5, "lookback": 10}},
    ])  # fmt: skip
    async with running_consumer(settings) as rc:
        await run_through(rc, producer_ticks(bars))
        await eventually(lambda: _count(rc, len(bars)), 10)
        assert rc.metric("tradealgo_consumer_strategy_errors_total") == len(bars) // 2
        assert len(rc.consumer.owned) == 4


async def test_taking_a_partition_over_keeps_what_the_other_partitions_strategies_know(
    settings_for: Any,
) -> None:
    bars = read_bars(NIFTY_FILE, [DAY], "09:15", "09:34")
    async with running_consumer(settings_for()) as rc:
        await run_through(rc, producer_ticks(bars))
        engine = rc.consumer.engine
        known = bars[-1].start  # the last candle, closed by the timer after the day passed
        await eventually(lambda: engine.last_start(NIFTY, "minute") == known)
        # Another partition leaves and comes back (a hand-over): its take-over restores its own
        # instruments and must not make NIFTY's live, warmed strategy forget its history.
        other = next(p for p in range(4) if p != c.partition_of(NIFTY_TOKEN, 4))
        await rc.consumer._drop(other, graceful=True, release=True, why="test: hand-over")
        await eventually(lambda: other in rc.consumer.owned, 10, message="taken back")
        assert engine.last_start(NIFTY, "minute") == known
