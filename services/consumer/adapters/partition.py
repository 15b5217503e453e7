"""One owned tick partition: ticks -> candles -> strategies -> intents, committed round by round.

A round is a batch of entries read with XREADGROUP (or a timer sweep): the pure core turns its
ticks into candles, gaps and rejects, the strategies into signals and intents, and ONE commit
(adapters/commit.py) publishes all of it, checkpoints the builders and acks the entries. ClickHouse
rows are added after the commit. What a take-over does (`start`):
1. the checkpoint (builder states after the last committed entry) is restored;
2. rows the previous owner committed but may not have flushed to ClickHouse are re-added from the
   streams (from the `_stored:` marks on; ReplacingMergeTree makes a second copy harmless);
3. the group's pending entries (those the previous owner read but never committed) are claimed
   (XAUTOCLAIM) and handled first, in order, then new entries.
Strategies of an instrument are warmed from history on its first tick here (history_loader.py),
before its candles reach them. Gaps of a strategy instrument are backfilled from the historical
API inside the round, so the strategies still see candles in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import ResponseError

from services.consumer.adapters.commit import (
    ENTRY_FIELD,
    STORED_PREFIX,
    Committed,
    Published,
    Round,
    RoundCommitter,
)
from services.consumer.adapters.history_loader import HistoryLoader
from services.consumer.adapters.metrics import ConsumerMetrics
from services.consumer.adapters.store import ConsumerStore
from services.consumer.buckets import SessionsOf, bucket_of
from services.consumer.builder_state import (
    BuilderState,
    CheckpointError,
    decode_instrument,
    encode_instrument,
)
from services.consumer.candle_book import CandleBook
from services.consumer.candles import CandleBuilder, CandleGap, RejectedTick
from services.consumer.feed_clock import FeedClock
from services.consumer.settings import ConsumerSettings
from services.consumer.signals import intent_from_signal
from services.consumer.strategy_engine import StrategyEngine
from services.consumer.tick_intake import receipt_stamped, tick_problem
from shared import constants as c
from shared.bus import DeadLetter, DeadLetterKind, decode_entry
from shared.bus.policy import failure_reason
from shared.clock import Clock
from shared.messages import Candle, MessageError, OrderIntent, Signal, Tick, Timeframe

logger = logging.getLogger(__name__)

ROWS_STREAMS = (c.CANDLES, c.SIGNALS, c.INTENTS)


@dataclass
class WorkerContext:
    """What every partition worker of a replica shares."""

    settings: ConsumerSettings
    redis: Any  # redis.asyncio.Redis, bytes replies
    committer: RoundCommitter
    store: ConsumerStore
    engine: StrategyEngine
    history: HistoryLoader | None
    metrics: ConsumerMetrics
    grid_sessions: SessionsOf
    clock: Clock
    halted: Callable[[], str | None]  # the halt reason, None while trading runs
    consumer: str  # this replica's consumer name (its lease value)
    mono: Callable[[], float] = time.monotonic


@dataclass
class PartitionStats:
    rounds: int = 0
    ticks: int = 0  # ticks of committed rounds
    candles: int = 0
    restored_instruments: int = 0
    restored_rows: int = 0
    claimed: int = 0
    skipped: int = 0  # entries at or before the checkpoint (already committed)
    warmed: set[str] = field(default_factory=set)


def entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class PartitionWorker:
    """Reads, builds and commits one tick partition while this replica holds its lease."""

    def __init__(self, partition: int, ctx: WorkerContext) -> None:
        s = ctx.settings
        self.partition = partition
        self.ctx = ctx
        self.stream = c.partitioned(c.TICKS, partition)
        self.book = CandleBook(
            s.timeframes, sessions_of=ctx.grid_sessions, grace_s=s.candle_grace_s,
            revision_window_s=s.candle_revision_window_s,
        )  # fmt: skip
        self.feed_clock = FeedClock()
        self.lock = asyncio.Lock()  # a round and a timer sweep never interleave
        self.stats = PartitionStats()
        self.committed_entry = ""  # the checkpoint's entry: anything at or before it is done
        self.last_ids: dict[str, str] = {}  # newest entry per output stream, for `_stored:`
        self._strategy_symbols = ctx.engine.symbols()
        self._lookbacks = ctx.engine.lookbacks()
        self._misrouted: set[int] = set()

    # -- take-over ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the checkpoint and the unflushed rows, and claim the pending entries."""
        ctx = self.ctx
        raw: dict[bytes, bytes] = await ctx.redis.hgetall(
            c.CONSUMER_CHECKPOINT_KEY.format(p=self.partition)
        )
        restored: dict[bytes, tuple[BuilderState, ...]] = {}
        for key, value in raw.items():
            if key.startswith(b"_"):
                continue
            try:
                restored[key] = decode_instrument(value)
            except CheckpointError as exc:
                logger.error("partition %s: instrument %s not restored: %s", self.partition,
                             key.decode(), exc)  # fmt: skip
        stale = idle_instruments(restored, timedelta(days=ctx.settings.checkpoint_keep_days))
        if stale:
            await ctx.redis.hdel(c.CONSUMER_CHECKPOINT_KEY.format(p=self.partition), *stale)
            logger.info("partition %s: %s instruments idle for over %s days dropped from the "
                        "checkpoint", self.partition, len(stale),
                        ctx.settings.checkpoint_keep_days)  # fmt: skip
        symbols: set[str] = set()
        for key, states in restored.items():
            if key in stale:
                continue
            if self.book.restore(states):
                self.stats.restored_instruments += 1
                symbols.update(s.symbol for s in states)
                for state in states:  # the market time the previous owner had reached
                    if state.open_bucket is not None:
                        self.feed_clock.observe(state.open_bucket.last_ts, ctx.mono())
        self.committed_entry = raw.get(ENTRY_FIELD.encode(), b"").decode()
        # What this replica's strategies knew of these symbols is stale: warm them again.
        ctx.engine.forget(symbols | self._strategy_symbols)
        if raw:
            await self._restore_rows(raw)
        try:
            await ctx.redis.xgroup_create(self.stream, c.GROUP_CONSUMER, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        await self._claim_pending()
        logger.info(
            "partition %s taken over: %s instruments restored at entry %s, %s rows re-stored, "
            "%s pending entries claimed",
            self.partition, self.stats.restored_instruments, self.committed_entry or "(none)",
            self.stats.restored_rows, self.stats.claimed,
        )  # fmt: skip

    async def _restore_rows(self, raw: dict[bytes, bytes]) -> None:
        ctx = self.ctx
        partitions = ctx.settings.tick_partitions
        for stream in ROWS_STREAMS:
            mark = raw.get(f"{STORED_PREFIX}{stream}".encode())
            start = f"({mark.decode()}" if mark else "-"
            while True:
                entries = await ctx.redis.xrange(stream, min=start, max="+", count=1000)
                if not entries:
                    break
                mine: list[Any] = []
                for _, fields in entries:
                    try:
                        message = decode_entry(stream, fields)
                    except MessageError:
                        continue
                    token = getattr(message, "instrument_token", -1)
                    if c.partition_of(token, partitions) == self.partition:
                        mine.append(message)
                self._store(stream, mine)
                self.stats.restored_rows += len(mine)
                start = f"({_text(entries[-1][0])}"
        if self.stats.restored_rows:
            await ctx.store.flush()

    def _store(self, stream: str, messages: list[Any]) -> None:
        store = self.ctx.store
        if stream == c.CANDLES:
            store.add_candles(messages)
        elif stream == c.SIGNALS:
            store.add_signals(messages)
        else:
            store.add_intents(messages)

    async def _claim_pending(self) -> None:
        redis, me = self.ctx.redis, self.ctx.consumer
        cursor: Any = "0-0"
        while True:
            reply = await redis.xautoclaim(
                self.stream, c.GROUP_CONSUMER, me, min_idle_time=0, start_id=cursor, count=1000
            )
            cursor = _text(reply[0])
            self.stats.claimed += len(reply[1])
            if cursor == "0-0":
                break
        for info in await redis.xinfo_consumers(self.stream, c.GROUP_CONSUMER):
            name = _text(info.get("name", b""))
            if name != me and int(info.get("pending", 0)) == 0:
                await redis.xgroup_delconsumer(self.stream, c.GROUP_CONSUMER, name)

    # -- the read loop --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Handle this partition's entries until `stop` (pending ones first). LeaseLost and Redis
        errors propagate: the service drops the partition and may take it again later."""
        s, redis = self.ctx.settings, self.ctx.redis
        cursor = "0"  # this consumer's pending entries (claimed at take-over) first
        while not stop.is_set():
            reply = await redis.xreadgroup(
                c.GROUP_CONSUMER, self.ctx.consumer, {self.stream: cursor},
                count=s.read_count, block=None if cursor != ">" else s.read_block_ms,
            )  # fmt: skip
            entries = [
                (_text(entry_id), fields)
                for _, batch in _pairs(reply)
                for entry_id, fields in batch
            ]
            if not entries:
                if cursor != ">":
                    cursor = ">"
                await asyncio.sleep(0)
                continue
            async with self.lock:
                await self._round(entries)
            if cursor != ">":
                cursor = entries[-1][0]
            await asyncio.sleep(0)

    async def _round(self, entries: list[tuple[str, dict[bytes, bytes] | None]]) -> None:
        ctx = self.ctx
        round_ = Round(acks=[e for e, _ in entries], entry=entries[-1][0])
        done = entry_key(self.committed_entry) if self.committed_entry else None
        ticks: list[Tick] = []
        for entry_id, fields in entries:
            if done is not None and entry_key(entry_id) <= done:
                self.stats.skipped += 1
                continue
            tick = self._tick(entry_id, fields, round_)
            if tick is not None:
                ticks.append(tick)
        for tick in ticks:
            if tick.symbol in self._strategy_symbols and tick.symbol not in self.stats.warmed:
                await self._warm_up(tick)
        closed: list[Candle] = []
        dirty: set[int] = set()
        mono = ctx.mono()
        update, observe = self.book.update, self.feed_clock.observe
        for tick in ticks:
            observe(tick.exchange_ts, mono)
            dirty.add(tick.instrument_token)
            out = update(tick)
            if out:
                closed.extend(out)
        self._check_routing(ticks)
        await self._finish(round_, closed, "tick", dirty, [])
        self.stats.ticks += len(ticks)  # counted once their round is committed

    def _tick(self, entry_id: str, fields: dict[bytes, bytes] | None, round_: Round) -> Tick | None:
        if not fields:  # trimmed before it was read: nothing to handle
            return None
        try:
            message = decode_entry(self.stream, fields)
        except MessageError as exc:
            round_.dead_letters.append(self._letter(DeadLetterKind.MALFORMED,
                                                    failure_reason(exc), entry_id, fields))  # fmt: skip
            return None
        assert isinstance(message, Tick)
        problem = tick_problem(message)
        if problem is not None:
            round_.dead_letters.append(
                self._letter(DeadLetterKind.REJECTED, f"RejectedInput: {problem}", entry_id, fields)
            )
            return None
        if not self.ctx.settings.receipt_time_ticks and receipt_stamped(message):
            self.ctx.metrics.ticks_ignored.labels("receipt_time").inc()
            logger.debug(
                "tick %s of %s carries its receipt time: ignored", entry_id, message.symbol
            )
            return None
        return message

    def _letter(
        self, kind: DeadLetterKind, reason: str, entry_id: str, fields: dict[bytes, bytes]
    ) -> DeadLetter:
        logger.warning("tick entry %s of %s dead-lettered (%s): %s", entry_id, self.stream,
                       kind.value, reason)  # fmt: skip
        return DeadLetter(kind, reason, "consumer", self.stream, entry_id, 1, fields)

    # -- the timer ------------------------------------------------------------------------------

    async def on_timer(self) -> None:
        """Close buckets whose end + grace has passed in this partition's market time."""
        ctx = self.ctx
        async with self.lock:
            now = (
                self.feed_clock.now(ctx.mono())
                if ctx.settings.market_clock == "feed"
                else ctx.clock.now()
            )
            if now is None:
                return
            closed = self.book.on_time(now)
            await self._finish(Round(), closed, "timer", {x.instrument_token for x in closed}, [])

    async def commit_signals(self, signals: list[Signal]) -> None:
        """Publish signals decided outside a round (a universe strategy's flush)."""
        async with self.lock:
            await self._finish(Round(), [], "timer", set(), signals)

    # -- one round's output ---------------------------------------------------------------------

    async def _finish(
        self,
        round_: Round,
        closed: list[Candle],
        closed_by: str,
        dirty: set[int],
        extra_signals: list[Signal],
    ) -> None:
        ctx = self.ctx
        gaps = self.book.take_gaps()
        rejects = self.book.take_rejects()
        dirty.update(g.instrument_token for g in gaps)
        backfilled = await self._backfill(gaps)
        signals = [*extra_signals, *self._decide(closed, backfilled)]
        intents = self._intents(self._tradable(signals, backfilled))
        # Intents first, in their own small script: the latency that matters. They are
        # exactly-once by their NX keys whatever happens to the commit below.
        published = await ctx.committer.publish_intents(self.partition, intents)
        round_.candles = [*closed, *backfilled]
        round_.signals = signals
        round_.states = {t: encode_instrument(self.book.state_of(t)) for t in dirty}
        if round_.empty() and not intents:
            return
        committed = await ctx.committer.commit(self.partition, round_)
        # Rows right after the commit, with no await in between: the flusher's `_stored:` marks
        # never get ahead of the rows they vouch for.
        self._after_commit(round_, intents, published, committed, closed_by, gaps, rejects)

    def _decide(self, closed: list[Candle], backfilled: list[Candle]) -> list[Signal]:
        engine, metrics = self.ctx.engine, self.ctx.metrics
        feed = [x for x in closed if x.revision == 0]
        if backfilled:
            feed = sorted([*feed, *backfilled], key=lambda x: x.start)
        signals: list[Signal] = []
        for candle in feed:
            key = (candle.symbol, candle.timeframe)
            if key not in self._lookbacks:
                engine.on_candle(candle)  # keeps the engine's order guard current
                continue
            started = time.perf_counter()
            try:
                decided = engine.on_candle(candle)
            except Exception:  # a strategy's bug must not stall the partition
                metrics.strategy_errors.inc()
                logger.exception("strategies of %s %s failed on the %s candle; skipped",
                                 candle.symbol, candle.timeframe, candle.start)  # fmt: skip
                continue
            elapsed = time.perf_counter() - started
            names = engine.strategy_names(candle.symbol, candle.timeframe)
            for name in names:
                metrics.strategy_seconds.labels(name).observe(elapsed / len(names))
            signals.extend(decided)
        return signals

    def _tradable(self, signals: list[Signal], backfilled: list[Candle]) -> list[Signal]:
        """Signals decided on backfilled candles are recorded (the decision history equals an
        uninterrupted feed's) but not traded: their moment passed while the feed was down."""
        if not backfilled or not signals:
            return signals
        late = {(x.symbol, x.timeframe, x.start) for x in backfilled}
        tradable: list[Signal] = []
        for signal in signals:
            if (signal.symbol, signal.timeframe, signal.candle_start) in late:
                self.ctx.metrics.intents_not_published.labels("backfill").inc()
                logger.warning(
                    "signal %s %s %s %s on a backfilled candle %s: recorded, no intent (stale)",
                    signal.signal_id, signal.strategy, signal.action, signal.symbol,
                    signal.candle_start,
                )  # fmt: skip
            else:
                tradable.append(signal)
        return tradable

    def _intents(self, signals: list[Signal]) -> list[OrderIntent]:
        if not signals:
            return []
        s = self.ctx.settings
        halt = self.ctx.halted()
        if halt is not None:
            for signal in signals:
                self.ctx.metrics.intents_not_published.labels("halted").inc()
                logger.warning(
                    "signal %s %s %s %s: intent withheld, trading is halted (%s)",
                    signal.signal_id, signal.strategy, signal.action, signal.symbol, halt,
                )  # fmt: skip
            return []
        return [
            intent_from_signal(
                signal,
                order_type=s.intent_order_type,
                product=s.option_intent_product if signal.underlying else s.intent_product,
            )
            for signal in signals
        ]

    def _after_commit(
        self,
        round_: Round,
        intents: list[OrderIntent],
        published: Published,
        committed: Committed,
        closed_by: str,
        gaps: list[CandleGap],
        rejects: list[RejectedTick],
    ) -> None:
        store, metrics = self.ctx.store, self.ctx.metrics
        if round_.entry:
            self.committed_entry = round_.entry
        self.last_ids.update(committed.last_ids)
        if published.last_id:
            self.last_ids[c.INTENTS] = published.last_id
        self.stats.rounds += 1
        self.stats.candles += len(round_.candles)
        store.add_candles(round_.candles)
        store.add_signals(round_.signals)
        store.add_intents(intents)
        store.add_gaps(gaps)
        store.add_dead_letters(round_.dead_letters)
        self._count_candles(round_.candles, closed_by)
        for gap in gaps:
            metrics.candle_gaps.labels(gap.timeframe).inc(gap.buckets)
            logger.info("gap: %s %s had no tick in %s buckets %s..%s", gap.symbol, gap.timeframe,
                        gap.buckets, gap.start, gap.end)  # fmt: skip
        for reject in rejects:
            metrics.ticks_ignored.labels(_reject_kind(reject.reason)).inc()
        if rejects:
            logger.info("partition %s: %s ticks made no candle (first: %s %s: %s)",
                        self.partition, len(rejects), rejects[0].tick.symbol,
                        rejects[0].timeframe, rejects[0].reason)  # fmt: skip
        for signal in round_.signals:
            metrics.signals.labels(signal.strategy, signal.action).inc()
        for intent, went_out in zip(intents, published.flags, strict=True):
            if went_out:
                metrics.intents_published.labels(intent.strategy).inc()
                logger.info("intent %s published: %s %s %s at %.2f (%s)", intent.intent_id,
                            intent.strategy, intent.side, intent.symbol,
                            intent.reference_price, intent.reason)  # fmt: skip
            else:
                metrics.intents_not_published.labels("duplicate").inc()
                logger.warning("intent %s not published: signal id already published before",
                               intent.intent_id)  # fmt: skip

    def _count_candles(self, candles: Iterable[Candle], closed_by: str) -> None:
        metrics = self.ctx.metrics
        now = self._market_now()
        for candle in candles:
            if candle.revision:
                metrics.candle_revisions.labels(candle.timeframe).inc()
                logger.info("revised candle %s %s %s (revision %s, late tick)", candle.symbol,
                            candle.timeframe, candle.start, candle.revision)  # fmt: skip
                continue
            if candle.source != "live":
                continue
            metrics.candles_closed.labels(candle.timeframe, closed_by).inc()
            if now is not None:
                metrics.close_delay.observe(max(0.0, (now - candle.end).total_seconds()))

    def _market_now(self) -> datetime | None:
        if self.ctx.settings.market_clock == "feed":
            return self.feed_clock.now(self.ctx.mono())
        return self.ctx.clock.now()

    # -- history --------------------------------------------------------------------------------

    async def _warm_up(self, tick: Tick) -> None:
        """Warm the strategies of a symbol on its first tick in this partition."""
        ctx = self.ctx
        self.stats.warmed.add(tick.symbol)
        if ctx.history is None or not ctx.settings.warmup:
            logger.info("%s: strategies start without history (warm-up off)", tick.symbol)
            return
        builders = {b.timeframe: b for b in self.book.builders(tick.instrument_token)}
        for (symbol, timeframe), lookback in sorted(self._lookbacks.items()):
            if symbol != tick.symbol:
                continue
            until = self._warm_until(tick, timeframe, builders.get(timeframe))
            depth = ctx.settings.history_candles or lookback
            try:
                result = await ctx.history.warm_up(
                    tick.instrument_token, symbol, timeframe, depth, until
                )
            except Exception:
                ctx.metrics.warmups.labels("failed").inc()
                logger.exception("warm-up of %s %s failed: strategies start cold", symbol,
                                 timeframe)  # fmt: skip
                continue
            ctx.engine.warm(result.candles)

    def _warm_until(
        self, tick: Tick, timeframe: Timeframe, builder: CandleBuilder | None
    ) -> datetime:
        """History ends where this worker's candles begin: the restored open bucket, else the
        end of the last restored candle, else the bucket of the first tick."""
        if builder is not None:
            state = builder.state()
            if state.open_bucket is not None:
                return state.open_bucket.start
            if state.last_end is not None:
                return state.last_end
        bucket = bucket_of(tick.exchange_ts, timeframe, self.ctx.grid_sessions)
        return bucket.start if bucket is not None else tick.exchange_ts

    async def _backfill(self, gaps: list[CandleGap]) -> list[Candle]:
        ctx = self.ctx
        if not gaps or ctx.history is None or not ctx.settings.backfill_gaps:
            return []
        out: list[Candle] = []
        for gap in gaps:
            if (gap.symbol, gap.timeframe) not in self._lookbacks:
                continue
            last = ctx.engine.last_start(gap.symbol, gap.timeframe)
            candles = await ctx.history.backfill(
                gap.instrument_token, gap.symbol, gap.timeframe, gap.start, gap.end
            )
            out.extend(x for x in candles if last is None or x.start > last)
        return out

    def _check_routing(self, ticks: list[Tick]) -> None:
        partitions = self.ctx.settings.tick_partitions
        for tick in ticks:
            token = tick.instrument_token
            if token in self._misrouted:
                continue
            if c.partition_of(token, partitions) != self.partition:
                self._misrouted.add(token)
                logger.error(
                    "instrument %s arrived on partition %s but belongs to %s of %s: the "
                    "Producer's TICK_PARTITIONS differs from the Consumer's",
                    tick.symbol, self.partition, c.partition_of(token, partitions), partitions,
                )  # fmt: skip

    def symbols(self) -> set[str]:
        """Symbols of the instruments this partition has builders for."""
        return {b.symbol for t in self.book.tokens() for b in self.book.builders(t)[:1]}


def idle_instruments(
    restored: dict[bytes, tuple[BuilderState, ...]], keep: timedelta
) -> list[bytes]:
    """Checkpoint entries whose newest candle ended `keep` before the partition's newest one
    (expired options, delisted symbols): dropped so a checkpoint does not grow for ever."""

    def newest(states: tuple[BuilderState, ...]) -> datetime | None:
        ends = [s.last_end for s in states if s.last_end is not None]
        return max(ends) if ends else None

    ends = {key: newest(states) for key, states in restored.items()}
    known = [e for e in ends.values() if e is not None]
    if not known:
        return []
    horizon = max(known) - keep
    return [key for key, end in ends.items() if end is not None and end < horizon]


def _reject_kind(reason: str) -> str:
    for needle, kind in (("outside", "outside_session"), ("too late", "too_late"),
                         ("naive", "naive_timestamp"), ("not this builder", "wrong_instrument")):  # fmt: skip
        if needle in reason:
            return kind
    return "other"


def _pairs(reply: Any) -> list[tuple[Any, list[Any]]]:
    if not reply:
        return []
    items = reply.items() if isinstance(reply, dict) else reply
    return [(stream, list(entries)) for stream, entries in items]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
