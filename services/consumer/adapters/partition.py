"""One owned tick partition: ticks -> candles -> strategies -> intents, committed every so often.

The replica's TickReader (adapters/tick_reader.py) reads every owned partition with one
XREADGROUP and hands each worker its entries in two passes: first the ticks of strategy
instruments (when a candle a strategy runs on closes, the strategies decide and the intents go
out at once, `publish_intents` in adapters/commit.py), then, once every partition has done that,
the other ticks. Instruments are independent, so this order builds the same candles as the entry
order. Everything but the intents (candles, signals, dead letters, the checkpoint of every
touched instrument, the acks) is coalesced and committed every `commit_interval_ms` (sooner once
`commit_max_entries` entries wait; on a timer sweep; before a graceful stop), each commit a task
so reading goes on while Redis applies it; commits are applied in order and ClickHouse rows follow
each one. A crash between two commits leaves the entries since the first one pending and the
checkpoint at it: the successor handles them again and publishes the same candles and signals
once, and no intent twice (NX keys).
A take-over (`start`, adapters/takeover.py) restores the checkpoint and the unflushed rows and
claims the group's pending entries, which `run` handles first with its own reads before the
partition joins the shared reader. Strategies of an instrument are warmed from history on its
first tick here (history_loader.py), before its candles reach them. Gaps of a strategy
instrument are backfilled from the historical API before its next decision, so the strategies
still see candles in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from services.consumer.adapters.commit import (
    Committed,
    LeaseLost,
    PartitionCommitter,
    Published,
    Uncommitted,
)
from services.consumer.adapters.decisions import Decider
from services.consumer.adapters.entries import Entries, entry_key, stream_entries, symbol_of
from services.consumer.adapters.history_loader import HistoryLoader
from services.consumer.adapters.intent_outbox import IntentOutbox
from services.consumer.adapters.metrics import ConsumerMetrics
from services.consumer.adapters.records import PartitionRecords
from services.consumer.adapters.store import ConsumerStore
from services.consumer.adapters.takeover import (
    claim_pending,
    claim_strays,
    read_checkpoint,
    restore_rows,
)
from services.consumer.buckets import SessionsOf, bucket_of
from services.consumer.candle_book import CandleBook
from services.consumer.candles import CandleBuilder, CandleGap, RejectedTick
from services.consumer.feed_clock import FeedClock
from services.consumer.settings import ConsumerSettings
from services.consumer.strategy_engine import StrategyEngine
from services.consumer.tick_intake import receipt_stamped, tick_problem
from shared import constants as c
from shared.bus import DeadLetter, DeadLetterKind, decode_entry
from shared.bus.policy import failure_reason
from shared.clock import Clock
from shared.messages import Candle, MessageError, OrderIntent, Signal, Tick, Timeframe

logger = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What every partition worker of a replica shares."""

    settings: ConsumerSettings
    redis: Any  # redis.asyncio.Redis, bytes replies
    committer: PartitionCommitter
    store: ConsumerStore
    engine: StrategyEngine
    history: HistoryLoader | None
    metrics: ConsumerMetrics
    grid_sessions: SessionsOf
    clock: Clock
    halted: Callable[[], str | None]  # the halt reason, None while trading runs
    consumer: str  # this replica's consumer name (its lease value)
    outbox: IntentOutbox
    mono: Callable[[], float] = time.monotonic
    live_symbols: Callable[[], set[str]] = set  # warmed by this replica's other partitions


@dataclass
class PartitionStats:
    rounds: int = 0  # batches handled
    commits: int = 0
    ticks: int = 0  # ticks built into candles, counted once committed
    candles: int = 0
    restored_instruments: int = 0
    restored_rows: int = 0
    claimed: int = 0
    strays: int = 0  # entries claimed from another consumer while this replica owned them
    skipped: int = 0  # entries at or before the checkpoint (already committed)
    warmed: set[str] = field(default_factory=set)


class PartitionFailed(RuntimeError):
    """A step of the partition failed before: the worker commits nothing more."""


class PartitionWorker:
    """Builds and commits one tick partition while this replica holds its lease."""

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
        self.lock = asyncio.Lock()  # a round, a timer sweep and a commit snapshot never interleave
        self.stats = PartitionStats()
        self.committed_entry = ""  # the checkpoint's entry: anything at or before it is done
        self.last_ids: dict[str, str] = {}  # newest entry per output stream, for `_stored:`
        self.uncommitted = Uncommitted()  # handled since the last commit
        self.failure: BaseException | None = None  # once set, nothing more is committed
        self._ended = asyncio.Event()  # stop requested, or failed
        self._strategy_symbols = ctx.engine.symbols()
        self._lookbacks = ctx.engine.lookbacks()
        self._routed: set[int] = set()  # instruments whose partition was checked
        self.decider = Decider(ctx.engine, ctx.metrics, s, ctx.halted)
        self.records = PartitionRecords(partition, ctx.store, ctx.metrics, self._market_now)
        self._publishing: list[asyncio.Task[None]] = []  # sends carrying our intents
        self._committing: asyncio.Task[None] | None = None  # the newest commit
        # Entries at or before the restored checkpoint's are done (claimed ones may be).
        self._skip_until: tuple[int, int] | None = None
        self.reading = False  # caught up and attached to the replica's reader

    # -- take-over ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the checkpoint and the unflushed rows, and claim the pending entries."""
        ctx = self.ctx
        keep = timedelta(days=ctx.settings.checkpoint_keep_days)
        checkpoint = await read_checkpoint(ctx.redis, self.partition, keep)
        symbols: set[str] = set()
        for states in checkpoint.states:
            if self.book.restore(states):
                self.stats.restored_instruments += 1
                symbols.update(s.symbol for s in states)
                for state in states:  # the market time the previous owner had reached
                    if state.open_bucket is not None:
                        self.feed_clock.observe(state.open_bucket.last_ts, ctx.mono())
        self.committed_entry = checkpoint.entry
        self._skip_until = entry_key(checkpoint.entry) if checkpoint.entry else None
        # What this replica's strategies knew of this partition's symbols is stale: warm them
        # again. Symbols the replica's other partitions trade live stay as they are (those
        # partitions warmed them once and would never warm them again: forgotten, their
        # strategies would restart cold and miss a lookback's worth of signals).
        ctx.engine.forget((symbols | self._strategy_symbols) - ctx.live_symbols())
        if checkpoint.raw:
            self.stats.restored_rows = await restore_rows(
                ctx.redis, ctx.store, self.partition, ctx.settings.tick_partitions, checkpoint.raw
            )
        self.stats.claimed = await claim_pending(ctx.redis, self.stream, ctx.consumer)
        logger.info(
            "partition %s taken over: %s instruments restored at entry %s, %s rows re-stored, "
            "%s pending entries claimed",
            self.partition, self.stats.restored_instruments, self.committed_entry or "(none)",
            self.stats.restored_rows, self.stats.claimed,
        )  # fmt: skip

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self, reader: SharedReader) -> None:
        """Handle the claimed pending entries, then take part in the replica's reads until
        `request_stop` (graceful: commit what is uncommitted and return) or a failure (raised:
        the service drops the partition; what was not committed stays pending for the next
        owner, which handles it again from the checkpoint)."""
        try:
            await self._catch_up()
            if not self._ended.is_set():
                await reader.attach(self)
                self.reading = True
                try:
                    await self._ended.wait()
                finally:
                    await reader.detach(self)
            self._raise_failure()
            async with self.lock:
                self._raise_failure()
                self.start_commit()
            if self._committing is not None:
                await self._committing
        except BaseException as exc:
            self.failure = self.failure or exc
            raise
        finally:
            # Nothing left running: a publication's outcome is the NX keys' business now.
            tasks = [*self._publishing, *([self._committing] if self._committing else [])]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    def request_stop(self) -> None:
        """Stop after the round in progress; `run` commits and returns."""
        self._ended.set()

    @property
    def stopping(self) -> bool:
        return self._ended.is_set()

    def fail(self, exc: BaseException) -> None:
        """A step failed: nothing more is committed, `run` raises."""
        if self.failure is None:
            logger.error("tick partition %s failed: %r", self.partition, exc)
            self.failure = exc
        self._ended.set()

    def _raise_failure(self) -> None:
        failure = self.failure
        if isinstance(failure, LeaseLost):
            raise LeaseLost(str(failure))
        if failure is not None:
            raise PartitionFailed(f"tick partition {self.partition} failed: {failure!r}")

    async def _catch_up(self) -> None:
        """This consumer's pending entries (claimed at take-over), read from the start."""
        s, redis = self.ctx.settings, self.ctx.redis
        cursor = "0"
        while not self._ended.is_set():
            reply = await redis.xreadgroup(
                c.GROUP_CONSUMER, self.ctx.consumer, {self.stream: cursor}, count=s.read_count
            )
            entries = stream_entries(reply)
            if not entries:
                return
            async with self.lock:
                self._raise_failure()
                try:
                    await self.handle(entries)
                except BaseException as exc:
                    self.fail(exc)
                    raise
                if self.ms_to_commit() == 0:
                    self.start_commit()
            cursor = entries[-1][0]

    async def claim_strays(self) -> int:
        """Handle, late, this partition's entries another consumer was handed while this
        replica held the lease (see adapters/takeover.py); returns how many. Their ticks are
        older than ones already built: a closed candle's becomes a counted revision; the
        checkpoint's entry stays the newest handled."""
        if self.stopping or not self.reading:  # the take-over's catch-up reads the claimed
            return 0
        strays = await claim_strays(self.ctx.redis, self.stream, self.ctx.consumer)
        if not strays:
            return 0
        logger.warning(
            "tick partition %s: %s entries %s..%s were pending with another consumer; claimed "
            "and handled late", self.partition, len(strays), strays[0][0], strays[-1][0],
        )  # fmt: skip
        async with self.lock:
            self._raise_failure()
            newest = self.uncommitted.entry
            try:
                await self.handle(strays)
            except BaseException as exc:
                self.fail(exc)
                raise
            self.uncommitted.entry = newest
        self.stats.strays += len(strays)
        self.ctx.metrics.stray_entries.inc(len(strays))
        return len(strays)

    async def handle(self, entries: Entries) -> None:
        """Both passes of one batch (the caller holds the lock)."""
        rest = await self.first_pass(entries)
        self.ctx.outbox.flush()
        await self.second_pass(rest)
        self.ctx.outbox.flush()

    # -- one batch, in two passes ---------------------------------------------------------------

    async def first_pass(self, entries: Entries) -> Entries:
        """Take a batch in (its entries are acked by the next commit) and build the ticks of
        strategy instruments, deciding as their candles close; returns the other entries for
        `second_pass`. Which entries go first is read from the symbol alone (a partial decode,
        a fraction of a full one); the passes decide from the full tick, so a wrong guess only
        delays. Callers hold the lock across both passes."""
        work = self._work()
        self.stats.rounds += 1
        symbols = self._strategy_symbols
        first: Entries = []
        rest: Entries = []
        skip_until = self._skip_until
        for entry in entries:
            entry_id, fields = entry
            work.acks.append(entry_id)
            work.entry = entry_id
            if skip_until is not None:
                if entry_key(entry_id) <= skip_until:
                    self.stats.skipped += 1
                    continue
                skip_until = self._skip_until = None  # entries come in order: none is older
            if symbols and fields and symbol_of(fields) in symbols:
                first.append(entry)
            else:
                rest.append(entry)
        if first:
            await self._build(self._intake(first, work))
        return rest

    async def second_pass(self, entries: Entries) -> None:
        """Build the other entries' ticks (no decision waits on them)."""
        await self._build(self._intake(entries, self.uncommitted))

    def _work(self) -> Uncommitted:
        """The uncommitted work, its age starting with its first piece."""
        work = self.uncommitted
        if work.empty():
            work.since = self.ctx.mono()
        return work

    def _intake(self, entries: Entries, work: Uncommitted) -> list[Tick]:
        ticks: list[Tick] = []
        for entry_id, fields in entries:
            tick = self._tick(entry_id, fields, work)
            if tick is not None:
                ticks.append(tick)
                if tick.instrument_token not in self._routed:
                    self._check_routing(tick)
        work.ticks += len(ticks)
        return ticks

    async def _build(self, ticks: list[Tick]) -> None:
        work = self.uncommitted
        mono = self.ctx.mono()
        update, observe, dirty = self.book.update, self.feed_clock.observe, work.dirty
        lookbacks, warmed, symbols = self._lookbacks, self.stats.warmed, self._strategy_symbols
        outbox = self.ctx.outbox
        closed_here: list[Candle] = []
        bystanders: list[Candle] = []  # closed candles no strategy runs on
        for tick in ticks:
            strategy = tick.symbol in symbols
            if strategy and tick.symbol not in warmed:
                await self._warm_up(tick)
            observe(tick.exchange_ts, mono)
            dirty.add(tick.instrument_token)
            closed = update(tick)
            if not closed:
                continue
            work.candles.extend(closed)
            closed_here.extend(closed)
            if not strategy:
                bystanders.extend(closed)
                continue
            decide = [x for x in closed if (x.symbol, x.timeframe) in lookbacks]
            bystanders.extend(x for x in closed if (x.symbol, x.timeframe) not in lookbacks)
            if decide:
                await self._decide_and_publish(decide)
                if outbox.due():  # a pass full of decisions does not hold the first ones back
                    outbox.flush()
                    await asyncio.sleep(0)  # replies read, connections back: none to open
        await self._decide_and_publish([])  # gaps of strategy instruments: backfilled, decided
        self.records.closed(closed_here, "tick")
        self.decider.note(bystanders)

    def _tick(
        self, entry_id: str, fields: dict[bytes, bytes] | None, work: Uncommitted
    ) -> Tick | None:
        if not fields:  # trimmed before it was read: nothing to handle
            return None
        try:
            message = decode_entry(self.stream, fields)
        except MessageError as exc:
            work.dead_letters.append(self._letter(DeadLetterKind.MALFORMED,
                                                  failure_reason(exc), entry_id, fields))  # fmt: skip
            return None
        assert isinstance(message, Tick)
        problem = tick_problem(message)
        if problem is not None:
            work.dead_letters.append(
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
        """Close buckets whose end + grace has passed in this partition's market time, then
        commit everything uncommitted."""
        async with self.lock:
            if self.failure is not None:  # its run raises: being dropped
                return
            try:
                await self._sweep()
                self.start_commit()
            except BaseException as exc:
                self.fail(exc)
                raise

    async def _sweep(self) -> None:
        ctx = self.ctx
        now = (
            self.feed_clock.now(ctx.mono())
            if ctx.settings.market_clock == "feed"
            else ctx.clock.now()
        )
        closed = self.book.on_time(now) if now is not None else []
        work = self._work()
        if closed:
            work.candles.extend(closed)
            work.dirty.update(x.instrument_token for x in closed)
            self.records.closed(closed, "timer")
        lookbacks = self._lookbacks
        await self._decide_and_publish([x for x in closed if (x.symbol, x.timeframe) in lookbacks])
        self.decider.note([x for x in closed if (x.symbol, x.timeframe) not in lookbacks])

    async def commit_signals(self, signals: list[Signal]) -> None:
        """Publish signals decided outside a round (a universe strategy's flush)."""
        async with self.lock:
            if self.failure is not None:
                logger.error("partition %s failed: %s signals of a universe flush not published",
                             self.partition, len(signals))  # fmt: skip
                return
            try:
                self._work()
                await self._decide_and_publish([], signals)
                self.start_commit()
            except BaseException as exc:
                self.fail(exc)
                raise

    # -- decisions and intents, right away ------------------------------------------------------

    async def _decide_and_publish(
        self, closed: list[Candle], extra_signals: Sequence[Signal] = ()
    ) -> None:
        """Strategies decide on `closed` (candles of their keys, in order) and on the backfill of
        any new gap of theirs; the intents go out now, the signals with the next commit."""
        work = self.uncommitted
        gaps = self.book.take_gaps()
        if gaps:
            work.gaps.extend(gaps)
            work.dirty.update(g.instrument_token for g in gaps)
        backfilled = await self._backfill(gaps)
        work.candles.extend(backfilled)
        if not closed and not backfilled and not extra_signals:
            return
        decider = self.decider
        signals = [*extra_signals, *decider.decide(closed, backfilled)]
        if not signals:
            return
        work.signals.extend(signals)
        self.ctx.outbox.add(self, decider.intents(decider.tradable(signals, backfilled)))

    def track_publication(self, task: asyncio.Task[None]) -> None:
        """A send carrying intents of this partition: the next commit waits for it."""
        self._publishing.append(task)

    # -- commits --------------------------------------------------------------------------------

    def ms_to_commit(self) -> int | None:
        """None with nothing uncommitted, 0 when a commit is due, else the ms until it is."""
        work = self.uncommitted
        if work.empty():
            return None
        s = self.ctx.settings
        if len(work.acks) >= s.commit_max_entries:
            return 0
        left_ms = s.commit_interval_ms - (self.ctx.mono() - work.since) * 1000
        return 0 if left_ms < 1 else int(left_ms)

    def start_commit(self) -> None:
        """Commit everything handled so far (the caller holds the lock): the states of every
        touched instrument are encoded now, once each, and the commit runs as a task, after
        the previous commit and after every intent sent before it (a signal is never recorded
        while its intent may still fail to go out)."""
        self.ctx.outbox.flush()
        work = self.uncommitted
        if work.empty():
            return
        self.uncommitted = Uncommitted()
        # The first pass dead-letters a strategy instrument's bad entries before the others.
        work.dead_letters.sort(key=lambda letter: entry_key(letter.entry_id))
        publishing, self._publishing = self._publishing, []
        book = self.book
        rejects = book.take_rejects()
        states = {token: book.encoded_state_of(token) for token in work.dirty}
        self._committing = asyncio.Task(
            self._commit(work, states, rejects, publishing, self._committing),
            loop=asyncio.get_running_loop(),
            eager_start=True,
        )

    async def _commit(
        self,
        work: Uncommitted,
        states: dict[int, bytes],
        rejects: list[RejectedTick],
        publishing: list[asyncio.Task[None]],
        previous: asyncio.Task[None] | None,
    ) -> None:
        try:
            if previous is not None:
                await previous  # commits apply in order: a checkpoint never goes back
            for outcome in await asyncio.gather(*publishing, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome
            self._raise_failure()  # a lease found lost while publishing
            committed = await self.ctx.committer.commit(self.partition, work, states)
        except BaseException as exc:
            self.fail(exc)
            raise
        # Rows right after the commit, with no await in between: the flusher's `_stored:` marks
        # never get ahead of the rows they vouch for.
        self._after_commit(work, committed, rejects)

    def _after_commit(
        self, work: Uncommitted, committed: Committed, rejects: list[RejectedTick]
    ) -> None:
        if work.entry:
            self.committed_entry = work.entry
        self.last_ids.update(committed.last_ids)
        if work.intents_last_id:
            self.last_ids[c.INTENTS] = work.intents_last_id
        self.stats.commits += 1
        self.stats.ticks += work.ticks
        self.stats.candles += len(work.candles)
        self.records.committed(work, rejects)

    def after_publish(self, intents: list[OrderIntent], published: Published) -> None:
        """A send carrying intents of this partition returned: their rows go with the next
        commit."""
        work = self._work()
        work.intents.extend(intents)
        if published.last_id:
            work.intents_last_id = published.last_id
        self.records.published(intents, published)

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

    def _check_routing(self, tick: Tick) -> None:
        partitions = self.ctx.settings.tick_partitions
        token = tick.instrument_token
        self._routed.add(token)
        if c.partition_of(token, partitions) != self.partition:
            logger.error(
                "instrument %s arrived on partition %s but belongs to %s of %s: the "
                "Producer's TICK_PARTITIONS differs from the Consumer's",
                tick.symbol, self.partition, c.partition_of(token, partitions), partitions,
            )  # fmt: skip

    def symbols(self) -> set[str]:
        """Symbols of the instruments this partition has builders for."""
        return {b.symbol for t in self.book.tokens() for b in self.book.builders(t)[:1]}


class SharedReader(Protocol):
    """The replica's reader a worker takes part in (adapters/tick_reader.py)."""

    async def attach(self, worker: PartitionWorker) -> None: ...

    async def detach(self, worker: PartitionWorker) -> None: ...
